"""A bundle using the sample plugin: it loads with the plugin, fails clearly without it, and
`random_audit` routes a repeatable share of records to the audit task."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from engine.bundle import validate_bundle
from engine.clock import ManualClock
from engine.errors import DefinitionError, format_diagnostic
from engine.registry import Registry
from tests.plugins.conftest import BUNDLE
from web.system import System, boot, build_registry

FLOW = "flows/refund_flow.yaml"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def copy_bundle(tmp_path: Path, old: str | None = None, new: str | None = None) -> Path:
    """The test bundle in tmp_path, with `old` replaced by `new` in the flow."""
    root = tmp_path / "bundle"
    shutil.copytree(BUNDLE, root)
    if old is not None and new is not None:
        flow = root / FLOW
        text = flow.read_text("utf-8")
        assert old in text
        flow.write_text(text.replace(old, new), "utf-8")
    return root


def errors(root: Path, registry: Registry) -> list[str]:
    bundle, diags = validate_bundle(root, registry)
    assert (bundle is None) == any(d.severity == "error" for d in diags)
    out = []
    for d in diags:
        if d.severity == "error":
            assert d.span is not None, d.message
            rel = Path(d.span.file).resolve().relative_to(root.resolve()).as_posix()
            out.append(format_diagnostic(d).replace(str(d.span.file), rel, 1))
    return out


def start(root: Path, registry: Registry, tmp_path: Path) -> System:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock, registry=registry)


def submit(system: System, n: int, phone: str = "13812345678") -> int:
    return system.forms.submit("refund", {"customer": f"customer {n}", "phone": phone,
                                          "amount": "120.00"}, actor="agent").record_id


def nodes(system: System, record_id: int) -> list[str]:
    return [t["node"] for t in system.flows.open_tasks("refund", record_id)]


# -- load time --------------------------------------------------------------------------------

def test_the_bundle_loads_with_the_plugin(plugin_registry: Registry, tmp_path: Path) -> None:
    assert errors(copy_bundle(tmp_path), plugin_registry) == []


def test_without_the_plugin_the_node_type_and_function_are_unknown_with_positions(tmp_path: Path) -> None:
    found = errors(copy_bundle(tmp_path), build_registry(plugins=False))
    assert any(e.startswith(f"{FLOW}:9:11: error: unknown node type 'random_audit'") for e in found), found
    assert any(e.startswith("forms/refund.yaml:13:17: error: unknown function 'mask_phone'")
               for e in found), found


def test_without_the_plugin_boot_refuses_the_bundle(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="random_audit"):
        start(copy_bundle(tmp_path), build_registry(plugins=False), tmp_path)


def test_a_share_above_one_is_reported_by_the_plugins_schema(plugin_registry: Registry,
                                                            tmp_path: Path) -> None:
    root = copy_bundle(tmp_path, "share: 0.3", "share: 2")
    assert errors(root, plugin_registry) == [
        f"{FLOW}:10:12: error: the number 2 is out of range (maximum 1) (at nodes.spot_check.share) "
        "[schema-maximum]"]


def test_a_missing_audit_target_is_reported(plugin_registry: Registry, tmp_path: Path) -> None:
    root = copy_bundle(tmp_path, "    audit: audit\n", "")
    found = errors(root, plugin_registry)
    assert any(e.startswith(f"{FLOW}:8:3: error:") and "'audit'" in e for e in found), found


def test_the_audit_edge_is_seen_by_the_graph_checks(plugin_registry: Registry, tmp_path: Path) -> None:
    root = copy_bundle(tmp_path, "audit: audit", "audit: audits")
    found = errors(root, plugin_registry)
    assert any(e.startswith(f"{FLOW}:11:12: error:") and "audits" in e for e in found), found


def test_the_plugins_own_checks_report_with_positions(plugin_registry: Registry, tmp_path: Path) -> None:
    root = copy_bundle(tmp_path, "    audit: audit\n", "    audit: handle\n    seed_field: phon\n")
    found = errors(root, plugin_registry)
    assert (f"{FLOW}:11:12: error: 'audit' and 'next' are the same node: nothing is sampled "
            "(at nodes.spot_check.audit) [random-audit]\n"
            "  hint: send audited records to their own step") in found
    assert any(e.startswith(f"{FLOW}:12:17: error: unknown field 'phon'") and "'phone'" in e
               for e in found), found


# -- run time ---------------------------------------------------------------------------------

def test_a_share_of_records_goes_to_the_audit_task_the_rest_past_it(
        plugin_registry: Registry, tmp_path: Path) -> None:
    from docket_sample_plugin.audit import is_audited

    system = start(copy_bundle(tmp_path), plugin_registry, tmp_path)
    ids = [submit(system, n) for n in range(40)]
    audited = {rid for rid in ids if nodes(system, rid) == ["audit"]}
    passed = {rid for rid in ids if nodes(system, rid) == ["handle"]}
    assert audited | passed == set(ids) and audited and passed
    assert audited == {rid for rid in ids if is_audited("refund_flow", "spot_check", rid, 0.3)}
    assert 4 <= len(audited) <= 20  # about 30% of 40


def test_the_choice_is_repeatable(plugin_registry: Registry, tmp_path: Path) -> None:
    first = start(copy_bundle(tmp_path / "a"), plugin_registry, tmp_path / "a")
    second = start(copy_bundle(tmp_path / "b"), plugin_registry, tmp_path / "b")
    routes = [[nodes(system, submit(system, n)) for n in range(20)] for system in (first, second)]
    assert routes[0] == routes[1]


def test_an_audited_record_goes_on_to_handling_after_the_audit(
        plugin_registry: Registry, tmp_path: Path) -> None:
    system = start(copy_bundle(tmp_path, "share: 0.3", "share: 1"), plugin_registry, tmp_path)
    record_id = submit(system, 1)
    (audit,) = system.flows.open_tasks("refund", record_id)
    assert audit["node"] == "audit"
    system.flows.complete(audit["id"], "auditor", values={"note": "checked"})
    (handle,) = system.flows.open_tasks("refund", record_id)
    assert handle["node"] == "handle"
    system.flows.complete(handle["id"], "agent")
    (instance,) = system.flows.instances("refund", record_id)
    assert (instance["status"], instance["outcome"]) == ("completed", "resolved")
    entered = [h["node"] for h in system.forms.history("refund", record_id) if h["kind"] == "flow.entered"]
    assert entered == ["begin", "spot_check", "audit", "handle", "done"]


def test_share_zero_audits_nothing(plugin_registry: Registry, tmp_path: Path) -> None:
    system = start(copy_bundle(tmp_path, "share: 0.3", "share: 0"), plugin_registry, tmp_path)
    assert {tuple(nodes(system, submit(system, n))) for n in range(10)} == {("handle",)}


def test_a_seed_field_sends_equal_values_the_same_way(plugin_registry: Registry, tmp_path: Path) -> None:
    from docket_sample_plugin.audit import is_audited

    root = copy_bundle(tmp_path, "share: 0.3", "share: 0.5\n    seed_field: phone")
    system = start(root, plugin_registry, tmp_path)
    phones = [f"1380000{n:04d}" for n in range(12)]
    for phone in phones:
        expected = ["audit"] if is_audited("refund_flow", "spot_check", phone, 0.5) else ["handle"]
        assert [nodes(system, submit(system, n, phone)) for n in range(3)] == [expected] * 3


# -- the function plugin ----------------------------------------------------------------------

def test_a_computed_field_uses_the_plugin_function(plugin_registry: Registry, tmp_path: Path) -> None:
    system = start(copy_bundle(tmp_path), plugin_registry, tmp_path)
    record = system.forms.get("refund", submit(system, 1, phone="13812345678"))
    assert record["phone_masked"] == "138****5678"
    record = system.forms.get("refund", submit(system, 2, phone="010-66668888"))
    assert record["phone_masked"] == "010-****8888"


@pytest.mark.parametrize("phone, masked", [
    ("13812345678", "138****5678"),
    ("010-66668888", "010-****8888"),
    ("+86 138 1234 5678", "+86 1** **** 5678"),
    ("12345", "*****"),
    ("", ""),
    (None, ""),
])
def test_mask_phone(install_sample: None, phone: str | None, masked: str) -> None:
    from docket_sample_plugin.functions import mask_phone

    assert mask_phone(phone) == masked


def test_mask_phone_in_an_expression(plugin_registry: Registry) -> None:
    from engine.expr import Scope, compile_expression

    expression = compile_expression('mask_phone(phone) + " / " + mask_phone("13812345678")',
                                    scope=Scope(frozenset({"phone"})), functions=plugin_registry.functions)
    assert expression.evaluate({"phone": "13900001111"}) == "139****1111 / 138****5678"


def test_the_node_types_example_loads(plugin_registry: Registry, tmp_path: Path) -> None:
    from textwrap import indent

    (example,) = plugin_registry.node_types.get("random_audit").examples
    root = copy_bundle(tmp_path, "  spot_check:\n    type: random_audit\n    share: 0.3\n"
                                 "    audit: audit\n    next: handle\n", indent(example, "  "))
    assert errors(root, plugin_registry) == []


# -- the documented node that gives people work -----------------------------------------------------

def documented_second_look() -> Any:
    """The SecondLook class of docs/plugins.md, "A node that gives people work"."""
    text = DOCS.read_text("utf-8").split("### A node that gives people work\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "docs/plugins.md SecondLook", "exec"), namespace)  # noqa: S102
    return namespace["SecondLook"]()


def with_second_look(root: Path, assign: str) -> None:
    """Put a `second_look` node assigned as `assign` between the audit check and handling."""
    flow = root / "flows" / "refund_flow.yaml"
    text = flow.read_text("utf-8").replace("    next: handle\n  audit:", "    next: again\n  audit:", 1)
    text = text.replace("  handle:\n", f"  again:\n    type: second_look\n    assign: {assign}\n"
                                        "    fields: [note]\n    next: handle\n  handle:\n", 1)
    flow.write_text(text, "utf-8")


def test_the_documented_task_node_checks_the_roles_of_its_assign(plugin_registry: Registry,
                                                                 tmp_path: Path) -> None:
    plugin_registry.node_types.add(documented_second_look(), source="docs")
    root = copy_bundle(tmp_path)
    with_second_look(root, "{role: agnt}")
    assert errors(root, plugin_registry) == [
        "flows/refund_flow.yaml:21:20: error: unknown role 'agnt' (at nodes.again.assign.role) [unknown-reference]\n"
        "  hint: did you mean 'agent'?"]


def test_the_documented_task_node_opens_a_task_for_its_assign(plugin_registry: Registry, tmp_path: Path) -> None:
    plugin_registry.node_types.add(documented_second_look(), source="docs")
    root = copy_bundle(tmp_path)
    with_second_look(root, "{role: agent}")
    system = start(root, plugin_registry, tmp_path)
    record_id = next(i for i in range(1, 40) if "again" in nodes(system, submit(system, i)))
    assert nodes(system, record_id) == ["again"]


# -- the flow diagram -------------------------------------------------------------------------

def test_the_flow_diagram_labels_a_plugin_nodes_edges_with_its_edge_labels(
        plugin_registry: Registry, tmp_path: Path) -> None:
    """A built-in approval's arrows read approve / reject; random_audit's two arrows were both
    blank, so the diagram did not say which one the audited records take."""
    from web.flow_diagram import flow_edges

    bundle, _ = validate_bundle(copy_bundle(tmp_path), plugin_registry)
    assert bundle is not None
    flow = bundle.all("flow")["refund_flow"]
    labels = {e.target: e.label for e in flow_edges(flow, plugin_registry, "zh-CN") if e.source == "spot_check"}
    assert labels == {"audit": "抽检", "handle": "免检"}
    labels = {e.target: e.label for e in flow_edges(flow, plugin_registry, "en") if e.source == "spot_check"}
    assert labels == {"audit": "audited", "handle": "not audited"}
