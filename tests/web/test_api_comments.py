"""Comments and files on a record's trail over the JSON API (issue 5: "comments and
attachments on any step"): the same FlowService.comment the record page uses."""

from __future__ import annotations

from tests.forms.test_attachments_kit import png
from tests.web.api_kit import Api, client, system  # noqa: F401 (fixtures)
from web.system import System

COMPLAINT = {"customer_name": "华中物流", "contact_name": "刘女士", "contact_phone": "027-88886666",
             "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late", "description": "延误三天"}


def comments_url(record_id: int) -> str:
    return f"/api/v1/forms/complaint/records/{record_id}/comments"


def test_a_comment_with_an_uploaded_photo_is_kept_on_the_trail_at_the_current_step(client, system: System) -> None:
    record_id = system.forms.submit("complaint", COMPLAINT, actor="accounts").record_id
    agent = Api(client, system, "agent")
    photo = client.post("/api/v1/uploads", files={"file": ("box.png", png(4, 3), "image/png")}).json()
    answer = agent.post(comments_url(record_id), json={"text": "客户发来照片", "attachments": [photo["id"]]})
    assert answer.status_code == 201, answer.text
    (entry,) = [h for h in system.forms.history("complaint", record_id) if h["kind"] == "comment.added"]
    assert entry["id"] == answer.json()["id"] and entry["node"] == "accept" and entry["actor"] == "agent"
    assert [f["name"] for f in entry["data"]["attachments"]] == ["box.png"]


def test_an_empty_comment_and_an_unknown_file_are_refused(client, system: System) -> None:
    record_id = system.forms.submit("complaint", COMPLAINT, actor="accounts").record_id
    agent = Api(client, system, "agent")
    assert agent.post(comments_url(record_id), json={"text": "  "}).status_code == 422
    assert agent.post(comments_url(record_id), json={"attachments": ["nope"]}).status_code == 422
    assert agent.post(comments_url(record_id), json={"attachments": "x"}).status_code == 400
    assert [h for h in system.forms.history("complaint", record_id) if h["kind"] == "comment.added"] == []


def test_someone_who_may_not_read_the_record_may_not_comment(client, system: System) -> None:
    record_id = system.forms.submit("complaint", COMPLAINT, actor="accounts").record_id
    assert Api(client, system, "finance").post(comments_url(record_id), json={"text": "hi"}).status_code == 404
