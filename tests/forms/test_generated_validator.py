"""The generated validator of a form (forms/codegen.py) answers exactly as the interpreter does:
the same values of the same types in the same order, or the same errors in the same order."""

from __future__ import annotations

import random
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import String
from sqlalchemy.types import TypeEngine

from bench.bench_forms import records as bench_records
from engine.clock import ManualClock
from engine.errors import ValidationFailed
from forms.compile import CompiledForm
from forms.fields.base import FastCheck, FieldType
from forms.fields.text import Text
from forms.spec import FieldSpec
from tests.engine.bundle_kit import write_bundle
from tests.forms import NOW, boot_gallery
from tests.forms.test_field_postal import COMPLAINT
from tests.forms.test_field_types import VALID
from web.system import System, boot, build_registry

ROOT = Path(__file__).resolve().parents[2]

STRICT = """\
    form: strict
    fields:
      text: {type: text, required: true, min_length: 2, max_length: 10}
      coded: {type: text, required: true, pattern: '[A-Z]{2}\\d{3}'}
      long_coded: {type: text, max_length: 2000, pattern: '[a-z]+'}
      textarea: {type: textarea, required: true, min_length: 3, max_length: 30}
      hidden: {type: hidden, required: true}
      email: {type: email, required: true}
      number: {type: number, required: true, min: -1.5, max: 100}
      open_number: {type: number}
      integer: {type: integer, required: true, min: 0, max: 10}
      open_integer: {type: integer}
      money: {type: money, required: true, min: 0}
      select: {type: select, required: true, options: [low, high, ' padded ', '7']}
      radio: {type: radio, required: true, options: [phone, email, web]}
      cascade: {type: cascade, required: true, options: region}
      boolean: {type: boolean, required: true}
      date: {type: date, required: true}
      datetime: {type: datetime, required: true}
      multiselect: {type: multiselect, required: true, options: [late, damaged, lost]}
      role: {type: role, required: true}
      department: {type: department, required: true}
      note: {type: text, required_if: boolean == true}
      shown: {type: integer, visible_if: boolean == true, min: 5}
    """
"""Every hot type required, with bounds, patterns and conditions: the paths around them."""

GENERIC: list[Any] = [
    None, "", " ", "\t\n ", True, False, 0, 1, -1, 7, 2.5, -0.0, 1e300, float("nan"), float("inf"),
    float("-inf"), 2**63, -2**63, 2**63 - 1, -(2**63) + 1, 10**30, [], {}, (), ["x"], {"a": 1}, "abc",
    " abc ", "ABC12", " AB123 ", "a\r\nb", "line\rfeed", "\r\n", "x" * 999, "x" * 1001, "a" * 2001,
    Decimal("1.5"), Decimal("NaN"), date(2026, 1, 1), datetime(2026, 1, 1, tzinfo=timezone.utc),
    "2026-11-20", " 2026-11-20 ", "2026-02-30", "2026-11-20T10:30:00+08:00", "2026-11-20 10:30", "yes",
    "no", "maybe", "13812345678", "a@b.co", " a@b.co ", "a@b", "a" * 249 + "@b.co", "a" * 250 + "@b.co", ",",
    " , ", "1,234", "42", " 42 ", "4.5", "-3",
    "nan", "inf", "low", " high ", "HIGH", "phone", "east", "pudong", "agent", "hotline", object(),
]
"""Values thrown at every field: empty ones, wrong types, bounds, NaN, line ends, near-misses."""


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> System:
    return boot_gallery(tmp_path_factory.mktemp("gallery"), {"forms/strict.yaml": STRICT})


@pytest.fixture(scope="module")
def postal(tmp_path_factory: pytest.TempPathFactory) -> System:
    db = tmp_path_factory.mktemp("postal") / "docket.db"
    return boot(ROOT / "definitions" / "postal_complaints", db_url=f"sqlite:///{db}", clock=ManualClock(NOW),
                registry=build_registry(plugins=False))


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> System:
    db = tmp_path_factory.mktemp("bench") / "docket.db"
    return boot(ROOT / "bench" / "workloads" / "complaint20", db_url=f"sqlite:///{db}", clock=ManualClock(NOW),
                registry=build_registry(plugins=False))


