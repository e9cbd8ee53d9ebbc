"""Benchmark: the flow engine (issue 5, PERFORMANCE.md section 1).

One run reports, on SQLite and on PostgreSQL (a fresh schema):
1. full postal-flow instances completed per second: a complaint submitted, then every task of
   REQUIREMENTS section 2 completed through the Python API, each command its own transaction
   (every step persisted), with the bundle's rules, SLA policies and notifications running as in
   production. Mix: 2 of 3 are delay complaints (submit, accept, marketing, operations, proposal,
   reply, confirmation: 7 commands); 1 of 3 are damage claims of 8000 (finance joins the
   assessment, the auto_grade rule makes it a level-2 case for the department manager, the
   finance director approves: 10 commands). Goal >= 300/s on SQLite.
2. a 3-step process (accept -> amount > 5000 ? finance approval : handle -> end): Docket
   beside SpiffWorkflow 3 persisted to SQLite after each step (deserialize -> run the task ->
   serialize -> UPDATE, one transaction per step, WAL + synchronous=NORMAL like Docket), same
   instances, half of them above 5000. Goal: Docket >= 10x SpiffWorkflow.

Run: .venv/bin/python bench/bench_flows.py [--postal N] [--three N] [--pg URL | --no-pg] [--profile]
[--statements] [--floor] [--pg-processes 1,2,4]

`--floor` measures what SQLite alone needs for what Docket writes: every statement of N instances
is recorded with its parameters at the driver, then replayed in order with raw sqlite3 on a copy
of the database as it was before them (same pragmas, same transactions, no Python between
statements). No engine that persists the same rows can run faster than that on this disk.
(SpiffWorkflow comes with the `bench` extra: pip install -e '.[bench]'.)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import pstats
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.clock import ManualClock  # noqa: E402
from web.system import System, boot  # noqa: E402

POSTAL = ROOT / "definitions" / "postal_complaints"
THREE = ROOT / "bench" / "workloads" / "three_step"
START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
DELAY = {
    "customer_name": "华中物流客户", "contact_name": "刘女士", "contact_phone": "027-88886666",
    "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late", "description": "延误三天",
}
DAMAGE = {**DELAY, "category": "damage_goods", "description": "设备破损", "amount_claimed": "8000"}
PG_SCHEMA = "bench_flows"
SERIAL = itertools.count()
"""Instance numbers, unique across runs: a customer name repeated 3 times in 30 days would make
the repeat-customer rule raise the level."""


# -- Docket --------------------------------------------------------------------------------------
def open_task(system: System, form: str, record_id: int, node: str) -> int:
    for task in system.flows.open_tasks(form, record_id):
        if task["node"] == node:
            return int(task["id"])
    raise AssertionError(f"{form} {record_id}: no open task at {node}")


def postal_instance(system: System, i: int) -> int:
    """One complaint from submission to closure; returns the number of commands."""
    damage = i % 3 == 2
    flows = system.flows
    values = {**(DAMAGE if damage else DELAY), "customer_name": f"客户{i:06d}"}  # no repeat-customer rule
    record_id = system.forms.submit("complaint", values, actor="accounts").record_id
    steps: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]] = [
        ("accept", "agent", {"urgency": "normal"}, {}),
        ("marketing_review", "marketing", {"marketing_assessment": "影响续约"}, {}),
        ("operations_review", "operations", {"operations_finding": "中转延误"}, {}),
    ]
    if damage:
        steps.append(("finance_review", "finance", {"finance_assessment": "保价内"}, {}))
        steps.append(("manager_review", "manager", {"review_opinion": "同意"}, {}))
    steps.append(("propose", "agent", {"compensation": "8000" if damage else "300"}, {}))
    if damage:
        steps.append(("director_approval", "director", None, {"outcome": "approve"}))
    steps += [("reply", "agent", {"resolution": "已赔付"}, {}),
              ("confirm", "agent", {"customer_confirmed": True, "satisfaction": 5}, {})]
    # Every open task of a record is read once, then completed: what an inbox client does.
    for node, user, values, extra in steps:
        flows.complete(open_task(system, "complaint", record_id, node), user, values=values, **extra)
    state = flows.instances("complaint", record_id)[-1]
    assert state["outcome"] == "resolved", state
    return 1 + len(steps)


def three_step_instance(system: System, i: int) -> int:
    amount = 8000 if i % 2 else 1200
    flows = system.flows
    record_id = system.forms.submit("claim", {"customer": f"c{i}", "amount": str(amount)}, actor="agent").record_id
    (task,) = flows.open_tasks("claim", record_id)
    flows.complete(task["id"], "agent")
    (task,) = flows.open_tasks("claim", record_id)
    if amount > 5000:
        flows.complete(task["id"], "finance", outcome="approve")
    else:
        flows.complete(task["id"], "agent")
    return 3


def rate(system: System, instance: Callable[[System, int], int], n: int, warm: int = 20) -> tuple[float, float]:
    """(instances/s, commands/s) over `n` instances after `warm` unmeasured ones."""
    for _ in range(warm):
        instance(system, next(SERIAL))
    commands = 0
    t = time.perf_counter()
    for _ in range(n):
        commands += instance(system, next(SERIAL))
    elapsed = time.perf_counter() - t
    return n / elapsed, commands / elapsed


# -- SpiffWorkflow ---------------------------------------------------------------------------
class SpiffPeer:
    """The same 3-step process in SpiffWorkflow, its JSON in SQLite after every step."""

    def __init__(self, db_path: Path):
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer

        parser = BpmnParser()
        parser.add_bpmn_file(str(THREE / "claim.bpmn"))
        self.spec = parser.get_spec("claim")
        self.serializer = BpmnWorkflowSerializer()
        self.db = sqlite3.connect(db_path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS workflow (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")

    def step(self, workflow_id: int, data: dict[str, Any]) -> str | None:
        """Load, complete the ready user task, store; returns the task's name."""
        from SpiffWorkflow.util.task import TaskState

        self.db.execute("BEGIN IMMEDIATE")
        (state,) = self.db.execute("SELECT state FROM workflow WHERE id = ?", (workflow_id,)).fetchone()
        wf = self.serializer.deserialize_json(state)
        task = wf.get_next_task(state=TaskState.READY, manual=True)
        name = task.task_spec.name
        task.data.update(data)
        task.run()
        wf.do_engine_steps()
        self.db.execute("UPDATE workflow SET state = ? WHERE id = ?", (self.serializer.serialize_json(wf), workflow_id))
        self.db.execute("COMMIT")
        return name

    def instance(self, i: int) -> int:
        from SpiffWorkflow.bpmn import BpmnWorkflow

        amount = 8000 if i % 2 else 1200
        wf = BpmnWorkflow(self.spec)
        wf.do_engine_steps()
        self.db.execute("BEGIN IMMEDIATE")
        workflow_id = self.db.execute("INSERT INTO workflow (state) VALUES (?)",
                                      (self.serializer.serialize_json(wf),)).lastrowid
        self.db.execute("COMMIT")
        assert self.step(workflow_id, {"amount": amount}) == "accept"
        second = self.step(workflow_id, {"approved": True})
        assert second == ("finance_approval" if amount > 5000 else "handle"), second
        return 3

    def rate(self, n: int, warm: int = 20) -> float:
        for i in range(warm):
            self.instance(i)
        t = time.perf_counter()
        for i in range(warm, warm + n):
            self.instance(i)
        return n / (time.perf_counter() - t)


