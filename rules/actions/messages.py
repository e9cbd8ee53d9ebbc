"""Actions that send: `notify` (a templated message through a channel) and `webhook` (the
record as JSON to a configured webhook channel). Both only queue on the outbox, inside the
caller's transaction: a rolled-back change sends nothing, and delivery retries happen later."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping

from sqlalchemy.engine import Connection

from engine.actions import ActionContext, ActionError, ActionScope, BaseAction
from engine.channels.base import OutboundMessage
from engine.errors import ValidationFailed
from engine.kinds import BuildContext
from engine.site import configured_public_url, lookup_url, record_url
from engine.storage.db import savepoint
from engine.types import YamlPath, label_text
from engine.yamlsource import Document
from forms.inbound import Mapping_, build_source, check_constant, check_mappable, map_values
from rules.actions.common import (RECIPIENT_SCHEMA, add_history, check_recipients, json_safe,
                                  resolve_recipients, write_fields)

if TYPE_CHECKING:
    from engine.runtime import Runtime

TEMPLATE_NAMES = frozenset({"record", "event", "rule", "form", "now", "tags", "link", "track_link", "sla",
                            "text"})
"""Names a message template may use besides the record's fields."""


def channel_types(meta: Any) -> dict[str, str]:
    """Channel name -> channel type, as the outbox will know them (`log` is always there)."""
    from engine.outbox import configured_channels

    return {name: config.type for name, config in configured_channels(meta).items()}


def check_channel(name: str, ctx: BuildContext, doc: Document, path: YamlPath,
                  want: str | None = None) -> None:
    if ctx.meta is None:
        return
    known = channel_types(ctx.meta)
    if name not in known:
        ctx.unknown(doc, path, "channel", name, known, code="unknown-channel")
    elif want is not None and known[name] != want:
        ctx.error(doc, path, f"channel '{name}' is a {known[name]} channel, not a {want} one",
                  code="action")


def template_context(act: ActionContext) -> dict[str, Any]:
    """What a message template sees: the record's fields, `record`, `text` (the fields as people
    read them), `event`, `sla`, `now`, `tags`, `link` (the record's staff page) and `track_link`
    (the customer's progress lookup)."""
    names = dict(act.names or act.record)
    event = act.event
    names.update({
        "record": act.record, "now": act.runtime.clock.now(), "form": act.form,
        "rule": act.source,
        "event": {"name": event.name, **dict(event.data)} if event is not None else {},
        "sla": _sla_names(act) if event is not None and event.name.startswith("sla.") else {},
    })
    names.setdefault("tags", [])
    if act.form is not None:
        compiled = act.service("forms").form(act.form)
        statuses = (compiled.spec.lookup or {}).get("statuses")
        names.setdefault("text", FieldText(compiled, act.record, act.runtime.bundle.meta.default_locale,
                                           act.runtime.bundle.all("list").get(statuses) if statuses else None))
    base = configured_public_url()
    # The record's staff page: at the public address when one is set, else the path alone.
    names.setdefault("link", record_url(base, act.form, act.record_id) if act.record_id is not None else "")
    # The customer's own page (progress, and the step they may answer): only as a full address,
    # which a message to a customer needs; empty without DOCKET_PUBLIC_URL, so `{% if track_link %}`.
    names.setdefault("track_link", lookup_url(base, act.record.get("query_no")) if base else "")
    return names


class FieldText(Mapping[str, str]):
    """`text.<field>` in a message: the field as people read it in the bundle's default language
    (`text.urgency` is 紧急 where `urgency` is `urgent`; dates in the bundle's zone), worked out
    only for the fields a message names; `text.status` is the record's status in the words of
    the form's status list (`lookup: statuses:`), the customer's words (已退费, not `refunded`;
    an option's `customer_label` where it has one)."""

    def __init__(self, compiled: Any, record: Mapping[str, Any], locale: str, statuses: Any = None):
        self._compiled, self._record, self._locale = compiled, record, locale
        self._statuses = statuses

    def __getitem__(self, name: str) -> str:
        if name == "status" and name not in self._compiled.types:
            value = self._record.get("status") or ""
            option = self._statuses.find(value) if self._statuses is not None and value else None
            return option.customer_text(self._locale) if option else str(value)
        if name not in self._compiled.types:
            raise KeyError(name)
        return self._compiled.display(name, self._record.get(name), self._locale)

    def __iter__(self) -> Iterator[str]:
        return iter([*self._compiled.types, "status"])

    def __len__(self) -> int:
        return len(self._compiled.types) + 1


def _sla_names(act: ActionContext) -> dict[str, Any]:
    """`sla` in a message: the SLA event's data (`target`, `due_at`, `level`...) and `label`, the
    target's label in the bundle's default language (首次响应, not `response`)."""
    data = dict(act.event.data) if act.event is not None else {}
    policy = act.runtime.services["sla"].policies.get(data.get("policy")) if "sla" in act.runtime.services else None
    target = policy.targets.get(data.get("target")) if policy is not None else None
    if target is not None:
        data["label"] = label_text(target.label, act.runtime.bundle.meta.default_locale, target.name)
    return data


