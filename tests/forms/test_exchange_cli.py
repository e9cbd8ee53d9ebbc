"""`docket export` and `docket import`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from web.system import boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
COMPLAINT = {"customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
             "occurred_at": "2025-11-20T10:30:00+08:00", "category": "damage_goods",
             "description": "三箱货物内件破损", "amount_claimed": "1200.00", "region": "east"}
HEADER = "Key-account name,Contact person,Contact phone,When it happened,Category,What happened"
GOOD = "华北制造,刘女士,010-66668888,2025-11-21 09:00,Late in transit,延误"


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_then_import_through_the_command_line(tmp_path: Path, suffix: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    system = boot(POSTAL, db_url=source)
    system.forms.submit("complaint", COMPLAINT)
    system.forms.submit("complaint", {**COMPLAINT, "customer_name": "=cmd|' /C calc'!A0"})
    system.db.dispose()
    out = tmp_path / f"complaints.{suffix}"
    assert main(["export", str(POSTAL), "complaint", "--out", str(out), "--db", source, "--locale", "zh-CN"]) == 0
    assert "2 record(s) of complaint written" in capsys.readouterr().out
    assert out.exists() and not list(tmp_path.glob("*.part"))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    assert main(["import", str(POSTAL), "complaint", str(out), "--db", target, "--user", "clerk"]) == 0
    assert "2 of 2 row(s) stored." in capsys.readouterr().out
    imported = boot(POSTAL, db_url=target).forms.list("complaint")
    assert [r["customer_name"] for r in imported] == ["=cmd|' /C calc'!A0", "华东电子商务有限公司"]
    assert {r["created_by"] for r in imported} == {"clerk"}


def test_a_failed_batch_prints_each_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("\r\n".join([HEADER, GOOD, GOOD.replace("010-66668888", "12")]) + "\r\n", "utf-8")
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["import", str(POSTAL), "complaint", str(data), "--db", db, "--locale", "zh-CN"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{data}: 第 3 行, Contact phone: 请输入有效的电话号码。"
    assert err[1].startswith(f"{data}: 未保存任何记录")
    assert main(["import", str(POSTAL), "complaint", str(data), "--db", db, "--valid-rows"]) == 1
    assert "1 of 2 row(s) stored" in capsys.readouterr().err
    assert boot(POSTAL, db_url=db).forms.count("complaint") == 1


def test_bad_arguments_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["export", str(POSTAL), "complaint", "--out", str(tmp_path / "x.txt"), "--db", db]) == 1
    assert "--format csv or xlsx" in capsys.readouterr().err
    assert main(["import", str(POSTAL), "complaint", str(tmp_path / "missing.csv"), "--db", db]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["export", str(POSTAL), "nope", "--out", str(tmp_path / "x.csv"), "--db", db]) == 1
    assert "no form 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.csv.part").exists()
