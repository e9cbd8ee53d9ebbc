"""Who is who: roles, departments and users from bundle.yaml, and the bundle versions on record.

The bundle names roles and departments; the database keeps them so tasks, permissions and reports
can join on them. Syncing is idempotent and additive: a role or user removed from the YAML is kept
(history refers to it), and a user's password is never touched here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from engine.bundle import Bundle
from engine.bundle_meta import BundleMeta
from engine.storage.tables import bundle_versions, departments, roles, user_roles, users
from engine.types import label_text

BUNDLE_SOURCE_LIMIT = 4 * 1024 * 1024
"""Bundles larger than this are recorded without their source text (the hash still pins them)."""


def record_bundle_version(conn: Connection, bundle: Bundle, now: datetime) -> bool:
    """Store the bundle's version (hash and source) once; True when it was new.

    Flow instances reference the hash, so a running instance can always be traced to the exact
    definitions it started on.
    """
    if conn.execute(select(bundle_versions.c.hash).where(bundle_versions.c.hash == bundle.hash)).first():
        return False
    conn.execute(insert(bundle_versions).values(
        hash=bundle.hash, name=bundle.name, version=bundle.version, loaded_at=now,
        source=_source_of(bundle)))
    return True


def _source_of(bundle: Bundle) -> dict[str, str]:
    source: dict[str, str] = {}
    total = 0
    for path in sorted(p for p in bundle.root.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle.root).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError:
            continue
        total += len(text)
        if total > BUNDLE_SOURCE_LIMIT:
            return {}
        source[rel] = text
    return source


def bundle_files(conn: Connection, bundle_hash: str) -> dict[str, str] | None:
    """The files of a recorded bundle version, or None when it was recorded without them."""
    source = conn.execute(select(bundle_versions.c.source)
                          .where(bundle_versions.c.hash == bundle_hash)).scalar()
    return dict(source) if source else None


def sync_directory(conn: Connection, meta: BundleMeta, now: datetime) -> None:
    """Upsert the bundle's roles and departments; add demo users not yet in the database (without
    passwords). Existing users are left as admins changed them."""
    for role in meta.roles.values():
        label = _label(role.label)
        if conn.execute(select(roles.c.name).where(roles.c.name == role.name)).first():
            conn.execute(update(roles).where(roles.c.name == role.name).values(label=label))
        else:
            conn.execute(insert(roles).values(name=role.name, label=label))
    # Parents first, so the self-referencing foreign key is always satisfied.
    for dep in _parents_first(meta):
        values = {"label": _label(dep.label), "parent": dep.parent}
        if conn.execute(select(departments.c.code).where(departments.c.code == dep.code)).first():
            conn.execute(update(departments).where(departments.c.code == dep.code).values(**values))
        else:
            conn.execute(insert(departments).values(code=dep.code, **values))
    ids: dict[str, int] = {}
    created: set[str] = set()
    for user in meta.demo_users:
        values = {"display_name": label_text(user.name, meta.default_locale, user.username),
                  "email": user.email, "phone": user.phone, "department": user.department}
        found = conn.execute(select(users.c.id).where(users.c.username == user.username)).scalar()
        ids[user.username] = int(found) if found is not None else 0
        if found is not None:
            # An admin may have changed this account since: the YAML only seeds new users.
            continue
        found = conn.execute(insert(users).values(username=user.username, created_at=now, **values)
                             ).inserted_primary_key[0]
        ids[user.username] = int(found)
        created.add(user.username)
        for role_name in user.roles:
            conn.execute(insert(user_roles).values(user_id=found, role=role_name))
    for user in meta.demo_users:
        if user.manager and user.username in created:
            conn.execute(update(users).where(users.c.id == ids[user.username])
                         .values(manager_id=ids[user.manager]))


def user_roles_of(conn: Connection, username: str) -> list[str]:
    """The role names a user holds."""
    rows = conn.execute(select(user_roles.c.role).join(users, users.c.id == user_roles.c.user_id)
                        .where(users.c.username == username).order_by(user_roles.c.role))
    return [r[0] for r in rows]


def _label(label: Any) -> Any:
    return dict(label) if isinstance(label, dict) else {"": str(label)}


def _parents_first(meta: BundleMeta) -> list[Any]:
    done: set[str] = set()
    ordered = []

    def visit(code: str, trail: tuple[str, ...] = ()) -> None:
        if code in done or code in trail:
            return
        dep = meta.departments[code]
        if dep.parent and dep.parent in meta.departments:
            visit(dep.parent, trail + (code,))
        done.add(code)
        ordered.append(dep)

    for code in meta.departments:
        visit(code)
    return ordered
