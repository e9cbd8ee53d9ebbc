"""Report benchmark: the postal overview dashboard (all widgets) over N synthetic complaints.

In one run: Docket's report engine on SQLite (without and with covering indexes) and on
PostgreSQL (own schema), hand-written SQL on SQLite, and pandas from the same SQLite file (load
included and excluded); key numbers are checked to be identical across all of them.

    .venv/bin/python bench/bench_reports.py --rows 1000000 [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Rows are bulk-inserted (sqlite3 executemany, PostgreSQL COPY) straight into rec_complaint,
dk_report_facts and dk_report_verdicts, the tables the flows and the report engine write in
production. The resolution verdicts are synthetic (closed within 8, 12 or 15 hours by urgency,
about the SLA's working time): the benchmark measures what reading them costs.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.clock import ManualClock  # noqa: E402
from engine.identity import Principal  # noqa: E402
from web.system import boot  # noqa: E402

BUNDLE = ROOT / "definitions" / "postal_complaints"
START = datetime(2023, 1, 1, tzinfo=timezone.utc)
REGIONS = ["east", "south", "north", "central", "southwest", "northwest", "northeast"]
URGENCY = [("urgent", 10), ("important", 30), ("normal", 60)]
INDEXES = [
    # covering indexes for the overview's group-bys (ADR 0012): index-only scans
    "CREATE INDEX IF NOT EXISTS ix_bench_cat ON rec_complaint (category, created_at)",
    "CREATE INDEX IF NOT EXISTS ix_bench_region ON rec_complaint (region, created_at)",
    "CREATE INDEX IF NOT EXISTS ix_bench_customer ON rec_complaint (customer_name, created_at)",
    "CREATE INDEX IF NOT EXISTS ix_bench_created ON rec_complaint (created_at, category, region)",
]


def median_ms(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def generate(n: int, seed: int = 42) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """N complaints over two years (vectorised with numpy: a few seconds for a million)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    leaves = np.array(["pickup_missed", "pickup_late", "pickup_rude", "transport_late", "transport_stuck",
                       "damage_package", "damage_goods", "loss_whole", "loss_partial", "delivery_late",
                       "delivery_wrong", "delivery_rude", "fee_overcharge", "fee_invoice", "fee_settlement"])
    customers = np.array([f"客户{i:04d}" for i in range(2000)])
    weights = 1 / (np.arange(2000) + 1) ** 0.8
    stamps = np.sort(rng.integers(0, 730 * 86400, n))
    base = np.datetime64("2023-01-01T00:00:00", "s")

    def text(seconds: "np.ndarray") -> list[str]:
        values = np.datetime_as_string(base + seconds.astype("timedelta64[s]"), unit="s")
        return [v.replace("T", " ") + ".000000" for v in values.tolist()]

    created = text(stamps)
    closed_mask = rng.random(n) >= 0.1
    closed_s = stamps + (np.exp(rng.normal(3.5, 0.9, n)) * 3600).astype(np.int64)
    first_s = stamps + (rng.exponential(120, n) * 60).astype(np.int64)
    cust = customers[rng.choice(2000, n, p=weights / weights.sum())]
    urgency = np.array(["urgent", "important", "normal"])[rng.choice(3, n, p=[0.1, 0.3, 0.6])]
    region = np.array(REGIONS)[rng.integers(0, len(REGIONS), n)]
    category = leaves[rng.integers(0, len(leaves), n)]
    sat = rng.choice([1, 2, 3, 4, 5], n, p=[0.03, 0.05, 0.17, 0.40, 0.35])
    frame = pd.DataFrame({"c": cust, "t": stamps})
    gap = frame.groupby("c")["t"].diff()
    repeat = ((gap <= 30 * 86400) & gap.notna()).astype(int).tolist()
    closed_text = text(closed_s)
    first_text = text(first_s)
    ids = range(1, n + 1)
    records = [(i, f"TS{i:08d}", "closed" if c else "in_progress", t, t, "agent", 1, cu, r, ca, u, int(sa_) if c else None)
               for i, c, t, cu, r, ca, u, sa_ in zip(ids, closed_mask.tolist(), created, cust.tolist(), region.tolist(),
                                                       category.tolist(), urgency.tolist(), sat.tolist())]
    facts = [("complaint", i, f, ct if c else None, rp)
             for i, f, ct, c, rp in zip(ids, first_text, closed_text, closed_mask.tolist(), repeat)]
    allowed = np.select([urgency == "urgent", urgency == "important"], [8, 12], 15) * 3600
    met = ((closed_s - stamps) <= allowed).tolist()
    verdicts = [("complaint", i, "resolution", "met" if m else "missed")
                for i, c, m in zip(ids, closed_mask.tolist(), met) if c]
    return records, facts, verdicts


