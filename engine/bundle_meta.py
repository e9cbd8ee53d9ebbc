"""`bundle.yaml`: the bundle's name, version, languages, time zone, calendar, roles, departments,
notification channels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from engine.channels.base import ENV_NAME_PATTERN, ENV_SUFFIX, ChannelConfig
from engine.errors import Diagnostics, did_you_mean, plural
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.types import Label, YamlPath, label_text
from engine.yamlsource import Document

if TYPE_CHECKING:
    from engine.registry import Registry

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
        "channels": {
            **_NAMED,
            "description": "notification channels by name; secrets come from environment "
                           "variables named by <setting>_env keys (docs/reference/channels.md)",
            "additionalProperties": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "description": "channel type: log, email, "
                                        "webhook, wecom, dingtalk or a plugin's"},
                               "label": LABEL_SCHEMA},
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
    channels: Mapping[str, ChannelConfig] = field(default_factory=dict)
    """Notification channels by name (engine/outbox.py sends through them)."""

    def title(self, locale: str) -> str:
        return label_text(self.label, locale, self.name)


def build_meta(doc: Document, diags: Diagnostics, registry: "Registry | None" = None) -> BundleMeta:
    """Build the bundle's meta from a schema-valid bundle.yaml, checking its own references."""
    data = doc.data
    roles = {n: Role(n, r.get("label", n), r.get("reports_to"), r.get("sees", "involved"), bool(r.get("admin")))
             for n, r in (data.get("roles") or {}).items()}
    for name, role in roles.items():
        if role.reports_to and role.reports_to not in roles:
            _unknown(doc, diags, ("roles", name, "reports_to"), "role", role.reports_to, roles)
    departments = {c: Department(c, d.get("label", c), d.get("parent"))
                   for c, d in (data.get("departments") or {}).items()}
    for code, dep in departments.items():
        if dep.parent and dep.parent not in departments:
            _unknown(doc, diags, ("departments", code, "parent"), "department", dep.parent, departments)
    users = []
    usernames = {u["username"] for u in data.get("demo_users") or []}
    first_at: dict[str, int] = {}
    for i, raw in enumerate(data.get("demo_users") or []):
        where = ("demo_users", i)
        if raw["username"] in first_at:
            # Two sign-ins with one name: the second would silently replace the first's roles.
            line = doc.source_map.value(("demo_users", first_at[raw["username"]], "username")).line
            diags.error(f"the user '{raw['username']}' is listed twice (first at line {line})",
                        doc.source_map.value(where + ("username",)), code="duplicate-user",
                        hint="give each user a username of their own", yaml_path=where + ("username",))
        first_at.setdefault(raw["username"], i)
        for j, role in enumerate(raw["roles"]):
            if role not in roles:
                _unknown(doc, diags, where + ("roles", j), "role", role, roles)
        if raw.get("department") and raw["department"] not in departments:
            _unknown(doc, diags, where + ("department",), "department", raw["department"], departments)
        if raw.get("manager") and raw["manager"] not in usernames:
            _unknown(doc, diags, where + ("manager",), "user", raw["manager"], usernames)
        users.append(DemoUser(raw["username"], raw.get("name", raw["username"]), tuple(raw["roles"]),
                              raw.get("department"), raw.get("manager"), raw.get("email"),
                              raw.get("phone")))
    locales = tuple(data.get("locales") or ("zh-CN", "en"))
    default_locale = data.get("default_locale", locales[0])
    if default_locale not in locales:
        diags.error(f"default_locale '{default_locale}' is not one of the bundle's locales",
                    doc.source_map.value(("default_locale",)), code="invalid", yaml_path=("default_locale",),
                    hint=did_you_mean(str(default_locale), locales) or f"locales: {', '.join(locales)}")
    timezone = data.get("timezone", "UTC")
    calendar = _calendar(doc, timezone, diags)
    channels = _channels(doc, registry, diags)
    return BundleMeta(data["bundle"], str(data["version"]), data.get("label", data["bundle"]),
                      locales, default_locale, timezone, calendar, roles, departments, tuple(users),
                      channels)


