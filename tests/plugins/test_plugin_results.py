"""What a plugin hands back at run time is checked where Docket takes it: a wrong value is named
as that plugin's bug at the place it was used, instead of being stored as `<object object at
0x...>` or failing later, far from its cause, as a fault of Docket's (docs/plugins.md, "When a
plugin is broken")."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String

from engine.bundle import validate_bundle
from engine.errors import ExpressionError, ValidationFailed, format_diagnostic
from engine.expr import Function, Scope, compile_expression
from engine.registry import Registry
from forms.fields.base import FieldType
from reports.charts import ChartData, ChartType, checked_spec
from tests.plugins.conftest import BUNDLE
from web.system import build_registry

SOURCE = "acme-docket"


def registry_with(*functions: Function) -> Registry:
    """Docket's own types plus the given plugin functions."""
    registry = build_registry(plugins=False)
    for function in functions:
        registry.functions.add(function, source=SOURCE)
    return registry


def evaluate(source: str, registry: Registry, **names: Any) -> Any:
    """The value of `source` over `names`, with the registry's functions."""
    expression = compile_expression(source, scope=Scope(frozenset(names)), functions=registry.functions)
    return expression.evaluate(names)


def test_a_plugin_function_returning_an_object_fails_the_expression_naming_the_plugin() -> None:
    registry = registry_with(Function("handle", lambda value: object(), 1, 1))
    with pytest.raises(ExpressionError) as info:
        evaluate("handle(x)", registry, x="a")
    assert ("cannot evaluate `handle(x)`: handle() (from acme-docket) returned a value of type object"
            in info.value.message)
    assert "a bug in that plugin" in info.value.message


def test_an_object_inside_a_plugin_functions_list_is_found_too() -> None:
    registry = registry_with(Function("pair", lambda value: [value, {"at": object()}], 1, 1))
    with pytest.raises(ExpressionError, match=r"pair\(\) \(from acme-docket\) returned a value of type object"):
        evaluate("pair(x)", registry, x="a")


def test_a_plugin_function_needing_the_context_is_checked_the_same_way() -> None:
    registry = registry_with(Function("when", lambda ctx, value: object(), 1, 1, needs_context=True))
    with pytest.raises(ExpressionError, match=r"when\(\) \(from acme-docket\) returned"):
        evaluate("when(x)", registry, x="a")


def test_a_plugin_function_that_raises_is_named_as_that_plugins_bug_with_its_line() -> None:
    """'no key regions' read as a mistake in the analyst's expression, naming no plugin."""
    def region_of(postcode: Any) -> str:
        return {}["regions"]

    registry = registry_with(Function("region_of", region_of, 1, 1))
    with pytest.raises(ExpressionError) as info:
        evaluate("region_of(x)", registry, x="100010")
    assert info.value.message.startswith(
        "cannot evaluate `region_of(x)`: region_of() (from acme-docket) failed: KeyError: 'regions' "
        f"(raised in {__file__}:")
    assert info.value.message.endswith(": a bug in that plugin")


def test_a_plugin_functions_eval_failure_is_its_own_plain_reason() -> None:
    from engine.expr.context import EvalFailure

    def region_of(postcode: Any) -> str:
        raise EvalFailure("region_of() needs six digits")

    registry = registry_with(Function("region_of", region_of, 1, 1))
    with pytest.raises(ExpressionError) as info:
        evaluate("region_of(x)", registry, x="1")
    assert info.value.message == "cannot evaluate `region_of(x)`: region_of() needs six digits"


@pytest.mark.parametrize("result", [None, True, 3, 2.5, "text", ["a", 1, {"b": None}], ("a",)])
def test_plain_results_of_a_plugin_function_pass_unchanged(result: Any) -> None:
    registry = registry_with(Function("give", lambda value: result, 1, 1))
    assert evaluate("give(x)", registry, x="a") == result


# -- field types ------------------------------------------------------------------------------

class Badge(FieldType):
    """A plugin field type; the tests break one method at a time."""

    name = "badge"
    options_schema = {"properties": {}}

    def column_type(self, spec: Any) -> Any:
        return String(20)

    def parse(self, raw: Any, spec: Any) -> Any:
        return str(raw)


FORM = """\
form: visit
label: Visit
fields:
  badge: {type: badge, label: Badge}
"""