RECORD_COLUMNS = ("id, query_no, status, created_at, updated_at, created_by, version, customer_name, region, "
                  "category, urgency, satisfaction")


def load_sqlite(path: Path, records: list[tuple], facts: list[tuple], verdicts: list[tuple]) -> float:
    t = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    indexes = con.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rec_complaint' "
                          "AND sql IS NOT NULL").fetchall()
    for (sql,) in indexes:  # bulk loads are faster into a bare table; the indexes are rebuilt once
        con.execute("DROP INDEX " + sql.split()[2 if sql.split()[1] == "INDEX" else 3])
    con.executemany(f"INSERT INTO rec_complaint ({RECORD_COLUMNS}) VALUES ({','.join('?' * 12)})", records)
    con.executemany("INSERT INTO dk_report_facts (form, record_id, first_response_at, closed_at, is_repeat) "
                    "VALUES (?,?,?,?,?)", facts)
    con.executemany("INSERT INTO dk_report_verdicts (form, record_id, target, verdict) VALUES (?,?,?,?)", verdicts)
    for (sql,) in indexes:
        con.execute(sql)
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return time.perf_counter() - t


def engine_dashboard(system: Any) -> dict[str, Any]:
    reports = system.runtime.services["reports"]
    board = reports.dashboard("overview")
    out = {}
    for name, widget in board.widgets.items():
        out[name] = reports.run(board, widget, {}, Principal.system()).rows
    return out


def hand_sql(path: Path) -> dict[str, Any]:
    con = sqlite3.connect(path)
    q = con.execute
    out: dict[str, Any] = {}
    out["total"] = q("SELECT count(*) FROM rec_complaint").fetchone()[0]
    out["by_month"] = q("SELECT strftime('%Y-%m', created_at, '+480 minutes') m, count(*) FROM rec_complaint "
                        "GROUP BY m ORDER BY m").fetchall()
    out["top_types"] = q("SELECT category, count(*) c FROM rec_complaint GROUP BY category ORDER BY c DESC LIMIT 3").fetchall()
    out["key_accounts"] = q("SELECT customer_name, count(*) c FROM rec_complaint GROUP BY customer_name "
                            "ORDER BY c DESC, customer_name LIMIT 10").fetchall()
    out["regions"] = q("SELECT region, count(*) c FROM rec_complaint GROUP BY region ORDER BY c DESC").fetchall()
    out["closed_72h"] = q("SELECT avg(CASE WHEN (julianday(f.closed_at) - julianday(r.created_at)) * 24 <= 72 "
                          "THEN 1.0 ELSE 0 END) FROM rec_complaint r JOIN dk_report_facts f "
                          "ON f.form = 'complaint' AND f.record_id = r.id WHERE f.closed_at IS NOT NULL").fetchone()[0]
    out["satisfaction"] = q("SELECT avg(satisfaction) FROM rec_complaint").fetchone()[0]
    out["repeat"] = q("SELECT avg(is_repeat * 1.0) FROM dk_report_facts WHERE form = 'complaint'").fetchone()[0]
    out["by_week"] = q("SELECT strftime('%Y-%m-%d', created_at, '+480 minutes', 'weekday 0', '-6 days') w, count(*) "
                       "FROM rec_complaint GROUP BY w").fetchall()
    out["heat"] = q("SELECT region, category, count(*) FROM rec_complaint GROUP BY region, category").fetchall()
    con.close()
    return out


def pandas_load(path: Path) -> Any:
    import pandas as pd

    con = sqlite3.connect(path)
    frame = pd.read_sql_query(
        "SELECT r.created_at, r.customer_name, r.region, r.category, r.satisfaction, f.closed_at, f.is_repeat "
        "FROM rec_complaint r LEFT JOIN dk_report_facts f ON f.form = 'complaint' AND f.record_id = r.id",
        con, parse_dates=["created_at", "closed_at"])
    con.close()
    return frame


