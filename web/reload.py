"""Reload the definitions without a restart, keeping the running version when they have errors.

The bundle folder is checked again; with errors, nothing changes and the diagnostics
(`file:line:col: error: ...`, the scenario files' among them, as `docket validate` reports
them) go back to the admin page. Without errors a new `System` is booted
on the same database (same clock, same plugin registry) and `web.system` is swapped in one
assignment, so a request sees either the old system or the new one, never a mix. Everything that
holds the system (pages, API, scheduler) reads `web.system` at call time. Instances started on the
old version keep running on it (RELIABILITY 32); the bundle versions table keeps its files.
Before reloading, the folder's scenario tests can be run on scratch databases (`check_scenarios`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.bundle import validate_bundle
from engine.errors import DefinitionError, Diagnostic, format_diagnostic
from engine.identity import Principal
from engine.registry import Registry
from engine.storage.db import transaction
from web.auth import audit
from web.scenario_check import check_scenarios as check_scenario_files
from web.scenarios import ScenarioResult, run_scenarios
from web.system import boot

if TYPE_CHECKING:
    from web.app import Web

log = logging.getLogger(__name__)

_lock = threading.Lock()


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    """True when a reload with these diagnostics kept the running version."""
    return any(d.severity == "error" for d in diagnostics)


def reload_definitions(web: "Web", *, actor: Principal | str | None = None, ip: str | None = None) -> list[Diagnostic]:
    """Check the running bundle's folder again and switch to it if valid. Returns every
    diagnostic (warnings too); any error means the running version was kept."""
    with _lock:  # two admins pressing the button at once boot one system each, in turn
        old = web.system
        root = old.bundle.root
        registry = old.bundle.registry
        bundle, diagnostics = validate_bundle(root, registry)
        # The scenario files too, as `docket validate` checks them (without running them): a
        # misspelt step or user is reported here with its position, and, as the CLI fails on
        # it, an error keeps the running version until the folder validates as a whole.
        diagnostics = diagnostics + check_scenario_files(root, bundle, registry)
        new = None
        if bundle is not None and not has_errors(diagnostics):
            try:
                new = boot(root, db_url=old.db.url.render_as_string(hide_password=False),
                           clock=old.runtime.clock, registry=registry)
            except DefinitionError as exc:  # the folder changed between the check and the boot
                diagnostics = list(exc.diagnostics)
            except Exception as exc:  # noqa: BLE001 - reported to the admin, old version kept
                log.exception("reloading %s failed", root)
                diagnostics = [*diagnostics, Diagnostic(f"the new version could not start: {exc}",
                                                        code="boot-failed")]
        ok = new is not None
        detail = {"ok": ok, "old_hash": old.bundle.hash, "new_hash": new.bundle.hash if new else None,
                  "errors": sum(1 for d in diagnostics if d.severity == "error")}
        with transaction(old.db) as conn:
            audit(conn, actor, "definitions.reload", old.bundle.name, detail, at=old.runtime.clock.now(), ip=ip)
        if new is not None:
            web.system = new
            log.info("definitions reloaded: %s %s -> %s", new.bundle.name, old.bundle.hash, new.bundle.hash)
            # Requests still running on the old system keep their checked-out connections; the
            # pool's idle ones are closed now.
            old.db.dispose()
        else:
            # The operator reading the server's log learns it too, not only the admin who pressed
            # the button: the first error with its position, and how many there were.
            errors = [d for d in diagnostics if d.severity == "error"]
            first = format_diagnostic(errors[0]) if errors else "no bundle"
            log.warning("definitions not reloaded: %s kept running (%s); %d error(s), the first: %s",
                        old.bundle.name, old.bundle.hash, len(errors), first.splitlines()[0])
        return diagnostics


@dataclass
class ScenarioCheck:
    """What running the definitions folder's scenarios found: the folder's own problems (then
    nothing ran), or each scenario's result."""

    diagnostics: list[Diagnostic]
    results: list[ScenarioResult]

    @property
    def passed(self) -> bool:
        return not has_errors(self.diagnostics) and all(r.passed for r in self.results)


def check_scenarios(root: Path, registry: Registry) -> ScenarioCheck:
    """Validate the definitions folder, then run its scenarios on scratch databases (never this
    server's): what an analyst does before pressing Reload."""
    _bundle, diagnostics = validate_bundle(root, registry)
    if has_errors(diagnostics):
        return ScenarioCheck(diagnostics, [])
    results = run_scenarios(root, registry=registry)
    return ScenarioCheck([*diagnostics, *(p for r in results for p in r.problems)], results)


__all__ = ["ScenarioCheck", "check_scenarios", "has_errors", "reload_definitions"]