def visit_bundle(tmp_path: Path) -> Path:
    """A bundle whose one form has one field of the plugin type `badge`."""
    root = tmp_path / "bundle"
    (root / "forms").mkdir(parents=True)
    (root / "bundle.yaml").write_text('bundle: visits\nversion: "1"\nlabel: Visits\n', "utf-8")
    (root / "forms" / "visit.yaml").write_text(FORM, "utf-8")
    return root


def load(tmp_path: Path, field_type: FieldType) -> tuple[Any, list[str]]:
    """The bundle built with `field_type` registered by a plugin, and its error lines."""
    registry = build_registry(plugins=False)
    registry.field_types.add(field_type, source=SOURCE)
    root = visit_bundle(tmp_path)
    bundle, diagnostics = validate_bundle(root, registry)
    errors = [format_diagnostic(d).replace(str(d.span.file), Path(d.span.file).name, 1)
              for d in diagnostics if d.severity == "error" and d.span is not None]
    return (bundle, registry), errors


def test_a_field_type_without_column_type_is_reported_by_validate_at_the_field(tmp_path: Path) -> None:
    class NoColumn(Badge):
        column_type = FieldType.column_type

    _, errors = load(tmp_path, NoColumn())
    assert errors[0].startswith("visit.yaml:4:17: error: field type 'badge' (from acme-docket) has "
                                "no column_type(spec)")
    assert "hint: a bug in the plugin acme-docket, not in this file" in errors[0]


def test_a_field_type_whose_column_type_is_not_a_sqlalchemy_type_is_reported_by_validate(tmp_path: Path) -> None:
    class TextColumn(Badge):
        def column_type(self, spec: Any) -> Any:
            return "varchar(20)"

    _, errors = load(tmp_path, TextColumn())
    assert ("visit.yaml:4:17: error: field type 'badge' (from acme-docket) column_type(spec) is wrong: "
            "column type must be a SQLAlchemy type, a type class or a factory, got 'varchar(20)'") in errors[0]


def test_a_stored_field_type_without_parse_is_reported_by_validate_at_the_field(tmp_path: Path) -> None:
    """Without parse every value typed into the field was refused as 'could not be checked'."""
    class NoParse(Badge):
        parse = FieldType.parse

    _, errors = load(tmp_path, NoParse())
    assert errors[0].startswith("visit.yaml:4:17: error: field type 'badge' (from acme-docket) has "
                                "no parse(raw, spec)")
    assert "hint: a bug in the plugin acme-docket, not in this file" in errors[0]


def test_a_field_type_that_stores_nothing_needs_no_column_type(tmp_path: Path) -> None:
    class Heading(Badge):
        stores_value = False
        column_type = FieldType.column_type

    (bundle, _), errors = load(tmp_path, Heading())
    assert errors == [] and bundle is not None


def test_a_value_a_record_cannot_hold_from_parse_is_refused_at_the_field_and_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from forms.compile import compile_form

    class Leaky(Badge):
        def parse(self, raw: Any, spec: Any) -> Any:
            return object()

    (bundle, registry), errors = load(tmp_path, Leaky())
    assert errors == []
    form = compile_form(bundle.all("form")["visit"], registry)
    with pytest.raises(ValidationFailed) as info:
        form.validate({"badge": "A-1"}, locale="en")
    assert info.value.errors == {"badge": ["This value could not be checked; please try again or contact us."]}
    assert ("field type 'badge' read field 'badge' as a value of type object, not a value a record can hold"
            in caplog.text)


def boot_visits(tmp_path: Path, field_type: FieldType) -> Any:
    """The visit bundle served on a scratch database, with `field_type` from a plugin."""
    from datetime import datetime, timezone

    from web.system import boot_scratch

    registry = build_registry(plugins=False)
    registry.field_types.add(field_type, source=SOURCE)
    return boot_scratch(visit_bundle(tmp_path), tmp_path / "docket.db",
                        datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc), registry=registry)


