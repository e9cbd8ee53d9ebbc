"""The OpenAPI 3.1 document: valid, complete, and true to what the API really answers."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Route
from starlette.testclient import TestClient

from forms.json_schema import nullable, record_values_schema, value_schema
from tests.web.api_kit import RECORDS, Api, client, system  # noqa: F401 - fixtures
from web.system import System


@pytest.fixture
def document(client: TestClient, system: System) -> dict:  # type: ignore[type-arg]
    """The document as a signed-in caller reads it (everything)."""
    return Api(client, system, "agent").get("/api/v1/openapi.json").json()  # type: ignore[no-any-return]


def test_the_document_is_valid_openapi_3_1(document: dict) -> None:  # type: ignore[type-arg]
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_anonymous_readers_get_only_the_public_part(client: TestClient, document: dict) -> None:  # type: ignore[type-arg]
    public = client.get("/api/v1/openapi.json").json()
    validate(public)
    assert "/api/v1/forms/complaint/records" in public["paths"]
    assert not [p for p in public["paths"] if p.startswith(("/api/v1/webhooks/", "/api/v1/reports/"))]
    assert [p for p in document["paths"] if p.startswith("/api/v1/webhooks/")] == ["/api/v1/webhooks/hotline"]


def test_every_api_route_is_documented(client: TestClient, system: System, document: dict) -> None:  # type: ignore[type-arg]
    forms = list(system.forms.forms)
    hooks = list(system.bundle.all("webhook"))
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    missing = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, Route) or not route.path.startswith("/api/v1/") or route.path == "/api/v1/openapi.json":
            continue
        if route.path.startswith("/api/v1/uploads"):
            continue  # multipart uploads: web/uploads.py, documented in docs/reference/api.md
        paths = [route.path.replace("{form}", f) for f in forms] if "{form}" in route.path else [route.path]
        paths = [p.replace("{name}", h) for h in hooks for p in paths] if "{name}" in route.path else paths
        if "{dashboard}" in route.path:
            paths = [route.path.replace("{dashboard}", d).replace("{widget}", w)
                     for d, dash in system.runtime.services["reports"].dashboards.items() for w in dash.widgets]
        for path in paths:
            for method in route.methods or ():
                if method != "HEAD" and (path, method) not in documented:
                    missing.append(f"{method} {path}")
    assert missing == []


def test_each_form_has_its_record_schemas_as_components(document: dict) -> None:  # type: ignore[type-arg]
    schemas = document["components"]["schemas"]
    assert {"ComplaintValues", "ComplaintInput", "ComplaintPublicInput", "ComplaintRecord"} <= set(schemas)
    assert "urgency" in schemas["ComplaintInput"]["properties"]
    assert "urgency" not in schemas["ComplaintPublicInput"]["properties"]
    assert {"customer_name", "category"} <= set(schemas["ComplaintInput"]["required"])


def test_a_record_the_api_returns_matches_its_documented_schema(client: TestClient, system: System,
                                                                 document: dict) -> None:  # type: ignore[type-arg]
    agent = Api(client, system, "agent")
    created = agent.submit(amount_claimed="1200.50", category="damage_goods",
                           waybills=[{"number": "SF1234567890", "note": "外包装破损"}])
    record = agent.get(f"{RECORDS}/{created['id']}").json()
    schema = {**document["components"]["schemas"]["ComplaintRecord"],
              "$defs": document["components"]["schemas"]}
    text = json.dumps(schema).replace("#/components/schemas/", "#/$defs/")
    errors = list(Draft202012Validator(json.loads(text)).iter_errors(record))
    assert errors == []
    assert record["values"]["amount_claimed"] == "1200.50"


def test_the_submission_schema_refuses_what_the_server_refuses(document: dict) -> None:  # type: ignore[type-arg]
    schema = document["components"]["schemas"]["ComplaintInput"]
    validator = Draft202012Validator(schema)
    assert not validator.is_valid({"category": "weather"})
    assert not validator.is_valid({"not_a_field": 1})


def test_the_browsable_page_is_rendered_on_the_server_without_script(client: TestClient) -> None:
    page = client.get("/api/docs?lang=en")
    assert page.status_code == 200
    assert "POST /api/v1/forms/complaint/records" in page.text
    assert "ComplaintRecord" in page.text and "<script" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


# -- JSON Schema of values, per field type ------------------------------------------------------------
def test_choices_are_enums_and_subtables_are_rows_of_their_columns(system: System) -> None:
    form = system.forms.form("complaint")
    category = value_schema(form.types["category"], form.field("category"))
    assert "transport_late" in category["anyOf"][0]["enum"] and "transport" not in category["anyOf"][0]["enum"]
    waybills = value_schema(form.types["waybills"], form.field("waybills"))
    assert waybills["maxItems"] == 50
    assert set(waybills["items"]["properties"]) == {"number", "note"}


def test_text_lengths_come_from_the_fields_limits(system: System) -> None:
    form = system.forms.form("complaint")
    assert value_schema(form.types["customer_name"], form.field("customer_name"))["maxLength"] == 200
    assert value_schema(form.types["description"], form.field("description"))["maxLength"] == 5000


def test_every_field_may_be_empty(system: System) -> None:
    schema = record_values_schema(system.forms.form("complaint"))
    validator = Draft202012Validator(schema)
    assert validator.is_valid({name: None for name in schema["properties"]})


def test_nullable_keeps_enums_exact() -> None:
    assert nullable({"type": "string", "enum": ["a"]}) == {"anyOf": [{"type": "string", "enum": ["a"]},
                                                                     {"type": "null"}]}
    assert nullable({"type": "integer"}) == {"type": ["integer", "null"]}


def test_the_document_describes_uploading_a_file(client: TestClient) -> None:
    # docs/reference/api.md sent integrations to POST /api/v1/uploads, which the document lacked.
    upload = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/uploads"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"201", "413", "415"} <= set(upload["responses"])
    assert "multipart/form-data: " in client.get("/api/docs?lang=en").text
