"""`docket demo`: synthetic complaints run through the real form and flow services on a fast
clock, whatever the flow looks like, so the dashboards have something to show."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
import yaml

from cli import main
from engine.storage.db import create_engine, read_transaction
from engine.storage.tables import report_facts, tasks

POSTAL = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"


def test_demo_fills_the_database_through_the_flows(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOCKET_FILES_DIR", str(tmp_path / "files"))
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", str(POSTAL), "--records", "6", "--days", "30", "--db", url]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["records"] == 6 and summary["completed_tasks"] >= 6
    engine = create_engine(url)
    with read_transaction(engine) as conn:
        facts = conn.execute(sa.select(report_facts)).all()
        done = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(tasks.c.status == "completed")).scalar()
    engine.dispose()
    assert len(facts) == 6  # every complaint has its lifecycle facts
    assert sum(1 for f in facts if f.first_response_at is not None) >= 5
    assert done == summary["completed_tasks"]


def test_each_demo_complaint_describes_the_problem_of_its_category(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOCKET_FILES_DIR", str(tmp_path / "files"))
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", str(POSTAL), "--records", "6", "--days", "30", "--db", url]) == 0
    engine = create_engine(url)
    with read_transaction(engine) as conn:
        rows = conn.execute(sa.text("SELECT category, description FROM rec_complaint")).all()
    engine.dispose()
    # The category drawn at submission (the agent may reclassify it at the accept step).
    problems = tuple(leaf_labels(yaml.safe_load((POSTAL / "lists" / "category.yaml").read_text("utf-8"))["items"]))
    descriptions = [description for _, description in rows]
    assert len(set(descriptions)) > 1 and all(d.startswith(problems) for d in descriptions), descriptions


def leaf_labels(items: list) -> list[str]:  # type: ignore[type-arg]
    return [label for item in items for label in
            (leaf_labels(item["children"]) if item.get("children") else [item["label"]["zh-CN"]])]


def test_demo_refuses_nonsense(tmp_path: Path) -> None:
    assert main(["demo", str(POSTAL), "--records", "0", "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 1
