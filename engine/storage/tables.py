"""The fixed engine tables (prefix `dk_`), migrated with Alembic (engine/storage/migrations).

Any change here needs a new migration in migrations/versions; a test compares the migrated
schema with this metadata. Timestamps are `UTCDateTime` and have no server default: callers
pass `clock.now()`, because nothing in Docket reads the wall clock directly.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, CheckConstraint, Column, ForeignKey, Index, Integer, String, Table, Text, text

from engine.storage.types import UTCDateTime

__all__ = ["NAMING_CONVENTION", "metadata", "bundle_versions", "users", "roles", "user_roles",
           "departments", "flow_instances", "tasks", "history", "timers", "outbox", "incidents",
           "sequences", "idempotency", "audit_log", "attachments", "sessions", "record_tags",
           "sla_clocks", "SLA_STATUSES", "SLA_VERDICTS", "sla_verdict", "sla_verdict_sql", "report_verdicts",
           "INSTANCE_STATUSES",
           "TASK_STATUSES", "TIMER_STATUSES", "OUTBOX_STATUSES", "ATTACHMENT_STATUSES"]

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
TIMER_STATUSES = ("pending", "claimed", "fired", "failed", "incident")  # engine/timers.py
OUTBOX_STATUSES = ("pending", "sending", "sent", "dead")  # engine/outbox.py
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
    # Set by an administrator (revision 0011): the user chooses their own at the next sign-in.
    Column("password_temporary", Boolean, nullable=False, server_default=sa.false()),
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
    Index(None, "form", "record_id"),  # a record's tasks (migration 0007)
)

history = Table(
    "dk_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No index on instance_id: nothing looks history up by instance (a record's trail is read by
    # (form, record_id)), and instances are never deleted (revision 0008 dropped it).
    Column("instance_id", Integer, ForeignKey("dk_flow_instances.id")),
    Column("form", String(100), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("kind", String(50), nullable=False),  # submitted, updated, task_completed, escalated...
    Column("node", String(100)),
    Column("actor", String(150)),  # username, or system / timer / customer
    Column("at", UTCDateTime, nullable=False),
    Column("data", JSON),  # field diffs, decision, comment
    Index(None, "form", "record_id"),
    # The copies (抄送) a watcher's inbox lists, newest first: only those rows are in it, so the
    # ~50 other rows a complaint writes pay nothing for it (migration 0009).
    Index("ix_dk_history_copied", "id", sqlite_where=text("kind = 'task.copied'"),
          postgresql_where=text("kind = 'task.copied'")),
)

timers = Table(
    # Durable timers (engine/timers.py, revision 0003). A tick claims due rows through the
    # (status, due_at) index, and expired claims or retries through (status, lease_until), so its
    # work is proportional to what is due, not to what is open.
    "dk_timers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(50), nullable=False),
    Column("subject", String(255), nullable=False, server_default=sa.text("''")),  # instance:4, task:9 ...
    Column("key", String(255), nullable=False, index=True),  # for cancellation, e.g. sla:12:red
    Column("due_at", UTCDateTime, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("lease_until", UTCDateTime),  # claimed: lease expiry; failed: earliest retry
    Column("attempts", Integer, nullable=False, server_default=sa.text("0")),
    Column("last_error", Text),
    Column("claimed_by", String(100)),
    # sha256 of (kind, subject, key) while the timer is open, NULL once fired: the unique index
    # makes scheduling the same timer twice a re-arm, even from two transactions at once.
    Column("open_key", String(64), unique=True),
    Column("created_at", UTCDateTime),
    Column("fired_at", UTCDateTime),
    _one_of("status", TIMER_STATUSES),
    Index(None, "status", "due_at"),
    Index(None, "status", "lease_until"),
    Index(None, "subject", "kind"),
)

outbox = Table(
    # Outgoing messages (engine/outbox.py, revision 0003): written in the caller's transaction,
    # sent after commit. `next_attempt_at` is the earliest next try (pending) or the claim's
    # lease expiry (sending).
    "dk_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(50), nullable=False),
    Column("recipient", String(500), nullable=False),  # for display; the list is payload["to"]
    Column("subject", String(500)),
    Column("body", Text),
    Column("payload", JSON),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    # Sent on every attempt; generated here too, so any insert (not only Outbox.enqueue) has one.
    Column("message_id", String(64), nullable=False, unique=True, default=lambda: uuid.uuid4().hex),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=sa.text("0")),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("claimed_by", String(100)),
    # Times the message was sent again because a relay died before recording the send: the
    # receiver may hold it twice (same message_id), so this is reported, not hidden.
    Column("duplicates", Integer, nullable=False, server_default=sa.text("0")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    _one_of("status", OUTBOX_STATUSES),
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

# -- API tokens (web/tokens.py, revision 0005) -------------------------------------------------
api_tokens = Table(
    # Tokens for integrations, sent as `Authorization: Bearer`. Only the sha256 of a token is
    # stored (tokens are 256-bit random, so a plain hash is enough); `prefix` lets people tell
    # their tokens apart in lists without the secret being kept anywhere.
    "dk_api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("dk_users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(150)),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

# -- Sign-in sessions and audit indexes (web/auth.py, revision 0005) ---------------------------
sessions = Table(
    # Server-side sign-in sessions. The cookie holds a 256-bit random token; only its sha256 is
    # stored, so a leaked table cannot be replayed as cookies. `expires_at` is the absolute end,
    # `last_seen_at` drives the idle timeout (updated at most once a minute per session).
    "dk_sessions", metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the cookie token
    Column("user_id", Integer, ForeignKey("dk_users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("ip", String(45)),
    Column("user_agent", String(255)),
)

# The admin audit page filters by actor and action (dk_audit_log.at is indexed above).
Index("ix_dk_audit_log_actor", audit_log.c.actor)
Index("ix_dk_audit_log_action", audit_log.c.action)

# -- Rules and SLA (rules/, revision 0004) -------------------------------------------------------
SLA_STATUSES = ("running", "paused", "met", "missed")

record_tags = Table(
    # Tags and flags rules put on records (e.g. repeat_customer); shown on the record and usable
    # in expressions as `tags`. One row per (record, tag): tagging twice changes nothing.
    "dk_record_tags", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("form", String(100), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("tag", String(100), nullable=False),
    Column("note", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(150)),
    sa.UniqueConstraint("form", "record_id", "tag"),
    Index(None, "tag", "created_at"),
)

sla_clocks = Table(
    # One SLA clock per (record, policy, target), counted in working seconds of the bundle
    # calendar: `used_seconds` banked before the running segment that started at `resumed_at`.
    # `due_at`/`warn_at` are where the running segment ends (recomputed on resume and on a
    # change of the target); `version` guards against a timer and a command racing.
    "dk_sla_clocks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("form", String(100), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("policy", String(100), nullable=False),
    Column("target", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("target_seconds", Integer, nullable=False),
    Column("used_seconds", Integer, nullable=False, server_default=sa.text("0")),
    Column("started_at", UTCDateTime, nullable=False),
    Column("resumed_at", UTCDateTime),
    Column("due_at", UTCDateTime),
    Column("warn_at", UTCDateTime),
    Column("stopped_at", UTCDateTime),
    Column("warned_at", UTCDateTime),
    Column("breached_at", UTCDateTime),
    Column("escalation_level", Integer, nullable=False, server_default=sa.text("0")),
    _version(),
    _one_of("status", SLA_STATUSES),
    sa.UniqueConstraint("form", "record_id", "policy", "target"),
    Index(None, "status", "due_at"),
)

# -- reports (reports helper, revision 0006) -------------------------------------------------------
report_facts = Table(
    # Lifecycle values of each record that reports group and measure by, kept by reports/facts.py
    # in the transaction of the event that changes them (task completed, flow ended or reopened,
    # record created): first response, closure, and whether the record repeats an earlier one.
    # One row per record, so a report reads them with a primary-key join instead of scanning
    # tasks and flow instances.
    "dk_report_facts", metadata,
    Column("form", String(100), primary_key=True),
    Column("record_id", Integer, primary_key=True),
    Column("first_response_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("is_repeat", Integer, nullable=False, server_default=sa.text("0")),
)

SLA_VERDICTS = ("met", "missed")
"""What an SLA clock's target came to (dk_report_verdicts.verdict); no verdict while undecided."""


