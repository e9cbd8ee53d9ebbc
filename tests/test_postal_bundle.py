"""The postal bundle itself: valid, deterministic, and its expressions all compiled."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Mapping

from engine.bundle import load_bundle
from engine.expr import EvalContext, Expression
from web.system import build_registry

POSTAL = Path(__file__).resolve().parent.parent / "definitions" / "postal_complaints"
SAMPLE = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "category": "damage_goods", "urgency": "urgent", "region": "east", "channel": "hotline",
    "amount_claimed": Decimal("1200.00"), "description": "破损", "resolution": None,
    "response_level": "2", "compensation": Decimal("6000.00"), "customer_confirmed": False, "satisfaction": 2,
    "account_manager": "accounts",
    "occurred_at": datetime(2026, 11, 20, 2, 30, tzinfo=timezone.utc),
}


def expressions(value: Any, seen: set[int] | None = None) -> Iterator[Expression]:
    """Every compiled expression reachable from a definition spec."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, Expression):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from expressions(getattr(value, f.name), seen)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from expressions(item, seen)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from expressions(item, seen)


def test_the_postal_bundle_loads_without_warnings() -> None:
    bundle = load_bundle(POSTAL, build_registry(plugins=False))
    assert bundle.warnings == ()
    assert "complaint" in bundle.all("form")
    assert "complaint_handling" in bundle.all("flow")


def test_every_label_of_the_postal_bundle_is_bilingual() -> None:
    bundle = load_bundle(POSTAL, build_registry(plugins=False))
    labels = [bundle.meta.label, *(r.label for r in bundle.meta.roles.values()),
              *(d.label for d in bundle.meta.departments.values())]
    for form in bundle.all("form").values():
        labels += [form.label] + [f.label for f in form.fields.values()]
    for lst in bundle.all("list").values():
        labels += [lst.label] + [o.label for _, o, _ in lst.walk()]
    flow = bundle.all("flow")["complaint_handling"]
    labels += [flow.label] + [node.label for node in flow.nodes.values() if node.type != "end" or node.label != node.id]
    labels += [b["label"] for node in flow.nodes.values() for b in node.options.get("branches", [])
               if isinstance(b, Mapping) and "label" in b]
    not_bilingual = [label for label in labels
                     if not (isinstance(label, Mapping) and {"zh-CN", "en"} <= set(label))]
    assert not_bilingual == []


def test_every_postal_expression_gives_the_same_result_for_the_same_inputs_and_clock() -> None:
    bundle = load_bundle(POSTAL, build_registry(plugins=False))
    # Counting records reads the database (tests/rules/test_postal_rules.py runs those).
    found = [e for kind in ("form", "flow") for spec in bundle.all(kind).values() for e in expressions(spec)
             if "count_records" not in e.functions_used]
    assert len(found) >= 2
    names = {**SAMPLE, "record": SAMPLE, "user": {"username": "agent"}, "flow": {"manager_review": {}}}
    ctx = EvalContext(now=datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc), calendar=bundle.meta.calendar)
    first = [e.evaluate(names, ctx) for e in found]
    again = [e.evaluate(dict(names), EvalContext(now=ctx.now, calendar=bundle.meta.calendar)) for e in found]
    assert first == again
