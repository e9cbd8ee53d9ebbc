"""Plugins are found through the `docket.plugins` entry point; broken ones are reported by name."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from engine.registry import ENTRY_POINT_GROUP
from tests.plugins.conftest import SAMPLE_SRC, InstallPlugin, sample_entry_points
from web.system import build_registry

RAISES = "def register(registry):\n    raise RuntimeError('the licence file is missing')\n"
CLASHES = """\
from flows.nodes.base import NodeType


class MyTask(NodeType):
    name = "task"

    def enter(self, run):
        run.create_task()


def register(registry):
    registry.node_types.add(MyTask(), source="docket-clash")
"""


def test_the_sample_plugin_declares_its_register_function() -> None:
    assert sample_entry_points() == {"sample": "docket_sample_plugin:register"}


def test_without_the_plugin_installed_there_is_no_random_audit() -> None:
    registry = build_registry(plugins=True)
    assert registry.node_types.get("random_audit") is None
    assert registry.functions.get("mask_phone") is None


def test_an_installed_plugin_is_found_through_its_entry_point(install_sample: None) -> None:
    (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "sample"]
    assert ep.dist is not None and ep.dist.name == "docket-sample-plugin"
    registry = build_registry(plugins=True)
    assert registry.problems == []
    audit = registry.node_types.get("random_audit")
    assert audit is not None and registry.node_types.get("spot_check") is audit
    assert registry.node_types.source("random_audit") == "docket-sample-plugin"
    assert registry.functions.get("mask_phone") is not None
    assert registry.node_types.get("task") is not None  # the built-ins are all still there


def test_the_registry_says_which_plugins_registered_how_many_types(install_sample: None) -> None:
    """What `docket serve` prints at start, so a plugin's author sees that it loaded."""
    assert build_registry(plugins=True).plugins() == {"docket-sample-plugin": 2}
    assert build_registry(plugins=False).plugins() == {}


def test_build_registry_without_plugins_ignores_installed_ones(install_sample: None) -> None:
    registry = build_registry(plugins=False)
    assert registry.node_types.get("random_audit") is None and registry.problems == []


def test_broken_plugins_are_reported_by_name_and_the_others_still_load(
        install_plugin: InstallPlugin) -> None:
    install_plugin("docket-sample-plugin", sample_entry_points(), source_dir=SAMPLE_SRC)
    install_plugin("docket-raises", {"raises": "docket_raises_plugin:register"},
                   modules={"docket_raises_plugin.py": RAISES})
    install_plugin("docket-missing", {"missing": "docket_not_installed_anywhere:register"})
    install_plugin("docket-typo", {"typo": "docket_typo_plugin:regster"},
                   modules={"docket_typo_plugin.py": "def register(registry):\n    pass\n"})
    registry = build_registry(plugins=True)
    problems = sorted(registry.problems)
    assert len(problems) == 3, problems
    missing, raises, typo = problems
    assert missing.startswith("plugin missing (docket_not_installed_anywhere:register): ModuleNotFoundError")
    assert raises.startswith("plugin raises (docket_raises_plugin:register): "
                             "RuntimeError: the licence file is missing")
    assert typo.startswith("plugin typo (docket_typo_plugin:regster): AttributeError")
    assert registry.node_types.get("random_audit") is not None


def test_a_problem_names_the_line_of_the_plugin_that_raised(install_plugin: InstallPlugin) -> None:
    """No traceback is shown for a plugin that fails to load: without the line, 'KeyError: x'
    left its developer guessing where."""
    info = install_plugin("docket-raises", {"raises": "docket_raises_plugin:register"},
                          modules={"docket_raises_plugin.py": RAISES})
    (problem,) = build_registry(plugins=True).problems
    assert problem.endswith(f"the licence file is missing (raised in {info.parent / 'docket_raises_plugin.py'}:2)")


