"""The starter bundle (definitions/starter) and `docket new`: a second process on the same
engines, with no Python of its own, that an analyst copies and changes into theirs."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from cli import main
from engine.bundle import validate_bundle
from engine.clock import ManualClock
from engine.errors import format_diagnostic
from engine.identity import Principal
from forms.statuses import ENGINE_STATUSES
from reports.demo import DemoRunner
from web.scenarios import run_scenarios
from web.system import boot, build_registry

STARTER = Path(__file__).resolve().parent.parent / "definitions" / "starter"


def test_the_starter_bundle_loads_without_errors_or_warnings() -> None:
    bundle, diags = validate_bundle(STARTER, build_registry(plugins=False))
    assert diags == [], "\n".join(format_diagnostic(d) for d in diags)
    assert bundle is not None and bundle.meta.name == "starter"


def test_every_status_the_engine_gives_a_request_has_words_in_the_progress_lookup() -> None:
    """A withdrawn request showed the bare code `withdrawn` on /track: the engine sets it, so the
    status list the lookup reads must name it (and `new`) in both languages."""
    bundle, _diags = validate_bundle(STARTER, build_registry(plugins=False))
    assert bundle is not None
    statuses = bundle.definitions["list"][bundle.definitions["form"]["request"].lookup["statuses"]]
    assert ENGINE_STATUSES <= statuses.values()
    withdrawn = statuses.find("withdrawn")
    assert withdrawn is not None and (withdrawn.text("zh-CN"), withdrawn.text("en")) == ("已撤回", "Withdrawn")


def test_the_starter_bundle_scenarios_pass(tmp_path: Path) -> None:
    results = run_scenarios(STARTER, db_folder=tmp_path, registry=build_registry(plugins=False))
    assert len(results) == 2 and [format_diagnostic(p) for r in results for p in r.problems] == []


def test_docket_new_makes_a_valid_bundle_named_after_its_folder(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "Leave Requests"
    assert main(["new", str(target)]) == 0
    assert "bundle 'leave_requests'" in capsys.readouterr().out
    bundle, diags = validate_bundle(target, build_registry(plugins=False))
    assert diags == [] and bundle is not None and bundle.meta.name == "leave_requests"
    assert sorted(p.name for p in (target / "scenarios").iterdir()) == sorted(
        p.name for p in (STARTER / "scenarios").iterdir())


def test_docket_new_takes_a_name(tmp_path: Path) -> None:
    assert main(["new", str(tmp_path / "x"), "--name", "it_helpdesk"]) == 0
    assert "bundle: it_helpdesk\n" in (tmp_path / "x" / "bundle.yaml").read_text("utf-8")


def test_docket_new_never_writes_into_a_folder_that_holds_files(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["new", str(tmp_path / "mine")]) == 1
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_docket_new_refuses_a_folder_name_that_cannot_be_a_bundle_name(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", str(tmp_path / "2026")]) == 1
    assert "give one with --name" in capsys.readouterr().err
    assert not (tmp_path / "2026").exists()


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The starter with sample traffic through its flow, as `docket serve --demo` fills it."""
    folder = tmp_path_factory.mktemp("starter")
    system = boot(STARTER, db_url=f"sqlite:///{folder / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 3, 2, 1, tzinfo=timezone.utc)), registry=build_registry(plugins=False))
    result = DemoRunner(system.runtime, seed=5).run(60, start=datetime(2026, 3, 2, 1, tzinfo=timezone.utc), days=20)
    return system, result


def test_sample_traffic_fills_every_required_field_of_the_starter_form(sampled) -> None:  # type: ignore[no-untyped-def]
    system, result = sampled
    assert result.records == 60 and system.forms.count("request") == 60


def test_a_dataset_status_reads_in_the_words_of_the_forms_status_list(sampled) -> None:  # type: ignore[no-untyped-def]
    system, _ = sampled
    reports = system.runtime.services["reports"]
    board = reports.dashboard("requests")
    payload = reports.widget_json(board, board.widgets["by_status"], {}, Principal.system(), "zh-CN")
    shown = {row[0] for row in payload["rows"]}
    assert shown and shown <= {"已提交", "审核中", "待审批", "已批准", "未批准"}


def test_sample_traffic_mostly_approves_and_sometimes_rejects(sampled) -> None:  # type: ignore[no-untyped-def]
    system, _ = sampled
    outcomes = [i["outcome"] for r in range(1, 61) for i in system.flows.instances("request", r)]
    assert 0 < outcomes.count("rejected") < outcomes.count("approved")


def test_sample_traffic_fills_optional_amounts_so_the_manager_approval_is_reached(sampled) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from engine.storage.db import read_transaction
    from engine.storage.tables import tasks

    system, _ = sampled
    with read_transaction(system.db) as conn:
        nodes = set(conn.execute(sa.select(tasks.c.node).where(tasks.c.form == "request")).scalars())
    assert "manager_approval" in nodes