def outcome(validate: Callable[..., dict[str, Any]], data: dict[str, Any], **kwargs: Any) -> tuple[str, Any]:
    """What a validation ends in, with order and types kept: values or errors, as lists."""
    try:
        values = validate(dict(data), **kwargs)
    except ValidationFailed as exc:
        return "failed", list(exc.errors.items())
    return "ok", [(name, type(value), value) for name, value in values.items()]


def candidates(form: CompiledForm, samples: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Per field: the generic values, the field's own options, bounds and lengths, and good values
    from `samples`, each also padded, with a line end, and upper-cased."""
    out = {}
    for plan in form.plans:
        spec, pool = plan.spec, list(GENERIC)
        good = list(samples.get(plan.name, ()))
        if spec.choices is not None:
            good += [option.value for _, option, _ in spec.choices.walk()]
        for key in ("min", "max"):
            bound = spec.opt(key)
            if isinstance(bound, (int, float)):
                pool += [bound, bound - 1, bound + 1, bound - 0.5, bound + 0.5, float(bound), str(bound)]
        for key in ("min_length", "max_length"):
            length = spec.opt(key)
            if isinstance(length, int):
                pool += ["y" * n for n in (length - 1, length, length + 1)] + [f"  {'y' * length}  "]
        for value in good:
            pool.append(value)
            if isinstance(value, str):
                pool += [f" {value} ", f"{value}\r\n", f"a\r\n{value}", value.upper(), value[:-1]]
        out[plan.name] = pool + good * 3  # good values often enough for whole records to pass
    return out


def assert_same_answers(form: CompiledForm, base: dict[str, Any], samples: dict[str, list[Any]],
                        seed: int, count: int = 1500, ctx: Any = None) -> None:
    """`count` randomised records, then each field missing and emptied: both paths agree."""
    assert form.validator is not None
    pools = candidates(form, samples)
    rnd = random.Random(seed)
    inputs: list[dict[str, Any]] = [dict(base)]
    for plan in form.plans:
        inputs.append({k: v for k, v in base.items() if k != plan.name})
        inputs.append({**base, plan.name: ""})
    for n in range(count):
        record = dict(base)
        changes = 1 if n % 2 else rnd.randint(2, len(form.plans))
        for name in rnd.sample(list(pools), min(changes, len(pools))):
            if rnd.random() < 0.1:
                record.pop(name, None)
            else:
                record[name] = rnd.choice(pools[name])
        inputs.append(record)
    passed = 0
    for data in inputs:
        assert form.accepted.issuperset(data)
        generated = outcome(form.validate, data, ctx=ctx)
        assert generated == outcome(form._validate_interpreted, data, ctx=ctx), data
        passed += generated[0] == "ok"
    assert 0 < passed < len(inputs)  # both answers were exercised


def test_the_bench_form_answers_as_the_interpreter(bench: System) -> None:
    valid, invalid = bench_records(50)
    samples: dict[str, list[Any]] = {}
    for record in valid + invalid:
        for name, value in record.items():
            samples.setdefault(name, []).append(value)
    assert_same_answers(bench.forms.form("complaint20"), valid[0], samples, seed=20)


def test_the_postal_complaint_form_answers_as_the_interpreter(postal: System) -> None:
    samples = {"contact_phone": ["13812345678", "021-12345678"], "occurred_at": [COMPLAINT["occurred_at"]],
               "amount_claimed": ["1200", 1200, "12.345"], "waybills": ["1180000000001\n1180000000002",
                                                                       [{"number": "12-3"}]],
               "satisfaction": ["5", 5, 6], "customer_confirmed": [True, False, "yes"]}
    assert_same_answers(postal.forms.form("complaint"), COMPLAINT, samples, seed=4,
                        ctx=postal.forms.eval_context())


def test_the_form_of_every_field_type_answers_as_the_interpreter(gallery: System) -> None:
    samples: dict[str, list[Any]] = {}
    for name, raw, _ in VALID:
        samples.setdefault(name, []).append(raw)
    assert_same_answers(gallery.forms.form("gallery"), {}, samples, seed=30)


def test_required_hot_field_types_answer_as_the_interpreter(gallery: System) -> None:
    base = {"text": "ab", "coded": "AB123", "textarea": "three", "hidden": "x", "email": "a@b.co", "number": 1.5,
            "integer": 3, "money": "1.5", "select": "low", "radio": "web", "cascade": "pudong", "boolean": False,
            "date": "2026-11-20", "datetime": "2026-11-20 10:30", "multiselect": ["late"], "role": "agent",
            "department": "hotline"}
    samples = {name: [value] for name, value in base.items()}
    samples.update(long_coded=["abc", "a" * 1000, "a" * 1001], open_integer=[5], open_number=[5.5],
                   note=["n"], shown=[6, 5, 4])
    assert_same_answers(gallery.forms.form("strict"), base, samples, seed=9, count=3000)


def test_the_generated_source_shows_each_fast_check_inline(gallery: System) -> None:
    source = gallery.forms.form("strict").validator_source
    assert "raw.__class__ is str and 2 <= len(value := raw.strip()) <= 10" in source
    assert "raw.__class__ is int and 0 <= raw <= 10" in source


# -- field types that are not the ones a fast check was written for ----------------------------------

class Shouting(Text):
    """Text upper-cased: overrides `parse` but inherits `fast_check` from Text."""

    name = "shouting"
    aliases = ()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        return super().parse(raw, spec).upper()


class Initials(FieldType):
    """A plugin's type without a fast check."""

    name = "initials"
    options_schema = {"properties": {}}

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(8)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if not isinstance(raw, str) or not raw.strip().isalpha():
            raise self.invalid("not_text")
        return raw.strip().upper()


class Broken(Initials):
    """A plugin's type whose fast check is not valid Python."""

    name = "broken"

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        return FastCheck("raw.__class__ is str and and", "raw")


class Faulty(Initials):
    """A plugin's type whose parser has a bug: it raises something other than FieldInvalid."""

    name = "faulty"

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        return {"a": 1}[raw]  # KeyError for anything but "a"


WORDS = """\
    form: words
    fields:
      loud: {type: shouting, required: true}
      who: {type: initials, required: true}
      odd: {type: broken}
      shaky: {type: faulty}
    """


@pytest.fixture(scope="module")
def words(tmp_path_factory: pytest.TempPathFactory) -> CompiledForm:
    root = tmp_path_factory.mktemp("words")
    registry = build_registry(plugins=False)
    for field_type in (Shouting, Initials, Broken, Faulty):
        registry.field_types.add(field_type())
    bundle = write_bundle(root / "bundle", {"forms/words.yaml": WORDS})
    system = boot(bundle, db_url=f"sqlite:///{root / 'docket.db'}", clock=ManualClock(NOW), registry=registry)
    return system.forms.form("words")


def test_a_subclass_overriding_parse_does_not_use_its_parents_fast_check(words: CompiledForm) -> None:
    assert words.validate({"loud": "hello", "who": "ab"})["loud"] == "HELLO"
    assert "raw.strip()" not in words.validator_source  # Text's check would return "hello"


def test_a_plugin_type_without_a_fast_check_validates_through_parse(words: CompiledForm) -> None:
    assert words.validate({"loud": "x", "who": " ab "})["who"] == "AB"
    with pytest.raises(ValidationFailed) as caught:
        words.validate({"loud": "x", "who": "a1"})
    assert caught.value.errors == {"who": ["Enter text."]}


def test_a_broken_fast_check_is_ignored_and_parse_decides(words: CompiledForm) -> None:
    assert words.validate({"loud": "x", "who": "ab", "odd": " cd "})["odd"] == "CD"
    assert "and and" not in words.validator_source


def test_a_plugin_parser_that_raises_refuses_the_value_instead_of_failing_the_submission(
        words: CompiledForm, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValidationFailed) as caught:
        words.validate({"loud": "x", "who": "ab", "shaky": "b"})
    assert caught.value.errors == {"shaky": ["This value could not be checked; please try again or contact us."]}
    assert "field type 'faulty' failed to read field 'shaky'" in caplog.text  # the traceback is logged