# -- databases ---------------------------------------------------------------------------------
def sqlite_system(bundle: Path, folder: Path) -> System:
    folder.mkdir(parents=True, exist_ok=True)
    return boot(bundle, db_url=f"sqlite:///{folder / 'docket.db'}", clock=ManualClock(START))


def pg_system(bundle: Path, url: str, *, fresh: bool = True) -> System:
    """The bundle on PostgreSQL in the benchmark's schema (`fresh`: dropped and made anew)."""
    import psycopg
    import sqlalchemy as sa

    if fresh:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
            con.execute(f"CREATE SCHEMA {PG_SCHEMA}")
    engine_url = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={PG_SCHEMA}"})
    return boot(bundle, db_url=engine_url.render_as_string(hide_password=False), clock=ManualClock(START))


def _pg_worker(job: tuple[str, int, int, Any, Any]) -> tuple[int, float]:
    """One process of `pg_processes`: its own system on the shared schema, `n` postal instances
    once every process is ready."""
    url, index, n, ready, go = job
    global SERIAL
    SERIAL = itertools.count(1_000_000 * (index + 1))  # customer names unique across processes
    system = pg_system(POSTAL, url, fresh=False)
    for _ in range(3):  # warm up
        postal_instance(system, next(SERIAL))
    ready.put(index)
    go.wait()
    t = time.perf_counter()
    for _ in range(n):
        postal_instance(system, next(SERIAL))
    return n, time.perf_counter() - t


def pg_processes(url: str, processes: int, n: int) -> float:
    """Postal instances/s with `processes` processes on one PostgreSQL database at once (the
    scale path: several `docket serve` workers), each running `n` instances."""
    import multiprocessing

    pg_system(POSTAL, url).db.dispose()  # a fresh schema, migrated once
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        ready, go = manager.Queue(), manager.Event()
        with context.Pool(processes) as pool:
            pending = pool.map_async(_pg_worker, [(url, i, n, ready, go) for i in range(processes)])
            for _ in range(processes):  # every process booted and warmed up before the clock starts
                ready.get(timeout=300)
            t = time.perf_counter()
            go.set()
            done = pending.get()
            wall = time.perf_counter() - t
    return sum(k for k, _ in done) / wall