def test_a_field_type_whose_to_json_raises_does_not_cost_the_submission(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """to_json shapes the value for the API and the history: a bug there used to refuse every
    submission of the form (even with the field left empty), losing what the customer sent."""
    class NoJson(Badge):
        def to_json(self, value: Any, spec: Any) -> Any:
            return value.upper()          # the plugin forgot that an empty field is None

    system = boot_visits(tmp_path, NoJson())
    empty = system.forms.submit("visit", {}, actor=None).record_id
    filled = system.forms.submit("visit", {"badge": "a-1"}, actor=None).record_id
    assert system.forms.get("visit", empty)["badge"] is None
    assert system.forms.get("visit", filled)["badge"] == "a-1"
    assert ("field type 'badge' (from acme-docket) failed in to_json(value, spec) for field visit.badge, "
            "so the value is used as stored: AttributeError: 'NoneType' object has no attribute 'upper': "
            "a bug in that plugin") in caplog.text


def test_a_field_type_whose_to_json_gives_what_json_cannot_carry_does_not_cost_the_submission(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A date in to_json's result failed the history entry's JSON, so every submission."""
    from datetime import date

    class DatedJson(Badge):
        def to_json(self, value: Any, spec: Any) -> Any:
            return None if value is None else {"code": value, "since": date(2026, 1, 1)}

    system = boot_visits(tmp_path, DatedJson())
    record_id = system.forms.submit("visit", {"badge": "a-1"}, actor=None).record_id
    assert system.forms.get("visit", record_id)["badge"] == "a-1"
    assert ("field type 'badge' (from acme-docket) returned date from to_json(value, spec) for field "
            "visit.badge, which JSON cannot carry, so it is written as text: a bug in that plugin") in caplog.text


def test_a_field_type_whose_from_db_raises_still_lets_its_records_be_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Unreadable(Badge):
        def from_db(self, value: Any, spec: Any) -> Any:
            raise LookupError("no badge table")

    system = boot_visits(tmp_path, Unreadable())
    record_id = system.forms.submit("visit", {"badge": "a-1"}, actor=None).record_id
    assert system.forms.get("visit", record_id)["badge"] == "a-1"
    assert ("field type 'badge' (from acme-docket) failed in from_db(value, spec) for field visit.badge, "
            "so the value is used as stored: LookupError: no badge table: a bug in that plugin") in caplog.text


def test_a_field_type_whose_display_raises_shows_the_value_as_stored_on_every_page(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Record titles, the inbox, the customer's lookup page, message templates and printouts
    all call display; each of them used to fail with the plugin's exception."""
    from forms.compile import compile_form

    class Unshowable(Badge):
        def display(self, value: Any, spec: Any, locale: str) -> str:
            raise LookupError("no badge table")

    (bundle, registry), errors = load(tmp_path, Unshowable())
    form = compile_form(bundle.all("form")["visit"], registry)
    assert (form.display("badge", "a-1", "en"), form.display("badge", None, "en")) == ("a-1", "")
    assert ("field type 'badge' (from acme-docket) failed in display(value, spec, locale) for field "
            "visit.badge, so the value is shown as stored: LookupError: no badge table") in caplog.text


def test_a_field_type_whose_check_stored_raises_refuses_the_value_not_the_submission(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """check_stored runs inside the submitting transaction: a bug there was a server error."""
    class Unchecked(Badge):
        def check_stored(self, conn: Any, value: Any, spec: Any, tables: Any) -> None:
            raise KeyError("badge_registry")

    system = boot_visits(tmp_path, Unchecked())
    with pytest.raises(ValidationFailed) as info:
        system.forms.submit("visit", {"badge": "a-1"}, actor=None)
    assert info.value.errors == {"badge": ["This value could not be checked; please try again or contact us."]}
    assert ("field type 'badge' (from acme-docket) failed in check_stored(conn, value, spec, tables) for field "
            "visit.badge, so the value is refused as one that could not be checked: KeyError: 'badge_registry'"
            ) in caplog.text


def test_a_field_type_whose_coerce_raises_leaves_the_computed_field_empty(tmp_path: Path) -> None:
    class Uncoerced(Badge):
        def coerce(self, value: Any, spec: Any) -> Any:
            return value.upper()

    registry = build_registry(plugins=False)
    registry.field_types.add(Uncoerced(), source=SOURCE)
    root = visit_bundle(tmp_path)
    (root / "forms" / "visit.yaml").write_text(FORM + "  code: {type: badge, label: Code, computed: len(badge)}\n", "utf-8")
    from datetime import datetime, timezone

    from web.system import boot_scratch

    system = boot_scratch(root, tmp_path / "docket.db", datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc),
                          registry=registry)
    record_id = system.forms.submit("visit", {"badge": "a-1"}, actor=None).record_id
    assert system.forms.get("visit", record_id)["code"] is None


def test_a_plugin_column_of_a_sub_table_that_raises_refuses_its_cell_not_the_submission(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Sub-table cells called the column type's parse unguarded: a plugin's bug there was a
    server error for the whole submission."""
    class Fragile(Badge):
        def parse(self, raw: Any, spec: Any) -> Any:
            raise KeyError("badge_registry")

    registry = build_registry(plugins=False)
    registry.field_types.add(Fragile(), source=SOURCE)
    root = visit_bundle(tmp_path)
    (root / "forms" / "visit.yaml").write_text(
        FORM + "  rows:\n    type: subtable\n    label: Rows\n    columns:\n      code: {type: badge, label: Code}\n",
        "utf-8")
    from datetime import datetime, timezone

    from web.system import boot_scratch

    system = boot_scratch(root, tmp_path / "docket.db", datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc),
                          registry=registry)
    with pytest.raises(ValidationFailed) as info:
        system.forms.submit("visit", {"rows": [{"code": "a-1"}]}, actor=None)
    assert "This value could not be checked" in str(info.value.errors)
    assert ("field type 'badge' (from acme-docket) failed in parse(raw, spec) for field visit.rows[].code"
            in caplog.text)


def test_a_failing_field_type_hook_is_logged_once_not_on_every_value(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class NoJson(Badge):
        def to_json(self, value: Any, spec: Any) -> Any:
            raise KeyError("badges")

    system = boot_visits(tmp_path, NoJson())
    for n in range(3):
        system.forms.submit("visit", {"badge": f"a-{n}"}, actor=None)
    assert sum("failed in to_json" in r.getMessage() for r in caplog.records) == 1


# -- chart types ------------------------------------------------------------------------------

class Dots(ChartType):
    """A plugin chart type whose `spec` returns what the test gives it."""

    name = "dots"

    def __init__(self, spec: Any) -> None:
        self.given = spec

    def spec(self, data: ChartData) -> Any:
        return self.given


DATA = ChartData("Requests", [("d0", "Status", "text")], [("m0", "Requests", "number")],
                 [{"d0": "new", "m0": 3, "_p": 0}], {})


def test_a_plugin_chart_spec_that_is_not_a_dict_is_named_as_the_plugins_bug() -> None:
    with pytest.raises(TypeError) as info:
        checked_spec(Dots(None), DATA, SOURCE)
    assert str(info.value) == ("chart type 'dots' (from acme-docket): spec(data) returned NoneType, not a "
                               "specification (a dict): a bug in that plugin")


def test_a_plugin_chart_spec_that_json_cannot_carry_is_named_as_the_plugins_bug() -> None:
    with pytest.raises(TypeError, match=r"chart type 'dots' \(from acme-docket\): spec\(data\) returned a "
                                        r"specification JSON cannot carry \(Object of type object"):
        checked_spec(Dots({"data": {"values": [object()]}}), DATA, SOURCE)


# -- node types -------------------------------------------------------------------------------

def test_a_node_types_compile_that_returns_no_dict_is_reported_at_the_node_naming_the_plugin(
        install_sample: None, tmp_path: Path) -> None:
    """It used to fail inside Docket (mappingproxy() of a list), blamed on 'Docket or a plugin'."""
    from docket_sample_plugin.audit import RandomAudit

    class ListAudit(RandomAudit):
        def compile(self, node: Any, flow: Any, ctx: Any, doc: Any, path: Any, scope: Any) -> Any:
            return [node.options["share"]]

    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    registry = build_registry(plugins=False)
    registry.node_types.add(ListAudit(), source=SOURCE)
    loaded, diagnostics = validate_bundle(bundle, registry)
    assert loaded is None
    (error,) = [d for d in diagnostics if d.yaml_path and d.yaml_path[:2] == ("nodes", "spot_check")]
    assert error.code == "plugin-compile" and error.yaml_path == ("nodes", "spot_check", "type")
    assert error.message == ("node type 'random_audit' (from acme-docket): compile() returned list, not a dict "
                             "of what the run needs")
    assert error.hint == "a bug in the plugin acme-docket, not in this file"


def test_a_value_a_field_type_cannot_display_is_shown_as_stored_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from forms.compile import compile_form
    from web.staff import field_text

    class Unshowable(Badge):
        def display(self, value: Any, spec: Any, locale: str) -> str:
            raise LookupError("no badge table")

    (bundle, registry), errors = load(tmp_path, Unshowable())
    form = compile_form(bundle.all("form")["visit"], registry)
    assert field_text(form, "badge", "gold", "en") == "gold"
    assert field_text(form, "badge", "gold", "en") == "gold"
    assert [r.getMessage() for r in caplog.records if "display" in r.getMessage()] == [
        "field type 'badge' (from acme-docket) failed in display(value, spec, locale) for field visit.badge, "
        "so the value is shown as stored: LookupError: no badge table: a bug in that plugin"]
