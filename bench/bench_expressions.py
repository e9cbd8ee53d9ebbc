"""Benchmark: Docket's expression compiler against simpleeval, and the cost of refusing hostile input.

Measures, in one process:
- (a) compile time (pre-scan + parse + allow-list check + closure build) per realistic expression;
- (b) evaluations per second of Docket's compiled `Expression` versus simpleeval's
  `EvalWithCompoundTypes` evaluating the same pre-parsed AST (`previously_parsed`), same names;
  values are checked to be equal before timing;
- (c) how long each hostile input of RELIABILITY tests 3 and 4 takes to be refused.

Run: .venv/bin/python bench/bench_expressions.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.errors import ExpressionError  # noqa: E402
from engine.expr import EvalContext, Scope, check_expression, compile_expression, register  # noqa: E402
from engine.expr.reference import reference_evaluator  # noqa: E402
from engine.registry import Registry  # noqa: E402

NAMES: dict[str, Any] = {
    "amount": 1234.5, "category": "refund", "description": "Parcel arrived damaged, box crushed",
    "urgent": False, "count": 4, "score": 3.5, "record": {"amount": 800.0, "status": "open"},
    "user": {"username": "wang"}, "roles": ["agent", "admin"],
    "created": datetime(2026, 1, 7, 1, 30, tzinfo=timezone.utc),
}
SCOPE = Scope(frozenset(NAMES))
CTX = EvalContext(now=datetime(2026, 1, 9, 2, 0, tzinfo=timezone.utc))

SHARED = [
    "amount > 1000 and category == 'refund'",
    "amount * 1.13 if category in ['repair', 'refund'] else amount",
    "len(description) > 20 or urgent",
    "record['amount'] >= 500 and record['status'] != 'closed'",
    "count * 2 + 1 > 10",
    "max(amount, 100) - min(count, 5)",
    "category.lower().startswith('re')",
    "not urgent and (score > 3 or category == 'vip')",
    "round(amount / 3, 2)",
    "user['username'] == 'wang' or 'admin' in roles",
    "1 < count < 10",
]
"""Expressions both evaluators accept (simpleeval's allow-list refuses `record.amount` on dicts)."""

DOCKET_ONLY = [
    "record.amount >= 500 and user.username == 'wang'",
    "now() - created > 24h",
]

HOSTILE: list[tuple[str, str]] = [
    ("9**9**9", "9**9**9"),
    ("10**10**10", "10**10**10"),
    ("1<<10**7", "1<<10**7"),
    ("2**4000 * 2**4000", "2**4000 * 2**4000"),
    ("'a'.ljust(10**9)", "'a'.ljust(10**9)"),
    ("'%099999999d' % 1", "'%099999999d' % 1"),
    ("5000 nested parentheses", "(" * 5000 + "1" + ")" * 5000),
    ("'not '*10000 + '1'", "not " * 10000 + "1"),
    ("50,000 chained +", "+".join(["1"] * 50000)),
    ("100 KB of text", "x" * 100_000),
    ("count ** 9**9 (a field: refused when evaluated)", "count ** 9**9"),
    ("description * 10**9 (a field)", "description * 10**9"),
    ("31 nested brackets (under the cap)", "[" * 31 + "1" + "]" * 31),
    ("200 operators (at the cap)", "+".join(["1"] * 40) + " > 0 and " + " + ".join(["1"] * 150)),
]


def best_per_call(fn: Callable[[], Any], calls: int, runs: int) -> float:
    """Best (lowest) seconds per call over `runs` batches of `calls` calls."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def machine() -> str:
    return (f"{platform.platform()}; Python {platform.python_version()} "
            f"({platform.python_implementation()}); {os.cpu_count()} CPUs; {platform.processor() or platform.machine()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    registry = Registry()
    register(registry)
    functions = registry.functions

    print(f"Machine: {machine()}\n")

    print("## (a) Compile time (check + compile, once at bundle load)\n")
    print("| expression | compile µs |")
    print("| --- | ---: |")
    for source in SHARED + DOCKET_ONLY:
        seconds = best_per_call(lambda s=source: compile_expression(s, scope=SCOPE, functions=functions),
                                200, args.runs)
        print(f"| `{source}` | {seconds * 1e6:.1f} |")

    print("\n## (b) Evaluations per second: Docket compiled closures vs simpleeval (previously_parsed)\n")
    print("| expression | Docket evals/s | simpleeval evals/s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    ratios = []
    for source in SHARED:
        expr = compile_expression(source, scope=SCOPE, functions=functions)
        peer = reference_evaluator(NAMES)
        parsed = peer.parse(source)
        ours, theirs = expr.evaluate(NAMES, CTX), peer.eval(source, previously_parsed=parsed)
        assert ours == theirs, (source, ours, theirs)
        docket = best_per_call(lambda e=expr: e.evaluate(NAMES, CTX), 20_000, args.runs)
        simple = best_per_call(lambda p=peer, s=source, t=parsed: p.eval(s, previously_parsed=t),
                               20_000, args.runs)
        ratios.append(simple / docket)
        print(f"| `{source}` | {1 / docket:,.0f} | {1 / simple:,.0f} | {simple / docket:.1f}x |")
    print(f"\nGeometric mean speed-up: {statistics.geometric_mean(ratios):.1f}x")

    print("\n## (c) Time to refuse hostile input (RELIABILITY 3 and 4)\n")
    print("| input | refused at | ms | message |")
    print("| --- | --- | ---: | --- |")
    for label, source in HOSTILE:
        start = time.perf_counter()
        stage, message = "accepted", ""
        diags = check_expression(source, scope=SCOPE, functions=functions)
        if diags:
            stage, message = "load", diags[0].message
        else:
            try:
                compile_expression(source, scope=SCOPE, functions=functions).evaluate(NAMES, CTX)
            except ExpressionError as exc:
                stage, message = "evaluation", exc.message.split(": ", 1)[-1]
        elapsed = (time.perf_counter() - start) * 1000
        print(f"| {label} | {stage} | {elapsed:.2f} | {message[:70]} |")


if __name__ == "__main__":
    main()
