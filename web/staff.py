"""What the staff pages (inbox, records, definitions) share: who may do what with a task, which
fields a user may see, SLA chips, times and durations as people read them, safe redirects.

The pages decide nothing about permissions in templates: every rule is here, on the server,
and the templates only loop over what these functions return.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from engine.identity import Principal
from engine.storage.tables import flow_instances, tasks, user_roles, users
from flows.runtime import is_candidate
from forms.access import _json_has, record_scope, scope_of
from web.i18n import ui

log = logging.getLogger(__name__)
_UNDISPLAYABLE: set[tuple[str, str, str]] = set()
"""(form, field, error type) already logged by `field_text`: once per process, not per page."""

SLA_ORDER = {"missed": 0, "red": 1, "yellow": 2, "on_time": 3, "paused": 4, "met": 5}
"""Most urgent first: the inbox sorts by this, and a record shows its worst state."""
SLA_CHIP = {"missed": "red", "red": "red", "yellow": "yellow", "on_time": "green", "paused": "grey",
            "met": "grey"}


@dataclass(frozen=True)
class SlaChip:
    """The worst SLA state of a record as the inbox shows it."""

    status: str
    colour: str
    due_at: datetime | None
    remaining_work_seconds: float | None
    policy: str = ""
    target: str = ""


def worst_sla(states: Iterable[Any]) -> SlaChip | None:
    """The most urgent of a record's SLA states (SlaState objects), or None when there are none."""
    ranked = sorted(states, key=lambda s: (SLA_ORDER.get(s.status, 9),
                                           s.remaining_work_seconds if s.remaining_work_seconds is not None else 1e18))
    if not ranked:
        return None
    s = ranked[0]
    return SlaChip(s.status, SLA_CHIP.get(s.status, "grey"), getattr(s, "due_at", None),
                   getattr(s, "remaining_work_seconds", None), getattr(s, "policy", ""),
                   getattr(s, "target", ""))


def sla_states(runtime: Any, conn: Connection, form: str, record_ids: list[int]) -> dict[int, list[Any]]:
    """SLA states per record, one query, when the rules engine runs an `sla` service; else {}."""
    service = runtime.services.get("sla")
    if service is None or not record_ids:
        return {}
    return dict(service.states_for(conn, form, record_ids))


# -- tasks -----------------------------------------------------------------------------------
def candidate_condition(principal: Principal, t: Any = tasks) -> ColumnElement[bool]:
    """Tasks (of `t`: dk_tasks or an alias) the principal may claim: offered to one of their
    roles, to them by name, or to their department (or a department under it)."""
    parts: list[ColumnElement[bool]] = [_json_has(t.c.candidate_users, principal.username)]
    parts += [_json_has(t.c.candidate_roles, role) for role in sorted(principal.roles)]
    if principal.departments:
        parts.append(t.c.candidate_department.in_(sorted(principal.departments)))
    return or_(*parts)


def inbox_condition(principal: Principal, t: Any = tasks) -> ColumnElement[bool]:
    """Open tasks in the principal's inbox: held by them, or claimable by them. A claimed task
    that was escalated to them (keeping its holder) shows too."""
    held = t.c.assignee_user == principal.user_id if principal.user_id is not None else None
    claimable = and_(or_(t.c.status == "open", t.c.escalation_level > 0),
                     candidate_condition(principal, t))
    return and_(t.c.status.in_(("open", "claimed")),
                or_(held, claimable) if held is not None else claimable)


def holds(task: Mapping[str, Any], principal: Principal) -> bool:
    return task["status"] == "claimed" and principal.user_id is not None and task["assignee_user"] == principal.user_id


def may_claim(task: Mapping[str, Any], principal: Principal) -> bool:
    return task["status"] == "open" and (is_candidate(task, principal) or principal.is_admin)


def may_reassign(runtime: Any, task: Mapping[str, Any], principal: Principal) -> bool:
    """The holder may hand a task on (delegate); admins and those who see every record
    (supervisors' managers, directors) may reassign any open task; and a role the task's role
    reports to (bundle.yaml `reports_to`, at any height: the agents' supervisor, their manager)
    may reassign its team's tasks, held or not."""
    if task["status"] not in ("open", "claimed"):
        return False
    return (holds(task, principal) or principal.is_admin or scope_of(runtime, principal) == "all"
            or bool(principal.roles & _above(runtime.bundle.meta.roles, task.get("candidate_roles") or ())))


def _above(roles: Mapping[str, Any], names: Iterable[str]) -> set[str]:
    """The roles `names` report to, directly or through others (a loop in `reports_to` stops)."""
    found: set[str] = set()
    for name in names:
        boss = roles[name].reports_to if name in roles else None
        while boss and boss not in found:
            found.add(boss)
            boss = roles[boss].reports_to if boss in roles else None
    return found


