"""Inbound webhooks: a signed payload from the 400 hotline becomes a complaint, once."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.bundle import validate_bundle
from engine.clock import ManualClock
from forms.inbound import PathError, follow, parse_path
from tests.web.api_kit import POSTAL, boot_postal, client  # noqa: F401 - fixture
from web.system import System, build_registry
from web.webhooks import sign

SECRET = "hotline-shared-secret"
URL = "/api/v1/webhooks/hotline"
CALL: dict[str, Any] = {
    "call": {"id": "C-20261123-0042", "started_at": "2026-11-23T09:30:00+08:00", "agent": "A12"},
    "caller": {"company": "华东电子商务有限公司", "name": "陈先生", "phone": "13812345678"},
    "ticket": {"category": "transport_late", "summary": "十票快件超时三天", "urgency": "urgent",
               "waybill": "SF1234567890"},
}


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> System:
    monkeypatch.setenv("DOCKET_HOTLINE_SECRET", SECRET)
    return boot_postal(tmp_path)


def deliver(client: TestClient, system: System, payload: Any, *, secret: str = SECRET,
            at: int | None = None, **headers: str) -> Any:
    body = json.dumps(payload, ensure_ascii=False).encode()
    stamp = at if at is not None else int(system.runtime.clock.now().timestamp())
    sent = {"content-type": "application/json", "x-docket-timestamp": str(stamp),
            "x-docket-signature": sign(secret, stamp, body), **headers}
    return client.post(URL, content=body, headers=sent)


def test_a_signed_call_becomes_a_complaint_with_the_mapped_values(client: TestClient, system: System) -> None:
    response = deliver(client, system, CALL)
    assert response.status_code == 201 and response.json()["query_no"].startswith("TS")
    record = system.forms.get("complaint", response.json()["id"])
    assert (record["customer_name"], record["contact_phone"], record["category"]) == \
        ("华东电子商务有限公司", "13812345678", "transport_late")
    assert (record["channel"], record["urgency"], record["created_by"]) == ("hotline", "urgent", "hotline")
    assert record["description"] == "十票快件超时三天（400 来电 C-20261123-0042，坐席 A12）"


def test_a_repeated_delivery_of_the_same_call_returns_the_first_complaint(client: TestClient,
                                                                         system: System) -> None:
    first = deliver(client, system, CALL)
    again = deliver(client, system, CALL)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and system.forms.count("complaint") == 1


def test_a_captured_delivery_without_a_call_id_replayed_within_the_tolerance_adds_nothing(
        client: TestClient, system: System) -> None:
    # Without an external id nothing keyed the delivery: each replay of the same signed bytes,
    # for five minutes, was another complaint.
    call = json.loads(json.dumps(CALL))
    del call["call"]["id"]
    sent_at = int(system.runtime.clock.now().timestamp())
    first = deliver(client, system, call, at=sent_at)
    replays = [deliver(client, system, call, at=sent_at) for _ in range(3)]
    assert first.status_code == 201 and {r.status_code for r in replays} == {200}
    assert {r.json()["id"] for r in replays} == {first.json()["id"]} and system.forms.count("complaint") == 1


def test_a_call_without_an_id_sent_again_at_a_new_instant_is_a_new_delivery(client: TestClient,
                                                                           system: System) -> None:
    call = json.loads(json.dumps(CALL))
    del call["call"]["id"]
    sent_at = int(system.runtime.clock.now().timestamp())
    assert deliver(client, system, call, at=sent_at).status_code == 201
    assert deliver(client, system, call, at=sent_at + 1).status_code == 201
    assert system.forms.count("complaint") == 2


def test_missing_optional_keys_fall_back(client: TestClient, system: System) -> None:
    call = json.loads(json.dumps(CALL))
    del call["ticket"]["urgency"], call["call"]["agent"], call["ticket"]["waybill"]
    response = deliver(client, system, call)
    record = system.forms.get("complaint", response.json()["id"])
    assert record["urgency"] == "normal" and record["description"].endswith("坐席 -）")


def test_a_wrong_signature_is_refused(client: TestClient, system: System) -> None:
    response = deliver(client, system, CALL, secret="guessed")
    assert response.status_code == 401 and system.forms.count("complaint") == 0


def test_an_unsigned_delivery_is_refused(client: TestClient) -> None:
    response = client.post(URL, json=CALL)
    assert response.status_code == 401 and "sign" in response.json()["error"]


def test_a_body_changed_after_signing_is_refused(client: TestClient, system: System) -> None:
    body = json.dumps(CALL).encode()
    stamp = int(system.runtime.clock.now().timestamp())
    tampered = body.replace(b"transport_late", b"damage_goods")
    response = client.post(URL, content=tampered, headers={
        "content-type": "application/json", "x-docket-timestamp": str(stamp),
        "x-docket-signature": sign(SECRET, stamp, body)})
    assert response.status_code == 401


def test_an_old_delivery_replayed_later_is_refused(client: TestClient, system: System) -> None:
    sent_at = int(system.runtime.clock.now().timestamp())
    clock = system.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(minutes=6))
    response = deliver(client, system, CALL, at=sent_at)
    assert response.status_code == 401 and "replayed" in response.json()["error"]


def test_a_delivery_within_the_tolerance_is_accepted(client: TestClient, system: System) -> None:
    sent_at = int(system.runtime.clock.now().timestamp())
    clock = system.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(minutes=4))
    assert deliver(client, system, CALL, at=sent_at).status_code == 201


def test_without_a_configured_secret_nothing_is_accepted(client: TestClient, system: System,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKET_HOTLINE_SECRET")
    response = deliver(client, system, CALL, secret="")
    assert response.status_code == 401 and "no secret" in response.json()["error"]


def test_values_that_do_not_validate_are_422_per_field(client: TestClient, system: System) -> None:
    call = json.loads(json.dumps(CALL))
    call["caller"]["phone"] = "12"
    call["ticket"]["category"] = "weather"
    response = deliver(client, system, call)
    assert response.status_code == 422
    assert {"contact_phone", "category"} <= set(response.json()["fields"])


def test_an_unknown_webhook_is_404(client: TestClient) -> None:
    assert client.post("/api/v1/webhooks/nope", json={}).status_code == 404


def test_a_payload_that_is_not_a_json_object_is_refused(client: TestClient, system: System) -> None:
    assert deliver(client, system, [1, 2]).status_code == 400
    response = client.post(URL, content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


# -- paths ----------------------------------------------------------------------------------------
def test_paths_read_keys_indexes_and_quoted_keys() -> None:
    assert parse_path("$.call.id") == ("call", "id")
    assert parse_path("$.items[0]['x y']") == ("items", 0, "x y")
    assert follow({"items": [{"x y": 5}]}, parse_path("$.items[0]['x y']")) == 5
    assert follow({"items": []}, parse_path("$.items[3].a")) is None


@pytest.mark.parametrize("bad", ["call.id", "$..id", "$.a[b]", "$.a.", "$[0"])
def test_malformed_paths_are_refused(bad: str) -> None:
    with pytest.raises(PathError):
        parse_path(bad)


# -- load-time checks -----------------------------------------------------------------------------
@pytest.mark.parametrize("line, code", [
    ("  weather: $.weather\n", "unknown-reference"),
    ("  expected_resolution: payload.call.id + missing_name\n", "expr-unknown-name"),
    ("  expected_resolution: $.caller..name\n", "invalid-path"),
    ("  expected_resolution: {path: $.a, expr: x}\n", "invalid-mapping"),
])
def test_mapping_mistakes_are_positioned_load_errors(tmp_path: Path, line: str, code: str) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(POSTAL, bundle)
    hook = bundle / "webhooks" / "hotline.yaml"
    text = hook.read_text("utf-8")
    hook.write_text(text.replace("values:\n", "values:\n" + line), "utf-8")
    _, diagnostics = validate_bundle(bundle, build_registry(plugins=False))
    errors = [d for d in diagnostics if d.severity == "error"]
    assert errors, "the mistake was not reported"
    assert errors[0].span is not None and errors[0].span.file.endswith("hotline.yaml")
    assert errors[0].span.line == text.split("\n").index("values:") + 2
    assert errors[0].code == code


def test_a_tolerance_over_an_hour_is_a_load_error(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(POSTAL, bundle)
    hook = bundle / "webhooks" / "hotline.yaml"
    hook.write_text(hook.read_text("utf-8").replace("tolerance: 5m", "tolerance: 2h"), "utf-8")
    _, diagnostics = validate_bundle(bundle, build_registry(plugins=False))
    assert [d.code for d in diagnostics if d.severity == "error"] == ["invalid-duration"]
