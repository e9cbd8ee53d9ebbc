"""The composition root: build the registry, load the bundle, open the database, start services.

`cli.py` and `web.app` both start Docket through `boot`, so the command line and the server
always run the same engines on the same bundle the same way.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine, make_url

import engine.channels
import engine.expr
import engine.lists
import flows
import forms
import reports
import rules
from engine.bundle import Bundle, load_bundle
from engine.clock import Clock, ManualClock, SystemClock
from engine.directory import record_bundle_version, sync_directory
from engine.outbox import Outbox
from engine.registry import Registry
from engine.runtime import Runtime
from engine.storage.db import create_engine, database_url, serialize, transaction
from engine.storage.migrations import upgrade
from engine.timers import TimerService
from flows.runtime import FlowService
from forms.attachments.service import AttachmentService
from forms.attachments.store import FileStore
from forms.records import FormService
from reports.service import ReportService
from rules.service import RuleService
from rules.sla import SlaService

log = logging.getLogger(__name__)

BUILT_IN_PACKAGES = (engine.lists.register, engine.expr.register, engine.channels.register,
                     forms.register, flows.register, reports.register, rules.register)


def build_registry(*, plugins: bool = True) -> Registry:
    """A registry with every built-in plugin kind, plus installed `docket.plugins` entry points."""
    registry = Registry()
    for register in BUILT_IN_PACKAGES:
        register(registry)  # a broken built-in is a bug in Docket: fail loudly
    if plugins:
        registry.load_entry_points()
    return registry


@dataclass
class System:
    """A running Docket: the runtime and the engine services over it."""

    runtime: Runtime
    forms: FormService
    flows: FlowService

    @property
    def bundle(self) -> Bundle:
        return self.runtime.bundle

    @property
    def db(self) -> Engine:
        return self.runtime.db


def files_dir(db_url: str) -> Path:
    """Where uploaded files live: $DOCKET_FILES_DIR, else `files/` beside a SQLite database,
    else var/files. Several processes must share it."""
    explicit = os.environ.get("DOCKET_FILES_DIR")
    if explicit:
        return Path(explicit)
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent / "files"
    return Path("var") / "files"


def reported_registry(registry: Registry | None = None) -> Registry:
    """`registry`, or the built-in types with the installed plugins; the plugins it refused are
    logged as warnings (a broken plugin must not go unnoticed on a server)."""
    registry = registry or build_registry()
    for problem in registry.problems:
        log.warning("%s", problem)
    return registry


def boot(bundle_root: Path | str, *, db_url: str | None = None, clock: Clock | None = None,
         registry: Registry | None = None, migrate: bool = True, loaded: Bundle | None = None) -> System:
    """Load and check the bundle (DefinitionError if invalid), migrate the database, start services.

    `loaded`: the bundle at `bundle_root` already loaded (with its registry), for a caller that
    boots it on several scratch databases in turn (scenario files)."""
    bundle = loaded if loaded is not None else load_bundle(bundle_root, reported_registry(registry))
    url = database_url(db_url)
    db = create_engine(url)
    clock = clock or SystemClock()
    if migrate:
        upgrade(db)
    with transaction(db) as conn:
        serialize(conn, "directory")  # processes starting together sync one at a time
        record_bundle_version(conn, bundle, clock.now())
        sync_directory(conn, bundle.meta, clock.now())
    runtime = Runtime(bundle, db, clock)
    # Timers and the outbox first: every engine may arm timers or queue messages.
    TimerService(runtime)
    Outbox(runtime)
    AttachmentService(runtime, FileStore(files_dir(url)))
    form_service = FormService(runtime)
    form_service.ensure_tables()
    flow_service = FlowService(runtime)
    ReportService(runtime)  # keeps report facts as records change; runs dashboards
    # Rules and SLA clocks subscribe to every event after the flow engine (runtime.services
    # "rules", "decisions", "sla"); the indexes their aggregates filter on are created here.
    rule_service = RuleService(runtime)
    SlaService(runtime)
    rule_service.ensure_indexes()
    rule_service.arm_schedules()
    return System(runtime, form_service, flow_service)


def boot_scratch(bundle_root: Path | str, db_path: Path, start: datetime, *,
                 registry: Registry | None = None, loaded: Bundle | None = None) -> System:
    """The bundle on a new SQLite file at `db_path`, on a ManualClock at `start` (scenario tests,
    simulations). A `start` without a zone is a wall time in the bundle's own zone, known only
    once the bundle is loaded: the clock starts at it as UTC and is then set where it belongs."""
    clock = ManualClock(start if start.tzinfo else start.replace(tzinfo=timezone.utc))
    system = boot(bundle_root, db_url=f"sqlite:///{db_path}", clock=clock, registry=registry, loaded=loaded)
    if start.tzinfo is None:
        clock.set(start.replace(tzinfo=ZoneInfo(system.bundle.meta.timezone or "UTC")))
    return system