def _link_data(link: str) -> dict[str, str]:
    """`link` for channels that can show one: the record's page when it is a full address."""
    return {"link": link} if link.startswith(("http://", "https://")) else {}




_ADDRESSES = {"email": ("email", "an e-mail address", "an e-mail"),
              "sms": ("phone", "a phone number", "an SMS")}
"""Channel type -> the field type of its addresses, that address in words, the channel in words."""


def _check_field_addresses(raw: Any, kind: str | None, form: Any, ctx: BuildContext, doc: Document,
                           path: YamlPath, channel: str) -> None:
    """A `{field: f}` recipient holding the other kind of address (an e-mail field on an SMS
    channel, a phone on an e-mail one) is a load error: the message would fail on every send."""
    if kind not in _ADDRESSES:
        return
    items = raw if isinstance(raw, list) else [raw]
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("field") not in form.fields:
            continue
        ftype = getattr(ctx.registry.field_types.get(form.fields[item["field"]].type), "name", None)
        held = next((other for other, (field_type, *_) in _ADDRESSES.items() if field_type == ftype), None)
        if held is None or held == kind:
            continue
        wanted, needed, _ = _ADDRESSES[kind]
        ctx.error(doc, (path + (i,) if isinstance(raw, list) else path) + ("field",),
                  f"'{item['field']}' holds {_ADDRESSES[held][1]}, and channel '{channel}' sends to {needed}",
                  code="recipient", hint=f"name {'an' if wanted[0] in 'aeiou' else 'a'} {wanted} field, or send on {_ADDRESSES[held][2]} channel")


