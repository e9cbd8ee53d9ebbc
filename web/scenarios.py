"""Scenario tests an analyst writes in YAML: `docket test BUNDLE`.

A scenario is a story told to the whole system: a customer submits, people complete their
steps, time passes, and at each point the analyst says what must be true (which steps are
open, the record's status and fields, the flow's outcome, SLA states, what the history holds,
which messages were queued). Each scenario runs on its own fresh database with a manual
clock, so a three-day wait takes milliseconds and nothing touches production data; timers
fire at their own due times on the way (an SLA warning at 80%, an escalation every two hours).

A failed expectation, a refused command or a mistake in the file comes back as
`file:line:col: message`, at the step or the expectation that failed. The file format is in
docs/reference/scenarios.md. Like `web.system`, this module stands above every engine: it
drives forms, flows and rules together the way a user does.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from jsonschema import Draft202012Validator

from engine.bundle import SCENARIO_FOLDER, Bundle, load_bundle
from engine.clock import ManualClock
from engine.durations import parse_duration
from engine.errors import Diagnostic, Diagnostics, DocketError, NotFoundError, format_diagnostic
from engine.identity import CUSTOMER_ACTOR
from engine.registry import Registry, plugin_in_traceback
from engine.schema import LABEL_SCHEMA, report_errors
from engine.storage.db import read_transaction
from engine.storage.tables import incidents, outbox
from engine.types import Label, label_text
from engine.yamlsource import Document, load_yaml_file
from forms.access import load_principal
from web.api import may_work_on
from web.system import System, boot_scratch, reported_registry

__all__ = ["SCENARIO_FOLDER", "SCENARIO_SCHEMA", "Scenario", "ScenarioResult", "load_scenario",
           "run_scenario", "run_scenarios", "scenario_files"]

DEFAULT_START = "2026-03-02T09:00:00"
"""A Monday morning, in the bundle's time zone, when a scenario does not say `start`."""

