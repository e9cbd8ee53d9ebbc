"""The OpenAPI 3.1 document of /api/v1, generated from the running bundle.

Every form gets its own concrete paths (`/api/v1/forms/complaint/records`, ...) and component
schemas (`ComplaintValues` as returned, `ComplaintInput` as accepted, `ComplaintPublicInput`
for anonymous submitters of a public form), derived by forms.json_schema from its field types,
so a client generator or a property-based test (schemathesis) sees exactly what each form
takes. Served at `/api/v1/openapi.json`; `/api/docs` renders the same document as a plain
server-side page (no CDN, no script). Anonymous readers get a document without what only
staff should learn from it (forms that are not public, webhooks, dashboards).

The document is rebuilt when the bundle changes (it is cached per bundle hash).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forms.json_schema import record_values_schema

if TYPE_CHECKING:
    from web.app import Web

MAX_ID = 2**63 - 1
ERROR_STATUSES = {
    "400": "The request is malformed (details in `error`, per field in `fields`).",
    "401": "Nobody is signed in and no valid API token was sent.",
    "403": "The caller may not do this.",
    "404": "No such item, or one outside the caller's permissions.",
    "409": "A conflict: someone changed the item first (reload and try again).",
    "413": "The body is too large.",
    "415": "The body must be JSON.",
    "422": "The values have errors (per field in `fields`).",
    "428": "The change must say which version it is based on (If-Match or `version`).",
    "429": "Too many requests; retry after `Retry-After` seconds.",
    "503": "The server cannot take it just now (its room for unsent files is full); retry later.",
}


def camel(name: str) -> str:
    """`complaint_form` -> `ComplaintForm` (component names)."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {s: {"$ref": f"#/components/responses/E{s}"} for s in statuses}


def _body_text(body: dict[str, Any]) -> str:
    """A request body as the docs page shows it: its JSON Schema, with the media type when it is
    not JSON (an upload is multipart)."""
    media, content = next(iter(body["content"].items()))
    schema = json.dumps(content["schema"], ensure_ascii=False)
    return schema if media == "application/json" else f"{media}: {schema}"


def _id_param(what: str) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "description": f"the {what}'s id",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "example": 1}


SIGNED_IN = [{"bearerToken": []}, {"session": []}]
ANYONE = [{}, {"bearerToken": []}, {"session": []}]


