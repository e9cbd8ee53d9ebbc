"""Property-based run of the whole API against its own OpenAPI document: no server errors.

Schemathesis generates requests from /api/v1/openapi.json (valid ones and, in negative mode,
ones that break the schema) and sends them to the ASGI app over a database seeded with
complaints, open tasks and an administrator's API token. The only check is
`not_a_server_error`: whatever a client sends, the answer is never a 5xx (issue 8, Done when).
Examples per operation are few and derandomized, so the run is repeatable and takes well
under a minute.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from engine.clock import ManualClock
from engine.storage.db import transaction
from web.app import create_app
from web.system import System, boot
from web.tokens import create_token

POSTAL = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 5}
SLOW_OPERATIONS = {"POST /api/v1/definitions/validate": 2, "POST /api/v1/definitions/reload": 2,
                   "POST /api/v1/uploads": 3}
"""Operations that re-read the bundle folder, or store and sniff a file: a few examples say enough."""
REPORT_EXAMPLES = 2
"""Each dashboard widget has its own two paths (dozens in all) running the same code: a few each."""
COMPLAINT = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late",
    "description": "十票快件超时三天", "region": "east",
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[System, str]]:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    path = tmp_path_factory.mktemp("schemathesis") / "docket.db"
    system = boot(POSTAL, db_url=f"sqlite:///{path}", clock=clock)
    for i in range(3):
        system.forms.submit("complaint", {**COMPLAINT, "description": f"投诉 {i}"}, actor="agent",
                            channel="api")
    with transaction(system.db) as conn:
        token, _ = create_token(conn, "admin", "schemathesis", now=clock.now())
    yield system, token
    system.db.dispose()


def test_no_request_makes_the_api_fail_with_a_server_error(seeded: tuple[System, str]) -> None:
    system, token = seeded
    app = create_app(system, secret="test-secret")
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=headers)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        for mode, count in EXAMPLES.items():
            examples = min(count, SLOW_OPERATIONS.get(label, count))
            if operation.path.startswith("/api/v1/reports/"):
                examples = min(examples, REPORT_EXAMPLES)

            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                response = case.call(headers=headers)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to break in an operation without input
            except Exception as exc:  # noqa: BLE001 - collect every failing operation, then report
                failures.append(f"{label} ({mode.value}): {str(exc)[:2000]}")
    assert failures == [], "\n\n".join(failures)
