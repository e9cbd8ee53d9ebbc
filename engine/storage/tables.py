"""The fixed engine tables (prefix `dk_`), migrated with Alembic (engine/storage/migrations).

Any change here needs a new migration in migrations/versions; a test compares the migrated
schema with this metadata. Timestamps are `UTCDateTime` and have no server default: callers
pass `clock.now()`, because nothing in Docket reads the wall clock directly.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, CheckConstraint, Column, ForeignKey, Index, Integer, String, Table, Text

from engine.storage.types import UTCDateTime

__all__ = ["NAMING_CONVENTION", "metadata", "bundle_versions", "users", "roles", "user_roles",
           "departments", "flow_instances", "tasks", "history", "timers", "outbox", "incidents",
           "sequences", "idempotency", "audit_log", "attachments", "INSTANCE_STATUSES",
           "TASK_STATUSES", "TIMER_STATUSES", "ATTACHMENT_STATUSES"]

# Deterministic constraint names, so later migrations (and SQLite batch mode) can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

INSTANCE_STATUSES = ("running", "completed", "withdrawn", "incident")
TASK_STATUSES = ("open", "claimed", "completed", "cancelled")
TIMER_STATUSES = ("pending", "claimed", "done", "failed", "cancelled")
ATTACHMENT_STATUSES = ("pending", "linked")


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_valid")


def _version() -> Column[int]:
    """Optimistic-lock counter: see `engine.storage.db.update_versioned`."""
    return Column("version", Integer, nullable=False, server_default=sa.text("1"))


bundle_versions = Table(
    "dk_bundle_versions", metadata,
    Column("hash", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", String(100)),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("source", JSON, nullable=False),  # {relative path: file text}, to re-run old instances
)

users = Table(
    "dk_users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("display_name", String(200)),
    Column("password_hash", String(255)),
    Column("email", String(255)),
    Column("phone", String(50)),
    Column("department", String(100), index=True),  # dk_departments.code; no FK, see ADR 0002
    Column("manager_id", Integer, ForeignKey("dk_users.id", ondelete="SET NULL")),
    Column("is_active", Boolean, nullable=False, server_default=sa.true()),
    Column("locale", String(20)),
    Column("created_at", UTCDateTime, nullable=False),
)

roles = Table(
    "dk_roles", metadata,
    Column("name", String(100), primary_key=True),
    Column("label", JSON),
)

user_roles = Table(
    "dk_user_roles", metadata,
    Column("user_id", Integer, ForeignKey("dk_users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(100), primary_key=True, index=True),  # roles come from the bundle: no FK
)

departments = Table(
    "dk_departments", metadata,
    Column("code", String(100), primary_key=True),
    Column("label", JSON),
    Column("parent", String(100), ForeignKey("dk_departments.code", ondelete="SET NULL")),
    Column("manager_id", Integer, ForeignKey("dk_users.id", ondelete="SET NULL")),
)

flow_instances = Table(
    "dk_flow_instances", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow", String(100), nullable=False),
    Column("form", String(100), nullable=False),
    Column("record_id", Integer, nullable=False),  # rec_<form>.id
    Column("bundle_hash", String(64), ForeignKey("dk_bundle_versions.hash"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("current", JSON, nullable=False),  # list of node ids with a token
    Column("variables", JSON, nullable=False),
    Column("outcome", String(100)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    _version(),
    _one_of("status", INSTANCE_STATUSES),
    Index(None, "form", "record_id"),
    Index(None, "status"),
)

tasks = Table(
    "dk_tasks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_id", Integer, ForeignKey("dk_flow_instances.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("node", String(100), nullable=False),
    Column("form", String(100), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("assignee_user", Integer, ForeignKey("dk_users.id")),
    Column("candidate_roles", JSON),
    Column("candidate_users", JSON),
    Column("candidate_department", String(100)),
    Column("outcome", String(100)),
    Column("comment", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("completed_by", Integer, ForeignKey("dk_users.id")),
    Column("due_at", UTCDateTime),
    Column("escalation_level", Integer, nullable=False, server_default=sa.text("0")),
    _version(),
    _one_of("status", TASK_STATUSES),
    Index(None, "status", "assignee_user"),
)

history = Table(
    "dk_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_id", Integer, ForeignKey("dk_flow_instances.id"), index=True),
    Column("form", String(100), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("kind", String(50), nullable=False),  # submitted, updated, task_completed, escalated...
    Column("node", String(100)),
    Column("actor", String(150)),  # username, or system / timer / customer
    Column("at", UTCDateTime, nullable=False),
    Column("data", JSON),  # field diffs, decision, comment
    Index(None, "form", "record_id"),
)

timers = Table(
    "dk_timers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(50), nullable=False),
    Column("key", String(255), nullable=False, index=True),  # for cancellation, e.g. sla:12:red
    Column("due_at", UTCDateTime, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("lease_until", UTCDateTime),  # a claim past its lease may be taken again
    Column("attempts", Integer, nullable=False, server_default=sa.text("0")),
    Column("last_error", Text),
    Column("claimed_by", String(100)),
    _one_of("status", TIMER_STATUSES),
    Index(None, "status", "due_at"),
)

outbox = Table(
    "dk_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(50), nullable=False),
    Column("recipient", String(500), nullable=False),
    Column("subject", String(500)),
    Column("body", Text),
    Column("payload", JSON),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("status", String(20), nullable=False),  # pending, sent, failed (retrying), dead
    Column("attempts", Integer, nullable=False, server_default=sa.text("0")),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index(None, "status", "next_attempt_at"),
)

incidents = Table(
    "dk_incidents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(50), nullable=False),
    Column("ref", String(255)),  # what failed, e.g. timer:17 or instance:4
    Column("message", Text, nullable=False),
    Column("detail", Text),  # traceback or expression position
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Index(None, "resolved_at"),
)

sequences = Table(
    "dk_sequences", metadata,
    Column("name", String(200), primary_key=True),
    Column("value", sa.BigInteger, nullable=False, server_default=sa.text("0")),
)

idempotency = Table(
    "dk_idempotency", metadata,
    Column("key", String(200), primary_key=True),
    Column("form", String(100), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("record_id", Integer),
    Column("created_at", UTCDateTime, nullable=False),
)

audit_log = Table(
    "dk_audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(150)),
    Column("action", String(100), nullable=False),
    Column("target", String(255)),
    Column("detail", JSON),
    Column("ip", String(45)),
)

attachments = Table(
    # Metadata of uploaded files; the bytes live outside the database, content-addressed by
    # sha256 (forms.attachments.store, ADR 0004). `id` is a random token, so ids cannot be guessed.
    "dk_attachments", metadata,
    Column("id", String(32), primary_key=True),  # secrets.token_urlsafe(24)
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", sa.BigInteger, nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("original_name", String(255), nullable=False),  # sanitised, for display only
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(150)),
    Column("form", String(100)),  # set when linked to a record
    Column("record_id", Integer),
    Column("field", String(100)),
    Column("status", String(20), nullable=False),
    _one_of("status", ATTACHMENT_STATUSES),
    Index(None, "form", "record_id"),
)