def pandas_dashboard(frame: Any) -> dict[str, Any]:
    local = frame["created_at"] + __import__("pandas").Timedelta(hours=8)
    out: dict[str, Any] = {}
    out["total"] = len(frame)
    out["by_month"] = local.dt.strftime("%Y-%m").value_counts().sort_index()
    counts = frame["category"].value_counts()
    out["top_types"] = counts.head(3)
    out["key_accounts"] = frame["customer_name"].value_counts().head(10)
    out["regions"] = frame["region"].value_counts()
    closed = frame[frame["closed_at"].notna()]
    hours = (closed["closed_at"] - closed["created_at"]).dt.total_seconds() / 3600
    out["closed_72h"] = float((hours <= 72).mean())
    out["satisfaction"] = float(frame["satisfaction"].mean())
    out["repeat"] = float(frame["is_repeat"].mean())
    week = (local.dt.normalize() - __import__("pandas").to_timedelta(local.dt.day_of_week, unit="D"))
    out["by_week"] = week.value_counts()
    out["heat"] = frame.groupby(["region", "category"]).size()
    return out


def check_same(engine: dict[str, Any], hand: dict[str, Any], pdres: dict[str, Any]) -> list[str]:
    problems = []
    total = engine["total"][0]["complaints"]
    if not (total == hand["total"] == pdres["total"]):
        problems.append(f"total {total} {hand['total']} {pdres['total']}")
    months = [(r["created.month"], r["complaints"]) for r in engine["by_month"]]
    if months != hand["by_month"] or months != list(pdres["by_month"].items()):
        problems.append("by_month differs")
    top = [(r["category"], r["complaints"]) for r in engine["top_types"]]
    if top != hand["top_types"] or [c for _, c in top] != list(pdres["top_types"].values):
        problems.append("top types differ")
    accounts = [r["complaints"] for r in engine["key_accounts"]]
    if accounts != [c for _, c in hand["key_accounts"]] or accounts != list(pdres["key_accounts"].values):
        problems.append("key accounts differ")
    for key, widget, measure in (("closed_72h", "closed_72h", "closed_72h_rate"), ("satisfaction", "satisfaction", "satisfaction"),
                                 ("repeat", "repeats", "repeat_rate")):
        mine = engine[widget][0][measure]
        if not (abs(mine - hand[key]) < 1e-9 and abs(mine - pdres[key]) < 1e-9):
            problems.append(f"{key}: {mine} {hand[key]} {pdres[key]}")
    if sum(r["complaints"] for r in engine["heat"]) != sum(c for _, _, c in hand["heat"]):
        problems.append("heat map differs")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    path = work / "docket.db"
    clock = ManualClock(datetime(2025, 1, 1, tzinfo=timezone.utc))
    t = time.perf_counter()
    records, facts, verdicts = generate(args.rows)
    print(f"generate {args.rows:,} rows: {time.perf_counter() - t:.1f} s")
    system = boot(BUNDLE, db_url=f"sqlite:///{path}", clock=clock)
    print(f"load SQLite (executemany, indexes rebuilt after): {load_sqlite(path, records, facts, verdicts):.1f} s")
    reports = system.runtime.services["reports"]
    board = reports.dashboard("overview")
    results: dict[str, float] = {}
    t = time.perf_counter()
    built = reports.rebuild_rollups()
    print(f"rebuild rollups {', '.join(built)}: {time.perf_counter() - t:.1f} s")
    ms, engine_res = median_ms(lambda: engine_dashboard(system), args.reps)
    results["Docket SQLite (maintained rollups)"] = ms
    per_widget = {}
    for name, widget in board.widgets.items():
        per_widget[name], found = median_ms(lambda w=widget: reports.run(board, w, {}, Principal.system()), 3)
        per_widget[name] = (per_widget[name], found.source or "records")

    t = time.perf_counter()
    con = sqlite3.connect(path)
    for statement in INDEXES:
        con.execute(statement)
    con.execute("ANALYZE")
    con.close()
    print(f"covering indexes + ANALYZE: {time.perf_counter() - t:.1f} s")
    system.db.dispose()
    keeper = system.runtime.services.pop("rollups")
    ms, scan_res = median_ms(lambda: engine_dashboard(system), 1)
    system.runtime.services["rollups"] = keeper
    results["Docket SQLite, records only (rollups off, covering indexes)"] = ms
    ms, hand = median_ms(lambda: hand_sql(path), 1)
    results["hand-written SQL, SQLite (10 queries, covering indexes)"] = ms
    t = time.perf_counter()
    frame = pandas_load(path)
    load_s = time.perf_counter() - t
    ms, pdres = median_ms(lambda: pandas_dashboard(frame), args.reps)
    results["pandas, loaded (excl. load)"] = ms
    results["pandas, incl. load"] = ms + load_s * 1000
    problems = check_same(engine_res, hand, pdres) + check_same(scan_res, hand, pdres)
    if rounded(engine_res) != rounded(scan_res):
        problems.append("rollups and records differ")

    if not args.no_pg:
        try:
            results["Docket PostgreSQL (maintained rollups)"] = bench_pg(args, records, facts, verdicts, clock, engine_res)
        except Exception as exc:  # PostgreSQL not running: say so, keep the SQLite numbers
            print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}")

    base = results["Docket SQLite (maintained rollups)"]
    print(f"\n| variant ({args.rows:,} complaints, overview: {len(board.widgets)} widgets) | ms | vs Docket SQLite |")
    print("|---|---:|---:|")
    for name, value in results.items():
        print(f"| {name} | {value:,.0f} | {value / base:.2f} |")
    print("\nper widget (SQLite, ms, source): " + ", ".join(f"{k} {v:.1f} ({src})" for k, (v, src) in per_widget.items()))
    print("identical numbers: " + ("yes" if not problems else "NO: " + "; ".join(problems)))
    return 0 if not problems else 1


