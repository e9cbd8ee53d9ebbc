"""Benchmark: load and validate the postal bundle (goal: under 200 ms).

Measures, in one process and one run:
- cold: a fresh registry (JSON Schema validators built) + load + validate + compile;
- warm: the same with the registry reused (what `docket serve` pays on a definition reload);
- peer: PyYAML's `yaml.safe_load` of the same files (no positions, no checks), pure Python and
  with LibYAML's CSafeLoader when present: the floor of just parsing the YAML.

Run: .venv/bin/python bench/bench_load.py [BUNDLE] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.bundle import validate_bundle  # noqa: E402
from web.system import build_registry  # noqa: E402


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle", nargs="?", default=str(ROOT / "definitions" / "postal_complaints"))
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    root = Path(args.bundle)
    files = sorted(p for p in root.rglob("*.yaml"))
    texts = [p.read_bytes() for p in files]
    size = sum(len(t) for t in texts)

    def cold() -> None:
        bundle, diags = validate_bundle(root, build_registry(plugins=False))
        assert bundle is not None, diags

    registry = build_registry(plugins=False)
    validate_bundle(root, registry)  # builds and caches the validators

    def warm() -> None:
        bundle, diags = validate_bundle(root, registry)
        assert bundle is not None, diags

    def peer_pure() -> None:
        for text in texts:
            yaml.load(text, Loader=yaml.SafeLoader)

    results = {"docket cold (new registry)": timed(cold, args.runs),
               "docket warm (registry reused)": timed(warm, args.runs),
               "peer: yaml.safe_load (pure Python)": timed(peer_pure, args.runs)}
    if hasattr(yaml, "CSafeLoader"):
        results["peer: yaml CSafeLoader (LibYAML)"] = timed(
            lambda: [yaml.load(t, Loader=yaml.CSafeLoader) for t in texts], args.runs)

    print(f"machine: {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs")
    print(f"bundle: {root.name}, {len(files)} YAML files, {size:,} bytes; {args.runs} runs each\n")
    print("| what | median ms | p95 ms | min ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, samples in results.items():
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        print(f"| {name} | {statistics.median(samples):.1f} | {p95:.1f} | {samples[0]:.1f} |")
    warm_median = statistics.median(results["docket warm (registry reused)"])
    peer_median = statistics.median(results["peer: yaml.safe_load (pure Python)"])
    print(f"\nratio docket warm / yaml.safe_load: {warm_median / peer_median:.2f}x")


if __name__ == "__main__":
    main()
