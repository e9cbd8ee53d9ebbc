"""A plugin mistake is refused when the type is registered, with a message saying what to change
(docs/plugins.md, "What Docket checks when a plugin registers"), not found later as a traceback
in the middle of loading a bundle."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.expr import Function
from engine.registry import Registry, RegistryError
from flows.nodes.base import NodeType
from reports.charts import ChartType
from tests.plugins.conftest import InstallPlugin
from web.system import build_registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
SOURCE = "acme-docket"


class Checkpoint(NodeType):
    name = "checkpoint"
    options_schema = {"properties": {"note": {"type": "string"}}}

    def enter(self, run: Any) -> None:
        run.move_to(run.node.next)


def refusal(add: Any, plugin: Any) -> str:
    """The message of the RegistryError that `add(plugin, source=...)` raises."""
    with pytest.raises(RegistryError) as info:
        add(plugin, source=SOURCE)
    return str(info.value)


def test_a_class_registered_instead_of_an_instance_is_refused_with_the_fix() -> None:
    message = refusal(Registry().node_types.add, Checkpoint)
    assert message == ("node type 'checkpoint' from acme-docket: Checkpoint is a class: "
                       "register an instance, Checkpoint()")


def test_aliases_written_as_a_string_are_refused_not_split_into_letters() -> None:
    class Renamed(Checkpoint):
        aliases = ("mark_point")  # the missing comma: a str, not a tuple

    registry = Registry()
    message = refusal(registry.node_types.add, Renamed())
    assert "aliases must be a tuple of names, not the string 'mark_point'" in message
    assert "m" not in registry.node_types and "checkpoint" not in registry.node_types


def test_a_name_that_expressions_could_not_call_is_refused() -> None:
    message = refusal(Registry().functions.add, Function("postcode-province", str, 1, 1))
    assert "name 'postcode-province' is not a word" in message


def test_a_chart_type_without_check_shape_is_refused_naming_its_base_class() -> None:
    class Bullet:
        name, aliases, options_schema = "bullet", (), {"properties": {}}

        def spec(self, data: Any) -> dict[str, Any]:
            return {}

    message = refusal(Registry().chart_types.add, Bullet())
    assert message == ("chart type 'bullet' from acme-docket: lacks check_shape, mode, default_width "
                       "(see reports.charts.ChartType)")


def test_a_method_that_cannot_take_the_engines_arguments_is_refused() -> None:
    class OldCompile(Checkpoint):
        def compile(self, node: Any, ctx: Any) -> dict[str, Any]:  # type: ignore[override]
            return {}

    message = refusal(Registry().node_types.add, OldCompile())
    assert message.endswith("compile(node, ctx) cannot be called as compile(node, flow, ctx, doc, path, scope)")


def test_a_node_type_that_does_not_define_enter_is_refused() -> None:
    """Deriving from NodeType gives every method a default but enter, which only raises: the
    type used to register, pass `docket validate`, and stop every instance that reached it as
    an incident reading 'NotImplementedError'."""
    class Idle(NodeType):
        name = "idle"

    message = refusal(Registry().node_types.add, Idle())
    assert message == ("node type 'idle' from acme-docket: does not define enter(run), which "
                       "flows.nodes.base.NodeType leaves to each type")


def test_an_action_without_run_and_a_chart_type_without_spec_are_refused() -> None:
    from engine.actions import BaseAction

    class Silent(BaseAction):
        name = "silent"

    class Blank(ChartType):
        name = "blank"

    registry = Registry()
    assert refusal(registry.actions.add, Silent()).endswith(
        "does not define run(act, compiled), which engine.actions.BaseAction leaves to each type")
    assert refusal(registry.chart_types.add, Blank()).endswith(
        "does not define spec(data), which reports.charts.ChartType leaves to each type")


def test_a_type_deriving_from_a_type_that_defines_the_method_is_accepted() -> None:
    class Stricter(Checkpoint):
        name = "stricter"

    assert Registry().node_types.add(Stricter(), source=SOURCE).name == "stricter"


def test_an_optional_hook_that_cannot_take_the_engines_arguments_is_refused() -> None:
    """value_schema is optional (the API derives a schema from the column without it), so
    no base class has it; written as value_schema(self) it failed the API's OpenAPI page."""
    from forms.fields.base import FieldType

    class Waybill(FieldType):
        name = "waybill"

        def value_schema(self) -> dict[str, Any]:
            return {"type": "string", "pattern": "^[A-Z]{2}[0-9]{9}[A-Z]{2}$"}

    message = refusal(Registry().field_types.add, Waybill())
    assert message.endswith("value_schema() cannot be called as value_schema(spec)")


