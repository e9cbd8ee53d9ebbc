"""Row-level access: which records of a form a principal may see.

Each role in bundle.yaml says how far its holders see (`sees`):

- `all`: every record;
- `department`: records their department (or a sub-department) works on: a task of the record
  was offered to the department, or is or was held by one of its members; plus `involved`;
- `involved` (the default): records they submitted, hold or held a task on, may claim a task
  of (by user or role), acted on, or were copied on (抄送).

A principal sees the union over their roles. The rule is one SQL condition on the record table,
so lists, reports and drill-downs apply it inside the database and never load records to filter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, and_, cast, exists, false, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from engine.identity import Principal
from engine.runtime import Runtime
from engine.storage.tables import history, tasks, user_roles, users

SCOPES = ("all", "department", "involved")
"""The values of a role's `sees`, widest first."""


def scope_of(runtime: Runtime, principal: Principal) -> str:
    """The widest scope any of the principal's roles gives."""
    if principal.is_admin:
        return "all"
    roles = runtime.bundle.meta.roles
    given = {getattr(roles.get(name), "sees", "involved") or "involved" for name in principal.roles}
    for scope in SCOPES:
        if scope in given:
            return scope
    return "involved"


def record_scope(runtime: Runtime, form: str, principal: Principal, table: Any) -> ColumnElement[bool] | None:
    """The condition on `table` (the form's record table) selecting what the principal may see;
    None when they see everything."""
    scope = scope_of(runtime, principal)
    if scope == "all":
        return None
    conditions = [_involved(form, principal, table)]
    if scope == "department" and principal.departments:
        conditions.append(_department(form, principal, table))
    return or_(*conditions)


def can_read(conn: Connection, runtime: Runtime, form: str, record_id: int, principal: Principal) -> bool:
    """True if the principal may see this record (False also when it does not exist)."""
    table = runtime.services["forms"].tables[form]
    condition = record_scope(runtime, form, principal, table)
    query = select(table.c.id).where(table.c.id == record_id)
    if condition is not None:
        query = query.where(condition)
    return conn.execute(query).first() is not None


def load_principal(conn: Connection, runtime: Runtime, username: str) -> Principal | None:
    """The active user `username` as a Principal, or None if unknown or deactivated."""
    row = conn.execute(select(users.c.id, users.c.display_name, users.c.department, users.c.is_active)
                       .where(users.c.username == username)).first()
    if row is None or not row.is_active:
        return None
    roles = frozenset(r[0] for r in conn.execute(select(user_roles.c.role).where(user_roles.c.user_id == row.id)))
    meta = runtime.bundle.meta
    is_admin = any(getattr(meta.roles.get(r), "admin", False) for r in roles)
    return Principal(username, roles, frozenset(_with_children(meta, row.department)), is_admin,
                     row.display_name or username, int(row.id), row.department)


def _with_children(meta: Any, department: str | None) -> list[str]:
    if not department:
        return []
    found = [department]
    changed = True
    while changed:
        changed = False
        for code, dep in meta.departments.items():
            if dep.parent in found and code not in found:
                found.append(code)
                changed = True
    return found


def _json_has(column: Any, word: str) -> ColumnElement[bool]:
    """True where a JSON list column holds the string `word` (portable: SQLite and PostgreSQL
    store the list as JSON text, so the quoted word appears verbatim)."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(column, String).like(f'%"{escaped}"%', escape="\\")


def _task_of_record(form: str, table: Any) -> ColumnElement[bool]:
    return and_(tasks.c.form == form, tasks.c.record_id == table.c.id)


def _involved(form: str, principal: Principal, table: Any) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = [table.c.created_by == principal.username]
    task_parts: list[ColumnElement[bool]] = [_json_has(tasks.c.candidate_users, principal.username)]
    if principal.user_id is not None:
        task_parts += [tasks.c.assignee_user == principal.user_id, tasks.c.completed_by == principal.user_id]
    for role in sorted(principal.roles):
        task_parts.append(and_(tasks.c.status.in_(("open", "claimed")), _json_has(tasks.c.candidate_roles, role)))
    parts.append(exists().where(_task_of_record(form, table), or_(*task_parts)))
    parts.append(exists().where(history.c.form == form, history.c.record_id == table.c.id,
                                or_(history.c.actor == principal.username,
                                    and_(history.c.kind == "task.copied",
                                         _json_has(history.c.data, principal.username)))))
    return or_(*parts)


def _department(form: str, principal: Principal, table: Any) -> ColumnElement[bool]:
    departments = sorted(principal.departments)
    if not departments:
        return false()
    members = select(users.c.id).where(users.c.department.in_(departments))
    return exists().where(_task_of_record(form, table), or_(
        tasks.c.candidate_department.in_(departments),
        tasks.c.assignee_user.in_(members),
        tasks.c.completed_by.in_(members)))


__all__ = ["SCOPES", "can_read", "load_principal", "record_scope", "scope_of"]
