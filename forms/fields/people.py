"""People of the organisation: a user, a role, a department (roles and departments come from
bundle.yaml, so a choice list never drifts from the organisation it describes)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from sqlalchemy import String, select
from sqlalchemy.types import TypeEngine

from engine.lists import Option, OptionList
from engine.schema import NAME_PATTERN
from engine.storage.tables import user_roles, users
from forms.fields.base import FieldType
from forms.fields.choice import Region, Select
from forms.spec import FieldSpec

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class User(FieldType):
    name = "user"
    aliases = ("username", "person")
    value_kind = "text"
    description = ("A user of Docket (an account manager, the owner), stored by user name. Staff "
                   "pages offer the active users by their names (only those holding `role` when it "
                   "is set) and show the value by the person's name; the API and imports take the "
                   "user name, which must be an active user's (holding `role`).")
    options_schema = {"properties": {"role": {"type": "string", "pattern": NAME_PATTERN,
                                              "description": "offer only users with this role"}}}
    examples = ("account_manager:\n  type: user\n  label: {zh-CN: 客户经理, en: Account manager}\n  role: agent\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(64)

    def check(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> None:
        role = spec.opt("role")
        if role is not None and ctx.meta is not None and role not in ctx.meta.roles:
            ctx.unknown(doc, path + ("role",), "role", role, ctx.meta.roles)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if not isinstance(raw, str) or not USERNAME.fullmatch(raw.strip()):
            raise self.invalid("not_username")
        return raw.strip()

    def check_stored(self, conn: Any, value: Any, spec: FieldSpec, tables: Mapping[str, Any]) -> None:
        """The user must exist and be active, and hold `role` when the field names one: a typed
        name that is nobody's would route work and copies to no one."""
        row = conn.execute(select(users.c.id).where(users.c.username == value, users.c.is_active.is_(True))).first()
        if row is None:
            raise self.invalid("no_user")
        role = spec.opt("role")
        if role is not None and conn.execute(select(user_roles.c.user_id).where(
                user_roles.c.user_id == row[0], user_roles.c.role == role)).first() is None:
            raise self.invalid("user_without_role", role=role)


def _restrict(names: list[str], raw: Mapping[str, Any], ctx: Any, doc: Any, path: tuple[Any, ...],
              what: str) -> set[str] | None:
    """The names listed under `only:` (unknown ones reported), or None when there is no `only`."""
    only = raw.get("only")
    if only is None:
        return None
    for i, name in enumerate(only):
        if name not in names:
            ctx.unknown(doc, path + ("only", i), what, name, names)
    return set(only)


_ONLY = {"type": "array", "minItems": 1, "items": {"type": "string"}}


class Role(Select):
    name = "role"
    aliases = ()
    description = "One of the bundle's roles (from bundle.yaml), e.g. the team a complaint is passed to."
    options_schema = {"properties": {"only": {**_ONLY, "description": "offer only these roles"}}}
    examples = ("handled_by_role:\n  type: role\n  label: {zh-CN: 处理岗位, en: Handling role}\n  only: [agent, supervisor]\n",)

    def load_choices(self, raw: Mapping[str, Any], ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        if ctx.meta is None:
            return None
        roles = ctx.meta.roles
        only = _restrict(list(roles), raw, ctx, doc, path, "role")
        span = doc.source_map.value(path)
        options = tuple(Option(name, role.label, (), span) for name, role in roles.items()
                        if only is None or name in only)
        return OptionList(path[-1], "roles", options, span)


class Department(Region):
    name = "department"
    aliases = ("dept",)
    description = ("One of the bundle's departments (from bundle.yaml, as a tree by `parent`); any "
                   "level may be chosen.")
    options_schema = {"properties": {"only": {**_ONLY, "description": "offer only these departments and their sub-departments"}}}
    examples = ("responsible_department:\n  type: department\n  label: {zh-CN: 责任部门, en: Responsible department}\n",)

    def load_choices(self, raw: Mapping[str, Any], ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        if ctx.meta is None:
            return None
        departments = ctx.meta.departments
        only = _restrict(list(departments), raw, ctx, doc, path, "department")
        span = doc.source_map.value(path)
        children: dict[str | None, list[str]] = {}
        for code, dep in departments.items():
            parent = dep.parent if dep.parent in departments else None
            children.setdefault(parent, []).append(code)
        placed: set[str] = set()

        def option(code: str) -> Option:
            placed.add(code)
            kids = tuple(option(c) for c in children.get(code, ()) if c not in placed)
            return Option(code, departments[code].label, kids, span)

        roots = [option(code) for code in children.get(None, []) if code not in placed]
        roots += [option(code) for code in departments if code not in placed]  # a parent cycle
        if only is not None:
            roots = _pick(roots, only)
        return OptionList(path[-1], "departments", tuple(roots), span)


def _pick(options: list[Option] | tuple[Option, ...], only: set[str]) -> list[Option]:
    """The options named in `only` (with their sub-trees), each once, wherever they sit."""
    out: list[Option] = []
    for option in options:
        if option.value in only:
            out.append(option)
        else:
            out.extend(_pick(option.children, only))
    return out