def test_an_options_schema_that_is_not_json_schema_is_refused_with_its_place() -> None:
    class Typo(Checkpoint):
        options_schema = {"properties": {"note": {"type": "strng"}}}

    message = refusal(Registry().node_types.add, Typo())
    assert "options_schema is not a valid JSON Schema at properties/note/type" in message


def test_a_misspelt_keyword_in_options_schema_is_refused_with_the_keyword_meant() -> None:
    """`propertes` or `tpye` is valid JSON Schema that checks nothing: every option went through."""
    class Audit(Checkpoint):
        name = "audit"
        options_schema = {"properties": {"share": {"tpye": "number"}}, "requird": ["share"]}

    message = refusal(Registry().node_types.add, Audit())
    assert ("options_schema has an unknown keyword at properties/share/tpye (did you mean 'type'?); "
            "options_schema has an unknown keyword at requird (did you mean 'required'?)") in message


def test_an_options_schema_that_docket_would_overrule_is_refused() -> None:
    """A type's options are the keys of its YAML mapping, merged with the common keys and closed
    (additionalProperties: false, so a misspelt key is caught): a schema saying otherwise was
    silently overruled, and the analyst got 'unknown key' for every option the plugin reads."""
    class Loose(Checkpoint):
        options_schema = {"type": "object", "additionalProperties": True}

    class Scalar(Checkpoint):
        options_schema = {"type": "string"}

    assert refusal(Registry().node_types.add, Loose()).endswith(
        "options_schema sets additionalProperties, which Docket sets to false on every type's options "
        "(a misspelt key is reported): list each key under properties (or patternProperties)")
    assert refusal(Registry().node_types.add, Scalar()).endswith(
        "options_schema describes the keys of the node's YAML mapping: its type is object "
        "(or left out), not 'string'")


def test_a_channels_complete_schema_may_close_itself() -> None:
    """A channel's options_schema is its whole schema (nothing is merged): it says object and
    additionalProperties itself."""
    class Pager:
        name, aliases, description, examples = "pager", (), "", ()
        options_schema = {"type": "object", "additionalProperties": False, "properties": {}}

        def send(self, message: Any, settings: Any) -> None:
            return None

    assert Registry().channels.add(Pager(), source=SOURCE).name == "pager"


def test_options_schema_may_carry_annotations_and_x_extensions() -> None:
    class Audit(Checkpoint):
        name = "audit"
        options_schema = {"properties": {"share": {"type": "number", "title": "Share", "default": 0.1,
                                                   "examples": [0.5], "x-widget": "slider"}},
                          "$comment": "for the editor", "patternProperties": {"^note_": {"type": "string"}}}

    assert Registry().node_types.add(Audit(), source=SOURCE).name == "audit"


def test_every_refused_type_of_a_plugin_is_reported_in_one_run() -> None:
    """One refusal per run made the plugin's author fix, reinstall and restart once per type."""
    class Gauge(ChartType):
        name = "gauge"
        options_schema = {"propertes": {}}

    def register(registry: Registry) -> None:
        registry.node_types.add(Checkpoint)
        registry.chart_types.add(Gauge())

    registry = build_registry(plugins=False)
    assert registry.use(register, source="acme") is False
    node, chart = registry.problems
    assert node.startswith("plugin acme: RegistryError: node type 'checkpoint' from acme: Checkpoint is a class")
    assert chart.startswith("plugin acme: RegistryError: chart type 'gauge' from acme: options_schema has an "
                            "unknown keyword at propertes")
    assert node.endswith(f"(raised in {__file__}:{register.__code__.co_firstlineno + 1})")


