"""API costs and RELIABILITY 49: form floods refused, token-authenticated reads and writes.

    .venv/bin/python bench/bench_api.py [--requests 200]

In-process (the ASGI app driven directly, or through Starlette's TestClient), SQLite in a
temporary folder. Prints, per flood (100,000 multipart fields, one 50 MB text field, 100,000
urlencoded fields) and endpoint, the status, time, peak traced memory and bytes the server read;
then the median and p99 latency of API calls with a bearer token. Results go to
bench/RESULTS.md by hand.
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

from tests.web.api_kit import COMPLAINT, RECORDS, Api, boot_postal, client_of  # noqa: E402
from tests.web.test_api_form_limits import CASES, drive  # noqa: E402
from web.app import create_app  # noqa: E402


def floods() -> None:
    system = boot_postal(Path(tempfile.mkdtemp()))
    app = create_app(system, secret="bench")
    drive(app, "/track", CASES["urlencoded with 100,000 fields"][0], iter([b"warm=1"]))  # imports, first render
    print(f"{'endpoint':<14} {'body':<36} {'status':>6} {'ms':>7} {'peak MB':>8} {'read MB':>8}")
    for path in ("/f/complaint", "/track", "/signin"):
        for case, (content_type, body, _) in CASES.items():
            status, seconds, peak, consumed = drive(app, path, content_type, body())
            print(f"{path:<14} {case:<36} {status:>6} {seconds * 1000:>7.0f} {peak / 1e6:>8.2f} {consumed / 1e6:>8.2f}")


def latencies(count: int) -> None:
    system = boot_postal(Path(tempfile.mkdtemp()))
    client = client_of(system)
    agent = Api(client, system, "agent")
    runs: dict[str, list[float]] = {"POST records": [], "GET records (list)": [], "GET record": [],
                                    "GET tasks": []}
    ids = []
    for _ in range(count):
        started = time.perf_counter()
        ids.append(agent.post(RECORDS, json=COMPLAINT).json()["id"])
        runs["POST records"].append(time.perf_counter() - started)
    for name, url in (("GET records (list)", f"{RECORDS}?limit=50"), ("GET tasks", "/api/v1/tasks")):
        for _ in range(count // 4):
            started = time.perf_counter()
            assert agent.get(url).status_code == 200
            runs[name].append(time.perf_counter() - started)
    for record_id in ids:
        started = time.perf_counter()
        assert agent.get(f"{RECORDS}/{record_id}").status_code == 200
        runs["GET record"].append(time.perf_counter() - started)
    print(f"\n{'call (agent token)':<22} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in runs.items():
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"{name:<22} {len(values):>5} {statistics.median(values) * 1000:>8.1f} {p99 * 1000:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    floods()
    latencies(args.requests)


if __name__ == "__main__":
    main()
