"""RELIABILITY 60: a process killed with SIGKILL in the middle of a burst of submissions leaves a
database that restarts intact, where every complaint is whole (record, flow instance, first
task, history and SLA timers, all committed by one transaction) and nothing is half written."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from web.system import boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"

# Two threads submit complaints as fast as they can and print a line after each commit, so the
# test knows the burst is under way before it kills the process.
WRITER = """\
import sys, threading
sys.path.insert(0, {root!r})
from web.system import boot

system = boot({bundle!r}, db_url={url!r})
complaint = {{"customer_name": "华东电子", "contact_name": "刘女士", "contact_phone": "13800000000",
             "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late",
             "description": "延误三天"}}
print("ready", flush=True)
said = threading.Lock()  # one whole line per commit

def burst(thread):
    n = 0
    while True:
        n += 1
        system.forms.submit("complaint", dict(complaint, customer_name=f"客户{{thread}}-{{n}}"), actor="accounts")
        with said:
            print("committed", flush=True)

for thread in range(2):
    threading.Thread(target=burst, args=(thread,), daemon=True).start()
threading.Event().wait()
"""


def rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def kill_during_a_burst(database: Path, commits: int) -> None:
    """Start the writer, let `commits` submissions commit, then SIGKILL it mid-burst."""
    code = WRITER.format(root=str(ROOT), bundle=str(POSTAL), url=f"sqlite:///{database}")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        for _ in range(commits):
            assert writer.stdout.readline().strip() == "committed"
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait(30) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_a_database_killed_during_a_write_burst_restarts_intact_with_every_complaint_whole(
        tmp_path: Path) -> None:
    database = tmp_path / "docket.db"
    kill_during_a_burst(database, commits=30)

    system = boot(POSTAL, db_url=f"sqlite:///{database}")  # the restart
    try:
        assert rows(database, "PRAGMA integrity_check") == [("ok",)]
        assert rows(database, "PRAGMA foreign_key_check") == []
        ids = [r[0] for r in rows(database, "SELECT id FROM rec_complaint ORDER BY id")]
        assert len(ids) >= 30  # every acknowledged commit survived the kill
        per_record = {
            "instance": "SELECT record_id FROM dk_flow_instances WHERE form = 'complaint'",
            "task": "SELECT DISTINCT record_id FROM dk_tasks WHERE form = 'complaint'",
            "created": "SELECT record_id FROM dk_history WHERE form = 'complaint' AND kind = 'record.created'",
            "started": "SELECT record_id FROM dk_history WHERE form = 'complaint' AND kind = 'flow.started'",
        }
        for what, sql in per_record.items():
            assert sorted(r[0] for r in rows(database, sql)) == ids, what
        timers = rows(database, "SELECT subject, count(*) FROM dk_timers "
                                "WHERE kind LIKE 'sla.%' GROUP BY subject")
        assert dict(timers) == {f"record:complaint:{i}": 4 for i in ids}  # warning + breach, two targets

        # The restarted system takes new complaints after the last one the dead process wrote.
        again = system.forms.submit("complaint", {
            "customer_name": "重启后客户", "contact_name": "刘女士", "contact_phone": "13800000000",
            "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late",
            "description": "延误三天"}, actor="accounts").record_id
        assert again > max(ids)
    finally:
        system.db.dispose()
