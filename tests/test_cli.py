"""The `docket` command line: validate, submit, schema, db upgrade, help."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli import main

ROOT = Path(__file__).resolve().parent.parent
POSTAL = ROOT / "definitions" / "postal_complaints"
COMPLAINT = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "damage_goods",
    "description": "三箱货物内件破损", "amount_claimed": "1200.00", "region": "east",
}


def test_validate_accepts_the_postal_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(POSTAL)]) == 0
    assert "valid" in capsys.readouterr().out


def broken_postal_copy(tmp_path: Path) -> Path:
    """The postal bundle with the five defects of the foundation issue, one per file area."""
    copy = tmp_path / "postal"
    shutil.copytree(POSTAL, copy)
    form = copy / "forms" / "complaint.yaml"
    text = form.read_text("utf-8")
    text = text.replace("  contact_name:\n", "  customer_name:\n    type: text\n  contact_name:\n", 1)
    text = text.replace('required_if: category in (', 'required_if: categry in (')
    form.write_text(text, "utf-8")
    flow = copy / "flows" / "complaint_handling.yaml"
    text = flow.read_text("utf-8")
    text = text.replace("    type: decision\n", "    type: decisoin\n")
    text = text.replace("    next: satisfied\n", "    next: close\n")
    flow.write_text(text, "utf-8")
    lists = copy / "lists" / "urgency.yaml"
    lists.write_text(lists.read_text("utf-8").replace("  - {value: normal", "   - {value: normal"), "utf-8")
    return copy


def test_validate_names_each_defect_of_a_broken_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = broken_postal_copy(tmp_path)
    assert main(["validate", str(copy), "--format", "json"]) == 1
    found = {(Path(d["file"]).name, d["line"], d["col"], d["code"])
             for d in json.loads(capsys.readouterr().out) if d["severity"] == "error"}
    form = (copy / "forms" / "complaint.yaml").read_text("utf-8").splitlines()
    flow = (copy / "flows" / "complaint_handling.yaml").read_text("utf-8").splitlines()
    dup_line = [i for i, l in enumerate(form, 1) if l == "  customer_name:"][1]
    expr_line = next(i for i, l in enumerate(form, 1) if "categry" in l)
    type_line = next(i for i, l in enumerate(flow, 1) if "decisoin" in l)
    next_line = next(i for i, l in enumerate(flow, 1) if l == "    next: close")
    expected = {
        ("complaint.yaml", dup_line, 3),                      # duplicate key
        ("complaint.yaml", expr_line, form[expr_line - 1].index("categry") + 1),  # unknown field
        ("complaint_handling.yaml", type_line, 11),           # unknown node type
        ("complaint_handling.yaml", next_line, 11),           # dangling reference
        ("urgency.yaml", 6, 4),                               # wrong indent
    }
    assert expected <= {(f, l, c) for f, l, c, _ in found}, found


def test_validate_prints_file_line_col_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = broken_postal_copy(tmp_path)
    assert main(["validate", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "complaint_handling.yaml:" in err and ": error: unknown node type 'decisoin'" in err
    assert "hint: did you mean 'decision'?" in err


def test_submit_stores_a_complaint_with_a_query_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "complaint.json"
    data.write_text(json.dumps(COMPLAINT, ensure_ascii=False), "utf-8")
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["submit", str(POSTAL), "complaint", "--data", str(data), "--db", db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["created"] is True and out["query_no"].startswith("TS")


def test_submit_reports_every_invalid_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "complaint.json"
    data.write_text(json.dumps({"contact_phone": "12"}), "utf-8")
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["submit", str(POSTAL), "complaint", "--data", str(data), "--db", db]) == 1
    err = capsys.readouterr().err
    for field in ("customer_name", "contact_phone", "category", "description"):
        assert f": {field}: " in err


def test_submit_refuses_a_file_that_is_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "complaint.json"
    data.write_text("{not json", "utf-8")
    assert main(["submit", str(POSTAL), "complaint", "--data", str(data)]) == 1
    assert "cannot read JSON" in capsys.readouterr().err


def test_schema_writes_one_schema_per_kind(tmp_path: Path) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert {"bundle.schema.json", "form.schema.json", "flow.schema.json", "list.schema.json"} <= set(names)
    schema = json.loads((tmp_path / "form.schema.json").read_text("utf-8"))
    assert schema["$schema"].endswith("2020-12/schema")


def test_db_upgrade_creates_the_engine_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 0
    assert "revision" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["validate"], ["serve"], ["submit"], ["schema"], ["db"], ["db", "upgrade"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), *command, "--help"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and "usage: docket" in result.stdout