def latest_instance(conn: Connection, form: str, record_id: int) -> dict[str, Any] | None:
    """The record's latest flow instance (None: no flow ever ran on it)."""
    row = conn.execute(select(flow_instances).where(
        flow_instances.c.form == form, flow_instances.c.record_id == record_id)
        .order_by(flow_instances.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def may_withdraw(record: Mapping[str, Any], flow_status: str, principal: Principal) -> bool:
    """Who submitted a record may take it back while its flow runs; an administrator may
    withdraw any (FlowService.withdraw with `override`)."""
    return flow_status in ("running", "incident") and (
        principal.is_admin or (record.get("created_by") is not None and record.get("created_by") == principal.username))


def may_reopen(flow: Any, flow_status: str, principal: Principal) -> bool:
    """An ended record may be reopened by an administrator and by the roles its flow's
    `reopen:` names."""
    return flow is not None and flow_status in ("completed", "withdrawn") and (
        principal.is_admin or principal.has_role(*flow.reopen_roles))


def people_for(conn: Connection, task: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Active users a task may be handed to: holders of its roles, its named candidates, its
    department's members; everyone active when the task names none of these."""
    return people_with(conn, roles=task.get("candidate_roles") or (), named=task.get("candidate_users") or (),
                       department=task.get("candidate_department"))


def people_with(conn: Connection, *, roles: Iterable[str] = (), named: Iterable[str] = (),
                department: str | None = None) -> list[tuple[str, str]]:
    """(username, display name) of the active users holding any of `roles`, named, or in
    `department`, by user name; everyone active when none is given."""
    roles, named = list(roles), list(named)
    query = select(users.c.username, users.c.display_name).where(users.c.is_active.is_(True))
    wanted: list[ColumnElement[bool]] = []
    if roles:
        wanted.append(users.c.id.in_(select(user_roles.c.user_id).where(user_roles.c.role.in_(roles))))
    if named:
        wanted.append(users.c.username.in_(named))
    if department:
        wanted.append(users.c.department == department)
    if wanted:
        query = query.where(or_(*wanted))
    return [(r.username, r.display_name or r.username) for r in conn.execute(query.order_by(users.c.username))]


def people_picker(conn: Connection) -> Callable[[str | None], list[tuple[str, str]]]:
    """What a `user` field offers on a staff page: the active users with the field's `role`
    (everyone active without one), each role read once per page."""
    seen: dict[str | None, list[tuple[str, str]]] = {}

    def offered(role: str | None) -> list[tuple[str, str]]:
        if role not in seen:
            seen[role] = people_with(conn, roles=[role] if role else ())
        return seen[role]
    return offered


REFERENCE_CHOICES = 200
"""The newest records a reference field's list offers on a staff page."""


def record_picker(conn: Connection, runtime: Any, principal: Principal,
                  locale: str) -> Callable[[Any], list[tuple[int, str]]]:
    """What a `reference` field offers on a staff page: the newest records of its form that the
    user may read, by their words (FormService.choices), each form read once per page."""
    forms = runtime.services["forms"]
    seen: dict[tuple[str, str | None], list[tuple[int, str]]] = {}

    def offered(spec: Any) -> list[tuple[int, str]]:
        target, show = spec.opt("form"), spec.opt("show")
        if target not in forms.forms:
            return []
        if (target, show) not in seen:
            scope = record_scope(runtime, target, principal, forms.tables[target])
            seen[(target, show)] = forms.choices(conn, target, locale, show=show, where=scope,
                                                 limit=REFERENCE_CHOICES)
        return seen[(target, show)]
    return offered


def reference_words(conn: Connection, runtime: Any, form: Any, values: Mapping[str, Iterable[Any]],
                    principal: Principal, locale: str) -> dict[str, dict[int, str]]:
    """Per `reference` field of `form` among `values` (field -> the ids shown), the words that
    identify each record it names (FormService.choices: query number and title), for the
    records the reader may read; one they may not is left out, to be shown by its id only, so
    its title is not told to them either. One query per field."""
    forms = runtime.services["forms"]
    out: dict[str, dict[int, str]] = {}
    for name, shown in values.items():
        if form.types[name].name != "reference":
            continue
        spec = form.spec.fields[name]
        target = spec.opt("form")
        ids = sorted({v for v in shown if isinstance(v, int) and not isinstance(v, bool)})
        if target not in forms.forms or not ids:
            continue
        table = forms.tables[target]
        scope = record_scope(runtime, target, principal, table)
        where = table.c.id.in_(ids) if scope is None else and_(table.c.id.in_(ids), scope)
        out[name] = dict(forms.choices(conn, target, locale, show=spec.opt("show"), where=where, limit=len(ids)))
    return out


def display_names(conn: Connection) -> dict[str, str]:
    """username -> display name of every user (a bundle's staff directory is small: read once
    per page, never per row)."""
    return {r.username: r.display_name or r.username
            for r in conn.execute(select(users.c.username, users.c.display_name))}


def names_for(conn: Connection, form: Any, fields: Iterable[str]) -> dict[str, str] | None:
    """display_names when any of `fields` of `form` is a `user` field; None when none is, so a
    page without one reads no users."""
    return display_names(conn) if any(form.types[n].name == "user" for n in fields) else None


def field_text(form: Any, name: str, value: Any, locale: str, names: Mapping[str, str] | None = None) -> str:
    """A field's value as staff pages show it: a `user` field by the person's name (from
    `names`, display_names), every other field as its type displays it. A value its type cannot
    read (an old JSON value from a history diff) is read as stored first, then shown as written.
    Exports keep the user name: a file is read back by machines, which need the stable key."""
    if names is not None and form.types[name].name == "user" and isinstance(value, str) and value in names:
        return names[value]
    try:
        return form.display(name, value, locale)
    except Exception:  # noqa: BLE001 - a JSON value (from a history diff): read it as stored first
        pass
    try:
        return form.display(name, form.types[name].from_db(value, form.spec.fields[name]), locale)
    except Exception as exc:  # noqa: BLE001 - a value its type cannot read back: shown as it was written
        # The page still shows something; whoever wrote the field type (a plugin's, often) hears
        # of it in the log, once.
        key = (form.name, name, type(exc).__name__)
        if key not in _UNDISPLAYABLE:
            _UNDISPLAYABLE.add(key)
            log.warning("field %s.%s (type %s) cannot display a value, shown as stored: %s: %s",
                        form.name, name, form.types[name].name, type(exc).__name__, exc)
        return "" if value is None else str(value)


def scoped_ids(runtime: Any, conn: Connection, form: str, principal: Principal,
               record_ids: Iterable[int]) -> set[int]:
    """Which of these records of `form` the principal may see (record_scope in one query)."""
    ids = sorted(set(record_ids))
    if not ids:
        return set()
    table = runtime.services["forms"].tables[form]
    query = select(table.c.id).where(table.c.id.in_(ids))
    condition = record_scope(runtime, form, principal, table)
    if condition is not None:
        query = query.where(condition)
    return {int(r[0]) for r in conn.execute(query)}


# -- fields a user may see -------------------------------------------------------------------
def hidden_fields(runtime: Any, form: str, principal: Principal) -> set[str]:
    """Fields of `form` this principal may not see.

    A flow node may declare `hidden_fields: [...]`: the people who work at that node (holders
    of its `assign.role`) do not see them, unless they see every record (`sees: all`) or are
    admins. `staff_only` fields are for staff: every signed-in principal is staff here, the
    public pages never show them. Nothing else is hidden.
    """
    if principal.is_admin or scope_of(runtime, principal) == "all":
        return set()
    hidden: set[str] = set()
    flows = runtime.services.get("flows")
    for flow in (flows.flows.values() if flows is not None else ()):
        if flow.form != form:
            continue
        for node in flow.nodes.values():
            names = node.options.get("hidden_fields") or ()
            role = (node.options.get("assign") or {}).get("role")
            if names and role in principal.roles:
                hidden.update(str(n) for n in names)
    return hidden


# -- words and numbers as people read them ---------------------------------------------------
def local_time(at: datetime | None, zone: str, *, seconds: bool = False) -> str:
    """A UTC timestamp in the bundle's time zone, e.g. 2026-11-23 10:00."""
    if at is None:
        return ""
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def duration_text(delta: timedelta | None, locale: str) -> str:
    """A duration in days, hours and minutes (two largest units), e.g. "2d 3h" / "2天3小时"."""
    if delta is None:
        return ""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    zh = locale.startswith("zh")
    units = [(days, "天" if zh else "d"), (hours, "小时" if zh else "h"), (mins, "分钟" if zh else "m")]
    shown = [(n, u) for n, u in units if n][:2]
    if not shown:
        return "0分钟" if zh else "0m"
    return ("" if zh else " ").join(f"{n}{u}" for n, u in shown)


def status_labeller(bundle: Any, form: Any, locale: str, *, customer: bool = False) -> Any:
    """status value -> its label in the form's status list (`lookup.statuses`), if it has one
    (for a `customer`, its `customer_label` where it has one); the engine's own statuses (new,
    withdrawn) read as words in any case."""
    name = (form.spec.lookup or {}).get("statuses")
    options = bundle.all("list").get(name) if name else None

    def label(value: str | None) -> str:
        if not value:
            return ""
        option = options.find(value) if options is not None else None
        if option:
            return option.customer_text(locale) if customer else option.text(locale)
        word = ui(f"status_{value}", locale)
        return value if word == f"status_{value}" else word
    return label


def safe_next(value: Any, fallback: str) -> str:
    """A local path to go back to after a POST; anything else (another site) is the fallback."""
    text = str(value or "")
    if text.startswith("/") and not text.startswith("//") and "\\" not in text and "\n" not in text:
        return text
    return fallback


__all__ = ["SlaChip", "candidate_condition", "display_names", "duration_text", "field_text", "hidden_fields",
           "holds", "inbox_condition", "is_candidate", "latest_instance", "local_time", "may_claim", "may_reassign",
           "may_reopen", "may_withdraw", "names_for", "people_for", "people_picker", "people_with", "safe_next",
           "scoped_ids", "sla_states", "status_labeller", "worst_sla"]