def _common_schemas() -> dict[str, Any]:
    when = {"type": "string", "format": "date-time"}
    maybe_when = {"type": ["string", "null"], "format": "date-time"}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string", "description": "what went wrong, in plain words"},
            "fields": {"type": "object", "description": "problems per field (validation errors)",
                       "additionalProperties": {"type": "array", "items": {"type": "string"}}}}},
        "SubmitResult": {"type": "object", "required": ["id", "form", "created"], "properties": {
            "id": {"type": "integer"}, "form": {"type": "string"},
            "query_no": {"type": ["string", "null"], "description": "the query number (查询编号) customers use"},
            "created": {"type": "boolean", "description": "false when an Idempotency-Key retry was answered"}}},
        "FormSummary": {"type": "object", "properties": {
            "name": {"type": "string"}, "label": {"type": "string"}, "public": {"type": "boolean"},
            "href": {"type": "string"}}},
        "FormList": {"type": "object", "properties": {"items": {"type": "array", "items": _ref("FormSummary")}}},
        "FormField": {"type": "object", "properties": {
            "name": {"type": "string"}, "type": {"type": "string"}, "label": {"type": "string"},
            "required": {"type": "boolean"}, "staff_only": {"type": "boolean"}, "read_only": {"type": "boolean"},
            "options": {"type": "array", "items": {"type": "object", "properties": {
                "value": {"type": "string"}, "label": {"type": "string"}, "parent": {"type": ["string", "null"]}}}}}},
        "FormDescription": {"type": "object", "properties": {
            "name": {"type": "string"}, "label": {"type": "string"}, "public": {"type": "boolean"},
            "numbered": {"type": "boolean"}, "fields": {"type": "array", "items": _ref("FormField")},
            "schema": {"type": "object", "description": "JSON Schema of the values a submission takes"}}},
        "Task": {"type": "object", "properties": {
            "id": {"type": "integer"}, "flow": {"type": "string"}, "node": {"type": "string"},
            "label": {"type": "string"}, "form": {"type": "string"}, "record_id": {"type": "integer"},
            "status": {"type": "string", "enum": ["open", "claimed", "completed", "cancelled"]},
            "assignee": {"type": ["string", "null"]}, "created_at": when, "version": {"type": "integer"},
            "escalation_level": {"type": "integer"},
            "due_at": {**maybe_when, "description": "when the step is due (its `due:`, or the time its "
                       "`timeout:` acts); null: the step has no due time"}}},
        "InboxTask": {"allOf": [_ref("Task"), {"type": "object", "properties": {
            "query_no": {"type": ["string", "null"]}, "title": {"type": "string"},
            "sla": {"type": ["object", "null"], "description": "the record's most urgent SLA state",
                    "properties": {"status": {"type": "string"}, "due_at": maybe_when}},
            "shown": {"type": "array", "description": "the first filled-in fields the step shows its people",
                      "items": {"type": "object", "properties": {"label": {"type": "string"}, "text": {"type": "string"}}}},
            "customer_may_answer": {"type": "boolean"}}}]},
        "TaskList": {"type": "object", "properties": {"items": {"type": "array", "items": _ref("InboxTask")}}},
        "Completion": {"type": "object", "additionalProperties": False, "properties": {
            "values": {"type": "object", "description": "the step's fields"},
            "outcome": {"type": ["string", "null"], "description": "one of the step's outcomes"},
            "comment": {"type": ["string", "null"], "maxLength": 5000},
            "return_to": {"type": ["string", "null"], "description": "the node a `return` outcome goes back to"},
            "version": {"type": ["integer", "null"], "minimum": 0, "description": "the task's version you saw"}}},
        "Comment": {"type": "object", "additionalProperties": False, "properties": {
            "text": {"type": ["string", "null"], "maxLength": 5000},
            "attachments": {"type": ["array", "null"], "maxItems": 10, "items": {"type": "string"},
                            "description": "ids from POST /api/v1/uploads"}},
            "description": "text, files or both"},
        "CommentAdded": {"type": "object", "properties": {"id": {"type": "integer", "description": "the history entry"}}},
        "Withdrawal": {"type": "object", "additionalProperties": False, "properties": {
            "comment": {"type": ["string", "null"], "maxLength": 5000, "description": "kept in the history"}}},
        "Reopening": {"type": "object", "required": ["at", "comment"], "additionalProperties": False, "properties": {
            "at": {"type": "string", "description": "a step the flow's `reopen: at` allows"},
            "comment": {"type": "string", "minLength": 1, "maxLength": 5000, "description": "why it is reopened"}}},
        "History": {"type": "object", "properties": {
            "entries": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "integer"}, "kind": {"type": "string"}, "node": {"type": ["string", "null"]},
                "actor": {"type": ["string", "null"]}, "at": when, "data": {}}}},
            "timeline": {"type": "object", "properties": {
                "steps": {"type": "array", "items": {"type": "object", "properties": {
                    "node": {"type": "string"}, "instance_id": {"type": "integer"}, "entered_at": when,
                    "left_at": maybe_when, "wall_seconds": {"type": "integer"},
                    "work_seconds": {"type": "integer", "description": "in the bundle's business calendar"},
                    "completed_by": {"type": ["string", "null"]}, "outcome": {"type": ["string", "null"]},
                    "comment": {"type": ["string", "null"]}, "changes": {"type": "object"}}}},
                "current": {"type": "array", "items": {"type": "string"}},
                "assignees": {"type": "array", "items": {"type": "string"}},
                "candidates": {"type": "array", "items": {"type": "string"}},
                "age_wall_seconds": {"type": "integer"}, "age_work_seconds": {"type": "integer"}}}}},
        "Diagnostic": {"type": "object", "properties": {
            "severity": {"type": "string", "enum": ["error", "warning"]}, "message": {"type": "string"},
            "code": {"type": ["string", "null"]}, "hint": {"type": ["string", "null"]},
            "file": {"type": ["string", "null"]}, "line": {"type": ["integer", "null"]},
            "col": {"type": ["integer", "null"]}, "path": {"type": ["string", "null"]}, "text": {"type": "string"}}},
        "Validation": {"type": "object", "properties": {
            "valid": {"type": "boolean"}, "running_hash": {"type": "string"}, "hash": {"type": ["string", "null"]},
            "diagnostics": {"type": "array", "items": _ref("Diagnostic")}}},
        "Reload": {"type": "object", "properties": {
            "reloaded": {"type": "boolean"}, "previous_hash": {"type": "string"}, "hash": {"type": "string"},
            "diagnostics": {"type": "array", "items": _ref("Diagnostic")}}},
        "Upload": {"type": "object", "required": ["id", "name", "size", "type", "sha256"], "properties": {
            "id": {"type": "string", "description": "what a field's value or a comment names"},
            "name": {"type": "string"}, "size": {"type": "integer", "description": "bytes"},
            "type": {"type": "string", "description": "the media type read from the content"},
            "sha256": {"type": "string"}}},
        "Token": {"type": "object", "properties": {
            "id": {"type": "integer"}, "user": {"type": "string"}, "name": {"type": "string"},
            "prefix": {"type": "string", "description": "the token's first characters, to tell tokens apart"},
            "created_at": when, "created_by": {"type": ["string", "null"]}, "last_used_at": maybe_when,
            "revoked_at": maybe_when, "active": {"type": "boolean"},
            "token": {"type": "string", "description": "the secret: given once, when the token is created"}}},
        "TokenList": {"type": "object", "properties": {"items": {"type": "array", "items": _ref("Token")}}},
        "LookupQuery": {"type": "object", "required": ["query_no", "verify"], "properties": {
            "query_no": {"type": "string", "maxLength": 64, "description": "the query number (查询编号)"},
            "verify": {"type": "string", "maxLength": 32,
                       "description": "the last digits of the contact phone the form's lookup asks for"}}},
        "LookupAnswer": {"type": "object", "required": ["pass", "values"], "properties": {
            "pass": {"type": "string", "maxLength": 500, "description": "`step.pass` of a lookup"},
            "values": {"type": "object", "description": "the step's fields (`step.fields`)"}}},
        "Lookup": {"type": "object", "properties": {
            "form": {"type": "string"}, "form_label": {"type": "string"}, "query_no": {"type": "string"},
            "status": {"type": "string"}, "status_label": {"type": "string", "description": "in the customer's words"},
            "created_at": when,
            "progress": {"type": "array", "items": {"type": "object", "properties": {
                "at": when, "status": {"type": "string"}, "label": {"type": "string"}}}},
            "fields": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "label": {"type": "string"}, "value": {"type": "string"}}}},
            "step": {"type": ["object", "null"], "description": "the step the customer may answer, if any",
                     "properties": {"node": {"type": "string"}, "label": {"type": "string"},
                                    "prompt": {"type": "string"}, "pass": {"type": "string"},
                                    "fields": {"type": "array", "items": _ref("FormField")}}}}},
        "NewToken": {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": "what uses the token"}}},
        "WebhookResult": {"type": "object", "properties": {
            "id": {"type": "integer"}, "form": {"type": "string"}, "query_no": {"type": ["string", "null"]},
            "created": {"type": "boolean", "description": "false for a repeated delivery (same external id)"}}},
        "ReportList": {"type": "object", "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {
                "dashboard": {"type": "string"}, "title": {"type": "string"},
                "widgets": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "title": {"type": "string"}, "href": {"type": "string"}}}}}}}}},
        "ReportRows": {"type": "object", "properties": {
            "dashboard": {"type": "string"}, "widget": {"type": "string"}, "title": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "object", "properties": {
                "key": {"type": "string"}, "title": {"type": "string"},
                "kind": {"type": "string", "enum": ["dimension", "measure"]}, "format": {}}}},
            "rows": {"type": "array", "items": {"type": "array"}},
            "totals": {"type": ["array", "null"]}, "truncated": {"type": "boolean"}}},
        "ReportRecords": {"type": "object", "properties": {
            "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "integer"}, "query_no": {"type": ["string", "null"]},
                "status": {"type": ["string", "null"]}, "created_at": {"type": ["string", "null"]}}}}}},
    }