def rounded(result: dict[str, Any]) -> dict[str, Any]:
    return {k: [{f: round(v, 9) if isinstance(v, float) else v for f, v in r.items()} for r in rows]
            for k, rows in result.items()}


def bench_pg(args: argparse.Namespace, records: list[tuple], facts: list[tuple], verdicts: list[tuple], clock: Any,
             expected: dict[str, Any]) -> float:
    import psycopg
    import sqlalchemy as sa

    schema = "bench_reports"
    url = args.pg
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        con.execute(f"CREATE SCHEMA {schema}")
    engine_url = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    system = boot(BUNDLE, db_url=engine_url.render_as_string(hide_password=False), clock=clock)
    t = time.perf_counter()
    with psycopg.connect(plain, options=f"-csearch_path={schema}") as con:
        with con.cursor() as cur:
            with cur.copy(f"COPY rec_complaint ({RECORD_COLUMNS}) FROM STDIN") as copy:
                for row in records:
                    copy.write_row([*row[:3], row[3] + "+00", row[4] + "+00", *row[5:]])
            with cur.copy("COPY dk_report_facts (form, record_id, first_response_at, closed_at, is_repeat) FROM STDIN") as copy:
                for row in facts:
                    copy.write_row([row[0], row[1], row[2] + "+00", (row[3] + "+00") if row[3] else None, row[4]])
            with cur.copy("COPY dk_report_verdicts (form, record_id, target, verdict) FROM STDIN") as copy:
                for row in verdicts:
                    copy.write_row(row)
            for statement in INDEXES:
                cur.execute(statement.replace("IF NOT EXISTS ", ""))
        con.commit()
        con.autocommit = True
        con.execute("VACUUM ANALYZE")
    print(f"load PostgreSQL (COPY + indexes + VACUUM ANALYZE): {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    system.runtime.services["reports"].rebuild_rollups()
    print(f"rebuild rollups (PostgreSQL): {time.perf_counter() - t:.1f} s")
    ms, result = median_ms(lambda: engine_dashboard(system), args.reps)
    same = rounded(result) == rounded(expected)
    print(f"PostgreSQL numbers identical to SQLite: {'yes' if same else 'NO'}")
    if not same:
        for key in expected:
            if rounded({key: result[key]}) != rounded({key: expected[key]}):
                print("  differs:", key, result[key][:3], expected[key][:3])
    with psycopg.connect(plain, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return ms


if __name__ == "__main__":
    raise SystemExit(main())
