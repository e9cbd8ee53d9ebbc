"""When a plugin's code fails while the web application answers, the user gets a plain 500 with
a reference (docs/plugins.md, "When a plugin is broken") and the log line of that reference names
the plugin, so whoever reads it knows whose bug it is."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.clock import ManualClock
from tests.plugins.conftest import InstallPlugin
from tests.plugins.test_plugin_failures_cli import RAISES_AT_RUN, bundle_using
from tests.web.api_kit import bearer, token_for
from web.app import create_app
from web.system import boot

REFUND = {"customer": "Li", "phone": "13812345678", "amount": "120.00"}


@pytest.fixture
def client(install_plugin: InstallPlugin, tmp_path: Path) -> TestClient:
    """The test bundle's refund form, public, whose flow's first step is a plugin node type
    that opens a task for `agent` and raises ValueError when it is completed."""
    bundle = bundle_using(install_plugin, tmp_path, "docket-failing", RAISES_AT_RUN, "failing_audit", agent=True)
    form = bundle / "forms" / "refund.yaml"
    form.write_text(form.read_text("utf-8").replace("form: refund\n", "form: refund\npublic: true\n"), "utf-8")
    system = boot(bundle, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    return TestClient(create_app(system, secret="test-secret"), raise_server_exceptions=False)


def test_the_log_of_an_unhandled_error_names_the_plugin(client: TestClient,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    assert client.post("/api/v1/forms/refund/records", json=REFUND).status_code == 201
    system = client.app.state.system  # type: ignore[attr-defined]
    (task,) = system.flows.open_tasks("refund", 1)
    headers = bearer(token_for(system, "agent"))
    with caplog.at_level(logging.ERROR, logger="web.app"):
        answer = client.post(f"/api/v1/tasks/{task['id']}/complete", json={}, headers=headers)
    assert answer.status_code == 500
    (record,) = [r for r in caplog.records if r.name == "web.app"]
    assert record.getMessage().endswith(f"on POST /api/v1/tasks/{task['id']}/complete: a bug in the plugin docket-failing")
    assert record.exc_info is not None and "the audit quota table is empty" in str(record.exc_info[1])