def _unknown(doc: Document, diags: Diagnostics, path: YamlPath, what: str, name: str,
             known: Iterable[str]) -> None:
    """An unknown name in bundle.yaml, with a did-you-mean hint as elsewhere (`BuildContext.unknown`)."""
    names = sorted(known)
    hint = did_you_mean(name, names) or (f"known {plural(what)}: {', '.join(names)}" if names else None)
    diags.error(f"unknown {what} '{name}'", doc.source_map.value(path), code="unknown-reference",
                hint=hint, yaml_path=path)


# Settings that are secrets: written as `<name>_env: VARIABLE`, never as literal values.
_SECRET_WORDS = ("password", "secret", "token", "access_token", "api_key", "key", "url")


def _channels(doc: Document, registry: "Registry | None", diags: Diagnostics) -> dict[str, ChannelConfig]:
    """Check each channel's type and settings against the type's options schema."""
    from jsonschema import Draft202012Validator

    from engine.schema import report_errors

    smap = doc.source_map
    out: dict[str, ChannelConfig] = {}
    for name, raw in (doc.data.get("channels") or {}).items():
        settings = {k: v for k, v in raw.items() if k not in ("type", "label")}
        channel_type = registry.channels.get(raw["type"]) if registry is not None else None
        if registry is not None and channel_type is None:
            hint = registry.channels.hint(raw["type"])
            diags.error(f"unknown channel type '{raw['type']}'", smap.value(("channels", name, "type")),
                        code="unknown-channel-type",
                        hint=hint or f"channel types: {', '.join(registry.channels.names())}")
            continue
        if channel_type is not None:
            props = channel_type.options_schema.get("properties", {})
            for key in settings:
                if key in _SECRET_WORDS and f"{key}{ENV_SUFFIX}" in props:
                    diags.error(f"channel '{name}': '{key}' is a secret and must not be written in "
                                "bundle.yaml", smap.key(("channels", name, key)), code="literal-secret",
                                hint=f"name an environment variable instead: {key}{ENV_SUFFIX}: "
                                     f"DOCKET_{name.upper()}_{key.upper()}")
            if any(k in _SECRET_WORDS and f"{k}{ENV_SUFFIX}" in props for k in settings):
                continue
            errors = Draft202012Validator(channel_type.options_schema).iter_errors(settings)
            report_errors(errors, doc, ("channels", name), diags)
        for key, value in settings.items():
            if key.endswith(ENV_SUFFIX) and not (isinstance(value, str) and re.match(ENV_NAME_PATTERN, value)):
                diags.error(f"channel '{name}': {key} must name an environment variable "
                            "(capital letters, digits and _)", smap.value(("channels", name, key)),
                            code="invalid")
        out[name] = ChannelConfig(name, channel_type.name if channel_type else raw["type"], settings,
                                  raw.get("label"))
    return out


def _calendar(doc: Document, timezone: str, diags: Diagnostics) -> Any:
    from engine.calendar import BusinessCalendar, CalendarError

    raw = doc.data.get("calendar")
    try:
        if raw is None:
            return BusinessCalendar.always_open(timezone)
        return BusinessCalendar.from_definition({"timezone": timezone, **raw})
    except CalendarError as exc:
        # At the very value that is wrong (the weekday, the period), not at `calendar:`.
        if exc.path[:1] == ("timezone",) and "timezone" not in (raw or {}):
            path: YamlPath = ("timezone",)
        else:
            path = ("calendar", *exc.path) if raw is not None else ("timezone",)
        diags.error(f"invalid calendar: {exc.detail}", doc.source_map.value(path), code="calendar",
                    yaml_path=path)
        return None
    except (ValueError, KeyError) as exc:
        path = ("calendar",) if raw is not None else ("timezone",)
        diags.error(f"invalid calendar: {exc}", doc.source_map.value(path), code="calendar")
        return None