def test_a_plugin_with_a_refused_type_registers_none_of_its_types() -> None:
    """Half a plugin (a node type without the function its flows call) failed later, further
    from the cause."""
    def register(registry: Registry) -> None:
        registry.node_types.add(Checkpoint())
        registry.functions.add(lambda value: value)  # not a Function: refused

    registry = build_registry(plugins=False)
    assert registry.use(register, source="acme") is False
    assert "checkpoint" not in registry.node_types
    assert registry.node_types.hint("checkpoint") == ("the plugin acme failed to load (see its warning): it "
                                                      "may be the one that adds 'checkpoint'")


def test_a_plugin_that_raises_after_adding_a_type_leaves_nothing_registered() -> None:
    def register(registry: Registry) -> None:
        registry.node_types.add(Checkpoint())
        raise RuntimeError("the licence file is missing")

    registry = build_registry(plugins=False)
    assert registry.use(register, source="acme") is False
    assert "checkpoint" not in registry.node_types


def test_a_function_whose_fn_cannot_take_its_argument_counts_is_refused() -> None:
    def province(code: str) -> str:
        return code[:2]

    message = refusal(Registry().functions.add, Function("province", province, 1, 2))
    assert "cannot be called as fn(2 argument(s))" in message


def test_a_function_that_needs_the_context_takes_it_first() -> None:
    def today_in(ctx: Any, zone: str) -> str:
        return zone

    registry = Registry()
    registry.functions.add(Function("today_in", today_in, 1, 1, needs_context=True), source=SOURCE)
    assert registry.functions.get("today_in") is not None


def test_a_plain_python_function_is_refused_pointing_to_function() -> None:
    def province(code: str) -> str:
        return code[:2]

    message = refusal(Registry().functions.add, province)
    assert "has no 'name'" in message and "(see engine.expr.Function)" in message


def test_registering_an_assignment_strategy_is_refused_with_the_reason() -> None:
    class RandomPick:
        name, aliases, options_schema = "random_pick", (), {}

    message = refusal(Registry().assignment_strategies.add, RandomPick())
    assert "Docket does not use registry.assignment_strategies yet" in message


def test_a_registry_copy_keeps_the_checks() -> None:
    copy = build_registry(plugins=False).copy()
    assert "is a class" in refusal(copy.node_types.add, Checkpoint)


@pytest.mark.parametrize("attribute", ["field_types", "node_types", "actions", "functions", "chart_types",
                                       "channels", "sms_providers", "definition_kinds"])
def test_every_built_in_type_meets_its_kinds_contract(attribute: str) -> None:
    kind = getattr(build_registry(plugins=False), attribute)
    assert {t.name: kind.problems_of(t) for t in kind if kind.problems_of(t)} == {}


def test_an_entry_point_naming_a_module_is_reported_with_what_to_write(install_plugin: InstallPlugin) -> None:
    install_plugin("docket-module", {"whole": "docket_module_plugin"},
                   modules={"docket_module_plugin.py": "def register(registry):\n    pass\n"})
    registry = build_registry(plugins=True)
    (problem,) = registry.problems
    assert problem == ("plugin whole (docket_module_plugin): TypeError: the entry point names the module "
                       "docket_module_plugin, not its register function: write "
                       "\"docket_module_plugin:register\" in the plugin's pyproject.toml")


def test_a_failed_registration_is_recorded_and_not_logged_twice(caplog: pytest.LogCaptureFixture) -> None:
    def register(registry: Registry) -> None:
        raise RuntimeError("the licence file is missing")

    registry = Registry()
    assert registry.use(register, source="acme") is False
    (problem,) = registry.problems
    assert problem.startswith("plugin acme: RuntimeError: the licence file is missing (raised in ")
    assert caplog.records == []  # the composition root shows `problems` once