ACTIONS: dict[str, tuple[str, ...]] = {
    # action -> the options it takes besides `fails`
    "submit": ("values", "by"),
    "complete": ("by", "values", "outcome", "comment", "return_to"),
    "answer": ("values",),
    "claim": ("by",),
    "reassign": ("to", "by", "comment"),
    "withdraw": ("by", "comment"),
    "reopen": ("by", "comment"),
    "note": ("by",),
    "reply": ("with",),
    "follow": (),
    "wait": (),
    "expect": (),
}
_TEXT = {"type": "string", "minLength": 1}
_NAMES = {"oneOf": [_TEXT, {"type": "array", "items": _TEXT}]}
_EXPECT = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "at": {**_NAMES, "description": "the nodes with open tasks ([] when none)"},
        "status": {"type": "string", "description": "the record's status"},
        "fields": {"type": "object", "description": "field -> value the record holds"},
        "flow": {"enum": ["running", "completed", "withdrawn", "incident"],
                 "description": "the status of the record's latest flow"},
        "outcome": {"type": ["string", "null"], "description": "how the latest flow ended"},
        "sla": {"type": "object", "additionalProperties": {"enum": [
            "on_time", "yellow", "red", "paused", "met", "missed"]}},
        "tasks": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False, "properties": {
                "roles": {"type": "array", "items": _TEXT}, "users": {"type": "array", "items": _TEXT},
                "level": {"type": "integer", "minimum": 0}}}},
        "history": {"type": "array", "items": _TEXT, "description": "entry kinds the trail holds"},
        "messages": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                     "description": "channel -> how many messages were queued in the scenario"},
        "message_text": {"type": "object", "additionalProperties": _TEXT,
                         "description": "channel -> text a message queued on it in the scenario holds "
                                        "(in its subject or body)"},
    },
}
SCENARIO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["scenario", "steps"],
    "additionalProperties": False,
    "properties": {
        "scenario": LABEL_SCHEMA,
        "description": {"type": "string"},
        "start": {"type": "string", "description": "ISO date-time; the bundle's zone when none"},
        "steps": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "submit": _TEXT, "complete": _TEXT, "claim": _TEXT, "reassign": _TEXT,
                "answer": {**_TEXT, "description": "a step the customer answers on the progress lookup "
                                                   "(a task with `customer:`)"},
                "withdraw": {"type": "boolean"}, "reopen": _TEXT, "note": _TEXT, "comment": _TEXT,
                "follow": {**_TEXT, "description": "a form: the later steps act on its newest record "
                                                   "(one a rule or flow created)"},
                "reply": {**_TEXT, "description": "a channel: the system behind it answers the record's "
                                                  "message (a webhook action with `answer:`) with `with`"},
                "with": {"description": "the JSON another system answers with (`reply`)"},
                "wait": {"type": ["string", "number"]}, "expect": _EXPECT,
                "by": _TEXT, "to": _TEXT, "values": {"type": "object"}, "outcome": _TEXT,
                "return_to": _TEXT, "fails": {"type": "string"},
            },
        }},
    },
}
_VALIDATOR = Draft202012Validator(SCENARIO_SCHEMA)
log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step did not do what the scenario says; `path` is where in the step to point."""

    def __init__(self, message: str, path: tuple[Any, ...] = (), hint: str | None = None):
        super().__init__(message)
        self.path = path
        self.hint = hint


class ExpectationsFailed(Exception):
    """Several keys of one `expect` step did not hold: each is reported at its own key."""

    def __init__(self, failures: list[StepFailed]):
        super().__init__("; ".join(str(f) for f in failures))
        self.failures = failures


class NotYours(DocketError):
    """The step's user may not work on the task (the web answers 403): a refusal a scenario
    can expect with `fails`."""


@dataclass(frozen=True)
class Scenario:
    """One loaded scenario file."""

    doc: Document
    title: Label
    start: str | None
    steps: list[dict[str, Any]]

    def text(self, locale: str = "en") -> str:
        return label_text(self.title, locale, Path(self.doc.file).stem)


@dataclass
class ScenarioResult:
    """How one scenario went: `problems` is empty when it passed."""

    file: str
    title: str
    steps_run: int = 0
    problems: list[Diagnostic] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def scenario_files(bundle_root: Path) -> list[Path]:
    """The bundle's scenario files, by name."""
    folder = Path(bundle_root) / SCENARIO_FOLDER
    return sorted(p for p in folder.glob("*.y*ml") if p.is_file()) if folder.is_dir() else []


def load_scenario(path: Path, display: str, diags: Diagnostics) -> Scenario | None:
    """Read and check a scenario file; every problem goes to `diags` with its position."""
    doc = load_yaml_file(path, display, diags)
    if doc is None:
        return None
    before = len(diags.errors)
    report_errors(_VALIDATOR.iter_errors(doc.data), doc, (), diags)
    if len(diags.errors) > before:
        return None
    for i, step in enumerate(doc.data["steps"]):
        actions = [key for key in step if key in ACTIONS]
        where = ("steps", i)
        if len(actions) != 1:
            diags.error("a step does one thing: " + (f"it has {', '.join(actions)}" if actions else
                        "it names no action"), doc.source_map.value(where), code="scenario-step",
                        hint="actions: " + ", ".join(ACTIONS), yaml_path=where)
            continue
        allowed = set(ACTIONS[actions[0]]) | {actions[0], "fails"}
        for key in step:
            if key not in allowed:
                diags.error(f"'{key}' does not go with '{actions[0]}'", doc.source_map.key(where + (key,)),
                            code="scenario-option", yaml_path=where + (key,),
                            hint=f"'{actions[0]}' takes: " + (", ".join(ACTIONS[actions[0]]) or "nothing more"))
        if actions[0] == "wait":
            try:
                _duration_text(step["wait"])
            except ValueError as exc:
                diags.error(str(exc), doc.source_map.value(where + ("wait",)), code="scenario-wait",
                            yaml_path=where + ("wait",))
    if "start" in doc.data:
        try:
            datetime.fromisoformat(doc.data["start"])
        except ValueError:
            diags.error(f"'{doc.data['start']}' is not a date and time", doc.source_map.value(("start",)),
                        code="scenario-start", hint="write it like 2026-03-02T09:00:00 or 2026-03-02T09:00:00+08:00")
    if len(diags.errors) > before:
        return None
    return Scenario(doc, doc.data["scenario"], doc.data.get("start"), list(doc.data["steps"]))