def drop_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")


def profile(system: System, instance: Callable[[System, int], int], n: int, top: int = 18) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        instance(system, next(SERIAL))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _run_listening(system: System, name: str, listener: Callable[..., None],
                   instance: Callable[[System, int], int], n: int) -> None:
    """Run `n` instances with `listener` on the engine's `name` event (for the connections made
    meanwhile), then drop those connections."""
    from sqlalchemy import event

    event.listen(system.db, name, listener)
    try:
        for _ in range(n):
            instance(system, next(SERIAL))
    finally:
        event.remove(system.db, name, listener)
        system.db.dispose()


def statements(system: System, instance: Callable[[System, int], int], n: int) -> str:
    """SQL statements per instance by kind, as SQLite's driver runs them (a trace callback on
    every connection, so the prepared statements run on the raw cursor are counted too)."""
    from collections import Counter

    seen: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(seen.append)

    system.db.dispose()  # every connection from here on reports
    _run_listening(system, "connect", trace, instance, n)

    def kind(sql: str) -> str:
        word = sql.lstrip().split(None, 1)[0].upper()
        return "SAVEPOINT" if word in ("RELEASE", "SAVEPOINT") or sql.upper().startswith("ROLLBACK TO") else word

    counts = Counter(kind(sql) for sql in seen)
    detail = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(counts.items()))
    return f"{len(seen) / n:.2f} statements per instance ({detail})"


class _RecordingCursor(sqlite3.Cursor):
    """A driver cursor that writes down each statement, its parameters and whether it failed
    (for `sqlite_floor`: a statement that failed here, inside a savepoint Docket rolled back to,
    must fail the same way in the replay)."""

    log: list[tuple[str, Any, bool]]

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        entry = [sql, parameters, True]
        self.log.append(entry)  # type: ignore[arg-type]
        result = super().execute(sql, parameters)
        entry[2] = False
        return result

    def executemany(self, sql: str, seq: Any, /) -> Any:
        seq = list(seq)
        entry = [sql, ("many", seq), True]
        self.log.append(entry)  # type: ignore[arg-type]
        result = super().executemany(sql, seq)
        entry[2] = False
        return result


def _recording_connection(log: list[Any]) -> type[sqlite3.Connection]:
    cursor_class = type("Cursor", (_RecordingCursor,), {"log": log})

    class RecordingConnection(sqlite3.Connection):
        def cursor(self, factory: Any = cursor_class) -> Any:  # type: ignore[override]
            return super().cursor(factory)

        def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
            return self.cursor().execute(sql, parameters)

        def commit(self) -> None:
            if self.in_transaction:
                log.append(["COMMIT", (), False])
            super().commit()

        def rollback(self) -> None:
            if self.in_transaction:
                log.append(["ROLLBACK", (), False])
            super().rollback()

    return RecordingConnection