def test_a_plugin_that_forgets_source_still_gets_the_contract_checks() -> None:
    """Without `source=` a type used to count as built-in: a class instead of an instance was
    accepted, and the bundle load failed later with a traceback."""
    registry = build_registry(plugins=False)
    assert registry.use(lambda r: r.node_types.add(Checkpoint), source="acme (acme_docket:register)") is False
    (problem,) = registry.problems
    assert problem.startswith("plugin acme (acme_docket:register): RegistryError: node type 'checkpoint' "
                              "from acme (acme_docket:register): Checkpoint is a class: register an "
                              "instance, Checkpoint()")


def test_a_clash_by_a_plugin_that_forgets_source_names_the_plugin_not_built_in() -> None:
    class Task(Checkpoint):
        name = "task"

    registry = build_registry(plugins=False)
    registry.use(lambda r: r.node_types.add(Task()), source="acme (acme_docket:register)")
    (problem,) = registry.problems
    assert problem.startswith("plugin acme (acme_docket:register): RegistryError: node type 'task' from "
                              "acme (acme_docket:register) is already registered by built-in")


def test_a_plugin_cannot_register_its_type_as_built_in() -> None:
    registry = build_registry(plugins=False)
    assert registry.use(lambda r: r.node_types.add(Checkpoint(), source="built-in"), source="acme") is True
    assert registry.node_types.source("checkpoint") == "acme"