def _duration_text(value: Any) -> str:
    text = f"{value}h" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    parse_duration(text)  # ValueError with the analyst's words
    return text


# -- running ------------------------------------------------------------------------------------
def run_scenarios(bundle_root: Path, files: Sequence[Path] = (), *, db_folder: Path | None = None,
                  on_result: Callable[[ScenarioResult], None] | None = None,
                  registry: Registry | None = None) -> list[ScenarioResult]:
    """Run each scenario file (all of the bundle's when `files` is empty), each on a fresh
    SQLite database in a temporary folder (or `db_folder`), with `registry` (default: the
    built-in types and installed plugins). The bundle must be valid (DefinitionError
    otherwise)."""
    root = Path(bundle_root)
    paths = [scenario_path(root, Path(f)) for f in files] or scenario_files(root)
    results = []
    # Loaded once for every file (a loaded bundle is immutable): ~0.3 s of each file's run.
    bundle = load_bundle(root, reported_registry(registry)) if paths else None
    with tempfile.TemporaryDirectory(prefix="docket-scenarios-") as tmp:
        folder = Path(db_folder or tmp)
        for n, path in enumerate(paths, 1):
            result = run_scenario_file(root, path, folder / f"scenario-{n}.db", loaded=bundle)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def scenario_path(root: Path, path: Path) -> Path:
    """A scenario file as named on the command line: `scenarios/x.yaml`, `x.yaml` or `x` are read
    in the bundle (or its scenarios folder) when no such file is where the command runs."""
    if path.is_absolute() or path.exists():
        return path
    for candidate in (root / path, root / SCENARIO_FOLDER / path, root / SCENARIO_FOLDER / f"{path}.yaml"):
        if candidate.is_file():
            return candidate
    return path


def run_scenario_file(bundle_root: Path, path: Path, db_path: Path, *,
                      registry: Registry | None = None, loaded: Bundle | None = None) -> ScenarioResult:
    """Load one scenario file and run it on a new database at `db_path` (with the bundle
    `loaded` already, or loading it with `registry`)."""
    display = _display(bundle_root, path)
    diags = Diagnostics()
    scenario = load_scenario(path, display, diags)
    if scenario is None:
        return ScenarioResult(display, Path(path).stem, 0, list(diags.errors))
    start = datetime.fromisoformat(scenario.start or DEFAULT_START)
    system = boot_scratch(bundle_root, db_path, start, registry=registry, loaded=loaded)
    try:
        return run_scenario(system, scenario)
    finally:
        system.db.dispose()