def test_a_clash_names_the_line_of_the_plugin_that_added_the_type(install_plugin: InstallPlugin) -> None:
    info = install_plugin("docket-clash", {"clash": "docket_clash_plugin:register"},
                          modules={"docket_clash_plugin.py": CLASHES})
    (problem,) = build_registry(plugins=True).problems
    assert problem.endswith(f"by built-in (raised in {info.parent / 'docket_clash_plugin.py'}:12)")


def test_a_missing_module_or_function_names_no_line_of_pythons_import_machinery(
        install_plugin: InstallPlugin) -> None:
    install_plugin("docket-missing", {"missing": "docket_not_installed_anywhere:register"})
    install_plugin("docket-typo", {"typo": "docket_typo_plugin:regster"},
                   modules={"docket_typo_plugin.py": "def register(registry):\n    pass\n"})
    problems = build_registry(plugins=True).problems
    assert len(problems) == 2 and not [p for p in problems if "raised in" in p]


def test_a_plugin_taking_a_built_in_name_is_reported(install_plugin: InstallPlugin) -> None:
    install_plugin("docket-clash", {"clash": "docket_clash_plugin:register"},
                   modules={"docket_clash_plugin.py": CLASHES})
    install_plugin("docket-sample-plugin", sample_entry_points(), source_dir=SAMPLE_SRC)
    registry = build_registry(plugins=True)
    (problem,) = registry.problems
    assert problem.startswith("plugin clash (docket_clash_plugin:register): RegistryError: node type 'task' "
                              "from docket-clash is already registered by built-in")
    assert type(registry.node_types.get("task")).__module__ == "flows.nodes.basic"
    assert registry.node_types.get("random_audit") is not None


def test_registering_the_sample_twice_reports_each_of_its_types_not_raised(install_sample: None) -> None:
    import docket_sample_plugin

    registry = build_registry(plugins=True)
    assert registry.use(docket_sample_plugin.register, source="again") is False
    node_type, function = registry.problems
    assert node_type.startswith("plugin again: RegistryError: node type 'random_audit' from docket-sample-plugin "
                                "is already registered by docket-sample-plugin")
    assert function.startswith("plugin again: RegistryError: function 'mask_phone' from docket-sample-plugin "
                               "is already registered by docket-sample-plugin")