def documented_classes() -> dict[str, Any]:
    """The classes of the complete examples in docs/plugins.md's sections on each kind."""
    text = DOCS.read_text("utf-8")
    namespace: dict[str, Any] = {}
    for heading in ("## A field type\n", "## A rule action\n", "## A chart type\n", "## A notification channel\n",
                    "## An SMS provider\n"):
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        blocks = re.findall(r"```python\n(.*?)```", section, re.S)
        assert blocks, heading
        for code in blocks:
            exec(compile(code, f"docs/plugins.md {heading.strip()}", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("attribute, name", [("field_types", "Postcode"), ("actions", "Stamp"),
                                             ("actions", "OpenTicket"), ("chart_types", "Lollipop"),
                                             ("channels", "Pager")])
def test_the_documented_examples_register_cleanly(attribute: str, name: str) -> None:
    registry = build_registry(plugins=False)
    plugin = documented_classes()[name]()
    assert registry.use(lambda r: getattr(r, attribute).add(plugin, source="docs"), source="docs")
    assert registry.problems == []


def test_the_documented_channel_sends_through_dockets_guarded_post(monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel that posts with urllib or requests reaches any address the bundle names (the
    database host, the cloud's metadata service); the example shows the guarded `post`, which
    refuses internal addresses unless the operator allows them, as the built-in webhook does."""
    from datetime import datetime, timezone

    from engine.channels import PermanentDeliveryError
    from engine.channels.base import OutboundMessage

    monkeypatch.delenv("DOCKET_WEBHOOK_ALLOW_NETWORKS", raising=False)
    pager = documented_classes()["Pager"]()
    message = OutboundMessage(id=1, message_id="m1", channel="oncall", to=("duty",), subject="Overdue",
                              body="Complaint 12 is overdue", data={},
                              created_at=datetime(2026, 3, 2, tzinfo=timezone.utc))
    with pytest.raises(PermanentDeliveryError, match="127.0.0.1"):
        pager.send(message, {"url": "http://127.0.0.1:9/page"})


def test_the_documented_sms_provider_registers_through_its_register() -> None:
    registry = build_registry(plugins=False)
    assert registry.use(documented_classes()["register"], source="docs")
    assert registry.problems == [] and registry.sms_providers.source("aliyun") == "acme-docket"


def test_the_documented_chart_example_draws_a_widget() -> None:
    from reports.charts import ChartData, render_svg

    chart: ChartType = documented_classes()["Lollipop"]()
    data = ChartData("Complaints", [("d0", "Region", "text")], [("m0", "Complaints", "number")],
                     [{"d0": "east", "m0": 3, "_p": 0}, {"d0": "west", "m0": 5, "_p": 1}], {})
    assert chart.check_shape(1, 1) is None and render_svg(chart.spec(data)).startswith("<svg")


def test_the_documented_field_type_shows_its_own_message() -> None:
    from forms.messages import FieldInvalid

    postcode = documented_classes()["Postcode"]()
    with pytest.raises(FieldInvalid) as info:
        postcode.parse("12ab", None)
    assert info.value.text("zh-CN") == "请输入6位邮政编码。"


def test_a_plugin_that_raises_while_the_bundle_loads_is_an_error_where_the_bundle_uses_its_type(tmp_path: Path) -> None:
    import shutil

    from engine.bundle import validate_bundle

    class Broken(Checkpoint):
        name = "random_audit"  # the type the test bundle's flow uses, with its options
        options_schema = {"properties": {"share": {"type": "number"}, "audit": {"type": "string"}}}

        def compile(self, node: Any, flow: Any, ctx: Any, doc: Any, path: Any, scope: Any) -> dict[str, Any]:
            raise KeyError("oops")

    bundle = tmp_path / "bundle"
    shutil.copytree(Path(__file__).parent / "bundle", bundle)
    registry = build_registry(plugins=False)
    registry.node_types.add(Broken(), source=SOURCE)
    loaded, diagnostics = validate_bundle(bundle, registry)
    assert loaded is None
    (crash,) = [d for d in diagnostics if d.code == "build-crashed"]
    # At the node's type (it pointed at the flow's first line), naming the plugin.
    assert crash.span is not None and crash.span.file.endswith("refund_flow.yaml")
    assert (crash.span.line, crash.span.col) == (9, 11)
    assert "compiling node 'spot_check' (type 'random_audit') failed: KeyError: 'oops' (raised in " in crash.message
    assert "test_registration_checks.py" in crash.message and crash.hint == f"a bug in the plugin {SOURCE}, not in this file"


def test_a_plugin_hook_that_raises_leaves_the_rest_of_the_file_checked(tmp_path: Path) -> None:
    # The crash stopped the whole flow's build: a misspelt node after it went unreported.
    import shutil

    from engine.bundle import validate_bundle

    class Broken(Checkpoint):
        name = "random_audit"
        options_schema = {"properties": {"share": {"type": "number"}, "audit": {"type": "string"}}}

        def compile(self, node: Any, flow: Any, ctx: Any, doc: Any, path: Any, scope: Any) -> dict[str, Any]:
            raise KeyError("oops")

    bundle = tmp_path / "bundle"
    shutil.copytree(Path(__file__).parent / "bundle", bundle)
    flow = bundle / "flows" / "refund_flow.yaml"
    flow.write_text(flow.read_text("utf-8").replace("fields: [note]\n    next: done", "fields: [nite]\n    next: done"),
                    "utf-8")
    registry = build_registry(plugins=False)
    registry.node_types.add(Broken(), source=SOURCE)
    _, diagnostics = validate_bundle(bundle, registry)
    assert {d.code for d in diagnostics if d.severity == "error"} >= {"build-crashed"}
    assert any("nite" in d.message for d in diagnostics if d.code != "build-crashed")  # compiled after the crash


def test_every_widget_the_field_type_section_offers_is_one_the_form_pages_draw() -> None:
    from forms.render import WIDGETS

    section = DOCS.read_text("utf-8").split("## A field type\n", 1)[1].split("\n## ", 1)[0]
    listed = section.split("- `widget` chooses", 1)[1].split("- `value_kind", 1)[0]
    offered = set(re.findall(r"`([a-z-]+)`", listed)) - {"options", "max_length", "min_length"}
    assert offered and offered <= set(WIDGETS.values()), offered - set(WIDGETS.values())


def test_a_type_without_a_name_is_named_by_its_class() -> None:
    class OpenTicket:
        aliases, options_schema = (), {"properties": {}}

        def compile(self, options: Any, ctx: Any, doc: Any, path: Any, scope: Any) -> None:
            return None

        def run(self, act: Any, compiled: Any) -> None:
            return None

    message = refusal(Registry().actions.add, OpenTicket())
    assert message == "action OpenTicket from acme-docket: has no 'name' (the word written in YAML)"


def test_the_documented_action_that_tells_another_system_queues_a_message_in_the_transaction() -> None:
    """Calling the ticket system from run() would open a ticket for a change that rolls back."""
    from types import SimpleNamespace

    queued: list[dict[str, Any]] = []

    class Outbox:
        def enqueue(self, conn: Any, **message: Any) -> int:
            queued.append({"conn": conn, **message})
            return 1

    act = SimpleNamespace(conn="the transaction", form="complaint", record_id=17,
                          evaluate=lambda expression: "Parcel lost", service=lambda name: Outbox())
    documented_classes()["OpenTicket"]().run(act, {"channel": "tickets", "summary": object()})
    (message,) = queued
    assert message["conn"] == "the transaction" and message["channel"] == "tickets"
    assert message["subject"] == "Parcel lost" and message["key"] == "ticket:complaint:17"


def test_the_documented_chart_example_sizes_its_image_from_the_widget() -> None:
    from reports.charts import ChartData

    data = ChartData("Complaints", [("d0", "Region", "text")], [("m0", "Complaints", "number")],
                     [{"d0": "east", "m0": 3, "_p": 0}], {}, width=800, height=300)
    spec = documented_classes()["Lollipop"]().spec(data)
    assert (spec["width"], spec["height"]) == (800, 300)


def crashes(tmp_path: Path, registry: Registry, edit: Any) -> list[Any]:
    """The build-crashed diagnostics of the test bundle, with `edit(root)` applied to it and the
    node type its flow needs registered."""
    import shutil

    from engine.bundle import validate_bundle

    class Audit(Checkpoint):
        name = "random_audit"
        options_schema = {"properties": {"share": {"type": "number"}, "audit": {"type": "string"}}}

    bundle = tmp_path / "bundle"
    shutil.copytree(Path(__file__).parent / "bundle", bundle)
    edit(bundle)
    registry.node_types.add(Audit(), source=SOURCE)
    registry.functions.add(Function("mask_phone", lambda phone: phone, 1, 1), source=SOURCE)
    _, diagnostics = validate_bundle(bundle, registry)
    return [d for d in diagnostics if d.code == "build-crashed"]


def test_a_field_type_whose_check_raises_is_an_error_at_the_fields_type(tmp_path: Path) -> None:
    from sqlalchemy import String

    from forms.fields.base import FieldType

    class Postcode(FieldType):
        name = "postcode"
        description, examples = "A postcode.", ("zip:\n  type: postcode\n",)

        def column_type(self, spec: Any) -> Any:
            return String(6)

        def check(self, spec: Any, ctx: Any, doc: Any, path: Any) -> None:
            raise ValueError("no regions")

    def use_it(root: Path) -> None:
        form = root / "forms" / "refund.yaml"
        form.write_text(form.read_text("utf-8") + "  zip:\n    type: postcode\n", "utf-8")

    registry = build_registry(plugins=False)
    registry.field_types.add(Postcode(), source=SOURCE)
    (crash,) = crashes(tmp_path, registry, use_it)
    assert crash.span.file.endswith("forms/refund.yaml") and (crash.span.line, crash.span.col) == (21, 11)
    assert crash.message.startswith("checking field 'zip' (type 'postcode') failed: ValueError: no regions")


def test_an_action_whose_compile_raises_is_an_error_at_the_step(tmp_path: Path) -> None:
    class OpenTicket:
        name, aliases, options_schema = "open_ticket", (), {"properties": {}}

        def compile(self, options: Any, ctx: Any, doc: Any, path: Any, scope: Any) -> None:
            raise RuntimeError("no ticket system")

        def run(self, act: Any, compiled: Any) -> None:
            return None

    def use_it(root: Path) -> None:
        (root / "rules").mkdir()
        (root / "rules" / "refund_rules.yaml").write_text(
            "ruleset: refund_rules\nform: refund\nrules:\n  ticket:\n    on: record.created\n"
            "    do:\n      - {action: open_ticket}\n", "utf-8")

    registry = build_registry(plugins=False)
    registry.actions.add(OpenTicket(), source=SOURCE)
    (crash,) = crashes(tmp_path, registry, use_it)
    assert crash.span.file.endswith("rules/refund_rules.yaml") and crash.span.line == 7
    assert crash.message.startswith("compiling the 'open_ticket' action failed: RuntimeError: no ticket system")