def sqlite_floor(bundle: Path, instance: Callable[[System, int], int], n: int, folder: Path) -> tuple[float, str]:
    """SQLite's own time per instance (seconds) for the statements of `n` instances, replayed
    without Docket, and a line describing them. (Docket itself is slower while recording: the
    recording cursor is Python; its rate comes from the timed runs.)"""
    import shutil

    system = sqlite_system(bundle, folder)
    for _ in range(20):
        instance(system, next(SERIAL))
    system.db.dispose()
    database = folder / "docket.db"
    with sqlite3.connect(database) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(database, folder / "before.db")
    log: list[Any] = []
    factory = _recording_connection(log)

    def recording(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["factory"] = factory

    _run_listening(system, "do_connect", recording, instance, n)
    # PRAGMAs of new connections are set below; everything else is replayed as it ran.
    work = [entry for entry in log if not entry[0].lstrip().upper().startswith("PRAGMA")]
    replay = sqlite3.connect(folder / "before.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "wal_autocheckpoint=0"):
        replay.execute(f"PRAGMA {pragma}")
    cursor = replay.cursor()
    commits = sum(1 for entry in work if entry[0] == "COMMIT")
    t = time.perf_counter()
    for sql, params, failed in work:
        try:
            if isinstance(params, tuple) and params[:1] == ("many",):
                cursor.executemany(sql, params[1])
            else:
                cursor.execute(sql, params)
        except sqlite3.Error:
            if not failed:
                raise
    floor = (time.perf_counter() - t) / n
    written = _pages_written(folder / "before.db-wal", replay)
    replay.close()
    frames = sum(written.values())
    top = ", ".join(f"{name} {count / commits:.1f}" for name, count in written.most_common(8))
    return floor, (f"{len(work) / n:.1f} statements and {commits / n:.1f} commits per instance "
                   f"({frames / commits:.1f} pages written per commit: {top}), replayed with raw "
                   f"sqlite3: {floor * 1e6:,.0f} us per instance, at most {1 / floor:,.0f} instances/s")


def _pages_written(wal: Path, con: sqlite3.Connection) -> Any:
    """How many pages each table or index wrote to the WAL (frames: a 24-byte header whose first
    4 bytes are the page number, then the page), by the b-tree owning the page (dbstat)."""
    import struct
    from collections import Counter

    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    pages = [struct.unpack(">I", data[at:at + 4])[0] for at in range(32, len(data) - 23, 24 + page_size)]
    try:
        owner = dict(con.execute("SELECT pageno, name FROM dbstat"))
    except sqlite3.Error:  # SQLite built without the dbstat table
        owner = {}
    return Counter(owner.get(page, "other") for page in pages)


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median run (by instances/s) of several."""
    return sorted(runs)[len(runs) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postal", type=int, default=300, help="postal instances per measured run")
    parser.add_argument("--three", type=int, default=500, help="3-step instances per measured run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print where the time goes (SQLite)")
    parser.add_argument("--statements", action="store_true",
                        help="print SQL statements per instance by kind (SQLite), after the timed runs")
    parser.add_argument("--floor", action="store_true",
                        help="replay Docket's statements with raw sqlite3: SQLite's own share (see above)")
    parser.add_argument("--pg-processes", default="",
                        help="also run the postal flow from several processes at once on PostgreSQL, "
                             "e.g. 1,2,4 (40 instances each)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        postal = sqlite_system(POSTAL, folder / "postal")
        results["postal_sqlite"] = best([rate(postal, postal_instance, args.postal) for _ in range(args.runs)])
        three = sqlite_system(THREE, folder / "three")
        results["three_sqlite"] = best([rate(three, three_step_instance, args.three) for _ in range(args.runs)])
        spiff = SpiffPeer(folder / "spiff.db")
        results["spiff_sqlite"] = sorted(spiff.rate(args.three) for _ in range(args.runs))[args.runs // 2]
        if args.profile:
            print(profile(postal, postal_instance, 100))
            print(profile(three, three_step_instance, 300))
        if args.statements:
            print("postal flow:", statements(postal, postal_instance, 30))
            print("3-step:", statements(three, three_step_instance, 100))
        if args.floor:
            results["floor_postal"], line = sqlite_floor(POSTAL, postal_instance, 100, folder / "floor_postal")
            print("SQLite floor, postal flow:", line)
            results["floor_three"], line = sqlite_floor(THREE, three_step_instance, 500, folder / "floor_three")
            print("SQLite floor, 3-step:", line)
    if not args.no_pg:
        try:
            results["postal_pg"] = best([rate(pg_system(POSTAL, args.pg), postal_instance, args.postal)
                                         for _ in range(1)])
            results["three_pg"] = best([rate(pg_system(THREE, args.pg), three_step_instance, args.three)
                                        for _ in range(1)])
            for count in [int(c) for c in args.pg_processes.split(",") if c.strip()]:
                results[f"postal_pg_x{count}"] = (pg_processes(args.pg, count, 40), None)
        finally:
            drop_pg(args.pg)
    print("| workload | database | instances/s | commands/s |")
    print("| --- | --- | ---: | ---: |")
    for key, label in (("postal_sqlite", "postal flow, full (7-10 commands)"), ("postal_pg", "postal flow, full"),
                       ("three_sqlite", "3-step, Docket"), ("three_pg", "3-step, Docket")):
        if key in results:
            db = "SQLite" if key.endswith("sqlite") else "PostgreSQL"
            inst, cmds = results[key]
            print(f"| {label} | {db} | {inst:,.0f} | {cmds:,.0f} |")
    for key in [k for k in results if k.startswith("postal_pg_x")]:
        print(f"| postal flow, {key[len('postal_pg_x'):]} processes at once | PostgreSQL | {results[key][0]:,.0f} | |")
    spiff_rate = results["spiff_sqlite"]
    print(f"| 3-step, SpiffWorkflow + JSON in SQLite per step | SQLite | {spiff_rate:,.0f} | {3 * spiff_rate:,.0f} |")
    ratio = results["three_sqlite"][0] / spiff_rate
    print(f"\nDocket / SpiffWorkflow (3-step, SQLite): {ratio:.2f}x (goal >= 10x)")
    print(f"postal flow on SQLite: {results['postal_sqlite'][0]:.0f} instances/s (goal >= 300/s)")
    if "floor_three" in results:
        print(f"SQLite alone, Docket's statements: 3-step at most {1 / results['floor_three']:,.0f}/s = "
              f"{1 / results['floor_three'] / spiff_rate:.1f}x the peer; postal flow at most "
              f"{1 / results['floor_postal']:,.0f}/s (Docket's Python excluded)")
    print(json.dumps({k: v for k, v in results.items()}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
