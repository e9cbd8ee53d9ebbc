"""Helpers shared by the built-in actions: values as forms accept them, recipients, history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping

from sqlalchemy import select

from engine.actions import ActionContext
from engine.errors import did_you_mean
from engine.kinds import BuildContext
from engine.storage.prepared import INSERT_HISTORY
from engine.storage.tables import tasks, user_roles, users
from engine.types import YamlPath
from engine.yamlsource import Document


def plain(value: Any) -> Any:
    """A value as a submission carries it (text for dates and money), so the receiving field
    type parses it exactly as it would a typed-in one."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def json_safe(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in values.items()}


def write_fields(act: ActionContext, form: str, record_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate `values` through the form (as a step allowed to edit exactly these fields) and
    store them in the caller's transaction; returns the diff."""
    forms = act.service("forms")
    compiled = forms.form(form)
    existing = forms.read(act.conn, form, record_id)
    clean = compiled.validate({k: plain(v) for k, v in values.items()}, existing=existing,
                              editable=set(values), ctx=act.eval_context(),
                              extra_names={"user": {"username": act.actor}})
    return forms.update_fields(act.conn, form, record_id, compiled.edited(clean, values),  # type: ignore[no-any-return]
                               actor=act.actor)




def add_history(act: ActionContext, kind: str, data: Mapping[str, Any]) -> None:
    """An entry on the record's timeline, by the rule or flow step that ran the action."""
    if act.form is None or act.record_id is None:
        return
    INSERT_HISTORY.later(act.conn, dict(
        instance_id=None, form=act.form, record_id=act.record_id, kind=kind, node=None,
        actor=act.actor or "system", at=act.runtime.clock.now(), data={"by": act.source, **json_safe(data)}))


def open_tasks(act: ActionContext, node: str | None = None) -> list[Mapping[str, Any]]:
    """The record's open tasks (optionally at one node), oldest first."""
    query = select(tasks).where(tasks.c.form == act.form, tasks.c.record_id == act.record_id,
                                tasks.c.status.in_(("open", "claimed")))
    if node:
        query = query.where(tasks.c.node == node)
    return list(act.conn.execute(query.order_by(tasks.c.id)).mappings())


PEOPLE_WORDS = ("assignee", "superior", "submitter", "escalated_to")
"""The recipients written as a bare word; any other is a role, user, field or address mapping."""

RECIPIENT_SCHEMA: dict[str, Any] = {
    "description": "assignee, superior, submitter, escalated_to, or {role|user|field|address: ...}",
    "anyOf": [
        # Any word: check_recipients says which are known, and what a role or user written bare
        # should be (an enum here gave "expected a list" for `to: quality`, with no hint).
        {"type": "string", "examples": list(PEOPLE_WORDS)},
        {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
         "properties": {"role": {"type": "string"}, "user": {"type": "string"},
                        "field": {"type": "string"}, "address": {"type": "string"}}},
    ],
}


def check_recipients(raw: Any, ctx: BuildContext, doc: Document, path: YamlPath, form_name: str | None) -> list[Any]:
    """Load checks of a `to:` list: roles exist, fields exist on the form."""
    items = raw if isinstance(raw, list) else [raw]
    form = ctx.definitions.get("form", {}).get(form_name) if form_name else None
    for i, item in enumerate(items):
        ipath = path + (i,) if isinstance(raw, list) else path
        if isinstance(item, str):
            if item not in PEOPLE_WORDS:
                # Not a word Docket knows: the message would silently go to nobody.
                ctx.error(doc, ipath, f"unknown recipient '{item}'", code="recipient",
                          hint=_recipient_hint(item, ctx, form))
            elif form_name is None:
                ctx.error(doc, ipath, f"'{item}' needs a record: this rule has no form", code="recipient")
            continue
        if not isinstance(item, dict):
            continue
        if "role" in item and ctx.meta is not None and item["role"] not in ctx.meta.roles:
            ctx.unknown(doc, ipath + ("role",), "role", item["role"], ctx.meta.roles)
        if "field" in item:
            if form is None:
                if form_name is None:
                    ctx.error(doc, ipath + ("field",), "a field recipient needs a record", code="recipient")
            elif item["field"] not in form.fields:
                ctx.unknown(doc, ipath + ("field",), "field", item["field"], form.fields)
    return items


def _recipient_hint(word: str, ctx: BuildContext, form: Any = None) -> str:
    """What `to: word` was meant to be: a field, a role or a demo user written bare, or a
    misspelt word."""
    meta = ctx.meta
    is_role = meta is not None and word in meta.roles
    if form is not None and word in form.fields:
        # `to: account_manager`, the form's account-manager field (and, here, a role too): the
        # role alone sent it to every account manager, not the complaint's own.
        return (f"the person or address in the field '{word}' is written {{field: {word}}}"
                + (f"; the role, {{role: {word}}}" if is_role else ""))
    if is_role:
        return f"a role is written {{role: {word}}}"
    if meta is not None and word in {u.username for u in meta.demo_users}:
        return f"a user is written {{user: {word}}}"
    return did_you_mean(word, PEOPLE_WORDS) or (
        "write assignee, superior, submitter, escalated_to, or {role: r}, {user: name}, {field: f}, "
        "{address: text}")


def _users_with_role(act: ActionContext, role: str) -> list[int]:
    rows = act.conn.execute(select(users.c.id).join(user_roles, users.c.id == user_roles.c.user_id)
                            .where(user_roles.c.role == role, users.c.is_active.is_(True))
                            .order_by(users.c.username))
    return [r[0] for r in rows]


def _user_ids(act: ActionContext, names: Iterable[str]) -> list[int]:
    names = [n for n in names if n]
    if not names:
        return []
    return [r[0] for r in act.conn.execute(select(users.c.id).where(users.c.username.in_(names)))]


def resolve_recipients(act: ActionContext, items: list[Any], channel_type: str) -> list[str]:
    """Addresses for the channel: e-mail and phone of users on email/sms channels, usernames
    on the others; `field` and `address` recipients are used as written."""
    user_ids: list[int] = []
    addresses: list[str] = []
    task_rows = None
    for item in items:
        if isinstance(item, str):
            if item in ("assignee", "superior"):
                if task_rows is None:
                    task_rows = open_tasks(act)
                holders = [t["assignee_user"] for t in task_rows if t["assignee_user"]]
                event_task = (act.event.data.get("task_id") if act.event is not None else None)
                if event_task and not holders:
                    row = act.conn.execute(select(tasks.c.assignee_user).where(tasks.c.id == event_task)).first()
                    holders = [row[0]] if row and row[0] else []
                if item == "assignee":
                    user_ids += holders
                    if not holders:  # nobody holds the task yet: everyone who may claim it
                        for t in task_rows:
                            for role in t["candidate_roles"] or []:
                                user_ids += _users_with_role(act, role)
                else:
                    user_ids += _superiors(act, holders, task_rows)
            elif item == "submitter":
                user_ids += _user_ids(act, [act.record.get("created_by") or ""])
            elif item == "escalated_to" and act.event is not None and act.event.data.get("role"):
                user_ids += _users_with_role(act, str(act.event.data["role"]))  # sla.escalated
            continue
        if "role" in item:
            user_ids += _users_with_role(act, item["role"])
        elif "user" in item:
            user_ids += _user_ids(act, [str(item["user"])])
        elif "field" in item:
            value = act.record.get(item["field"])
            if value:
                form = act.service("forms").form(act.form)
                if form.field(item["field"]).type == "user":
                    user_ids += _user_ids(act, [str(value)])
                else:
                    addresses.append(str(value))
        elif "address" in item:
            addresses.append(str(item["address"]))
    if user_ids:
        column = {"email": users.c.email, "sms": users.c.phone}.get(channel_type, users.c.username)
        rows = act.conn.execute(select(users.c.id, column).where(users.c.id.in_(set(user_ids))))
        found = {r[0]: r[1] for r in rows}
        addresses += [found[u] for u in dict.fromkeys(user_ids) if found.get(u)]
    return list(dict.fromkeys(addresses))


def _superiors(act: ActionContext, holders: list[int], task_rows: list[Mapping[str, Any]]) -> list[int]:
    """Direct superiors: each holder's manager; without holders, the role the task's role
    reports to (bundle.yaml `reports_to`)."""
    out: list[int] = []
    if holders:
        rows = act.conn.execute(select(users.c.manager_id).where(users.c.id.in_(holders)))
        out += [r[0] for r in rows if r[0]]
    if not out:
        roles = act.runtime.bundle.meta.roles
        for t in task_rows:
            for role in t["candidate_roles"] or []:
                boss = roles.get(role).reports_to if role in roles else None
                if boss:
                    out += _users_with_role(act, boss)
    return out