def _record_schema(name: str) -> dict[str, Any]:
    return {"type": "object", "required": ["id", "form", "status", "version", "values"], "properties": {
        "id": {"type": "integer"}, "form": {"type": "string"},
        "query_no": {"type": ["string", "null"]}, "status": {"type": "string"},
        "version": {"type": "integer", "description": "send it back as If-Match (or `version`) to change the record"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "created_by": {"type": ["string", "null"]}, "values": _ref(f"{name}Values")}}


def _filter_params(form: Any, has_sla: bool = False) -> list[dict[str, Any]]:
    """Query parameters of a form's record list: paging, status, dates, text search, SLA
    lateness (`has_sla`: a policy keeps clocks on its records), fields."""
    from sqlalchemy import JSON

    params = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
        {"name": "status", "in": "query", "schema": {"type": "string", "maxLength": 100},
         "description": "records in this status (repeat for any of several)"},
        {"name": "created_from", "in": "query", "schema": {"type": "string", "format": "date"},
         "description": "created on or after this day (or ISO date-time)"},
        {"name": "created_to", "in": "query", "schema": {"type": "string", "format": "date"},
         "description": "created on or before this day (or before this ISO date-time)"},
        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
         "description": "text found in the query number or any text field"},
    ]
    if has_sla:
        params.append({"name": "sla", "in": "query", "schema": {"enum": ["at_risk", "overdue"]},
                       "description": "records with a running SLA clock past its warning (at_risk: due soon "
                                      "or overdue) or past its due time (overdue)"})
    for name in form.stored:
        column = form.types[name].column_type(form.field(name))
        if isinstance(column, JSON):
            continue
        params.append({"name": name, "in": "query", "required": False,
                       "description": f"records whose {form.field(name).text('en')} equals this value",
                       "schema": {"type": "string", "maxLength": 200}})
    return params


