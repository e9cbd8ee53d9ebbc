"""`bundle.yaml`: the bundle's name, version, languages, time zone, calendar, roles, departments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.errors import Diagnostics
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.types import Label, label_text
from engine.yamlsource import Document

_NAMED = {"type": "object", "propertyNames": {"pattern": NAME_PATTERN}}

BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["bundle", "version"],
    "additionalProperties": False,
    "properties": {
        "bundle": {"type": "string", "pattern": NAME_PATTERN, "description": "the bundle's name"},
        "version": {"type": "string", "description": "the analysts' version label, e.g. '1.4'"},
        "label": LABEL_SCHEMA,
        "description": LABEL_SCHEMA,
        "locales": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "default_locale": {"type": "string"},
        "timezone": {"type": "string"},
        "calendar": {"type": "object"},
        "roles": {
            **_NAMED,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"label": LABEL_SCHEMA, "description": LABEL_SCHEMA,
                               "reports_to": {"type": "string"},
                               "sees": {"enum": ["all", "department", "involved"],
                                        "description": "which records holders see: every record, their "
                                                       "department's, or those they are involved in "
                                                       "(default)"},
                               "admin": {"type": "boolean",
                                         "description": "holders administer Docket (users, reloads, "
                                                        "incidents) and see everything"}},
            },
        },
        "departments": {
            **_NAMED,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"label": LABEL_SCHEMA, "parent": {"type": "string"},
                               "description": LABEL_SCHEMA},
            },
        },
        "demo_users": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["username", "roles"],
                "additionalProperties": False,
                "properties": {
                    "username": {"type": "string", "pattern": "^[a-z0-9_.-]+$"},
                    "name": LABEL_SCHEMA,
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "department": {"type": "string"},
                    "manager": {"type": "string"},
                    "email": {"type": "string"},
                    "phone": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Role:
    name: str
    label: Label
    reports_to: str | None = None
    sees: str = "involved"
    """Which records holders see: all, department or involved (forms/access.py)."""
    admin: bool = False


@dataclass(frozen=True)
class Department:
    code: str
    label: Label
    parent: str | None = None


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: Label
    roles: tuple[str, ...]
    department: str | None = None
    manager: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class BundleMeta:
    """What bundle.yaml says about the whole bundle."""

    name: str
    version: str
    label: Label
    locales: tuple[str, ...] = ("zh-CN", "en")
    default_locale: str = "zh-CN"
    timezone: str = "UTC"
    calendar: Any = None
    roles: Mapping[str, Role] = field(default_factory=dict)
    departments: Mapping[str, Department] = field(default_factory=dict)
    demo_users: tuple[DemoUser, ...] = ()

    def title(self, locale: str) -> str:
        return label_text(self.label, locale, self.name)


def build_meta(doc: Document, diags: Diagnostics) -> BundleMeta:
    """Build the bundle's meta from a schema-valid bundle.yaml, checking its own references."""
    data = doc.data
    smap = doc.source_map
    roles = {n: Role(n, r.get("label", n), r.get("reports_to"), r.get("sees", "involved"), bool(r.get("admin")))
             for n, r in (data.get("roles") or {}).items()}
    for name, role in roles.items():
        if role.reports_to and role.reports_to not in roles:
            diags.error(f"unknown role '{role.reports_to}'", smap.value(("roles", name, "reports_to")),
                        code="unknown-reference")
    departments = {c: Department(c, d.get("label", c), d.get("parent"))
                   for c, d in (data.get("departments") or {}).items()}
    for code, dep in departments.items():
        if dep.parent and dep.parent not in departments:
            diags.error(f"unknown department '{dep.parent}'", smap.value(("departments", code, "parent")),
                        code="unknown-reference")
    users = []
    usernames = {u["username"] for u in data.get("demo_users") or []}
    for i, raw in enumerate(data.get("demo_users") or []):
        for j, role in enumerate(raw["roles"]):
            if role not in roles:
                diags.error(f"unknown role '{role}'", smap.value(("demo_users", i, "roles", j)),
                            code="unknown-reference")
        if raw.get("department") and raw["department"] not in departments:
            diags.error(f"unknown department '{raw['department']}'",
                        smap.value(("demo_users", i, "department")), code="unknown-reference")
        if raw.get("manager") and raw["manager"] not in usernames:
            diags.error(f"unknown user '{raw['manager']}'", smap.value(("demo_users", i, "manager")),
                        code="unknown-reference")
        users.append(DemoUser(raw["username"], raw.get("name", raw["username"]), tuple(raw["roles"]),
                              raw.get("department"), raw.get("manager"), raw.get("email"),
                              raw.get("phone")))
    locales = tuple(data.get("locales") or ("zh-CN", "en"))
    default_locale = data.get("default_locale", locales[0])
    if default_locale not in locales:
        diags.error(f"default_locale '{default_locale}' is not one of the bundle's locales",
                    smap.value(("default_locale",)), code="invalid")
    timezone = data.get("timezone", "UTC")
    calendar = _calendar(doc, timezone, diags)
    return BundleMeta(data["bundle"], str(data["version"]), data.get("label", data["bundle"]),
                      locales, default_locale, timezone, calendar, roles, departments, tuple(users))


def _calendar(doc: Document, timezone: str, diags: Diagnostics) -> Any:
    from engine.calendar import BusinessCalendar

    raw = doc.data.get("calendar")
    try:
        if raw is None:
            return BusinessCalendar.always_open(timezone)
        return BusinessCalendar.from_definition({"timezone": timezone, **raw})
    except (ValueError, KeyError) as exc:
        path = ("calendar",) if raw is not None else ("timezone",)
        diags.error(f"invalid calendar: {exc}", doc.source_map.value(path), code="calendar")
        return None