def test_docket_validate_warns_about_a_broken_plugin_and_still_validates(
        install_plugin: InstallPlugin, capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main
    from tests.plugins.conftest import BUNDLE

    install_plugin("docket-sample-plugin", sample_entry_points(), source_dir=SAMPLE_SRC)
    install_plugin("docket-raises", {"raises": "docket_raises_plugin:register"},
                   modules={"docket_raises_plugin.py": RAISES})
    assert main(["validate", str(BUNDLE)]) == 0
    out, err = capsys.readouterr()
    assert ("warning: plugin raises (docket_raises_plugin:register): RuntimeError: "
            "the licence file is missing") in err
    assert "valid" in out


def broken_register(registry: object) -> None:
    """A plugin's `register` that fails before adding anything."""
    raise RuntimeError("the licence file is missing")


def test_a_type_unknown_because_its_plugin_failed_says_so_at_the_place_it_is_used() -> None:
    """'did you mean join?' alone sent the analyst after a typo when the plugin had not loaded."""
    from engine.bundle import validate_bundle
    from tests.plugins.conftest import BUNDLE

    registry = build_registry(plugins=False)
    registry.use(broken_register, source="sample (docket_sample_plugin:register)")
    _, diagnostics = validate_bundle(BUNDLE, registry)
    (unknown,) = [d for d in diagnostics if d.message == "unknown node type 'random_audit'"]
    assert unknown.hint == ("the plugin sample (docket_sample_plugin:register) failed to load (see its "
                            "warning): it may be the one that adds 'random_audit'")


def test_a_close_name_is_still_offered_beside_the_failed_plugin() -> None:
    registry = build_registry(plugins=False)
    registry.use(broken_register, source="acme")
    assert registry.node_types.hint("tsak") == ("did you mean 'task'? Or the plugin acme failed to load (see "
                                                "its warning): it may be the one that adds 'tsak'")


def test_editor_schemas_include_the_plugin_options(plugin_registry: object) -> None:
    from engine.schema import export_schema
    from flows.kind import FlowKind

    schema = export_schema(FlowKind(), plugin_registry)  # type: ignore[arg-type]
    node = schema["properties"]["nodes"]["additionalProperties"]
    assert "random_audit" in node["properties"]["type"]["enum"]
    (branch,) = [b for b in node["allOf"] if "random_audit" in b["if"]["properties"]["type"]["enum"]]
    assert branch["then"]["properties"]["share"] == {
        "type": "number", "minimum": 0, "maximum": 1,
        "description": "the share of records audited, 0 to 1 (0.1 is one in ten)"}
    assert branch["then"]["required"] == ["audit", "share", "type"]


@pytest.mark.parametrize("module", ["docket_sample_plugin", "docket_raises_plugin"])
def test_plugin_modules_do_not_leak_between_tests(module: str) -> None:
    import sys

    assert module not in sys.modules
    assert not any(str(SAMPLE_SRC) == p for p in sys.path)


def claims_postcode_region(source: str) -> str:
    """A plugin module whose register adds a function `postcode_region`, credited to `source`."""
    return ("from engine.expr import Function\n\n\n"
            "def register(registry):\n"
            f"    registry.functions.add(Function('postcode_region', str, 1, 1), source={source!r})\n")


def test_plugins_load_in_the_order_of_their_entry_point_names_whatever_order_python_finds_them(
        install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python lists distributions in the file system's order: which of two plugins claiming one
    name won differed from one machine to the next."""
    import engine.registry

    install_plugin("docket-zeta", {"zeta": "docket_zeta_plugin:register"},
                   modules={"docket_zeta_plugin.py": claims_postcode_region("docket-zeta")})
    install_plugin("docket-alpha", {"alpha": "docket_alpha_plugin:register"},
                   modules={"docket_alpha_plugin.py": claims_postcode_region("docket-alpha")})
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name, reverse=True)
    monkeypatch.setattr(engine.registry, "entry_points", lambda group: [ep for ep in found if ep.group == group])
    registry = build_registry(plugins=True)
    assert registry.functions.source("postcode_region") == "docket-alpha"
    (problem,) = registry.problems
    assert problem.startswith("plugin zeta (docket_zeta_plugin:register): RegistryError: function "
                              "'postcode_region' from docket-zeta is already registered by docket-alpha")


def test_a_type_its_plugin_could_not_register_is_named_with_the_reason_where_the_bundle_uses_it() -> None:
    """'it may be the one' about every failed plugin left the analyst guessing which one, and why."""
    from engine.bundle import validate_bundle
    from flows.nodes.base import NodeType
    from tests.plugins.conftest import BUNDLE

    class RandomAudit(NodeType):
        name = "random_audit"
        options_schema = {"properties": {"share": {"type": "nmber"}}}

    registry = build_registry(plugins=False)
    registry.use(broken_register, source="other (docket_other:register)")
    registry.use(lambda r: r.node_types.add(RandomAudit()), source="sample (docket_sample_plugin:register)")
    _, diagnostics = validate_bundle(BUNDLE, registry)
    (unknown,) = [d for d in diagnostics if d.message == "unknown node type 'random_audit'"]
    assert unknown.hint is not None
    assert unknown.hint.startswith(
        "the plugin sample (docket_sample_plugin:register) adds 'random_audit' but Docket refused it: "
        "node type 'random_audit' from sample (docket_sample_plugin:register): options_schema is not a "
        "valid JSON Schema at properties/share/type")
    assert unknown.hint.endswith("A bug in that plugin, not in this file")


def test_several_failed_plugins_are_named_in_one_plain_sentence() -> None:
    registry = build_registry(plugins=False)
    for source in ("acme", "globex", "initech"):
        registry.use(broken_register, source=source)
    assert registry.chart_types.hint("gauge") == (
        "the plugins acme, globex and initech failed to load (see their warnings): one of them may add 'gauge'")