def _report_filters(dashboard: Any) -> list[dict[str, Any]]:
    """Query parameters of a dashboard's filters: a period as a preset or first/last day."""
    params: list[dict[str, Any]] = []
    for key, spec in dashboard.filters.items():
        if getattr(spec, "type", "") == "period":
            params += [{"name": key, "in": "query", "schema": {"type": "string", "maxLength": 40},
                        "description": "a preset such as last_30_days"},
                       {"name": f"{key}_from", "in": "query", "schema": {"type": "string", "format": "date"}},
                       {"name": f"{key}_to", "in": "query", "schema": {"type": "string", "format": "date"}}]
        else:
            params.append({"name": key, "in": "query", "schema": {"type": "string", "maxLength": 100},
                           "description": "a filter of the dashboard"})
    return params


def build_document(web: "Web", *, full: bool = True) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the running bundle.

    `full` False (an anonymous reader) leaves out what only staff should learn from it: forms
    that are not public, the inbound webhooks and the dashboards."""
    from web.api import has_reload

    system = web.system
    bundle = system.bundle
    schemas = _common_schemas()
    paths: dict[str, Any] = {}
    for form_name, form in system.forms.forms.items():
        if not full and not form.spec.public:
            continue
        name = camel(form_name)
        label = form.spec.text("en")
        schemas[f"{name}Values"] = record_values_schema(form)
        schemas[f"{name}Input"] = record_values_schema(form, for_input=True)
        if form.spec.public:
            schemas[f"{name}PublicInput"] = record_values_schema(form, only=form.public_fields, for_input=True)
        schemas[f"{name}Record"] = _record_schema(name)
        schemas[f"{name}RecordList"] = {"type": "object", "properties": {
            "items": {"type": "array", "items": _ref(f"{name}Record")}, "total": {"type": "integer"},
            "limit": {"type": "integer"}, "offset": {"type": "integer"}}}
        changed = record_values_schema(form, for_input=True)
        changed.pop("required", None)  # a change names only the fields it changes
        schemas[f"{name}Patch"] = {"type": "object", "required": ["values"], "additionalProperties": False,
                                   "properties": {"values": changed, "version": {"type": "integer", "minimum": 0}}}
        base = f"/api/v1/forms/{form_name}"
        tag = [form_name]
        # Signed-in callers send `Input`; anonymous ones a subset of it (`PublicInput`).
        submit_body = _ref(f"{name}Input")
        paths[base] = {"get": {
            "operationId": f"describe_{form_name}", "tags": tag, "summary": f"Describe the {label} form",
            "security": ANYONE if form.spec.public else SIGNED_IN,
            "responses": {"200": _json(_ref("FormDescription"), "fields, options and the JSON Schema"),
                          **_errors("401")}}}
        paths[f"{base}/records"] = {
            "post": {
                "operationId": f"submit_{form_name}", "tags": tag, "summary": f"Submit a {label}",
                "description": ("Anyone may submit a public form (fields marked staff_only are refused "
                                "from anonymous submitters); other forms need a signed-in user or a token."
                                if form.spec.public else "Needs a signed-in user or an API token."),
                "security": ANYONE if form.spec.public else SIGNED_IN,
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "description": "a retry with the same key and body returns the first record",
                                "schema": {"type": "string", "minLength": 1, "maxLength": 100}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": submit_body}}},
                "responses": {"201": _json(_ref("SubmitResult"), "the record was created"),
                              "200": _json(_ref("SubmitResult"), "a retry: the first record"),
                              **_errors("400", "401", "404", "413", "415", "422", "429")}},
            "get": {
                "operationId": f"list_{form_name}", "tags": tag, "summary": f"List {label} records",
                "description": "Newest first; only the records the caller may see.",
                "security": SIGNED_IN, "parameters": _filter_params(
                    form, any(policy.form == form_name for policy in bundle.all("sla").values())),
                "responses": {"200": _json(_ref(f"{name}RecordList"), "a page of records"),
                              **_errors("400", "401")}}}
        paths[f"{base}/records/{{id}}"] = {
            "get": {
                "operationId": f"get_{form_name}", "tags": tag, "summary": f"Read a {label} record",
                "security": SIGNED_IN, "parameters": [_id_param("record")],
                "responses": {"200": {**_json(_ref(f"{name}Record"), "the record"),
                                      "headers": {"ETag": {"schema": {"type": "string"},
                                                           "description": "the record's version"}}},
                              **_errors("401", "404")}},
            "patch": {
                "operationId": f"update_{form_name}", "tags": tag, "summary": f"Change fields of a {label} record",
                "description": ("Administrators and holders of the form's `editors` roles may change any "
                                "field; the assignee of the record's current step may change that step's "
                                "fields. The change must name the version it is based on."),
                "security": SIGNED_IN,
                "parameters": [_id_param("record"),
                               {"name": "If-Match", "in": "header", "required": False,
                                "schema": {"type": "string", "maxLength": 30},
                                "description": "the ETag you read (or send `version` in the body)"}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(f"{name}Patch")}}},
                "responses": {"200": _json(_ref(f"{name}Record"), "the changed record"),
                              **_errors("400", "401", "403", "404", "409", "415", "422", "428")}}}
        paths[f"{base}/records/{{id}}/history"] = {"get": {
            "operationId": f"history_{form_name}", "tags": tag, "summary": f"History and timeline of a {label}",
            "security": SIGNED_IN, "parameters": [_id_param("record")],
            "responses": {"200": _json(_ref("History"), "every entry, and the steps with dwell times"),
                          **_errors("401", "404")}}}
        # Commands on one record: (path, operation, summary, description, body, answer, errors).
        # A comment needs only read access (no 403); its unknown upload ids are a 422.
        commands = (
            ("comments", "comment", f"Comment on a {label} record, with files",
             "Kept on the record's trail at its current step, for anyone who may read the "
             "record. Upload files first (POST /api/v1/uploads) and name their ids.",
             "Comment", {"201": _json(_ref("CommentAdded"), "the comment was kept")},
             ("400", "401", "404", "409", "415", "422")),
            ("withdraw", "withdraw", f"Withdraw a {label} record",
             "The record's submitter (or an administrator) takes it back: its running flow ends "
             "`withdrawn` and its open tasks are cancelled (409: no flow runs on it).",
             "Withdrawal", {"200": _json(_ref(f"{name}Record"), "the withdrawn record")},
             ("400", "401", "403", "404", "409", "415")),
            ("reopen", "reopen", f"Reopen an ended {label} record",
             "Administrators and the roles the flow's `reopen:` names restart an ended "
             "(completed or withdrawn) record at one of the steps it allows, saying why.",
             "Reopening", {"200": _json(_ref(f"{name}Record"), "the reopened record")},
             ("400", "401", "403", "404", "409", "415")))
        for path, verb, summary, description, body, answer, errors in commands:
            paths[f"{base}/records/{{id}}/{path}"] = {"post": {
                "operationId": f"{verb}_{form_name}", "tags": tag, "summary": summary, "description": description,
                "security": SIGNED_IN, "parameters": [_id_param("record")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(body)}}},
                "responses": {**answer, **_errors(*errors)}}}
    paths["/api/v1/forms"] = {"get": {
        "operationId": "list_forms", "tags": ["forms"], "summary": "The forms (anonymous callers: public ones)",
        "security": ANYONE, "responses": {"200": _json(_ref("FormList"), "the forms")}}}
    paths["/api/v1/tasks"] = {"get": {
        "operationId": "inbox", "tags": ["tasks"], "summary": "The caller's inbox: their tasks and claimable ones",
        "security": SIGNED_IN, "responses": {"200": _json(_ref("TaskList"), "open tasks"), **_errors("401")}}}
    paths["/api/v1/tasks/{id}/claim"] = {"post": {
        "operationId": "claim_task", "tags": ["tasks"], "summary": "Take an open task",
        "security": SIGNED_IN, "parameters": [_id_param("task")],
        "responses": {"200": _json(_ref("Task"), "the task, now the caller's"), **_errors("401", "403", "404", "409")}}}
    paths["/api/v1/tasks/{id}/complete"] = {"post": {
        "operationId": "complete_task", "tags": ["tasks"], "summary": "Finish a task: values, outcome, comment",
        "security": SIGNED_IN, "parameters": [_id_param("task")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Completion")}}},
        "responses": {"200": _json(_ref("Task"), "the completed task"),
                      **_errors("400", "401", "403", "404", "409", "415", "422")}}}
    if any(f.spec.lookup and f.spec.numbering for f in system.forms.forms.values()):
        # The customer's progress lookup, for apps (a WeChat official account, a portal).
        paths["/api/v1/lookup"] = {"post": {
            "operationId": "lookup", "tags": ["lookup"], "security": ANYONE,
            "summary": "A customer's record by its query number and the last digits of the contact "
                       "phone: status, progress, public fields, and the step they may answer",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("LookupQuery")}}},
            "responses": {"200": _json(_ref("Lookup"), "the record as its customer sees it"),
                          **_errors("400", "404", "413", "415", "429")}}}
        paths["/api/v1/lookup/answer"] = {"post": {
            "operationId": "lookup_answer", "tags": ["lookup"], "security": ANYONE,
            "summary": "The customer answers their step with the pass a lookup gave (valid 30 minutes)",
            "description": "Files the step asks for (photos, documents) are uploaded first with "
                           "POST /api/v1/uploads?form=...&field=..., then named by id in `values`: "
                           "`\"photos\": [{\"id\": \"...\"}]`.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("LookupAnswer")}}},
            "responses": {"200": _json(_ref("Lookup"), "the record after the answer"),
                          **_errors("400", "409", "413", "415", "422", "429")}}}
    paths["/api/v1/uploads"] = {"post": {
        "operationId": "upload", "tags": ["files"], "security": ANYONE,
        "summary": "Store a file first, then name its id in an attachment field's value ([{\"id\": ...}]) "
                   "or a comment's attachments",
        "description": "Anyone may upload to a public form's field (`form` and `field` name it, and its "
                       "limits apply: size, kinds of file); signed-in callers to any field. A file nothing "
                       "names is removed after a while. The type is read from the content, not the name.",
        "parameters": [{"name": "form", "in": "query", "schema": {"type": "string", "maxLength": 100},
                        "description": "the form whose field the file is for"},
                       {"name": "field", "in": "query", "schema": {"type": "string", "maxLength": 100},
                        "description": "the attachment or image field"}],
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}}}}}},
        "responses": {"201": _json(_ref("Upload"), "the stored file"),
                      **_errors("400", "413", "415", "429", "503")}}}
    paths["/api/v1/definitions/validate"] = {"post": {
        "operationId": "validate_definitions", "tags": ["definitions"],
        "summary": "Check the running bundle's folder again (administrators)", "security": SIGNED_IN,
        "responses": {"200": _json(_ref("Validation"), "every diagnostic"), **_errors("401", "403")}}}
    if has_reload():
        paths["/api/v1/definitions/reload"] = {"post": {
            "operationId": "reload_definitions", "tags": ["definitions"],
            "summary": "Load the bundle's folder again; on errors the running version stays (administrators)",
            "security": SIGNED_IN,
            "responses": {"200": _json(_ref("Reload"), "reloaded"),
                          "422": _json(_ref("Reload"), "errors: the running version stays"),
                          **_errors("401", "403")}}}
    paths["/api/v1/tokens"] = {
        "get": {"operationId": "list_tokens", "tags": ["tokens"], "security": SIGNED_IN,
                "summary": "API tokens: your own (administrators: everyone's, or ?user=)",
                "parameters": [{"name": "user", "in": "query", "schema": {"type": "string", "maxLength": 150}}],
                "responses": {"200": _json(_ref("TokenList"), "tokens, never their secrets"), **_errors("401")}},
        "post": {"operationId": "create_token", "tags": ["tokens"], "security": [{"session": []}],
                 "summary": "Create an API token for yourself (the secret is shown once); a signed-in "
                            "session only, as a leaked token must not mint others",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewToken")}}},
                 "responses": {"201": _json(_ref("Token"), "the token with its secret"),
                               **_errors("400", "401", "403", "415")}}}
    paths["/api/v1/tokens/{id}"] = {"delete": {
        "operationId": "revoke_token", "tags": ["tokens"], "security": SIGNED_IN,
        "summary": "Revoke a token (yours; administrators: anyone's)", "parameters": [_id_param("token")],
        "responses": {"200": _json(_ref("Token"), "the revoked token"), **_errors("401", "404")}}}
    for hook_name, hook in (bundle.all("webhook") if full else {}).items():
        paths[f"/api/v1/webhooks/{hook_name}"] = {"post": {
            "operationId": f"webhook_{hook_name}", "tags": ["webhooks"], "security": [{}],
            "summary": f"Inbound webhook '{hook_name}': creates a {hook.form} record",
            "description": ("Signed with the webhook's shared secret: `X-Docket-Signature: sha256=<hex "
                            "HMAC-SHA256 of '<timestamp>.<body>'>` and `X-Docket-Timestamp: <unix seconds>`. "
                            "A delivery repeating an external id returns the first record."),
            "parameters": [
                {"name": "X-Docket-Signature", "in": "header", "required": True, "schema": {"type": "string", "maxLength": 200}},
                {"name": "X-Docket-Timestamp", "in": "header", "required": True, "schema": {"type": "string", "maxLength": 20}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"201": _json(_ref("WebhookResult"), "the record was created"),
                          "200": _json(_ref("WebhookResult"), "a repeated delivery: the first record"),
                          **_errors("400", "401", "404", "413", "415", "422")}}}
    reports = system.runtime.services.get("reports") if full else None
    if reports is not None:
        paths["/api/v1/reports"] = {"get": {
            "operationId": "list_reports", "tags": ["reports"], "security": SIGNED_IN,
            "summary": "The dashboards and widgets the caller may open",
            "responses": {"200": _json(_ref("ReportList"), "dashboards with their widgets"), **_errors("401")}}}
        for dash_name, dashboard in reports.dashboards.items():
            for widget_name, widget in dashboard.widgets.items():
                base = f"/api/v1/reports/{dash_name}/{widget_name}"
                title = widget.text("en")
                filters = _report_filters(dashboard)
                paths[base] = {"get": {
                    "operationId": f"report_{dash_name}_{widget_name}", "tags": ["reports"], "security": SIGNED_IN,
                    "summary": f"Rows of '{title}' ({dash_name})", "parameters": filters,
                    "responses": {"200": _json(_ref("ReportRows"), "the widget's table, within the caller's permissions"),
                                  **_errors("400", "401", "403", "404")}}}
                paths[f"{base}/records"] = {"get": {
                    "operationId": f"report_{dash_name}_{widget_name}_records", "tags": ["reports"],
                    "security": SIGNED_IN, "summary": f"The records behind '{title}' (or one of its points: p.<dimension>=)",
                    "parameters": [*filters,
                                   {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                                   {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                    "responses": {"200": _json(_ref("ReportRecords"), "a page of records"),
                                  **_errors("400", "401", "403", "404")}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{bundle.meta.title('en')} API", "version": f"{bundle.version} ({bundle.hash})",
                 "description": ("The JSON API of Docket over the bundle "
                                 f"'{bundle.name}'. Errors are {{\"error\": ..., \"fields\": ...}}. "
                                 "Records outside the caller's permissions answer 404.")},
        "servers": [{"url": web.root or "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": {f"E{s}": _json(_ref("Error"), text) for s, text in ERROR_STATUSES.items()},
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer",
                                "description": "an API token (`docket tokens create USER --name N`)"},
                "session": {"type": "apiKey", "in": "cookie", "name": _session_cookie(),
                            "description": "a browser session (writes also need the X-CSRF-Token header)"}},
        },
    }


def _session_cookie() -> str:
    try:
        from web.auth import SESSION_COOKIE
    except ImportError:  # pragma: no cover - sign-in is part of every installation
        return "docket_session"
    return str(SESSION_COOKIE)


def document(web: "Web", *, full: bool = True) -> dict[str, Any]:
    """The document for the running bundle, built once per bundle version (and readership)."""
    cache: dict[tuple[str, bool], dict[str, Any]] = getattr(web, "_openapi_cache", None) or {}
    key = (web.system.bundle.hash, full)
    if key not in cache:
        cache = {k: v for k, v in cache.items() if k[0] == key[0]}  # drop older bundle versions
        cache[key] = build_document(web, full=full)
        web._openapi_cache = cache  # type: ignore[attr-defined]
    return cache[key]


def routes(web: "Web") -> list[Route]:
    """`/api/v1/openapi.json` and the browsable `/api/docs`."""

    def readable(request: Request) -> dict[str, Any]:
        from web.auth import principal_of

        return document(web, full=principal_of(request) is not None)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(readable(request))

    async def docs(request: Request) -> Response:
        doc = readable(request)
        operations = []
        for path, methods in doc["paths"].items():
            for method, op in methods.items():
                operations.append({
                    "method": method.upper(), "path": path, "id": op.get("operationId", ""),
                    "summary": op.get("summary", ""), "description": op.get("description", ""),
                    "tag": (op.get("tags") or ["other"])[0],
                    "anonymous": {} in op.get("security", []),
                    "parameters": op.get("parameters", []),
                    "body": _body_text(op["requestBody"]) if "requestBody" in op else None,
                    "responses": sorted(op.get("responses", {})),
                })
        tags: dict[str, list[dict[str, Any]]] = {}
        for op in operations:
            tags.setdefault(op["tag"], []).append(op)
        schemas = {name: json.dumps(schema, ensure_ascii=False, indent=2)
                   for name, schema in doc["components"]["schemas"].items()}
        return web.page(request, "api_docs.html", info=doc["info"], tags=tags, schemas=schemas)

    return [Route("/api/v1/openapi.json", openapi_json, methods=["GET"]),
            Route("/api/docs", docs, methods=["GET"])]


__all__ = ["build_document", "camel", "document", "routes"]
