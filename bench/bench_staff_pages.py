"""Benchmark: the staff pages (issue 8 item 1) with a busy inbox.

A help-desk bundle (tests/web/staff_kit.py) with N open tickets, every one a task offered to
the service department, so an agent's inbox holds all N (the worst case: a department that
stopped claiming). Each page is requested through Starlette's TestClient (in process: no
network, but the whole stack: session lookup, CSRF cookie, row-level scope, template) `repeat`
times after one warm-up; reports the median and the slowest, in milliseconds.

Run: .venv/bin/python bench/bench_staff_pages.py [--tickets 2000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.web.staff_kit import boot_helpdesk, client_for, submit  # noqa: E402

PAGES = (
    ("ann", "agent (department scope), whole inbox", "/inbox"),
    ("ann", "agent, inbox searched", "/inbox?q=Ticket%2019"),
    ("max", "manager (sees all), whole inbox", "/inbox"),
    ("ann", "record list, first page", "/records/ticket"),
    ("ann", "record list, search + tree filter, page 3", "/records/ticket?q=ticket&area=hardware&page=3"),
    ("ann", "record page (fields, timeline, diagram)", "/records/ticket/1000"),
    ("max", "CSV export of every ticket", "/records/ticket/export.csv"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        system = boot_helpdesk(Path(tmp))
        started = time.perf_counter()
        for i in range(args.tickets):
            submit(system, subject=f"Ticket {i}", area="printer" if i % 2 else "software")
        print(f"seeded {args.tickets} tickets in {time.perf_counter() - started:.1f} s")
        print("| page | median ms | max ms |\n| --- | ---: | ---: |")
        clients = {}
        for user, what, url in PAGES:
            client = clients.setdefault(user, client_for(system, user))
            assert client.get(url).status_code == 200, url
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
            print(f"| {what} | {statistics.median(times):.0f} | {max(times):.0f} |")
        system.db.dispose()


if __name__ == "__main__":
    main()
