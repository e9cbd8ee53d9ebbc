"""An app sends the photos a customer step asks for: each file uploaded first (`POST
/api/v1/uploads`, no account needed), then named by its id in the answer's values."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.forms.test_attachments_kit import png
from tests.web.test_lookup import system  # noqa: F401 (fixture)
from tests.web.test_lookup_answer import api_lookup, asked_for_information, client  # noqa: F401 (fixture)
from web.system import System


def upload(client: TestClient, name: str, data: bytes, kind: str) -> dict:
    stored = client.post("/api/v1/uploads?form=complaint&field=photos", files={"file": (name, data, kind)})
    assert stored.status_code == 201, stored.text
    return stored.json()


def test_an_app_answers_with_a_photo_uploaded_first(client: TestClient, system: System) -> None:
    case = asked_for_information(system)
    token = api_lookup(client, case).json()["step"]["pass"]
    photo = upload(client, "box.png", png(4, 3), "image/png")
    answer = client.post("/api/v1/lookup/answer", json={"pass": token, "values": {
        "supplement": "两箱外包装破损", "photos": [{"id": photo["id"]}]}})
    assert answer.status_code == 200, answer.text
    record = system.forms.get("complaint", case.id)
    assert [p["name"] for p in record["photos"]] == ["box.png"] and case.open() == ["accept"]


def test_an_unknown_file_id_is_refused_next_to_its_field(client: TestClient, system: System) -> None:
    case = asked_for_information(system)
    token = api_lookup(client, case).json()["step"]["pass"]
    answer = client.post("/api/v1/lookup/answer", json={"pass": token, "values": {
        "supplement": "见照片", "photos": [{"id": "f" * 32}]}})
    assert answer.status_code == 422 and "photos" in answer.json()["fields"]
    assert case.open() == ["more_info"]
