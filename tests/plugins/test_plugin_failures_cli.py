"""What a `docket` command says when an installed plugin is broken: which plugin, once, and no
traceback blamed on Docket or on the bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli import main
from tests.plugins.conftest import BUNDLE, SAMPLE_SRC, InstallPlugin, sample_entry_points

RAISES = "def register(registry):\n    raise RuntimeError('the licence file is missing')\n"
CRASHES_AT_LOAD = """\
from docket_sample_plugin.audit import RandomAudit


class CrashingAudit(RandomAudit):
    name = "crashing_audit"
    aliases = ()

    def compile(self, node, flow, ctx, doc, path, scope):
        raise KeyError("share")


def register(registry):
    registry.node_types.add(CrashingAudit(), source="docket-crash")
"""


def bundle_using(install_plugin: InstallPlugin, tmp_path: Path, dist: str, module_source: str,
                 node_type: str, *, agent: bool = False) -> Path:
    """The test bundle, in tmp_path, whose spot check is `node_type` of plugin `dist` (module
    `docket_<name>_plugin` = `module_source`, installed with the sample plugin it builds on);
    `agent`: with a demo user `agent` to take the tasks."""
    module = dist.replace("-", "_") + "_plugin"
    install_plugin("docket-sample-plugin", sample_entry_points(), source_dir=SAMPLE_SRC)
    install_plugin(dist, {dist.split("-", 1)[1]: f"{module}:register"}, modules={f"{module}.py": module_source})
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    flow = bundle / "flows" / "refund_flow.yaml"
    flow.write_text(flow.read_text("utf-8").replace("type: random_audit", f"type: {node_type}"), "utf-8")
    if agent:
        with (bundle / "bundle.yaml").open("a", encoding="utf-8") as meta:
            meta.write("demo_users:\n  - {username: agent, name: Agent, roles: [agent]}\n")
    return bundle


def test_validate_names_the_plugin_whose_code_raised_where_the_bundle_uses_its_type(
        install_plugin: InstallPlugin, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = bundle_using(install_plugin, tmp_path, "docket-crash", CRASHES_AT_LOAD, "crashing_audit")
    assert main(["validate", str(bundle)]) == 1
    err = capsys.readouterr().err
    # At the node whose type it is, naming the plugin and the line that raised.
    assert ("refund_flow.yaml:9:11: error: compiling node 'spot_check' (type 'crashing_audit') failed: "
            "KeyError: 'share' (raised in ") in err
    assert "docket_crash_plugin.py:" in err
    assert "hint: a bug in the plugin docket-crash, not in this file" in err
    assert "Traceback" not in err  # for the plugin's author, in a server's log; not for the analyst


def test_docket_validate_reports_a_broken_plugin_once(
        install_plugin: InstallPlugin, capsys: pytest.CaptureFixture[str]) -> None:
    install_plugin("docket-sample-plugin", sample_entry_points(), source_dir=SAMPLE_SRC)
    install_plugin("docket-raises", {"raises": "docket_raises_plugin:register"},
                   modules={"docket_raises_plugin.py": RAISES})
    assert main(["validate", str(BUNDLE)]) == 0
    assert capsys.readouterr().err.count("the licence file is missing") == 1


def test_docket_schema_warns_about_a_broken_plugin(
        install_plugin: InstallPlugin, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install_plugin("docket-raises", {"raises": "docket_raises_plugin:register"},
                   modules={"docket_raises_plugin.py": RAISES})
    assert main(["schema", "--out", str(tmp_path)]) == 0
    assert ("warning: plugin raises (docket_raises_plugin:register): RuntimeError: "
            "the licence file is missing") in capsys.readouterr().err


RAISES_AT_RUN = """\
from docket_sample_plugin.audit import RandomAudit


class FailingAudit(RandomAudit):
    name = "failing_audit"
    aliases = ()

    def enter(self, run):
        run.create_task({"user": "agent"})

    def on_task_completed(self, run, task, outcome):
        raise ValueError("the audit quota table is empty")


def register(registry):
    registry.node_types.add(FailingAudit(), source="docket-failing")
"""
SUBMITS = """\
scenario: A refund is submitted
start: 2026-03-02T09:00:00
steps:
  - submit: refund
    by: agent
    values: {customer: Li, phone: "13812345678", amount: "120.00"}
  - complete: spot_check
    by: agent
"""


def test_docket_test_reports_a_plugins_value_error_as_its_bug_not_as_a_refusal(
        install_plugin: InstallPlugin, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ValueError is how Docket's own checks refuse a step, so a plugin's ValueError read
    `refused: the audit quota table is empty`, as if the bundle had refused the submission."""
    bundle = bundle_using(install_plugin, tmp_path, "docket-failing", RAISES_AT_RUN, "failing_audit", agent=True)
    (bundle / "scenarios").mkdir()
    (bundle / "scenarios" / "submit.yaml").write_text(SUBMITS, "utf-8")
    assert main(["test", str(bundle)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "refused:" not in text
    assert ("submit.yaml:7:5: error: step 2 (complete spot_check by agent): Docket failed inside (ValueError: "
            "the audit quota table is empty)") in text
    assert "hint: a bug in the plugin docket-failing, not in the scenario or the bundle" in text


STOPS_AT_ENTER = """\
from docket_sample_plugin.audit import RandomAudit


class StoppingAudit(RandomAudit):
    name = "stopping_audit"
    aliases = ()

    def enter(self, run):
        raise KeyError("audit_list")


def register(registry):
    registry.node_types.add(StoppingAudit(), source="docket-stopping")
"""
EXPECTS_HANDLING = """\
scenario: A refund is handled
start: 2026-03-02T09:00:00
steps:
  - submit: refund
    values: {customer: Li, phone: "13812345678", amount: "120.00"}
  - expect: {at: handle}
"""


def test_docket_test_says_the_flow_stopped_with_an_incident_where_a_step_was_expected(
        install_plugin: InstallPlugin, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It said only 'expected open steps [handle], found none': the plugin's failure, the reason
    nothing is open, was nowhere in the output."""
    bundle = bundle_using(install_plugin, tmp_path, "docket-stopping", STOPS_AT_ENTER, "stopping_audit")
    (bundle / "scenarios").mkdir()
    (bundle / "scenarios" / "handle.yaml").write_text(EXPECTS_HANDLING, "utf-8")
    assert main(["test", str(bundle)]) == 1
    text = capsys.readouterr().out
    assert "expected open steps [handle], found none" in text
    assert ("hint: the flow stopped with an incident: spot_check: node type 'stopping_audit' (plugin "
            "docket-stopping) failed: KeyError: 'audit_list'") in text
