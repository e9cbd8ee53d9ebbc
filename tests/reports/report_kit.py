"""A small reporting bundle and a fixed data set whose measures are computed by hand in tests.

Six tickets (times UTC; the bundle runs in Asia/Shanghai, UTC+8):

| # | created (UTC)       | customer | region | category   | amount | sat | closed after | first response |
|---|---------------------|----------|--------|------------|--------|-----|--------------|----------------|
| 1 | 2025-03-03 02:00    | Acme     | east   | late       | 100    | 5   | 10 h         | 1 h            |
| 2 | 2025-03-04 02:00    | Acme     | east   | lost       | 300    | 4   | 80 h         | 3 h            |
| 3 | 2025-03-10 02:00    | Bolt     | north  | late       | 200    | 2   | 30 h         | 2 h            |
| 4 | 2025-03-31 17:00    | Acme     | north  | broken     |        |     | open         | 5 h            |
| 5 | 2025-04-02 02:00    | Cole     | south  | late       | 400    | 3   | 100 h        |                |
| 6 | 2025-04-20 02:00    | Bolt     | east   | broken     | 1000   | 4   | 50 h         | 4 h            |

Record 4 is created on 2025-04-01 in Shanghai. Acme's 2nd and 4th and Bolt's 6th (within 30
days of the 3rd? no: 41 days) -> repeats are #2 and #4 (Acme within 30 days).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.clock import ManualClock
from engine.identity import Principal
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import report_facts
from forms.access import load_principal
from tests.engine.bundle_kit import write_bundle
from web.system import System, boot

BUNDLE = """\
bundle: reportkit
version: "1"
label: Report kit
timezone: Asia/Shanghai
roles:
  agent: {label: Agent, sees: department}
  clerk: {label: Clerk}
  boss: {label: Boss, sees: all}
departments:
  service: {label: Service}
  ops: {label: Operations}
demo_users:
  - {username: sam, roles: [agent], department: service}
  - {username: oli, roles: [agent], department: ops}
  - {username: cleo, roles: [clerk]}
  - {username: bea, roles: [boss]}
"""

FILES = {
    "bundle.yaml": BUNDLE,
    "lists/region.yaml": """\
list: region
items:
  - {value: east, label: {zh-CN: 华东, en: East}}
  - {value: north, label: {zh-CN: 华北, en: North}}
  - {value: south, label: {zh-CN: 华南, en: South}}
""",
    "lists/category.yaml": """\
list: category
items:
  - value: delivery
    label: {zh-CN: 投递, en: Delivery}
    children:
      - {value: late, label: {zh-CN: 延误, en: Late}}
      - {value: lost, label: {zh-CN: 丢失, en: Lost}}
  - value: goods
    label: {zh-CN: 货物, en: Goods}
    children:
      - {value: broken, label: {zh-CN: 破损, en: Broken}}
""",
    "forms/ticket.yaml": """\
form: ticket
label: Ticket
numbering: T{seq:4}
title: customer
fields:
  customer: {type: text, required: true}
  region: {type: select, options: region}
  category: {type: cascade, options: category}
  amount: {type: money}
  satisfaction: {type: rating, max: 5}
""",
    "flows/ticket_flow.yaml": """\
flow: ticket_flow
form: ticket
start: begin
nodes:
  begin: {type: start, next: handle}
  handle:
    type: task
    assign: {department: ops}
    next: done
  done: {type: end}
""",
    "reports/tickets.yaml": """\
dataset: tickets
label: {zh-CN: 工单, en: Tickets}
form: ticket
repeat: {key: customer, days: 30}
fields:
  created: {field: created_at}
  customer: {field: customer}
  region: {field: region}
  category: {field: category}
  group: {field: category, level: 1}
  department: {handled_by: department}
measures:
  tickets: {count: true, label: {zh-CN: 工单数, en: Tickets}}
  customers: {count_distinct: customer}
  amount: {sum: amount}
  avg_amount: {avg: amount}
  min_amount: {min: amount}
  max_amount: {max: amount}
  satisfaction: {avg: satisfaction}
  median_resolution: {median: resolution_hours}
  p90_resolution: {percentile: resolution_hours, p: 0.9}
  resolution: {avg: resolution_hours}
  first_response: {avg: first_response_hours}
  age: {avg: age_hours}
  closed_72h: {rate: resolution_hours <= 72h, of: closed_at != None}
  on_time: {rate: "resolution_hours <= (24 if region == 'east' else 48)", of: closed_at != None}
  repeat_rate: {rate: is_repeat == 1}
  open: {count: true, where: closed_at == None}
  big: {count: true, where: amount >= 300}
rollups:
  daily: {date: created}
  by_region: {date: created, dimensions: [region]}
  by_region_category: {date: created, dimensions: [region, category]}
  heat_month: {date: created, grain: month, dimensions: [region, category]}
  customer_month: {date: created, grain: month, dimensions: [customer]}
""",
    "dashboards/board.yaml": """\
