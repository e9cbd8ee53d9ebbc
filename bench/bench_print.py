"""Benchmark: analyst templates and the printed reply letter (issue 7 item 6, RELIABILITY 12).

1. A small notification body rendered N times: Docket's sandbox (bounded operators, output cap,
   watchdog) against plain `jinja2.Environment` and `ImmutableSandboxedEnvironment`: the price of
   the guards per render.
2. The postal reply letter for one complaint: compile, render the HTML, HTML -> PDF (WeasyPrint),
   the first PDF of the process (imports and font loading) apart from the steady state.
3. RELIABILITY 12: how long each bomb takes to be stopped.

Run: .venv/bin/python bench/bench_print.py [--renders 2000] [--pdfs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jinja2 import Environment  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

from engine.clock import ManualClock  # noqa: E402
from engine.templating import TemplateRenderError, compile_template  # noqa: E402

BODY = ("{{ customer }}，您好：您的投诉（查询编号 {{ query_no }}）{{ status }}。"
        "{% for w in waybills %}运单 {{ w }}；{% endfor %}赔偿 {{ amount }} 元。")
CONTEXT = {"customer": "华东电子商务有限公司", "query_no": "TS2026112300001", "status": "已解决",
           "waybills": ["EK123456789CN", "EK987654321CN"], "amount": 5200}
BOMBS = {
    "lipsum(10**6)": "{{ lipsum(10**6) }}",
    "nested loops 10^4 x 10^4, no output": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "nested loops 10^4 x 10^4, printing": "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
    "recursive macro": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
    "'a' * 10**9": "{{ 'a' * 10**9 }}",
    "'a'|center(10**9)": "{{ 'a'|center(10**9) }}",
    "9 ** (9 ** 9)": "{{ 9 ** (9 ** 9) }}",
    "'%0300000000d' % 1": "{{ '%0300000000d' % 1 }}",
}


def per_call_us(fn, n: int) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--pdfs", type=int, default=10)
    args = parser.parse_args()

    print("## 1. a notification body, per render")
    docket = compile_template(BODY, name="body.txt", html=False)
    plain = Environment().from_string(BODY)
    sandbox = ImmutableSandboxedEnvironment().from_string(BODY)
    assert docket.render(CONTEXT) == plain.render(CONTEXT) == sandbox.render(CONTEXT)
    rows = [("plain jinja2.Environment", per_call_us(lambda: plain.render(CONTEXT), args.renders)),
            ("jinja2 ImmutableSandboxedEnvironment", per_call_us(lambda: sandbox.render(CONTEXT), args.renders)),
            ("Docket compile_template (sandbox + guards + watchdog)",
             per_call_us(lambda: docket.render(CONTEXT), args.renders))]
    for name, us in rows:
        print(f"| {name} | {us:.1f} |")
    print(f"Docket / plain = {rows[2][1] / rows[0][1]:.1f}x, Docket / sandbox = {rows[2][1] / rows[1][1]:.1f}x")

    print("## 2. the reply letter")
    from reports.print import PrintService
    from reports.print.render import compile_print_template
    from tests.reports.print_kit import BASE_URL, LETTER, NOW, POSTAL
    from web.system import boot

    with tempfile.TemporaryDirectory() as tmp:
        system = boot(POSTAL, db_url=f"sqlite:///{Path(tmp) / 'd.db'}", clock=ManualClock(NOW))
        record_id = system.forms.submit("complaint", LETTER, actor="agent1").record_id
        service = PrintService.of(system.runtime)
        spec = service.spec("reply_letter")
        compile_ms = per_call_us(lambda: compile_print_template(spec, system.bundle, check_fields=True), 20) / 1000
        html_ms = per_call_us(lambda: service.render_html("reply_letter", "complaint", record_id, "zh-CN",
                                                          base_url=BASE_URL), 50) / 1000
        printed = service.render_html("reply_letter", "complaint", record_id, "zh-CN", base_url=BASE_URL)
        start = time.perf_counter()
        first = service.to_pdf(printed)
        first_ms = (time.perf_counter() - start) * 1000
        times = []
        for _ in range(args.pdfs):
            start = time.perf_counter()
            service.to_pdf(printed)
            times.append((time.perf_counter() - start) * 1000)
        print(f"| compile + check the letter's template | {compile_ms:.1f} ms |")
        print(f"| render the letter's HTML (record read included) | {html_ms:.1f} ms |")
        print(f"| first PDF of the process (WeasyPrint import, fonts) | {first_ms:.0f} ms |")
        print(f"| PDF, steady state (median of {args.pdfs}) | {statistics.median(times):.0f} ms |")
        print(f"| PDF size | {len(first) / 1024:.0f} KiB |")
        system.db.dispose()

    print("## 3. RELIABILITY 12: time to stop")
    for name, source in BOMBS.items():
        template = compile_template(source, name="bomb.html", html=True)
        start = time.perf_counter()
        try:
            template.render({})
            outcome = "rendered?!"
        except TemplateRenderError as exc:
            outcome = exc.message.split(";")[0][:70]
        print(f"| `{name}` | {(time.perf_counter() - start) * 1000:.0f} ms | {outcome} |")
    print(f"machine: {sys.platform}, python {sys.version.split()[0]}, {datetime.now(timezone.utc):%Y-%m-%d}")


if __name__ == "__main__":
    main()