def _display(root: Path, path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def run_scenario(system: System, scenario: Scenario) -> ScenarioResult:
    """Run the steps in order on `system` (a fresh database and a ManualClock); stops at the
    first step that fails, since the later ones depend on it."""
    result = ScenarioResult(scenario.doc.file, scenario.text())
    run = _Run(system)
    for i, step in enumerate(scenario.steps):
        where: tuple[Any, ...] = ("steps", i)
        action = next(key for key in step if key in ACTIONS)
        try:
            run.step(action, step)
        except (StepFailed, ExpectationsFailed) as exc:
            for failed in exc.failures if isinstance(exc, ExpectationsFailed) else [exc]:
                path = where + failed.path
                span = (scenario.doc.source_map.value(path) if failed.path
                        else scenario.doc.source_map.key(where + (action,)))
                result.problems.append(Diagnostic(f"step {i + 1} ({_describe(action, step)}): {failed}", span,
                                                  code="scenario-failed", hint=failed.hint, yaml_path=path))
            return result
        except Exception as exc:  # a fault of Docket's or a plugin's, not the analyst's: say so
            log.exception("scenario %s, step %d", scenario.doc.file, i + 1)
            plugin = plugin_in_traceback(exc)
            result.problems.append(Diagnostic(
                f"step {i + 1} ({_describe(action, step)}): Docket failed inside ({type(exc).__name__}: {exc})",
                scenario.doc.source_map.key(where + (action,)), code="scenario-crashed",
                hint=(f"a bug in the plugin {plugin}, not in the scenario or the bundle: the log has the "
                      "traceback" if plugin else
                      "this is a fault in Docket or a plugin, not in the scenario: please report it"),
                yaml_path=where))
            return result
        result.steps_run = i + 1
    return result


def _describe(action: str, step: Mapping[str, Any]) -> str:
    value = step[action]
    if action == "expect" or value is True:
        return action
    return f"{action} {value}" + (f" by {step['by']}" if step.get("by") else "")


class _Run:
    """The state of one running scenario: its system and the record the steps act on."""

    def __init__(self, system: System):
        self.system = system
        self.clock = system.runtime.clock
        assert isinstance(self.clock, ManualClock)
        self.form: str | None = None
        self.record_id: int | None = None

    # -- actions --------------------------------------------------------------------------------
    def step(self, action: str, step: Mapping[str, Any]) -> None:
        if action == "expect":
            self.expect(step["expect"])
            return
        if action == "wait":
            self.wait(_duration_text(step["wait"]))
            return
        fails = step.get("fails")
        try:
            getattr(self, f"do_{action}")(step)
        except (DocketError, ValueError) as exc:
            if not isinstance(exc, DocketError) and plugin_in_traceback(exc) is not None:
                raise  # a plugin's bug, not a refusal by the bundle: reported as a crash
            if fails is None:
                raise StepFailed(f"refused: {_message(exc)}") from None
            if fails.lower() not in _message(exc).lower():
                raise StepFailed(f"refused, but not as expected: {_message(exc)}", ("fails",)) from None
            return
        if fails is not None:
            raise StepFailed("was accepted, but the scenario expects it to be refused", ("fails",))

    def do_submit(self, step: Mapping[str, Any]) -> None:
        form = step["submit"]
        if form not in self.system.forms.forms:
            raise StepFailed(f"there is no form '{form}'", ("submit",),
                             hint="forms: " + ", ".join(sorted(self.system.forms.forms)))
        submitted = self.system.forms.submit(form, dict(step.get("values") or {}), actor=step.get("by"),
                                             anonymous=step.get("by") is None)
        self.form, self.record_id = form, submitted.record_id

    def do_complete(self, step: Mapping[str, Any]) -> None:
        task = self._task(step["complete"], step.get("by"))
        self.system.flows.complete(int(task["id"]), step.get("by"), values=step.get("values"),
                                   outcome=step.get("outcome"), comment=step.get("comment"),
                                   return_to=step.get("return_to"))

    def do_answer(self, step: Mapping[str, Any]) -> None:
        """The customer answers their step on the progress lookup page."""
        form, record_id = self._record()
        found = self.system.flows.customer_step(form, record_id)
        if found is None or found[0]["node"] != step["answer"]:
            raise NotFoundError(f"the customer has no step to answer at '{step['answer']}' "
                                f"(a task with `customer:`); open: {_list(self._open_nodes())}")
        self.system.flows.complete(int(found[0]["id"]), CUSTOMER_ACTOR, values=step.get("values"))

    def do_claim(self, step: Mapping[str, Any]) -> None:
        self.system.flows.claim(int(self._task(step["claim"], step.get("by"))["id"]), self._by(step, "claim"))

    def do_reassign(self, step: Mapping[str, Any]) -> None:
        if not step.get("to"):
            raise StepFailed("say whom to give the task to with `to:`")
        task = self._task(step["reassign"], None)
        self.system.flows.reassign(int(task["id"]), step["to"], by=self._by(step, "reassign"),
                                   comment=step.get("comment"))

    def do_withdraw(self, step: Mapping[str, Any]) -> None:
        form, record_id = self._record()
        self.system.flows.withdraw(form, record_id, actor=self._by(step, "withdraw"), comment=step.get("comment"))

    def do_reopen(self, step: Mapping[str, Any]) -> None:
        form, record_id = self._record()
        self.system.flows.reopen(form, record_id, at=step["reopen"], actor=step.get("by"),
                                 comment=step.get("comment"))

    def do_follow(self, step: Mapping[str, Any]) -> None:
        """Go on with the newest record of a form, e.g. the analysis a rule opened."""
        form = step["follow"]
        if form not in self.system.forms.forms:
            raise StepFailed(f"there is no form '{form}'", ("follow",),
                             hint="forms: " + ", ".join(sorted(self.system.forms.forms)))
        newest = self.system.forms.list(form, limit=1)
        if not newest:
            raise StepFailed(f"no {form} record was created", ("follow",))
        self.form, self.record_id = form, int(newest[0]["id"])

    def do_reply(self, step: Mapping[str, Any]) -> None:
        """The system behind a channel answers the record's newest message that asks for an
        answer (nothing is sent: the scenario plays the other system)."""
        form, record_id = self._record()
        channel = step["reply"]
        with read_transaction(self.system.db) as conn:
            rows = conn.execute(sa.select(outbox.c.id, outbox.c.payload)
                                .where(outbox.c.channel == channel, outbox.c.status == "pending")
                                .order_by(outbox.c.id.desc())).all()
        waiting = [r.id for r in rows if (r.payload or {}).get("reply", {}).get("form") == form
                   and (r.payload or {}).get("reply", {}).get("record_id") == record_id]
        if not waiting:
            raise StepFailed(f"no message on channel '{channel}' about this {form} waits for an answer",
                             ("reply",), hint="a webhook action with `answer:` queues one")
        self.system.runtime.services["outbox"].delivered_with(waiting[0], step.get("with"))

    def do_note(self, step: Mapping[str, Any]) -> None:
        form, record_id = self._record()
        self.system.flows.comment(form, record_id, actor=step.get("by"), text=step["note"])

    def wait(self, text: str) -> None:
        """Move the clock on, firing every timer at its own due time on the way."""
        try:
            target = parse_duration(text).after(self.clock.now(), self.system.bundle.meta.calendar)
        except ValueError as exc:
            raise StepFailed(str(exc), ("wait",)) from None
        self.system.runtime.services["timers"].advance(self.clock, target)

    # -- expectations ---------------------------------------------------------------------------
    def expect(self, expect: Mapping[str, Any]) -> None:
        """Check every key, and report each that does not hold: one wrong expectation must
        not hide another of the same step (the steps after it are not run)."""
        form, record_id = self._record()
        failures = []
        for key, wanted in expect.items():
            try:
                getattr(self, f"expect_{key}")(form, record_id, wanted)
            except StepFailed as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ExpectationsFailed(failures)

    def expect_at(self, form: str, record_id: int, wanted: Any) -> None:
        want = sorted({wanted} if isinstance(wanted, str) else set(wanted))
        got = self._open_nodes()
        if got != want:
            raise StepFailed(f"expected open steps {_list(want)}, found {_list(got)}", ("expect", "at"),
                             hint=self._stopped(form, record_id))

    def expect_status(self, form: str, record_id: int, wanted: str) -> None:
        got = self.system.forms.get(form, record_id)["status"]
        if got != wanted:
            raise StepFailed(f"expected status '{wanted}', found '{got}'", ("expect", "status"))

    def expect_fields(self, form: str, record_id: int, wanted: Mapping[str, Any]) -> None:
        compiled = self.system.forms.form(form)
        record = self.system.forms.get(form, record_id)
        for name, value in wanted.items():
            if name not in compiled.spec.fields:
                raise StepFailed(f"form '{form}' has no field '{name}'", ("expect", "fields", name))
            got = compiled.types[name].to_json(record.get(name), compiled.field(name))
            if not _same(got, value):
                raise StepFailed(f"expected {name} = {_shown(value)}, found {_shown(got)}",
                                 ("expect", "fields", name))

    def expect_flow(self, form: str, record_id: int, wanted: str) -> None:
        got = self._instance(form, record_id)["status"]
        if got != wanted:
            raise StepFailed(f"expected the flow to be {wanted}, it is {got}", ("expect", "flow"))

    def expect_outcome(self, form: str, record_id: int, wanted: str | None) -> None:
        instance = self._instance(form, record_id)
        if instance["outcome"] != wanted:
            found = _shown(instance["outcome"]) if instance["outcome"] else f"none yet (the flow is {instance['status']})"
            raise StepFailed(f"expected outcome {_shown(wanted)}, found {found}", ("expect", "outcome"))

    def expect_sla(self, form: str, record_id: int, wanted: Mapping[str, str]) -> None:
        sla = self.system.runtime.services.get("sla")
        with read_transaction(self.system.db) as conn:
            states = {s.target: s.status for s in (sla.state_of(conn, form, record_id) if sla else [])}
        for target, status in wanted.items():
            if target not in states:
                raise StepFailed(f"no SLA clock '{target}' runs on this record", ("expect", "sla", target),
                                 hint="running: " + (", ".join(sorted(states)) or "none"))
            if states[target] != status:
                raise StepFailed(f"expected SLA '{target}' to be {status}, it is {states[target]}",
                                 ("expect", "sla", target))

    def expect_tasks(self, form: str, record_id: int, wanted: Mapping[str, Mapping[str, Any]]) -> None:
        open_ = self.system.flows.open_tasks(form, record_id)
        for node, want in wanted.items():
            found = [t for t in open_ if t["node"] == node]
            if not found:
                raise StepFailed(f"no open task at '{node}'; open: {_list(self._open_nodes())}",
                                 ("expect", "tasks", node), hint=self._stopped(form, record_id))
            task = found[0]
            got = {"roles": sorted(task["candidate_roles"] or []), "users": sorted(task["candidate_users"] or []),
                   "level": int(task["escalation_level"] or 0)}
            for key, value in want.items():
                expected = sorted(value) if isinstance(value, list) else value
                if got[key] != expected:
                    raise StepFailed(f"expected the task at '{node}' to have {key} {_shown(expected)}, "
                                     f"found {_shown(got[key])}", ("expect", "tasks", node, key))

    def expect_history(self, form: str, record_id: int, wanted: Sequence[str]) -> None:
        kinds = {entry["kind"] for entry in self.system.forms.history(form, record_id)}
        for i, kind in enumerate(wanted):
            if kind not in kinds:
                raise StepFailed(f"the record's history has no '{kind}' entry", ("expect", "history", i),
                                 hint="it has: " + ", ".join(sorted(kinds)))

    def expect_messages(self, form: str, record_id: int, wanted: Mapping[str, int]) -> None:
        with read_transaction(self.system.db) as conn:
            counts = dict(conn.execute(sa.select(outbox.c.channel, sa.func.count())
                                       .group_by(outbox.c.channel)).all())
        for channel, count in wanted.items():
            if counts.get(channel, 0) != count:
                raise StepFailed(f"expected {count} {channel} message(s) queued, found {counts.get(channel, 0)}",
                                 ("expect", "messages", channel), hint=self._queued(channel))

    def _queued(self, channel: str) -> str | None:
        """What was queued on the channel, by subject (or the body's start), most frequent first:
        "found 15" alone left the analyst to guess which rule or SLA warning sent them."""
        with read_transaction(self.system.db) as conn:
            rows = conn.execute(sa.select(outbox.c.subject, outbox.c.body).where(outbox.c.channel == channel)).all()
        if not rows:
            return None
        seen = Counter(((subject or body or "").strip().splitlines() or [""])[0][:60] for subject, body in rows)
        shown = "; ".join(f"{n} x {text}" for text, n in seen.most_common(5))
        return f"queued: {shown}" + ("; ..." if len(seen) > 5 else "")

    def expect_message_text(self, form: str, record_id: int, wanted: Mapping[str, str]) -> None:
        """A message on the channel holds the text: what the customer reads, not only how many."""
        for channel, text in wanted.items():
            with read_transaction(self.system.db) as conn:
                sent = [f"{subject or ''} {body or ''}".strip() for subject, body in conn.execute(
                    sa.select(outbox.c.subject, outbox.c.body).where(outbox.c.channel == channel)
                    .order_by(outbox.c.id))]
            if not any(text in message for message in sent):
                raise StepFailed(f"no {channel} message holds '{text}'", ("expect", "message_text", channel),
                                 hint=f"the last one reads: {sent[-1][:200]}" if sent else
                                 f"no {channel} message was queued")

    # -- helpers --------------------------------------------------------------------------------
    def _record(self) -> tuple[str, int]:
        if self.form is None or self.record_id is None:
            raise StepFailed("there is no record yet: begin the scenario with a `submit` step")
        return self.form, self.record_id

    def _open_nodes(self) -> list[str]:
        """The steps with open tasks, each once (a countersign holds one task per person)."""
        form, record_id = self._record()
        return sorted({t["node"] for t in self.system.flows.open_tasks(form, record_id)})

    def _stopped(self, form: str, record_id: int) -> str | None:
        """Why no step is open when the record's flow stopped with an incident (a condition
        that failed, a plugin's bug): the reason a step the scenario expects is missing."""
        instances = self.system.flows.instances(form, record_id)
        if not instances or instances[-1]["status"] != "incident":
            return None
        with read_transaction(self.system.db) as conn:
            message = conn.execute(sa.select(incidents.c.message)
                                   .where(incidents.c.ref == f"instance:{instances[-1]['id']}")
                                   .order_by(incidents.c.id.desc()).limit(1)).scalar()
        return f"the flow stopped with an incident: {message}" if message else "the flow stopped with an incident"

    def _instance(self, form: str, record_id: int) -> Mapping[str, Any]:
        instances = self.system.flows.instances(form, record_id)
        if not instances:
            raise StepFailed(f"no flow runs on this {form} record")
        return instances[-1]

    def _by(self, step: Mapping[str, Any], action: str) -> str:
        if not step.get("by"):
            raise StepFailed(f"say who does it with `by:` (a user of the bundle) for '{action}'")
        return str(step["by"])

    def _task(self, node: str, by: str | None) -> Mapping[str, Any]:
        """The open task at `node` that `by` may work on (any, when no one is named)."""
        form, record_id = self._record()
        found = [t for t in self.system.flows.open_tasks(form, record_id) if t["node"] == node]
        if not found:
            raise StepFailed(f"no open task at '{node}'; open: {_list(self._open_nodes())}",
                             hint=self._stopped(form, record_id))
        if by is None:
            return found[0]
        with read_transaction(self.system.db) as conn:
            principal = load_principal(conn, self.system.runtime, by)
        if principal is None:
            raise StepFailed(f"there is no user '{by}'", ("by",))
        for task in found:
            if may_work_on(task, principal):
                return task
        task = found[0]
        who = ", ".join([*(f"role {r}" for r in task["candidate_roles"] or []), *(task["candidate_users"] or []),
                         *([f"department {task['candidate_department']}"] if task["candidate_department"] else [])])
        raise NotYours(f"'{by}' may not work on the task at '{node}' (it is offered to: {who or 'no one'})")


def _message(exc: Exception) -> str:
    return str(exc)  # ValidationFailed reads "field: message; field: message"


def _same(got: Any, wanted: Any) -> bool:
    """Equal as the analyst means it: 8000 matches "8000.00", yes matches true."""
    if got == wanted:
        return True
    if isinstance(got, bool) or isinstance(wanted, bool):
        return False
    try:
        return Decimal(str(got)) == Decimal(str(wanted))
    except (InvalidOperation, ValueError):
        return str(got) == str(wanted)


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return _list(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _list(items: Sequence[Any]) -> str:
    return "[" + ", ".join(str(i) for i in items) + "]" if items else "none"


def report(results: Sequence[ScenarioResult]) -> Iterator[str]:
    """The lines `docket test` prints after the runs: every problem, then the totals."""
    for result in results:
        for problem in result.problems:
            yield format_diagnostic(problem)
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    yield f"{passed} passed" + (f", {failed} failed" if failed else "") + f" ({len(results)} scenarios)"

