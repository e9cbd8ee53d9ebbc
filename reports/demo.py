"""`docket demo BUNDLE --records N`: realistic synthetic complaints over two years, run through
the real form and flow services on a fast manual clock, so dashboards show meaningful shapes.

The flow is driven generically: whenever a task is open, a plausible person completes it after
a plausible delay, with an outcome chosen from the node's outcomes (approvals mostly approve)
and values for the node's fields drawn from each field's type and options. Whatever the flow
looks like, records move through it; the newest ones are still open at the end (a backlog).
Services are reached through `runtime.services` (reports does not import the flow engine).
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Mapping

import sqlalchemy as sa

from engine.errors import DocketError, ValidationFailed
from engine.runtime import Runtime
from engine.storage.db import read_transaction
from engine.storage.tables import tasks, user_roles, users
from forms.messages import FieldInvalid

log = logging.getLogger(__name__)

CUSTOMERS = ["华为技术", "京东物流", "顺丰速运", "中国石化", "国家电网", "比亚迪", "美的集团", "格力电器",
             "海尔智家", "小米科技", "阿里巴巴", "腾讯科技", "中国银行", "招商银行", "平安保险", "中粮集团",
             "蒙牛乳业", "伊利股份", "联想集团", "宁德时代", "三一重工", "万科地产", "苏宁易购", "唯品会",
             "拼多多", "网易", "百度", "携程", "中国移动", "中国联通"]
REGION_WEIGHTS = {"east": 30, "south": 22, "north": 18, "central": 12, "southwest": 9, "northwest": 5, "northeast": 4}
CONTACTS = ["李明", "王芳", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄强"]


@dataclass
class DemoResult:
    records: int
    completed_tasks: int
    open_tasks: int
    closed: int


def _weights(n: int) -> list[float]:
    return [1.0 / (rank + 1) ** 0.9 for rank in range(n)]


def _arrivals(rng: random.Random, count: int, start: datetime, days: int) -> list[datetime]:
    """Arrival instants: growing volume, fewer on weekends, a peak around Double 11 (Nov 11)
    and before Spring Festival, working hours busier than nights."""
    day_weights = []
    for d in range(days):
        day = start + timedelta(days=d)
        w = 1.0 + 0.5 * d / days
        if day.weekday() >= 5:
            w *= 0.55
        if (day.month == 11 and 10 <= day.day <= 25) or (day.month == 12 and day.day <= 5):
            w *= 2.2
        if day.month == 1 and day.day >= 15:
            w *= 1.4
        day_weights.append(w)
    chosen = rng.choices(range(days), weights=day_weights, k=count)
    out = []
    for d in chosen:
        hour = rng.choices(range(24), weights=[1, 1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 9, 6, 8, 10, 10, 9, 8, 6, 4, 3, 2, 2, 1])[0]
        out.append(start + timedelta(days=d, hours=hour - 8, minutes=rng.randrange(60), seconds=rng.randrange(60)))
    return sorted(out)


AMOUNTS = (0, 100, 300, 800, 2000, 3500, 6000, 12000)
AMOUNT_WEIGHTS = (10, 15, 20, 20, 14, 8, 8, 5)
"""Sample amounts for money and number fields a person fills in (about one in eight above 5000)."""

_OPTIONAL_KINDS = frozenset({"money", "number", "integer", "rating", "boolean"})
"""Optional fields sample traffic fills in most of the time (besides choice fields)."""

_CODE_KINDS = frozenset({"id_number", "text", "hidden"})
"""Field types whose value may have to match a pattern of the analyst's: samples are checked."""


def _codes(rng: random.Random) -> Iterator[str]:
    """Sample codes for an identifier field: a valid resident id, credit code and waybill number,
    then digits, upper-case letters and digits, and lower-case ones, of each length to 30."""
    yield from ("11010519491231002X", "91350100M000100Y43", "SF1234567890")
    for length in range(1, 31):
        digits = "".join(str(rng.randrange(10)) for _ in range(length))
        yield digits
        yield "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(min(2, length))) + digits[2:]
        yield "".join(rng.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(length))