dashboard: board
label: Board
filters:
  period: {field: created}
  region: {field: region}
  group: {field: group}
  customer: {field: customer}
  department: {field: department}
widgets:
  total: {chart: kpi, dataset: tickets, measures: [tickets], compare: previous_period}
  quality: {chart: kpi, dataset: tickets, measures: [closed_72h, on_time, satisfaction, repeat_rate]}
  by_region: {chart: bar, dataset: tickets, dimensions: [region], measures: [tickets]}
  by_month: {chart: line, dataset: tickets, dimensions: [created.month], measures: [tickets]}
  by_week: {chart: area, dataset: tickets, dimensions: [created.week], measures: [tickets]}
  by_day: {chart: bar, dataset: tickets, dimensions: [created.day], measures: [tickets]}
  by_group: {chart: pie, dataset: tickets, dimensions: [group], measures: [tickets]}
  top_customer: {chart: ranking, dataset: tickets, dimensions: [customer], measures: [tickets], top: 1, others: true}
  heat: {chart: heatmap, dataset: tickets, dimensions: [region, category], measures: [tickets]}
  table: {chart: table, dataset: tickets, dimensions: [region], measures: [tickets, amount, satisfaction]}
  averages: {chart: table, dataset: tickets, dimensions: [region], measures: [satisfaction]}
  big: {chart: bar, dataset: tickets, dimensions: [region], measures: [big]}
  radar: {chart: radar, dataset: tickets, dimensions: [region], measures: [tickets, satisfaction]}
  tiles: {chart: region_grid, dataset: tickets, dimensions: [region], measures: [tickets]}
  trend2: {chart: donut, dataset: tickets, dimensions: [category], measures: [amount]}
""",
}

UTC = timezone.utc
ROWS: list[dict[str, Any]] = [
    dict(at=datetime(2025, 3, 3, 2, tzinfo=UTC), customer="Acme", region="east", category="late", amount="100", satisfaction=5, closed=10, first=1),
    dict(at=datetime(2025, 3, 4, 2, tzinfo=UTC), customer="Acme", region="east", category="lost", amount="300", satisfaction=4, closed=80, first=3),
    dict(at=datetime(2025, 3, 10, 2, tzinfo=UTC), customer="Bolt", region="north", category="late", amount="200", satisfaction=2, closed=30, first=2),
    dict(at=datetime(2025, 3, 31, 17, tzinfo=UTC), customer="Acme", region="north", category="broken", amount=None, satisfaction=None, closed=None, first=5),
    dict(at=datetime(2025, 4, 2, 2, tzinfo=UTC), customer="Cole", region="south", category="late", amount="400", satisfaction=3, closed=100, first=None),
    dict(at=datetime(2025, 4, 20, 2, tzinfo=UTC), customer="Bolt", region="east", category="broken", amount="1000", satisfaction=4, closed=50, first=4),
]


def build(tmp_path: Path, *, submitters: dict[int, str] | None = None) -> tuple[System, list[int]]:
    """The kit's system with the six tickets; `submitters` maps a row index to its creator."""
    root = write_bundle(tmp_path / "bundle", {**FILES, "forms/ticket.yaml": FILES["forms/ticket.yaml"]})
    clock = ManualClock(datetime(2025, 3, 1, tzinfo=UTC))
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)
    ids = []
    for i, row in enumerate(ROWS):
        clock.set(row["at"])
        data = {k: row[k] for k in ("customer", "region", "category", "amount", "satisfaction") if row[k] is not None}
        result = system.forms.submit("ticket", data, actor=(submitters or {}).get(i, "intake"))
        ids.append(result.record_id)
    with transaction(system.db) as conn:
        for record_id, row in zip(ids, ROWS):
            values = {"closed_at": row["at"] + timedelta(hours=row["closed"]) if row["closed"] is not None else None,
                      "first_response_at": row["at"] + timedelta(hours=row["first"]) if row["first"] is not None else None}
            conn.execute(report_facts.update().where(report_facts.c.form == "ticket",
                                                     report_facts.c.record_id == record_id).values(**values))
    system.runtime.services["reports"].rebuild_rollups()  # the facts above bypassed the events
    clock.set(datetime(2025, 5, 1, tzinfo=UTC))
    return system, ids


def principal(system: System, username: str) -> Principal:
    with read_transaction(system.db) as conn:
        found = load_principal(conn, system.runtime, username)
    assert found is not None
    return found


def params(**values: Any) -> dict[str, list[str]]:
    return {k: (v if isinstance(v, list) else [v]) for k, v in values.items()}


def run(system: System, widget: str, who: Principal | None = None, **filters: Any) -> list[dict[str, Any]]:
    reports = system.runtime.services["reports"]
    board = reports.dashboard("board")
    return reports.run(board, board.widgets[widget], params(**filters), who or Principal.system()).rows


def facts(system: System) -> list[Any]:
    with read_transaction(system.db) as conn:
        return conn.execute(sa.select(report_facts).order_by(report_facts.c.record_id)).all()