class Notify(BaseAction):
    name = "notify"
    aliases = ("send",)
    description = ("Queues a message on the outbox to people (assignee, superior, submitter, a "
                   "role, a user, a field holding an address): subject and body are sandboxed "
                   "Jinja2 templates over the record.")
    options_schema = {"required": ["to", "body"], "properties": {
        "channel": {"type": "string", "description": "a channel of bundle.yaml (default log)"},
        "to": {"anyOf": [RECIPIENT_SCHEMA, {"type": "array", "minItems": 1, "items": RECIPIENT_SCHEMA}]},
        "subject": {"type": "string"},
        "body": {"type": "string"},
        "once": {"type": "boolean", "description": "at most once per record and rule (default false)"},
    }}
    needs_record = False
    examples = ("- action: notify\n  channel: log\n  to: [assignee, superior]\n"
                "  subject: \"Ticket {{ query_no }} is due soon\"\n"
                "  body: \"{{ subject }}: {{ sla.target }} is due at {{ sla.due_at }}\"\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        from engine.templating import compile_in_document

        channel = options.get("channel", "log")
        if "channel" in options:
            check_channel(channel, ctx, doc, path + ("channel",))
        to = check_recipients(options["to"], ctx, doc, path + ("to",), scope.form)
        names = None if scope.names is None else scope.names | TEMPLATE_NAMES
        form = ctx.definitions.get("form", {}).get(scope.form) if scope.form else None
        if form is not None and ctx.meta is not None:
            _check_field_addresses(options["to"], channel_types(ctx.meta).get(channel), form, ctx, doc,
                                   path + ("to",), channel)
        # `text.<field>` must name a field of the form, or `status` (checked here, not when a
        # message fails).
        members = {"text": {*form.fields, "status"}} if form is not None else None
        subject = (compile_in_document(ctx, doc, path + ("subject",), html=False, names=names, members=members)
                   if "subject" in options else None)
        body = compile_in_document(ctx, doc, path + ("body",), html=False, names=names, members=members)
        return {"channel": channel, "to": to, "subject": subject, "body": body,
                "once": bool(options.get("once"))}

    def run(self, act: ActionContext, compiled: Any) -> None:
        outbox = act.service("outbox")
        kind = channel_types(act.runtime.bundle.meta).get(compiled["channel"], compiled["channel"])
        recipients = resolve_recipients(act, compiled["to"], kind)
        if not recipients:
            add_history(act, "notify.skipped", {"channel": compiled["channel"],
                                                "reason": "no recipient has an address on this channel"})
            return
        context = template_context(act)
        subject = compiled["subject"].render(context) if compiled["subject"] is not None else ""
        body = compiled["body"].render(context)
        key = None
        if compiled["once"] and act.record_id is not None:
            key = f"{act.source}:{act.form}:{act.record_id}"
        message_id = outbox.enqueue(act.conn, channel=compiled["channel"], to=recipients,
                                    subject=" ".join(subject.split()), body=body,
                                    data={"form": act.form, "record_id": act.record_id,
                                          "by": act.source, **_link_data(context["link"])}, key=key)
        add_history(act, "notified", {"channel": compiled["channel"], "to": recipients,
                                      "subject": subject[:200], "outbox_id": message_id})


REPLY_KIND = "record_fields"
"""The outbox reply kind of a webhook action's `answer:`: the answer's values go into the record."""


class Webhook(BaseAction):
    name = "webhook"
    description = ("Queues the record (its fields, query number, status and the event) as JSON "
                   "for a webhook channel of bundle.yaml, e.g. an ERP or CRM. With `answer`, "
                   "values of the receiver's JSON answer are written into the record when it "
                   "is delivered (the ERP's voucher number, a waybill's status).")
    options_schema = {"required": ["channel"], "properties": {
        "channel": {"type": "string", "description": "a channel of type webhook"},
        "fields": {"type": "array", "items": {"type": "string"},
                   "description": "the fields sent (default: all)"},
        "answer": {"type": "object", "minProperties": 1,
                   "description": "field -> where its value is in the receiver's JSON answer: a path "
                                  "($.a.b), {path: ..., default: ...} or {value: ...}"},
    }}
    needs_record = False
    examples = ("- action: webhook\n  channel: erp_hook\n  fields: [subject, cost]\n",
                "- action: webhook\n  channel: erp_hook\n  fields: [subject, cost]\n"
                "  answer:\n    cost: $.booking.amount\n")

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        check_channel(options["channel"], ctx, doc, path + ("channel",), want="webhook")
        form = ctx.definitions.get("form", {}).get(scope.form) if scope.form else None
        for i, name in enumerate(options.get("fields", [])):
            if form is not None and name not in form.fields:
                ctx.unknown(doc, path + ("fields", i), "field", name, form.fields)
        answer: dict[str, Any] = {}
        if "answer" in options and scope.form is None:
            ctx.error(doc, path + ("answer",), "an answer is written into a record: this action "
                      "runs without one (a scheduled rule?)", code="action")
        elif "answer" in options and form is not None:
            for name, raw in options["answer"].items():
                at = path + ("answer", name)
                built = build_source(doc, at, raw, ctx, expressions=False)
                if check_mappable(doc, at, name, form, ctx) and built is not None \
                        and check_constant(doc, at, raw, built, name, form, ctx):
                    answer[name] = built.to_json()
        return {"channel": options["channel"], "fields": options.get("fields"), "answer": answer}

    def run(self, act: ActionContext, compiled: Any) -> None:
        outbox = act.service("outbox")
        record = act.record
        if compiled["fields"]:
            record = {k: record.get(k) for k in compiled["fields"]}
        event = act.event
        data = {
            "form": act.form, "record_id": act.record_id, "query_no": act.record.get("query_no"),
            "status": act.record.get("status"), "fields": json_safe(record),
            "event": {"name": event.name, "at": event.at.isoformat(), **json_safe(dict(event.data))}
            if event is not None else None,
            "by": act.source,
        }
        reply = None
        if compiled.get("answer") and act.form is not None and act.record_id is not None:
            reply = {"kind": REPLY_KIND, "form": act.form, "record_id": act.record_id,
                     "values": compiled["answer"], "by": act.source}
        try:
            message_id = outbox.enqueue(act.conn, channel=compiled["channel"], to=["webhook"],
                                        subject=event.name if event is not None else "docket",
                                        body="", data=data, reply=reply)
        except Exception as exc:  # an unknown channel at run time: a clear failure
            raise ActionError(str(exc)) from exc
        add_history(act, "webhook.queued", {"channel": compiled["channel"], "outbox_id": message_id})


def apply_answer(runtime: "Runtime", conn: Connection, message: OutboundMessage, answer: Any) -> None:
    """Write a webhook receiver's answer into the record its message was about, validated like
    any edit, in the transaction that marks the message sent (`Outbox.on_reply`).

    A path that finds nothing leaves its field as it is (a receiver that leaves a key out has
    nothing to say about it). An answer that is no JSON object or array, or values the form refuses, change
    nothing and say why on the record's timeline (`webhook.answer_refused`).
    """
    reply = message.reply or {}
    act = ActionContext(conn=conn, runtime=runtime, form=reply["form"], record_id=int(reply["record_id"]),
                        record={}, actor=None, source=str(reply.get("by") or ""))
    if not isinstance(answer, (dict, list)):
        add_history(act, "webhook.answer_refused", {"channel": message.channel, "outbox_id": message.id,
                                                    "reason": "the receiver answered no JSON object or array"})
        return
    sources = {name: Mapping_.from_json(data) for name, data in reply["values"].items()}
    values = {name: value for name, value in map_values(sources, answer).items() if value is not None}
    if values:
        try:
            with savepoint(conn):
                changes = write_fields(act, act.form or "", act.record_id or 0, values)
        except ValidationFailed as exc:
            add_history(act, "webhook.answer_refused", {"channel": message.channel, "outbox_id": message.id,
                                                        "reason": str(exc)[:1000]})
            return
    else:
        changes = {}
    add_history(act, "webhook.answered", {"channel": message.channel, "outbox_id": message.id,
                                          "changes": changes})