URGENCIES_IN_ORDER = ["urgent", "important", "normal"]
URGENCIES = frozenset(URGENCIES_IN_ORDER)
"""The postal urgencies, drawn mostly normal; a form with urgencies of its own gets its own."""


class DemoRunner:
    """Submits complaints and works their tasks on the runtime's ManualClock."""

    def __init__(self, runtime: Runtime, *, seed: int = 7, form: str | None = None,
                 fire_timers: bool = False):
        self.rt = runtime
        # A simulation fires timers (SLA warnings, escalations, waits) at their due times as the
        # clock moves; the demo leaves them for the server's scheduler to catch up on.
        self.timers = runtime.services.get("timers") if fire_timers else None
        if fire_timers and runtime.services.get("reports") is not None:
            # Scheduled reports fire too; a simulation counts their messages, never sends them.
            runtime.services["reports"].scheduler.draw_charts = False
        self.seed = seed
        self.rng = random.Random(seed)  # arrivals and submitted values
        # Each step's delay, person and values come from a generator of its own, seeded by the
        # record, the node and the visit: the same traffic makes the same choices at a step,
        # whatever other steps a changed flow adds or drops (`docket simulate --compare`).
        self.visits: dict[tuple[int, str], int] = {}
        self.forms = runtime.services["forms"]
        self.flows = runtime.services["flows"]
        # The form the dashboards count (the first dataset's), else the bundle's first form.
        datasets = list(runtime.bundle.all("dataset").values())
        self.form_name = form or (datasets[0].form if datasets else next(iter(runtime.bundle.all("form"))))
        self.form = self.forms.form(self.form_name)
        # The first demo user submits (bundle.yaml lists the one who usually does first): a
        # step for `submitter`, or a message to them, then reaches a person of the bundle.
        listed = runtime.bundle.meta.demo_users
        self.submitter = listed[0].username if listed else "demo"
        # A yes/no that makes another field required ("more information needed" -> "what") asks
        # for extra work: people tick it now and then, not as readily as a confirmation.
        self.rare_flags = {name for name, spec in self.form.spec.fields.items() if spec.type == "boolean"
                           and any(other.required_if is not None and name in other.required_if.names_used
                                   for other in self.form.spec.fields.values())}
        self.queue: list[tuple[datetime, int, int]] = []
        self.known: set[int] = set()
        self.completed = 0
        self.steps: dict[int, int] = {}
        self.refused: Counter[str] = Counter()
        """Why sample records were refused ("field: message; field: message") -> how many: a
        required field the samples never fill refuses every one of them."""
        with read_transaction(runtime.db) as conn:
            rows = conn.execute(sa.select(users.c.username, user_roles.c.role)
                                .join(user_roles, user_roles.c.user_id == users.c.id)).all()
        self.by_role: dict[str, list[str]] = {}
        for username, role in rows:
            self.by_role.setdefault(role, []).append(username)

    # -- values ----------------------------------------------------------------------------------
    def complaint(self, at: datetime) -> dict[str, Any]:
        spec = self.form.spec
        rng = self.rng
        data: dict[str, Any] = {}
        customers = CUSTOMERS
        for name, field in spec.fields.items():
            if name == "customer_name":
                data[name] = rng.choices(customers, weights=_weights(len(customers)))[0]
            elif name == "region" and field.choices is not None:
                values = [v for v in REGION_WEIGHTS if v in field.choices.values()] or sorted(field.choices.values())
                data[name] = rng.choices(values, weights=[REGION_WEIGHTS.get(v, 5) for v in values])[0]
            elif name == "contact_name":
                data[name] = rng.choice(CONTACTS)
            elif name == "contact_phone":
                data[name] = "139" + "".join(str(rng.randrange(10)) for _ in range(8))
            elif name == "occurred_at":
                data[name] = (at - timedelta(hours=rng.randrange(1, 48))).isoformat()
            elif name == "category" and field.choices is not None:
                leaves = [o.value for _, o, _ in field.choices.walk() if not o.children]
                data[name] = rng.choices(leaves, weights=_weights(len(leaves))[::-1] if rng.random() < 0.3 else _weights(len(leaves)))[0]
            elif name == "description":
                data[name] = "客户要求尽快处理并说明原因。"  # the problem is named below, once the category is drawn
            elif name == "urgency" and field.choices is not None and URGENCIES <= field.choices.values():
                data[name] = rng.choices(URGENCIES_IN_ORDER, weights=[12, 28, 60])[0]
            elif name == "channel" and field.choices is not None:
                data[name] = rng.choice(sorted(field.choices.values()))
        if "description" in data and data.get("category") and spec.fields["category"].choices is not None:
            # Each sample names its own problem: one sentence for all made every knowledge-base
            # article and every recommendation on a record page read the same.
            leaf = {o.value: o for _, o, _ in spec.fields["category"].choices.walk()}.get(data["category"])
            if leaf is not None:
                data["description"] = f"{leaf.text('zh-CN')}，{data['description']}"
        if "amount_claimed" in spec.fields:
            data["amount_claimed"] = str(rng.choice([200, 500, 800, 1500, 3000, 6000, 12000]))
        for name in list(data):  # a postal sample the analyst's pattern refuses: one it accepts
            field = spec.fields[name]
            if field.type in _CODE_KINDS and not self._accepts(field, data[name]):
                data[name] = self.value_for(field)
        for name, field in spec.fields.items():  # any other form: its required fields get values,
            # and most of its optional amounts and choices (what its flow and dashboards branch on)
            if name in data:
                continue
            if not field.required and not self._required_now(field, data):
                if field.staff_only or (field.type not in _OPTIONAL_KINDS and field.choices is None):
                    continue
                if rng.random() >= 0.7:
                    continue
            value = self.value_for(field)
            if value is not None:
                data[name] = value
        return data

    def _required_now(self, field: Any, data: Mapping[str, Any]) -> bool:
        """Whether the field's `required_if` holds for the sample so far (a condition that cannot
        be worked out on raw input counts as holding: a value for an optional field does no harm)."""
        if field.required_if is None:
            return False
        names = {**{n: None for n in self.form.spec.fields}, **data}
        try:
            return bool(field.required_if.evaluate(names, None))
        except DocketError:
            return True

    def value_for(self, field: Any, rng: random.Random | None = None) -> Any:
        """A sample value a person might give `field`, which the field accepts, or None."""
        rng = rng or self.rng
        value = self._sample(field, rng)
        if field.type not in _CODE_KINDS or (value is not None and self._accepts(field, value)):
            return value
        # A code of the analyst's own pattern (a 10-digit account number): the first sample code
        # it accepts, else its default.
        return next((code for code in _codes(rng) if self._accepts(field, code)), field.default)

    def _accepts(self, field: Any, value: Any) -> bool:
        try:
            self.form.types[field.name].parse(value, field)
        except (FieldInvalid, DocketError, ValueError):
            return False
        return True

    def _sample(self, field: Any, rng: random.Random) -> Any:
        kind = field.type
        if field.default is not None and rng.random() < 0.8:
            return field.default  # people mostly leave a field as the form suggests it
        if field.name == "satisfaction" or kind == "rating":
            stars = rng.choices([1, 2, 3, 4, 5], weights=[3, 5, 17, 40, 35])[0]
            # The same spread on the field's own scale: a 1-10 survey answered 1-5 was never
            # satisfied (from 6) in a simulation, and every case looped to the committee.
            top = int(field.opt("max", 5)) if kind == "rating" else 5
            return round(1 + (stars - 1) * (top - 1) / 4)
        if kind == "boolean":
            return rng.random() < (0.08 if field.name in self.rare_flags else 0.93)
        if field.choices is not None:
            leaves = [o.value for _, o, _ in field.choices.walk() if not o.children]
            return rng.choice(leaves) if leaves else None
        if kind in ("money", "number", "integer"):
            # Mostly small amounts, now and then a large one: enough above the usual approval
            # limits (5000 in the postal bundle) that a changed limit shows in a simulation.
            amount = rng.choices(AMOUNTS, weights=AMOUNT_WEIGHTS)[0]
            low, high = field.opt("min"), field.opt("max")
            if high is not None:
                amount = min(amount, high)
            if low is not None:
                amount = max(amount, low)
            return str(int(amount) if kind == "integer" else amount)
        if kind == "text":  # a short value that reads as sample data: the field's name and a number
            return f"{field.text(self.rt.bundle.meta.default_locale or 'en')} {rng.randrange(1, 100)}"[:100]
        if kind in ("textarea", "rich_text"):
            return "已核实情况并与客户沟通，按规定处理。"
        if kind == "phone":
            return "139" + "".join(str(rng.randrange(10)) for _ in range(8))
        if kind == "email":
            return f"demo{rng.randrange(10000)}@example.com"
        if kind == "url":
            return "https://example.com/"
        if kind == "time":
            return rng.choice(["09:30", "14:00", "16:30"])
        if kind == "duration":
            return rng.choice(["30m", "2h", "1d"])
        if kind == "user":
            people = self.by_role.get(str(field.opt("role") or ""), []) or sorted(
                {name for names in self.by_role.values() for name in names})
            return rng.choice(sorted(people)) if people else None
        if kind in ("date",):
            return self.rt.clock.now().date().isoformat()
        if kind in ("datetime",):
            return self.rt.clock.now().isoformat()
        field_type = self.rt.bundle.registry.field_types.get(kind)  # a plugin's type samples itself
        sample = getattr(field_type, "sample", None)
        return sample(field, rng) if sample is not None else None

    # -- tasks -----------------------------------------------------------------------------------
    def _step_rng(self, record_id: int, node: str, *, part: str) -> random.Random:
        visit = self.visits.get((record_id, node), 0)
        return random.Random(f"{self.seed}:{record_id}:{node}:{visit}:{part}")

    def _delay(self, record_id: int, node: str) -> timedelta:
        mean = {"accept": 1.5, "confirm": 20.0}.get(node, 9.0)
        hours = self._step_rng(record_id, node, part="delay").expovariate(1.0 / mean)
        return timedelta(hours=min(hours, 24 * 20) + 0.05)

    def _discover(self, record_id: int | None) -> None:
        """Queue the record's new open tasks (every record's, for None) to be worked on."""
        query = sa.select(tasks.c.id, tasks.c.node, tasks.c.record_id).where(
            tasks.c.form == self.form_name, tasks.c.status.in_(("open", "claimed")))
        if record_id is not None:
            query = query.where(tasks.c.record_id == record_id)
        with read_transaction(self.rt.db) as conn:
            rows = conn.execute(query).all()
        now = self.rt.clock.now()
        for task_id, node, owner in rows:
            if task_id not in self.known:
                self.known.add(task_id)
                heapq.heappush(self.queue, (now + self._delay(owner, node), task_id, owner))

    def _who(self, task: Any, rng: random.Random) -> str | None:
        if task["assignee_user"] is not None:
            with read_transaction(self.rt.db) as conn:
                return conn.execute(sa.select(users.c.username).where(users.c.id == task["assignee_user"])).scalar()
        for role in task["candidate_roles"] or []:
            people = self.by_role.get(role)
            if people:
                return rng.choice(people)
        candidates = task["candidate_users"] or []
        return candidates[0] if candidates else None

    def work(self, task_id: int, record_id: int) -> None:
        with read_transaction(self.rt.db) as conn:
            task = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
        if task is None or task["status"] not in ("open", "claimed"):
            return
        self.steps[record_id] = self.steps.get(record_id, 0) + 1
        if self.steps[record_id] > 40:
            return  # a loop in a flow must not keep the demo busy: leave it open
        node = self._node(task)
        rng = self._step_rng(record_id, task["node"], part="work")
        fields = list(node.options.get("fields", [])) if node is not None else []
        node_type = self.rt.bundle.registry.node_types.get(node.type) if node is not None else None
        outcomes = list(node_type.outcomes(node)) if hasattr(node_type, "outcomes") else []
        values = {}
        held = self.forms.get(self.form_name, record_id) if fields else {}
        # A step done again (a reopened case, a proposal sent back) is answered afresh: keeping
        # a dissatisfied rating would send the same case round its loop until the step cap.
        first_visit = self.visits.get((record_id, str(task["node"])), 0) == 0
        for name in fields:
            spec = self.form.spec.fields.get(name)
            if spec is None:
                continue
            if first_visit and held.get(name) not in (None, "", []) and rng.random() < 0.85:
                continue  # mostly, people confirm what the record already says (rules set levels)
            value = self.value_for(spec, rng)
            if value is not None:
                values[name] = value
        who = self._who(task, rng)
        tries: list[tuple[dict[str, Any], str | None]] = []
        if outcomes:
            first = outcomes[0] if rng.random() < 0.85 else rng.choice(outcomes)
            tries += [(values, first), (values, outcomes[0]), ({}, outcomes[0])]
        tries += [(values, None), (values, "approve"), ({}, None), ({}, "approve")]
        for vals, outcome in tries:
            try:
                self.flows.complete(task_id, who, values=vals, outcome=outcome,
                                    comment="同意，按规定处理。", locale="zh-CN")
                self.completed += 1
                key = (record_id, str(task["node"]))
                self.visits[key] = self.visits.get(key, 0) + 1
                break
            except (DocketError, ValueError):
                continue
        self._discover(record_id)

    def _node(self, task: Any) -> Any:
        with read_transaction(self.rt.db) as conn:
            from engine.storage.tables import flow_instances

            instance = conn.execute(sa.select(flow_instances.c.flow).where(
                flow_instances.c.id == task["instance_id"])).first()
        if instance is None:
            return None
        flow = self.rt.bundle.all("flow").get(instance[0])
        return flow.nodes.get(task["node"]) if flow is not None else None

    # -- the run -----------------------------------------------------------------------------------
    def run(self, records: int, *, start: datetime, days: int = 730,
            progress: Callable[[int], None] | None = None) -> DemoResult:
        clock = self.rt.clock
        if not hasattr(clock, "set"):
            raise DocketError("the demo needs a manual clock (engine.clock.ManualClock)")
        end = start + timedelta(days=days)
        for n, at in enumerate(_arrivals(self.rng, records, start, days), 1):
            self._drain(at)
            self._move_to(at)
            try:
                result = self.forms.submit(self.form_name, self.complaint(at), actor=self.submitter, channel="demo")
            except DocketError as exc:
                log.warning("demo %s refused: %s", self.form_name, exc)
                reasons = ([f"{name}: {messages[0]}" for name, messages in exc.errors.items() if messages]
                           if isinstance(exc, ValidationFailed) else [])
                self.refused["; ".join(reasons) or str(exc)] += 1
                continue
            self._discover(result.record_id)
            if progress and n % 500 == 0:
                progress(n)
        self._drain(end)
        self._move_to(end)
        with read_transaction(self.rt.db) as conn:
            open_tasks = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
                tasks.c.form == self.form_name, tasks.c.status.in_(("open", "claimed")))).scalar() or 0
            from engine.storage.tables import report_facts

            closed = conn.execute(sa.select(sa.func.count()).select_from(report_facts).where(
                report_facts.c.form == self.form_name, report_facts.c.closed_at.is_not(None))).scalar() or 0
        return DemoResult(records, self.completed, int(open_tasks), int(closed))

    def _drain(self, until: datetime) -> None:
        while self.queue and self.queue[0][0] <= until:
            due, task_id, record_id = heapq.heappop(self.queue)
            self._move_to(due)
            self.work(task_id, record_id)

    def _move_to(self, at: datetime) -> None:
        """Move the manual clock forward to `at` (never back), firing due timers on the way
        when this run fires them."""
        clock = self.rt.clock
        if at <= clock.now():
            return
        if self.timers is not None:
            if self.timers.advance(clock, at):
                self._discover(None)  # a timer may have opened a task (a wait ended, say)
        else:
            clock.set(at)  # type: ignore[attr-defined]