SLA_VERDICT_EVENT = "sla.verdict"
"""Published by the SLA service (rules/sla.py) when a clock's verdict changes, with data
{policy, target, verdict, was}; the report engine keeps it as a fact (reports/facts.py)."""


def sla_verdict(status: str, breached_at: object) -> str | None:
    """The verdict of a clock row: met or missed once stopped; missed as soon as a running clock
    passed its due time (its breach is recorded: the record page shows it red and it can only
    end missed); none while it runs in time or is paused (a withdrawn record's clock, one
    waiting for the customer). `sla_verdict_sql` is the same rule in SQL, for rebuilds."""
    if status in SLA_VERDICTS:
        return status
    return "missed" if status == "running" and breached_at is not None else None


def sla_verdict_sql(clocks: sa.Table | sa.sql.expression.Alias) -> sa.ColumnElement[str]:
    """`sla_verdict` of each row of `clocks` (dk_sla_clocks or an alias of it), as SQL."""
    return sa.case((clocks.c.status.in_(SLA_VERDICTS), clocks.c.status),
                   (sa.and_(clocks.c.status == "running", clocks.c.breached_at.is_not(None)), sa.literal("missed")),
                   else_=sa.null())


report_verdicts = Table(
    # The verdict of each record's SLA targets (met, missed; NULL while undecided), kept by
    # reports/facts.py from the SLA service's `sla.verdict` events in the transaction that
    # decides it, so a report joins it by primary key and a rollup counts it like any fact
    # (ADR 0012). Rebuilt from dk_sla_clocks with `sla_verdict_sql`.
    "dk_report_verdicts", metadata,
    Column("form", String(100), primary_key=True),
    Column("record_id", Integer, primary_key=True),
    Column("target", String(100), primary_key=True),
    Column("verdict", String(10)),
    _one_of("verdict", SLA_VERDICTS),
)

report_rollups = Table(
    # Maintained aggregates of report datasets (reports/rollups.py, ADR 0012): per dataset
    # rollup, per local day and dimension values (k1..k3, '' for none), the additive parts of
    # the dataset's measures (counts, sums, rate numerators and denominators) in v1..v24. A cell
    # is recomputed from its records in the transaction of the event that changes one of them,
    # so dashboards read thousands of cells instead of scanning every record.
    "dk_report_rollups", metadata,
    Column("rollup", String(120), primary_key=True),  # <dataset>.<rollup>
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD in the bundle's time zone
    Column("k1", String(200), primary_key=True),
    Column("k2", String(200), primary_key=True),
    Column("k3", String(200), primary_key=True),
    Column("n", Integer, nullable=False),
    *[Column(f"v{i}", sa.Float) for i in range(1, 25)],
)

report_rollup_state = Table(
    # Which definition each rollup was built from: a changed definition is rebuilt at start-up.
    "dk_report_rollup_state", metadata,
    Column("rollup", String(120), primary_key=True),
    Column("signature", String(64), nullable=False),
    Column("built_at", UTCDateTime, nullable=False),
)
