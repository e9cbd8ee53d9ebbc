"""The `docket` command line: the composition root for validate, serve, submit, schema, db.

Every command exits 0 on success and 1 with readable messages on a user error (an invalid
bundle, a bad JSON file, a validation failure). A command that writes records says in one
`error:` line what it was storing when the database (or Docket) failed, its traceback only at
`--log-level debug`; anywhere else a traceback means a bug in Docket.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Awaitable, Callable, Iterator, Sequence

from engine.errors import (ConflictError, DefinitionError, Diagnostic, DocketError, NotFoundError,
                           ValidationFailed, did_you_mean, format_diagnostic)

log = logging.getLogger("docket.cli")

DEFAULT_BUNDLE = "definitions/postal_complaints"
STARTER_BUNDLE = Path(__file__).resolve().parent / "definitions" / "starter"
"""What `docket new` copies: a small working process (a request reviewed and approved)."""
NEW_PROCESS_GUIDE = "docs/guides/start-a-new-process.md"
"""The guide `docket new` points to: from the starter bundle to a process of your own."""


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diag in diagnostics:
        print(format_diagnostic(diag), file=sys.stderr)


def _print_plugin_problems(registry: object) -> None:
    """One `warning:` line per installed plugin that failed to load (docs/plugins.md)."""
    for problem in registry.problems:  # type: ignore[attr-defined]
        print(f"warning: {problem}", file=sys.stderr)


class WriteFailed(DocketError):
    """A command's write failed for a reason that is not in its input (the database refused, a
    fault in Docket): `main` prints it as one `error:` line."""


@contextmanager
def _writing(what: str, db: str | None) -> Iterator[None]:
    """Turn an unexpected failure while doing `what` ("storing a new complaint record from
    c.json") into one line naming it, with the database's own reason; the traceback goes to the
    log at debug (`--log-level debug`). What the command explains itself (invalid values, a
    conflict) passes through, and so does a plugin's fault (`_explain_failure` shows it)."""
    try:
        yield
    except (DocketError, KeyboardInterrupt):
        raise
    except Exception as exc:
        from engine.registry import plugin_in_traceback

        if plugin_in_traceback(exc) is not None:
            raise
        log.debug("%s failed", what, exc_info=True)
        raise WriteFailed(f"{what} failed: {_failure_reason(exc, db)} "
                          "(--log-level debug shows the traceback)") from exc


def _failure_reason(exc: Exception, db: str | None) -> str:
    """Why a write failed, in one line: the database's own words and which database, never the
    SQL or its parameters (they can hold personal data), never the password."""
    from sqlalchemy.exc import SQLAlchemyError

    from engine.storage.db import database_url
    from engine.storage.refusal import refusal_hint

    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        reason = str(orig).strip() if orig is not None else ""
        reason = reason.splitlines()[0] if reason else type(exc).__name__
        url = database_url(db)
        return f"{reason} (database {_safe_url(url)}){refusal_hint(exc, url)}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def cmd_validate(args: argparse.Namespace) -> int:
    from engine.bundle import validate_bundle
    from web.system import build_registry

    from web.scenario_check import check_scenarios

    registry = build_registry()
    _print_plugin_problems(registry)
    bundle, diagnostics = validate_bundle(args.bundle, registry)
    if Path(args.bundle).is_dir():
        # The scenarios `docket test` runs: their shape, and their names when the bundle loaded.
        diagnostics = diagnostics + check_scenarios(args.bundle, bundle, registry)
    if args.format == "json":
        print(json.dumps([d.to_json() for d in diagnostics], ensure_ascii=False, indent=2))
    else:
        _print_diagnostics(diagnostics)
    errors = [d for d in diagnostics if d.severity == "error"]
    if bundle is None or errors:
        if args.format != "json":
            print(f"{len(errors)} error(s) in {args.bundle}", file=sys.stderr)
        return 1
    if args.format != "json":
        counts = ", ".join(f"{len(v)} {k}(s)" for k, v in bundle.definitions.items() if v)
        print(f"{args.bundle}: valid ({counts}; version {bundle.version}, hash {bundle.hash})")
    return 0


@contextmanager
def quieted(*loggers: str) -> Iterator[None]:
    """These loggers at ERROR while the block (or the decorated command) runs, then back as
    they were: `main` also runs inside other programs and tests, whose logging it must not
    change for good."""
    quiet = [logging.getLogger(name) for name in loggers]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


# Scenarios never send messages (they stay queued in each scratch database), so the channels'
# missing credentials are not worth a warning per scenario.
@quieted("engine.outbox")
def cmd_test(args: argparse.Namespace) -> int:
    """Run the bundle's scenarios, each on a fresh database with a manual clock."""
    from web.scenarios import SCENARIO_FOLDER, report, run_scenarios

    def show(result: object) -> None:
        mark = "ok  " if result.passed else "FAIL"  # type: ignore[attr-defined]
        print(f"{mark} {result.file}: {result.title} "  # type: ignore[attr-defined]
              f"({result.steps_run} step(s) run)", flush=True)  # type: ignore[attr-defined]

    chosen = [_scenario_file(Path(args.bundle), name) for name in args.scenarios]
    if None in chosen:
        return 2
    results = run_scenarios(Path(args.bundle), [f for f in chosen if f is not None], on_result=show)
    if not results and not (Path(args.bundle) / "bundle.yaml").is_file():
        # No folder, a file, or no bundle.yaml: say that, as validate does, not "no scenarios".
        from engine.bundle import validate_bundle
        from web.system import build_registry

        raise DefinitionError(validate_bundle(Path(args.bundle), build_registry(plugins=False))[1])
    if not results:
        print(f"no scenarios: write them in {Path(args.bundle) / SCENARIO_FOLDER}/*.yaml "
              "(docs/reference/scenarios.md)", file=sys.stderr)
        # `scenario/` or `Scenarios/`: the files are there, in a folder validate warns of.
        folders = [d.name for d in Path(args.bundle).iterdir() if d.is_dir() and d.name != SCENARIO_FOLDER]
        near = did_you_mean(SCENARIO_FOLDER, folders)
        if near:
            print(f"  hint: rename the folder {near.removeprefix('did you mean ').rstrip('?')} "
                  f"to {SCENARIO_FOLDER}/", file=sys.stderr)
        return 1
    for line in report(results):
        print(line)
    return 0 if all(r.passed for r in results) else 1


def _scenario_file(bundle: Path, name: str) -> Path | None:
    """The scenario file a `docket test` argument names: a path, or a scenario of the bundle by
    its file name with or without `.yaml` (`docket test BUNDLE customer_is_told_of_a_delay`).
    None, after saying which scenarios there are and the nearest, when it names none."""
    from web.scenarios import SCENARIO_FOLDER, scenario_path

    found = scenario_path(bundle, Path(name))
    if found.is_file():
        return found
    folder = bundle / SCENARIO_FOLDER
    known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    near = did_you_mean(Path(name).stem, known)
    print(f"error: no scenario '{name}'" + (f"; {near}" if near else "") +
          (f"\n  the bundle's scenarios ({folder}): {', '.join(known)}" if known else
           f"\n  write scenarios in {folder}/*.yaml (docs/reference/scenarios.md)"), file=sys.stderr)
    return None


# Nothing is ever sent; refused samples are summed up, not logged one by one.
@quieted("engine.outbox", "reports.demo")
def cmd_simulate(args: argparse.Namespace) -> int:
    """Run sample traffic through a bundle (and the same traffic through --compare) on scratch
    databases with a fast clock; print what happened."""
    import tempfile
    from datetime import datetime

    from reports.demo import DemoRunner
    from reports.simulation import compare_lines, summarize, summary_lines
    from web.system import boot_scratch

    if args.records < 1 or args.days < 1:
        print("--records and --days must be at least 1", file=sys.stderr)
        return 1
    try:
        first = datetime.fromisoformat(args.start)
    except ValueError:
        print(f"--start: '{args.start}' is not a date (write it like 2026-03-02)", file=sys.stderr)
        return 1
    if args.compare:
        # The changed bundle's mistakes before the first run, not after it.
        from engine.bundle import validate_bundle
        from web.system import build_registry

        _loaded, diagnostics = validate_bundle(Path(args.compare), build_registry())
        if any(d.severity == "error" for d in diagnostics):
            raise DefinitionError([d for d in diagnostics if d.severity == "error"])
    summaries = []
    with tempfile.TemporaryDirectory(prefix="docket-simulate-") as tmp:
        for n, bundle in enumerate([args.bundle] + ([args.compare] if args.compare else [])):
            system = boot_scratch(bundle, Path(tmp) / f"simulation-{n}.db", first)
            try:
                forms = system.runtime.bundle.all("form")
                if args.form is not None and args.form not in forms:
                    hint = did_you_mean(args.form, forms) or "its forms: " + ", ".join(sorted(forms))
                    print(f"error: --form: {bundle} has no form '{args.form}' ({hint})", file=sys.stderr)
                    return 1
                start = system.runtime.clock.now()  # `first` placed in the bundle's zone
                runner = DemoRunner(system.runtime, seed=args.seed, form=args.form, fire_timers=True)
                print(f"simulating {args.records} {runner.form_name} records over {args.days} days "
                      f"with {bundle}...", file=sys.stderr, flush=True)
                runner.run(args.records, start=start, days=args.days)
                summaries.append(summarize(system.runtime, runner.form_name, bundle=str(bundle),
                                           refused=runner.refused))
            finally:
                system.db.dispose()
    if args.format == "json":
        print(json.dumps([s.to_json() for s in summaries], ensure_ascii=False, indent=2))
    elif len(summaries) == 2:
        print("\n".join(compare_lines(*summaries)))
    else:
        print("\n".join(summary_lines(summaries[0])))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """Start a bundle of one's own from the starter bundle; it is valid and its scenarios pass."""
    import re
    import shlex
    import shutil

    from engine.bundle import validate_bundle
    from engine.schema import NAME_PATTERN
    from web.system import build_registry

    target = Path(args.folder)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        print(f"error: {target} exists and is not an empty folder; name a new one", file=sys.stderr)
        return 1
    # "Leave Requests" -> leave_requests: lower case, other characters as _, starting with a letter
    words = re.sub(r"[^a-z0-9_]+", "_", target.resolve().name.lower())
    name = args.name or re.sub(r"^[^a-z]+", "", words).strip("_")
    if not re.fullmatch(NAME_PATTERN, name or ""):
        print(f"error: '{args.name or target.name}' cannot be a bundle name: give one with --name "
              "(lower-case letters, digits and _, starting with a letter, e.g. --name leave_requests)",
              file=sys.stderr)
        return 1
    shutil.copytree(STARTER_BUNDLE, target, dirs_exist_ok=True)
    meta = target / "bundle.yaml"
    meta.write_text(re.sub(r"(?m)^bundle: starter$", f"bundle: {name}", meta.read_text("utf-8"), count=1),
                    encoding="utf-8")
    bundle, diagnostics = validate_bundle(target, build_registry(plugins=False))
    if bundle is None:  # the starter is tested; a failure here is a bug, shown as the analyst would see it
        _print_diagnostics(diagnostics)
        return 1
    print(f"created {target}/: bundle '{name}', a request that an officer reviews and, above 1000, a "
          "manager approves")
    print("  forms/request.yaml           the request's fields (the public form at /f/request)")
    print("  flows/request_handling.yaml  its steps: review -> manager approval -> approved or declined")
    print("  sla/, reports/, dashboards/  time limits, measures and a dashboard; scenarios/ two tests")
    shown = shlex.quote(str(target))
    print("next:")
    print(f"  docket validate {shown}")
    print(f"  docket test {shown}")
    print(f"  docket simulate {shown}")
    print(f"  docket serve {shown} --db sqlite:///var/{name}.db --demo")
    print(f"then change the fields, steps and roles into your process, step by step: {NEW_PROCESS_GUIDE}; "
          "run validate and test after each change")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.bundle import write_bundle_schemas
    from web.system import build_registry

    registry = build_registry()
    _print_plugin_problems(registry)  # a plugin that failed is missing from the schemas
    written = write_bundle_schemas(registry, Path(args.out))
    written.append(_write_scenario_schema(Path(args.out)))
    for path in written:
        print(path)
    return 0


def _write_scenario_schema(out: Path) -> Path:
    """scenarios/*.yaml's JSON Schema, beside the definition kinds' (`docket test`)."""
    from web.scenarios import SCENARIO_SCHEMA

    target = out / "scenario.schema.json"
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Docket scenario",
              **SCENARIO_SCHEMA}
    target.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.storage.db import create_engine, database_url
    from engine.storage.migrations import current_revision, upgrade

    url = database_url(args.db)
    engine = create_engine(url)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    engine.dispose()
    # Which database: with settings in an environment file, the one upgraded may not be the one meant.
    if before == after:
        print(f"{_safe_url(url)}: engine tables already at the newest revision, {after}; nothing to do")
    else:
        print(f"{_safe_url(url)}: engine tables upgraded to revision {after} (from {before or 'none: a new database'})")
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    """A checked copy of the SQLite database and the files it names, while servers run."""
    from engine.storage.backup import (BACKUP_GLOB, BackupError, backup_name, database_path, file_checksums,
                                       prune, snapshot)
    from engine.storage.db import database_url
    from forms.attachments.store import FileStore
    from web.system import files_dir

    if args.keep is not None and args.keep < 1:  # before a backup is written, not after
        print("error: --keep must be at least 1 (the newest N backups are kept); leave it out to keep "
              "every backup", file=sys.stderr)
        return 1
    url = database_url(args.db)
    folder = Path(args.folder)
    try:
        copy = snapshot(database_path(url), folder / backup_name())
        named = file_checksums(copy.path)
        files = FileStore(files_dir(url)).copy_to(FileStore(folder / "files"), named)
        removed = prune(folder, args.keep) if args.keep is not None else []
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # copying the uploaded files: a folder not writable, a full disk
        print(f"error: {_os_failure(exc)}", file=sys.stderr)
        return 1
    if removed:  # the files only the removed backups named go with them
        kept: set[str] = set()
        for path in folder.glob(BACKUP_GLOB):
            kept |= file_checksums(path)
        FileStore(folder / "files").sweep(lambda sha256: sha256 in kept, 0)
    mb = 1024 * 1024
    print(f"database: {copy.path} ({copy.bytes / mb:.1f} MB in {copy.seconds:.1f} s, integrity ok, "
          f"engine tables at {copy.revision or 'no revision'})")
    print(f"files:    {folder / 'files'} ({files.copied} copied, {files.bytes / mb:.1f} MB; "
          f"{files.present} already there)")
    for path in removed:
        print(f"removed:  {path} (keeping the newest {args.keep})")
    if files.missing:
        print(f"error: {len(files.missing)} file(s) the database names are missing from "
              f"{files_dir(url)} or changed on disk, so not in this backup: {_first(files.missing)}", file=sys.stderr)
        return 1
    print(f"restore:  stop Docket, then: docket db restore {copy.path}" + (f" --db {args.db}" if args.db else ""))
    return 0


def cmd_db_restore(args: argparse.Namespace) -> int:
    """Put a backup in place of the database (stopped) and bring back the files it names."""
    from engine.storage.backup import BackupError, database_path, file_checksums, restore
    from engine.storage.db import database_url
    from forms.attachments.store import FileStore
    from web.system import files_dir

    url = database_url(args.db)
    backup = Path(args.backup)
    try:
        database = database_path(url)
        moved = restore(backup, database)
        named = file_checksums(database)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"database: {database} restored from {backup}")
    if moved is not None:
        print(f"          the database it replaced is kept as {moved}")
    store = FileStore(files_dir(url))
    try:
        files = FileStore(backup.parent / "files").copy_to(store, named)
    except OSError as exc:
        print(f"error: the uploaded files were not all copied back: {_os_failure(exc)}", file=sys.stderr)
        return 1
    print(f"files:    {store.root} ({files.copied} copied back, {files.present} already there)")
    if files.missing:
        print(f"error: {len(files.missing)} file(s) the restored database names are in neither "
              f"{backup.parent / 'files'} nor {store.root}: {_first(files.missing)}", file=sys.stderr)
        return 1
    return 0


def _os_failure(exc: OSError) -> str:
    """An operating system's refusal in one line: the path it concerns and the reason."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _first(items: Sequence[str], shown: int = 5) -> str:
    """The first few of a list for a one-line message, "..." when there are more."""
    return ", ".join(items[:shown]) + (" ..." if len(items) > shown else "")


def cmd_submit(args: argparse.Namespace) -> int:
    from web.system import boot

    try:
        data = json.loads(Path(args.data).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{args.data}: cannot read JSON: {exc}", file=sys.stderr)
        return 1
    if not isinstance(data, dict):
        print(f"{args.data}: expected a JSON object of field values", file=sys.stderr)
        return 1
    system = boot(args.bundle, db_url=args.db)
    try:
        with _writing(f"storing a new {args.form} record from {args.data}", args.db):
            result = system.forms.submit(args.form, data, actor=args.user, locale=args.locale,
                                         idempotency_key=args.key, channel="cli")
    except ValidationFailed as exc:
        for field, messages in exc.errors.items():
            for message in messages:
                print(f"{args.data}: {field}: {message}", file=sys.stderr)
        return 1
    print(json.dumps({"id": result.record_id, "query_no": result.query_no, "created": result.created},
                     ensure_ascii=False))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Fill a database with synthetic records run through the flows on a fast clock."""
    from datetime import datetime, timedelta, timezone

    from engine.clock import ManualClock
    from reports.demo import DemoRunner
    from web.system import boot

    if args.records < 1:
        print("--records must be at least 1", file=sys.stderr)
        return 1
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=args.days)
    system = boot(args.bundle, db_url=args.db, clock=ManualClock(start))
    runner = DemoRunner(system.runtime, seed=args.seed)
    with _writing(f"filling the database with demo records of {args.bundle}", args.db):
        result = runner.run(args.records, start=start, days=args.days,
                            progress=lambda n: print(f"{n} records...", file=sys.stderr))
    print(json.dumps({"records": result.records, "completed_tasks": result.completed_tasks,
                      "open_tasks": result.open_tasks, "closed": result.closed}))
    return 0


def cmd_files_sweep(args: argparse.Namespace) -> int:
    """Forget uploads never attached to a record and remove the files nothing uses."""
    from engine.durations import parse_duration
    from web.system import boot

    try:
        older_than = parse_duration(args.older_than).to_timedelta()
    except ValueError as exc:
        print(f"--older-than: {exc}", file=sys.stderr)
        return 1
    system = boot(args.bundle, db_url=args.db)
    rows, swept = system.runtime.services["attachments"].sweep(older_than)
    print(f"removed {rows} upload(s) never attached to a record within {args.older_than}, "
          f"{swept.files} stored file(s) nothing uses ({swept.bytes / 1024 / 1024:.1f} MB) and "
          f"{swept.temporary} unfinished upload(s)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from forms.exchange import export_records
    from web.system import boot

    fmt = args.format or Path(args.out).suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        print(f"{args.out}: give --format csv or xlsx (or name the file .csv or .xlsx)", file=sys.stderr)
        return 1
    system = boot(args.bundle, db_url=args.db)
    target = Path(args.out)
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as out:
            count = export_records(system.forms, args.form, fmt, out, locale=args.locale)
        partial.replace(target)  # a reader never sees half a file
    finally:
        partial.unlink(missing_ok=True)
    print(f"{count} record(s) of {args.form} written to {args.out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from forms.exchange import import_records
    from web.system import boot

    try:
        data = Path(args.file).open("rb")
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 1
    system = boot(args.bundle, db_url=args.db)
    with data, _writing(f"importing {args.file} into {args.form} records", args.db):
        report = import_records(system.forms, args.form, args.format, data, actor=args.user,
                                locale=args.locale, mode="valid_rows" if args.valid_rows else "all_or_nothing")
    *problems, summary = report.lines(args.locale)
    for line in problems:
        print(f"{args.file}: {line}", file=sys.stderr)
    print(f"{args.file}: {summary}", file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.storage.db import database_url
    from web.app import create_app
    from web.auth import demo_mode
    from web.system import boot, files_dir

    url = database_url(args.db)
    # Checked before anything starts: a server that cannot listen or store uploads must not
    # seed data, hand out demo passwords, or fire timers first.
    problem = port_problem(args.host, args.port) or files_problem(files_dir(url)) or secret_problem()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    for warning in settings_problems(serving=url):
        print(f"warning: {warning}", file=sys.stderr)
    demo = demo_mode(args.demo, url, True)
    if demo:
        # A demo has no mail server or SMS gateway: messages are written to the log instead.
        os.environ.setdefault("DOCKET_OUTBOX_DRY_RUN", "1")
    system = boot(args.bundle, db_url=url)
    for warning in [*webhook_problems(system.bundle), files_missing(system)]:
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    if demo and system.bundle.meta.demo_users:
        _seed_demo_records(system)
    app = create_app(system)
    host = "localhost" if args.host in ("127.0.0.1", "0.0.0.0", "::") else args.host
    print(f"Docket is serving '{system.bundle.meta.title('en')}' ({system.bundle.name} "
          f"{system.bundle.version}, hash {system.bundle.hash})")
    print(f"  database: {_safe_url(url)}")
    print(f"  files:    {files_dir(url).resolve()}")
    plugins = system.bundle.registry.plugins()
    if plugins:  # a plugin's author sees here that it loaded (a broken one is a warning above)
        print("  plugins:  " + ", ".join(f"{source} ({count} type{'s' if count > 1 else ''})"
                                          for source, count in plugins.items()))
    from engine.site import configured_public_url
    from web.prefix import path_prefix

    # Under a path of a shared host (DOCKET_PUBLIC_URL with a path) the pages live there too.
    print(f"  open:     http://{host}:{args.port}{path_prefix()}/")
    public = configured_public_url()
    if public:  # what messages, QR codes and redirects say: worth checking at a glance
        print(f"  public:   {public}/")
    _print_demo_users(system, url, args.demo)
    web = app.state.web
    scheduler = _start_scheduler(lambda: web.system.runtime, args.no_scheduler)  # follows reloads
    _stop_on_signals()
    # Under systemd stdout is a pipe, block-buffered: without this the lines above reached the
    # journal only when the server stopped.
    sys.stdout.flush()
    try:
        # log_config=None: uvicorn logs through the root logger configured above, so its lines
        # carry the same timestamps and format as Docket's.
        uvicorn.run(_logged_once(app), host=args.host, port=args.port, log_level=args.log_level,
                    log_config=None)
    except _Stopped:
        pass
    finally:
        _hold_stop_signals()
        if scheduler is not None:
            scheduler.shutdown()
        # Closing the connections lets the last one out checkpoint SQLite's WAL into the file
        # and remove it: a stopped server leaves one self-contained database file to copy.
        web.system.db.dispose()
    return 0


def _logged_once(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The application as uvicorn runs it: an exception the application has already logged and
    answered (a 500 or 503 with a reference) goes no further, so the log holds it once, not
    again as uvicorn's "Exception in ASGI application" traceback."""
    from web.app import ANSWERED

    async def application(scope: object, receive: object, send: object) -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            if not getattr(exc, ANSWERED, False):
                raise

    return application


class _Stopped(Exception):
    """SIGINT or SIGTERM asked the server to stop."""


def _stop_on_signals() -> None:
    """Make SIGINT and SIGTERM raise `_Stopped`. uvicorn handles both while it serves (finishing
    requests in progress), then raises the signal again under the handlers it found: these, so
    the server's own cleanup runs and it exits 0, where the default SIGTERM action would kill the
    process on the spot (and KeyboardInterrupt print a traceback)."""
    import signal

    def stop(_signum: int, _frame: object) -> None:
        raise _Stopped

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


def _hold_stop_signals() -> None:
    """While the server closes (scheduler, database connections), a second SIGINT or SIGTERM
    (Ctrl-C pressed twice, a supervisor repeating its stop) is logged and waits for the close
    to finish instead of cutting it short with a traceback; SIGKILL still stops it at once."""
    import signal

    def wait(_signum: int, _frame: object) -> None:
        logging.getLogger("docket").warning("already stopping: closing the database first")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, wait)


def port_number(text: str) -> int:
    """--port as argparse reads it: a number from 0 (any free port) to 65535, else a usage error
    naming it (the socket library answered 80000 with a traceback and -1 with a word about
    service names)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port: give a number from 1 to 65535")
    return port


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (taken, or no such address); None if it can.

    The socket is closed again at once; uvicorn binds it for real a few seconds later.
    SO_REUSEADDR as uvicorn sets it: a port left in TIME_WAIT by a stopped server is free.
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on --host {host}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use (another Docket, or another "
                        "server?); stop it or choose another with --port")
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def files_problem(folder: Path) -> str | None:
    """Why uploaded files could not be stored in `folder` (created if missing); None if they can.

    Found at start, not at a customer's first upload."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".docket-write-check-"):
            pass
    except OSError as exc:
        return (f"uploaded files cannot be stored in {folder.resolve()}: {exc.strerror}; "
                "set DOCKET_FILES_DIR to a writable folder")
    return None


def files_missing(system: object, checked: int = 5) -> str | None:
    """Why the files folder looks like the wrong one: it holds none of `checked` uploads linked
    to records that the database names (a mistyped DOCKET_FILES_DIR is created empty); None
    when one is there or there are none. Any few rows, unordered: a start must not sort a
    table of millions. A warning, not an error: after a lost disk the records are still worth
    serving without their files."""
    import sqlalchemy as sa

    from engine.storage.db import read_transaction
    from engine.storage.tables import attachments

    service = system.runtime.services["attachments"]  # type: ignore[attr-defined]
    with read_transaction(system.db) as conn:  # type: ignore[attr-defined]
        shas = conn.execute(sa.select(attachments.c.sha256).where(attachments.c.record_id.is_not(None))
                            .limit(checked)).scalars().all()
    if not shas or any(service.store.exists(sha) for sha in shas):
        return None
    return (f"none of {len(shas)} uploaded files the database names is in "
            f"{service.store.root.resolve()}: their records will show them missing; is DOCKET_FILES_DIR "
            "the folder they were stored in?")


def secret_problem() -> str | None:
    """Why the key that signs sessions and form tickets cannot be had: $DOCKET_SECRET_KEY is not
    set and its stand-in, var/secret_key under the working folder, cannot be kept; None if it can.

    Found at start, not while the first page is built."""
    from web.settings import SECRET_FILE, secret_key

    try:
        secret_key()
    except OSError as exc:
        return (f"DOCKET_SECRET_KEY is not set and the key that stands in for it cannot be kept in "
                f"{(Path.cwd() / SECRET_FILE).resolve()}: {exc.strerror}; set DOCKET_SECRET_KEY "
                "(every server the same) or start Docket in a folder it may write")
    return None


SWITCHES = ("DOCKET_DEMO", "DOCKET_SECURE_COOKIES", "DOCKET_OUTBOX_DRY_RUN")
"""The on/off settings (engine/switches.py reads them all alike): any other word counts as off."""
SECRET_KEY_MIN = 32
"""Characters below which DOCKET_SECRET_KEY could be guessed: every visitor of the public form
gets a ticket signed with it, against which guesses can be tried offline."""
TEMPORARY_HELP = ("the user must choose their own password at the next sign-in (as for one an administrator "
                  "sets on /admin/users): for a password you hand to someone")
METRICS_TOKEN_MIN = 16
"""Characters below which DOCKET_METRICS_TOKEN could be guessed by trying it at /metrics."""
COUNTS = {"DOCKET_SESSION_IDLE_MINUTES": 30, "DOCKET_SESSION_HOURS": 12, "DOCKET_API_SUBMITS_PER_MINUTE": 60,
          "DOCKET_MAX_PENDING_UPLOADS_MB": 2048}
"""The settings that are whole numbers, and the default used for anything else."""


def settings_problems(serving: str | None = None) -> list[str]:
    """The settings in the environment that Docket ignores or misreads, one line each, saying
    what happens instead: `serve` and `worker` print them as warnings at start, since the code
    that reads each one falls back silently (a QR code without an address, cookies without
    Secure). `serving`: the database URL of a web server, which also needs DOCKET_SECRET_KEY
    and DOCKET_FILES_DIR when other servers may share its database (PostgreSQL)."""
    import ipaddress

    from sqlalchemy.engine import make_url

    from engine.channels.http import ALLOW_ENV, allowed_networks_from_env
    from engine.site import PUBLIC_URL_ENV, configured_public_url
    from engine.switches import OFF_WORDS, ON_WORDS, switch
    from web.settings import positive_env

    problems = []
    shared = bool(serving) and make_url(serving).get_backend_name() != "sqlite"  # other servers may use it
    if shared and not os.environ.get("DOCKET_SECRET_KEY"):
        problems.append("DOCKET_SECRET_KEY is not set: this server signs sessions and forms with a key of its "
                        "own (var/secret_key), which the other servers on this database do not have; give "
                        "every server the same DOCKET_SECRET_KEY")
    if shared and not os.environ.get("DOCKET_FILES_DIR"):
        problems.append("DOCKET_FILES_DIR is not set: uploaded files are kept in var/files on this server, "
                        "where the other servers on this database cannot read them; set it to a folder "
                        "every server mounts")
    public = os.environ.get(PUBLIC_URL_ENV, "").strip()
    if public and configured_public_url() is None:
        problems.append(f"{PUBLIC_URL_ENV}={public} is not a plain http(s) address (write it like "
                        "https://ts.example-post.cn, or https://oa.example-post.cn/docket): it is ignored, "
                        "so messages and QR codes carry no link to Docket")
    secret = os.environ.get("DOCKET_SECRET_KEY", "")
    if secret and len(secret) < SECRET_KEY_MIN:
        problems.append(f"DOCKET_SECRET_KEY has only {len(secret)} characters: whoever guesses it can sign "
                        "in as anyone; make one with: python3 -c \"import secrets; print(secrets.token_urlsafe(48))\"")
    metrics = os.environ.get("DOCKET_METRICS_TOKEN", "").strip()
    if metrics and len(metrics) < METRICS_TOKEN_MIN:
        problems.append(f"DOCKET_METRICS_TOKEN has only {len(metrics)} characters: whoever guesses it reads "
                        "this server's numbers at /metrics; make one with: python3 -c \"import secrets; "
                        "print(secrets.token_urlsafe(32))\"")
    for name in SWITCHES:
        raw = os.environ.get(name, "")
        if raw.strip() and switch(name) is None:
            problems.append(f"{name}={raw.strip()} is not one of {', '.join(ON_WORDS + OFF_WORDS)}: it counts as off")
    for origin in os.environ.get("DOCKET_EMBED_ORIGINS", "").replace(",", " ").split():
        if not origin.startswith(("https://", "http://")):
            problems.append(f"DOCKET_EMBED_ORIGINS: '{origin}' is not a site's address (write it like "
                            "https://www.example-post.cn): it is ignored, so that site cannot show the public forms")
    for name, default in COUNTS.items():
        value = os.environ.get(name, "").strip()
        if value and positive_env(name, 0) == 0:  # the servers' own reading of it
            problems.append(f"{name}={value} is not a whole number above 0: {default} is used")
    for proxy in (p.strip() for p in os.environ.get("DOCKET_TRUSTED_PROXIES", "").split(",") if p.strip()):
        try:
            ipaddress.ip_address(proxy)
        except ValueError:
            problems.append(f"DOCKET_TRUSTED_PROXIES: '{proxy}' is not an IP address (name each proxy's "
                            "address, not a network or a host name): it never matches")
    try:
        allowed_networks_from_env()
    except ValueError as exc:
        problems.append(f"{ALLOW_ENV}: {exc}: every webhook, SMS and robot message fails until it is fixed")
    return problems


def webhook_problems(bundle: object) -> list[str]:
    """One line per inbound webhook of `bundle` whose secret is not in the environment: it
    refuses every delivery until it is, which an operator would otherwise learn only when the
    other system's first calls fail (the channels' missing variables are warned of by the
    outbox; this is their inbound side)."""
    problems = []
    for spec in bundle.all("webhook").values():  # type: ignore[attr-defined]
        if not os.environ.get(spec.secret_env):
            problems.append(f"{spec.secret_env} is not set: the webhook '{spec.name}' (POST "
                            f"/api/v1/webhooks/{spec.name}) refuses every delivery until it is")
    return problems


def _start_scheduler(runtime: object, disabled: bool) -> object | None:
    """Start ticking timers and the outbox beside the web server (unless disabled)."""
    if disabled:
        print("  scheduler: off (--no-scheduler); run `docket worker` to fire timers and send messages")
        return None
    from engine.scheduler import Scheduler

    scheduler = Scheduler(runtime)  # type: ignore[arg-type]
    scheduler.start()
    print("  scheduler: ticking timers and the outbox in this process")
    return scheduler


def cmd_worker(args: argparse.Namespace) -> int:
    """Run only the scheduler: an extra process that fires timers and sends messages.

    Logging follows --log-level (main's `configure_logging`)."""
    import signal
    import threading

    from engine.scheduler import Scheduler
    from engine.storage.db import database_url
    from web.system import boot

    url = database_url(args.db)
    for warning in settings_problems():
        print(f"warning: {warning}", file=sys.stderr)
    system = boot(args.bundle, db_url=url)
    scheduler = Scheduler(system.runtime, timer_interval=args.interval)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler.start()
    print(f"Docket worker: firing timers and sending messages for {system.bundle.name} "
          f"on {_safe_url(url)}; Ctrl+C stops", flush=True)
    stop.wait()
    # Said in the log, so a stop asked for (systemctl stop, Ctrl+C) reads differently from a crash.
    print("Docket worker: stopping; the messages being sent finish first", flush=True)
    scheduler.shutdown()
    system.db.dispose()  # as serve: the last connection out folds the WAL into the file
    print("Docket worker: stopped", flush=True)
    return 0


def cmd_instances_migrate(args: argparse.Namespace) -> int:
    """Show (and with --apply make) the move of running flow instances to the current bundle
    version: by default they finish on the version they started on."""
    from engine.storage.db import database_url
    from flows.version_move import MoveError, apply_moves, parse_renames, plan_moves
    from web.system import boot

    system = boot(args.bundle, db_url=_waiting_at_most(database_url(args.db)))
    try:
        renames = parse_renames(list(args.map or []), system.flows.flows)
    except MoveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    version = system.bundle.hash[:12]
    moves = apply_moves(system.flows, renames) if args.apply else plan_moves(system.flows, renames)
    if not moves:
        print(f"every running instance is on the current version ({version})")
        return 0
    movable = [m for m in moves if m.blocked is None]
    for move in moves:
        steps = ", ".join(f"{s} -> {move.renamed[s]}" if s in move.renamed else s for s in move.steps)
        what = f"{move.form} {move.record_id} ({move.flow}, version {move.version[:12]}) at {steps or 'no step'}"
        if move.blocked is None:
            print(f"  {'moved' if args.apply else 'moves'}  {what}")
        else:
            print(f"  stays  {what}: {move.blocked}")
    verb = "moved" if args.apply else "can move"
    print(f"{len(movable)} of {len(moves)} running instance(s) {verb} to the current version ({version}); "
          f"{len(moves) - len(movable)} stay on the version they started on")
    if movable and not args.apply:
        print("nothing changed: run again with --apply to move them")
    return 0


LOCK_TIMEOUT_S = 15
"""How long `docket migrate` and `docket instances migrate` wait for a table another session
holds (PostgreSQL), before stopping with one line instead of waiting in silence."""


def _waiting_at_most(url: str) -> str:
    """`url` with PostgreSQL's lock_timeout set to LOCK_TIMEOUT_S (any options it has kept):
    behind a long report or a psql session left in a transaction, a command that changes tables
    stops and says so. SQLite's own busy timeout already bounds its wait."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    options = " ".join([parsed.query.get("options", ""), f"-clock_timeout={LOCK_TIMEOUT_S * 1000}"]).strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Show (and with --apply, run) the record-table changes start-up never makes on its own."""
    from engine.storage.db import database_url
    from forms.migrate import MigrationBlocked, apply_form, plan_form
    from web.system import boot

    renames: dict[str, dict[str, str]] = {}
    for item in args.rename or []:
        form_old, _, new = item.partition("=")
        form_name, _, old = form_old.partition(".")
        if not (form_name and old and new):
            print(f"--rename {item}: write it as FORM.OLD=NEW", file=sys.stderr)
            return 2
        renames.setdefault(form_name, {})[old] = new
    # Start-up warns of every change it leaves "for docket migrate": this is docket migrate, which
    # lists them as its plan below.
    with quieted("engine.storage.records"):
        system = boot(args.bundle, db_url=_waiting_at_most(database_url(args.db)))
    unknown = sorted(set(renames) - set(system.forms.forms))
    if unknown:
        print(f"--rename: no form {', '.join(unknown)}", file=sys.stderr)
        return 2
    plans = {name: plan_form(system.forms, name, renames.get(name)) for name in system.forms.forms}
    pending = {name: steps for name, steps in plans.items() if any(s.kind != "note" or s.blocked for s in steps)}
    for name, steps in plans.items():
        for step in steps:
            print(step.describe())
    if not any(plans.values()):
        print("every record table matches its form: nothing to migrate")
        return 0
    blocked = any(s.blocked for steps in plans.values() for s in steps)
    if not pending:
        # Only notes: --apply would do nothing, and saying to run it sent analysts round in a loop.
        print("nothing to apply: the notes above are for you to act on (in the bundle or the records)")
        return 0
    if not args.apply:
        print("nothing changed: run again with --apply to make these changes"
              + (" once the blocked steps are fixed" if blocked else ""))
        return 1 if blocked else 0
    status = 0
    for name, steps in pending.items():
        # Blocked is the plan's own answer, shown above: caught inside, so it is not reported
        # as an unexpected failure of the database.
        with _writing(f"migrating the {name} record table", args.db):
            try:
                for line in apply_form(system.forms, name, steps):
                    print(f"done: {line}")
            except MigrationBlocked:
                print(f"{name}: not migrated: some steps are blocked (see above); nothing changed",
                      file=sys.stderr)
                status = 1
    return status


def cmd_tokens(args: argparse.Namespace) -> int:
    """API tokens for integrations: create (the secret is printed once), list, revoke."""
    from engine.clock import SystemClock
    from engine.storage.db import create_engine, database_url, read_transaction, transaction
    from engine.storage.migrations import upgrade
    from web.auth import audit
    from web.tokens import create_token, list_tokens, revoke_token

    engine = create_engine(database_url(args.db))
    upgrade(engine)
    now = SystemClock().now()
    if args.tokens_command == "create":
        try:
            with transaction(engine) as conn:
                secret, token_id = create_token(conn, args.user, args.name, now=now, created_by="cli")
                audit(conn, "cli", "token.created", f"token:{token_id}", {"user": args.user, "name": args.name},
                      at=now)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(secret)
        print(f"token {token_id} for {args.user} ('{args.name}'): keep it secret, it is not shown again;"
              " send it as 'Authorization: Bearer <token>'", file=sys.stderr)
        return 0
    if args.tokens_command == "revoke":
        with transaction(engine) as conn:
            info = revoke_token(conn, args.id, now=now)
            audit(conn, "cli", "token.revoked", f"token:{args.id}", {"user": info.username}, at=now)
        print(f"token {info.id} of {info.username} ('{info.name}') revoked")
        return 0
    with read_transaction(engine) as conn:
        infos = list_tokens(conn, args.user)
    for info in infos:
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
        used = f"last used {info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "never used"
        print(f"{info.id:>5}  {info.username:<16} {info.prefix}...  {info.name:<30} {state}, {used}")
    if not infos:
        print("no API tokens")
    return 0


DEMO_RECORDS = 40
"""Records a demo database starts with, so the inbox, records and dashboards have something."""


def _seed_demo_records(system: object) -> None:
    """Fill an empty demo database with a few weeks of synthetic records run through the flows
    (the newest still open, so the inbox has work); a database with records is left alone."""
    from datetime import timedelta

    from engine.clock import ManualClock
    from reports.demo import DemoRunner
    from web.system import boot

    forms = system.forms  # type: ignore[attr-defined]
    if any(forms.count(name) for name in forms.forms):
        return
    print(f"  demo data: filling the empty database with {DEMO_RECORDS} sample records (once)...", flush=True)
    end = system.runtime.clock.now()  # type: ignore[attr-defined]
    start = end - timedelta(days=21)
    # The serving system has just warned about unset channel variables and broken plugins;
    # this second boot of the same bundle would repeat every one of those warnings.
    with quieted("engine.outbox", "web.system"):
        seeding = boot(system.bundle.root, db_url=system.db.url.render_as_string(hide_password=False),  # type: ignore[attr-defined]
                       clock=ManualClock(start), registry=system.bundle.registry)  # type: ignore[attr-defined]
    DemoRunner(seeding.runtime, seed=7).run(DEMO_RECORDS, start=start, days=21)
    seeding.db.dispose()


def _print_demo_users(system: object, url: str, explicit: bool | None) -> None:
    """List the demo users; in demo mode give those without a password the demo password."""
    from engine.storage.db import transaction
    from web.auth import demo_mode, demo_password, give_demo_passwords

    meta = system.bundle.meta  # type: ignore[attr-defined]
    if not meta.demo_users:
        return
    names = [u.username for u in meta.demo_users]
    shown = meta.demo_users
    if demo_mode(explicit, url, True):
        password = demo_password()
        with transaction(system.db) as conn:  # type: ignore[attr-defined]
            give_demo_passwords(conn, names, password)
        print(f"  demo users (password: {password}; kept in var/demo_password):")
    else:
        # Outside a demo they are accounts nobody signs in with that still get tasks offered and
        # assigned: name the ones still active and how to retire them.
        active = _active_usernames(system, names)
        shown = tuple(u for u in meta.demo_users if u.username in active)
        if not shown:
            return
        print("  demo users still active, without a password (on a real server: "
              "`docket users deactivate --demo`; to try Docket out: serve with --demo):")
    for user in shown:
        print(f"    {user.username:<14} {', '.join(user.roles)}")


def _active_usernames(system: object, names: Sequence[str]) -> set[str]:
    """Those of `names` that are active accounts in the system's database."""
    from sqlalchemy import select

    from engine.storage.db import read_transaction
    from engine.storage.tables import users

    with read_transaction(system.db) as conn:  # type: ignore[attr-defined]
        return set(conn.execute(select(users.c.username).where(
            users.c.username.in_(list(names)), users.c.is_active.is_(True))).scalars())


def _read_password(from_stdin: bool) -> str | None:
    """A new password from stdin, or asked twice on the terminal; None (with a message) if unusable."""
    import getpass

    from web.auth import password_problems

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        # Run from a script, cron or ssh without -t: getpass would read a line of whatever stdin
        # holds (echoing the password) or fail with a traceback on EOF.
        print("there is no terminal to ask the password on: pipe it in with --password-stdin "
              "(or create the user with --no-password); nothing was changed", file=sys.stderr)
        return None
    else:
        try:
            password = getpass.getpass("New password: ")
            if getpass.getpass("Repeat it: ") != password:
                print("the two passwords differ; nothing was changed", file=sys.stderr)
                return None
        except EOFError:  # Ctrl+D at the prompt
            print("\nno password given; nothing was changed", file=sys.stderr)
            return None
    problems = password_problems(password)
    for problem in problems:
        print(problem, file=sys.stderr)
    return None if problems else password


def cmd_users_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from engine.directory import user_roles_of
    from engine.storage.db import read_transaction
    from engine.storage.tables import users
    from web.system import boot

    system = boot(args.bundle, db_url=args.db)
    with read_transaction(system.db) as conn:
        for row in conn.execute(select(users).order_by(users.c.username)).mappings():
            state = "" if row["is_active"] else " (deactivated)"
            password = ("temporary password" if row["password_temporary"] else "password set") \
                if row["password_hash"] else "no password"
            print(f"{row['username']:<16} {row['department'] or '-':<16} {', '.join(user_roles_of(conn, row['username'])) or '-'}"
                  f"  [{password}]{state}")
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    from sqlalchemy import insert, select

    from engine.storage.db import read_transaction, transaction
    from engine.storage.tables import user_roles, users
    from web.admin import USERNAME
    from web.auth import audit, hash_password
    from web.system import boot

    system = boot(args.bundle, db_url=args.db)
    meta = system.bundle.meta
    problems = [f"unknown role '{r}' (roles: {', '.join(meta.roles)})" for r in args.role if r not in meta.roles]
    if args.department and args.department not in meta.departments:
        problems.append(f"unknown department '{args.department}' (departments: {', '.join(meta.departments)})")
    if not USERNAME.fullmatch(args.username):
        problems.append(f"'{args.username}': use letters, digits and . _ @ - only (at most 150)")
    if args.email and ("@" not in args.email or len(args.email) > 255):  # as the admin page checks it
        problems.append(f"--email {args.email}: not an e-mail address; nothing was changed")
    with read_transaction(system.db) as conn:  # before asking for a password it would not use
        if conn.execute(select(users.c.id).where(users.c.username == args.username)).first():
            problems.append(f"user '{args.username}' exists already")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    password = None if args.no_password else _read_password(args.password_stdin)
    if password is None and not args.no_password:
        return 1
    now = system.runtime.clock.now()
    with transaction(system.db) as conn:
        if conn.execute(select(users.c.id).where(users.c.username == args.username)).first():
            print(f"user '{args.username}' exists already", file=sys.stderr)
            return 1
        user_id = conn.execute(insert(users).values(
            username=args.username, display_name=args.name, email=args.email, department=args.department,
            created_at=now, password_hash=hash_password(password) if password else None,
            password_temporary=bool(password) and args.temporary)).inserted_primary_key[0]
        for role in dict.fromkeys(args.role):
            conn.execute(insert(user_roles).values(user_id=user_id, role=role))
        audit(conn, "cli", "user.created", args.username,
              {"roles": args.role, "department": args.department, "password": bool(password)}, at=now)
    print(f"user '{args.username}' created")
    return 0


def cmd_users_set_password(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from engine.storage.db import read_transaction, transaction
    from engine.storage.tables import users
    from web.auth import audit, set_password
    from web.system import boot

    system = boot(args.bundle, db_url=args.db)
    with read_transaction(system.db) as conn:  # before asking for a password it would not use
        if conn.execute(select(users.c.id).where(users.c.username == args.username)).first() is None:
            print(f"no user '{args.username}'; nothing was changed", file=sys.stderr)
            return 1
    password = _read_password(args.password_stdin)
    if password is None:
        return 1
    with transaction(system.db) as conn:
        try:
            set_password(conn, args.username, password, temporary=args.temporary)
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 1
        audit(conn, "cli", "user.password", args.username, {}, at=system.runtime.clock.now())
    print(f"password of '{args.username}' set; their sessions were ended")
    return 0


def cmd_users_set_active(args: argparse.Namespace) -> int:
    """Deactivate (or activate again) accounts: a deactivated user cannot sign in, their sessions
    and API tokens stop working, and no new task is assigned to them; their history stays.
    `--demo` names the bundle's demo users, which every database has (without a password)."""
    from sqlalchemy import select, update

    from engine.storage.db import transaction
    from engine.storage.tables import users
    from web.auth import audit, end_sessions_of
    from web.system import boot

    active = args.users_command == "activate"
    system = boot(args.bundle, db_url=args.db)
    names = list(dict.fromkeys(list(args.usernames) + (
        [u.username for u in system.bundle.meta.demo_users] if args.demo else [])))
    if not names:
        print("name the users, or give --demo for the bundle's demo users", file=sys.stderr)
        return 1
    now = system.runtime.clock.now()
    changed: list[str] = []
    admin_roles = [name for name, role in system.bundle.meta.roles.items() if role.admin]
    with transaction(system.db) as conn:
        could_administer = _administrators_signing_in(conn, admin_roles)
        rows = {row.username: row for row in conn.execute(
            select(users.c.id, users.c.username, users.c.is_active).where(users.c.username.in_(names)))}
        unknown = [name for name in names if name not in rows]
        if unknown:
            print(f"no user {', '.join(repr(n) for n in unknown)}; nothing was changed", file=sys.stderr)
            return 1
        for name in names:
            row = rows[name]
            if bool(row.is_active) == active:
                continue
            conn.execute(update(users).where(users.c.id == row.id).values(is_active=active))
            ended = 0 if active else end_sessions_of(conn, int(row.id))
            audit(conn, "cli", "user.activated" if active else "user.deactivated", name,
                  {"sessions_ended": ended}, at=now)
            changed.append(name)
        held = {} if active else _open_tasks_held(conn, [int(rows[name].id) for name in names])
        locked_out = could_administer and not _administrators_signing_in(conn, admin_roles)
    state = "activated" if active else "deactivated"
    print(f"{state}: {', '.join(changed)}" if changed else f"nothing to do: already {state}")
    for name in names:
        if held.get(int(rows[name].id)):
            print(f"warning: {name} holds {held[int(rows[name].id)]} open task(s), which wait until someone "
                  f"reassigns them: an administrator hands them all over on /admin/users/{name}", file=sys.stderr)
    if locked_out:
        print(f"warning: no active administrator has a password now: nobody can sign in to /admin until "
              f"`docket users activate {' '.join(changed)}` (or `docket users add NAME --role admin`)",
              file=sys.stderr)
    return 0


def _administrators_signing_in(conn: object, admin_roles: Sequence[str]) -> int:
    """How many active users holding one of `admin_roles` have a password to sign in with."""
    from sqlalchemy import func, select

    from engine.storage.tables import user_roles, users

    holders = users.join(user_roles, user_roles.c.user_id == users.c.id)
    return int(conn.execute(  # type: ignore[attr-defined]
        select(func.count(func.distinct(users.c.id))).select_from(holders)
        .where(users.c.is_active.is_(True), users.c.password_hash.is_not(None),
               user_roles.c.role.in_(list(admin_roles)))).scalar() or 0)


def _open_tasks_held(conn: object, user_ids: Sequence[int]) -> dict[int, int]:
    """How many open or claimed tasks each of these users holds (those holding none left out)."""
    from sqlalchemy import func, select

    from engine.storage.tables import tasks

    rows = conn.execute(  # type: ignore[attr-defined]
        select(tasks.c.assignee_user, func.count()).where(
            tasks.c.assignee_user.in_(list(user_ids)), tasks.c.status.in_(("open", "claimed")))
        .group_by(tasks.c.assignee_user))
    return {int(user_id): int(count) for user_id, count in rows}


def _safe_url(url: str) -> str:
    """The URL as Docket shows it: without its password, and a SQLite file relative to the
    working folder written from / (which folder `var/docket.db` is in is the first question
    when a service's working folder is not the one the operator thought)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database or ""
    if (parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
            and not database.startswith("file:") and not Path(database).is_absolute()):
        parsed = parsed.set(database=str(Path(database).resolve()))
    return parsed.render_as_string(hide_password=True)


DB_HELP = ("database URL (default: $DOCKET_DATABASE_URL, else sqlite:///var/docket.db); PostgreSQL: "
           "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB, tables in a schema of it: add "
           "?options=-csearch_path%%3DSCHEMA")
LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]
WRITE_LOG_HELP = ("what Docket logs (default: warnings only); debug adds the traceback of a failure "
                  "to store")
LOG_HELP = ("what Docket and the web server log, with timestamps (default: %(default)s; info includes "
            "messages a demo logs instead of sending, debug every scheduler run)")

TOP_EPILOG = """\
examples:
  docket new my_process                         # a small working bundle to change into yours
  docket validate definitions/postal_complaints
  docket test definitions/postal_complaints     # the scenarios in scenarios/*.yaml
  docket simulate definitions/postal_complaints --compare my_change/
  docket serve                                  # SQLite in var/, demo users and sample data
  docket db upgrade --db postgresql+psycopg://docket@db.internal:5432/docket
  docket serve --db postgresql+psycopg://docket@db.internal:5432/docket --host 0.0.0.0 --no-scheduler
  docket worker --db postgresql+psycopg://docket@db.internal:5432/docket
  docket db backup /srv/backups/docket --keep 14  # SQLite: a checked copy while it runs (cron)

environment (for serve and worker):
  DOCKET_DATABASE_URL     the database when --db is not given
  DOCKET_SECRET_KEY       signs sessions and form tickets; give every server the same one
                          (default: a key kept in var/secret_key)
  DOCKET_FILES_DIR        where uploaded files are kept, shared by every server
                          (default: files/ beside a SQLite database, else var/files)
  DOCKET_PUBLIC_URL       the address people use: QR codes of printed letters, record links in group messages;
                          with a path (https://oa.example-post.cn/docket) Docket is served under that path
  DOCKET_TRUSTED_PROXIES  reverse proxies whose X-Forwarded-For is believed (comma separated)
  DOCKET_SECURE_COOKIES   1: mark cookies Secure although requests arrive over http (a TLS proxy in front)
  DOCKET_SESSION_IDLE_MINUTES, DOCKET_SESSION_HOURS
                          a session ends after this long unused (default 30) or this long at all (default 12)
  DOCKET_EMBED_ORIGINS    sites that may show the public forms in an iframe (comma separated)
  DOCKET_API_SUBMITS_PER_MINUTE
                          submissions per minute one client may make without a token (default 60)
  DOCKET_MAX_PENDING_UPLOADS_MB
                          uploads no record holds yet may fill this much before anonymous ones are
                          refused (default 2048)
  DOCKET_WEBHOOK_ALLOW_NETWORKS
                          private networks webhooks may call, e.g. 10.20.0.0/16 (default: public only)
  DOCKET_METRICS_TOKEN    the bearer token Prometheus sends to read /metrics (unset: no /metrics)
  DOCKET_DEMO             1 or 0: demo mode of serve (see docket serve --help)
  DOCKET_OUTBOX_DRY_RUN   1: write messages to the log instead of sending them
  DOCKET_CHECK_DEFERRED_READS
                          1 (the test suite sets it): a query that would miss a command's own
                          history rows is an error; slower, not for production

`docket COMMAND --help` describes each command.
"""

SERVE_EPILOG = """\
examples:
  docket serve                                  # the quick start: SQLite in var/, demo mode
  docket serve --port 8080 --log-level warning
  docket serve --db postgresql+psycopg://docket:PASSWORD@db.internal:5432/docket --host 0.0.0.0
  docket serve --db 'postgresql+psycopg://postgres@127.0.0.1/test?options=-csearch_path%3Ddocket'

Stop it with Ctrl+C or SIGTERM: requests in progress are finished first. `docket --help`
lists the environment variables a server reads.
"""


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions as usual but keeps an epilog's lines (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _with_epilog(parser: argparse.ArgumentParser, epilog: str) -> argparse.ArgumentParser:
    """Give a (sub)command examples shown after its options."""
    parser.epilog = epilog
    parser.formatter_class = _HelpFormatter
    return parser


def _installed_version() -> str:
    """Docket's version as installed (pyproject.toml), or "unknown" when run from a tree that
    was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("docket")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `docket` command."""
    parser = argparse.ArgumentParser(prog="docket", description="Docket: YAML forms, flows, rules and reports.",
                                     epilog=TOP_EPILOG, formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"docket {_installed_version()}",
                        help="print the installed version (an operator's first question on an upgrade)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("validate", help="check a bundle; exit 0 when valid, 1 with every error",
                       description="Load and check every file of a bundle; print file:line:col: messages.")
    p.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("test", help="run the bundle's scenarios (scenarios/*.yaml) on scratch databases",
                       description="Run scenario tests: each file in BUNDLE/scenarios/ tells a story "
                                   "(submit, complete, wait, expect) that runs on a fresh database with a "
                                   "manual clock; failures come back as file:line:col: messages. "
                                   "Example: docket test definitions/postal_complaints")
    p.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("scenarios", nargs="*", help="scenario files to run (default: all of the bundle's)")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("simulate", help="run sample traffic through a bundle on a scratch database",
                       description="Pilot a bundle without touching any real database: sample records "
                                   "arrive over --days, people complete their steps after plausible "
                                   "delays, timers fire (SLA warnings, escalations), all on a fast "
                                   "clock; then flow outcomes, time per step, SLA results, escalations, "
                                   "messages and incidents are printed. --compare runs the same traffic "
                                   "through another bundle (the change you plan) side by side. Example: "
                                   "docket simulate definitions/postal_complaints --compare my_change/")
    p.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--compare", metavar="BUNDLE", help="another bundle to run the same traffic through")
    p.add_argument("--records", type=int, default=200, help="sample records (default: %(default)s)")
    p.add_argument("--days", type=int, default=30, help="days they arrive over (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="random seed: the same seed, the same traffic")
    p.add_argument("--start", default="2026-03-02", help="first day, in the bundle's time zone (default: %(default)s)")
    p.add_argument("--form", help="the form whose records arrive (default: the first dataset's form, "
                                  "else the bundle's first form)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("serve", help="run the web application",
                       description="Check the bundle, migrate the database, and serve the web application.")
    p.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=port_number, default=8000, help="port (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=LOG_LEVELS, help=LOG_HELP)
    p.add_argument("--no-scheduler", action="store_true",
                   help="do not fire timers or send messages here (run `docket worker` instead)")
    p.add_argument("--demo", action=argparse.BooleanOptionalAction, default=None,
                   help="give the bundle's demo users the password printed at start (default: $DOCKET_DEMO, "
                        "else on only for the SQLite database under var/)")
    _with_epilog(p, SERVE_EPILOG)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("users", help="manage sign-in accounts", description="Manage sign-in accounts.")
    users_sub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    q = users_sub.add_parser("list", help="list users with their roles and department")
    q.add_argument("--bundle", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_users_list)
    q = users_sub.add_parser("add", help="create a user",
                             description="Create a user; the password is asked for (or read from stdin).")
    q.add_argument("username")
    q.add_argument("--name", help="display name")
    q.add_argument("--role", action="append", default=[], help="a role from bundle.yaml (repeat for several)")
    q.add_argument("--department", help="a department code from bundle.yaml")
    q.add_argument("--email")
    q.add_argument("--no-password", action="store_true", help="create without a password (cannot sign in yet)")
    q.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    q.add_argument("--temporary", action="store_true", help=TEMPORARY_HELP)
    q.add_argument("--bundle", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_users_add)
    q = users_sub.add_parser("set-password", help="set a user's password (ends their sessions)",
                             description="Set a user's password; it is asked for twice, or read from stdin.")
    q.add_argument("username")
    q.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    q.add_argument("--temporary", action="store_true", help=TEMPORARY_HELP)
    q.add_argument("--bundle", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_users_set_password)
    for action, helps in (("deactivate", "stop accounts signing in or getting tasks (history is kept)"),
                          ("activate", "let deactivated accounts sign in and get tasks again")):
        q = users_sub.add_parser(action, help=helps,
                                 description=f"{helps[0].upper()}{helps[1:]}. --demo names the bundle's demo "
                                             "users: on a real server, deactivate them once real accounts exist.")
        q.add_argument("usernames", nargs="*", metavar="USERNAME")
        q.add_argument("--demo", action="store_true", help="also every demo user of the bundle (bundle.yaml)")
        q.add_argument("--bundle", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
        q.add_argument("--db", help=DB_HELP)
        q.set_defaults(func=cmd_users_set_active)

    p = sub.add_parser("worker", help="fire timers and send queued messages (no web server)",
                       description="Run only the background scheduler: durable timers and the outbox. "
                                   "Any number of workers and servers may run against one database.")
    p.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between timer ticks (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=LOG_LEVELS, help=LOG_HELP)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", help="plan and apply record-table changes that could lose data",
                       description="Compare each form's table with its definition. Start-up only adds "
                                   "tables, columns and indexes; retyped, renamed, removed and unique "
                                   "fields wait for this command, which shows its plan first and "
                                   "changes nothing without --apply. Old columns are kept as _removed_*.")
    p.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--rename", action="append", metavar="FORM.OLD=NEW",
                   help="a field was renamed: move the values of column OLD into field NEW (repeatable)")
    p.add_argument("--apply", action="store_true", help="make the changes (default: only show the plan)")
    p.add_argument("--log-level", choices=LOG_LEVELS, help=WRITE_LOG_HELP)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("instances", help="running flow instances: move them to the current version",
                       description="Running flow instances.")
    instances_sub = p.add_subparsers(dest="instances_command", required=True)
    q = instances_sub.add_parser(
        "migrate", help="move running instances to the current bundle version",
        description="A running instance finishes on the bundle version it started on. This moves "
                    "those on earlier versions to the current one, each whole or not at all: where "
                    "every step it stands at exists in the new flow with the same type (or a step "
                    "named with --map). It shows its plan first and changes nothing without --apply.")
    q.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    q.add_argument("--db", help=DB_HELP)
    q.add_argument("--map", action="append", metavar="FLOW.OLD=NEW",
                   help="a step was renamed or replaced: instances at OLD go on at NEW (repeatable)")
    q.add_argument("--apply", action="store_true", help="move them (default: only show the plan)")
    q.add_argument("--log-level", choices=LOG_LEVELS, help=WRITE_LOG_HELP)
    q.set_defaults(func=cmd_instances_migrate)

    p = sub.add_parser("submit", help="submit a record from a JSON file",
                       description="Validate and store one record (starting its flow), print its query number.")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("form", help="form name")
    p.add_argument("--data", required=True, help="JSON file with field values")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--user", help="submitting username")
    p.add_argument("--locale", default="en", help="language of error messages (en, zh-CN)")
    p.add_argument("--key", help="idempotency key: a retry with the same key returns the first record")
    p.add_argument("--log-level", choices=LOG_LEVELS, help=WRITE_LOG_HELP)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("demo", help="fill the database with synthetic records for the dashboards",
                       description="Submit N realistic synthetic records over two years and work their "
                                   "tasks through the flows on a fast clock.")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--records", type=int, default=1000, help="how many records (default 1000)")
    p.add_argument("--days", type=int, default=730, help="spread over this many days up to now (default 730)")
    p.add_argument("--seed", type=int, default=7, help="random seed (the same seed gives the same data)")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--log-level", choices=LOG_LEVELS, help=WRITE_LOG_HELP)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("files", help="uploaded files: sweep the ones nothing uses",
                       description="Uploaded files administration.")
    files_sub = p.add_subparsers(dest="files_command", metavar="ACTION", required=True)
    q = files_sub.add_parser("sweep", help="forget abandoned uploads and remove files nothing uses",
                             description="Delete uploads never attached to a record (a form abandoned "
                                         "after its photo went up, a file unticked after a refusal) once "
                                         "older than --older-than, then the stored files no upload uses "
                                         "and untouched as long. Safe while the server runs; run it daily "
                                         "(cron). Example: docket files sweep --older-than 7d")
    q.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    q.add_argument("--older-than", default="7d", help="how old an abandoned upload must be (default: %(default)s)")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_files_sweep)

    p = sub.add_parser("export", help="write a form's records to a CSV or XLSX file",
                       description="Export every record of a form, headed by the form's labels.")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("form", help="form name")
    p.add_argument("--format", choices=["csv", "xlsx"], help="file format (default: from --out's extension)")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--locale", default="en", help="language of the headers and labels (en, zh-CN)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="create records from a CSV or XLSX file",
                       description="Validate every row like a submission; store all rows, or none "
                                   "if any row is invalid (unless --valid-rows). Prints each error "
                                   "with its row and column; exits 1 unless every row was stored.")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("form", help="form name")
    p.add_argument("file", help="CSV or XLSX file; headers are field labels (any language) or names")
    p.add_argument("--format", choices=["auto", "csv", "xlsx"], default="auto", help="file format (default: %(default)s)")
    p.add_argument("--valid-rows", action="store_true", help="store the valid rows even if others have errors")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--user", help="importing username (recorded as the records' creator)")
    p.add_argument("--locale", default="en", help="language of error messages (en, zh-CN)")
    p.add_argument("--log-level", choices=LOG_LEVELS, help=WRITE_LOG_HELP)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("tokens", help="API tokens for integrations (create, list, revoke)",
                       description="API tokens act as their user: send them as 'Authorization: Bearer "
                                   "<token>'. Only a hash is stored; the secret is printed once.")
    tokens_sub = p.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    q = tokens_sub.add_parser("create", help="create a token for USER and print it once")
    q.add_argument("user", help="the username the token acts as")
    q.add_argument("--name", required=True, help="what uses the token, e.g. 'hotline gateway'")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_tokens)
    q = tokens_sub.add_parser("list", help="list tokens (never their secrets)")
    q.add_argument("--user", help="only this user's tokens")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_tokens)
    q = tokens_sub.add_parser("revoke", help="revoke a token by its id")
    q.add_argument("id", type=int, help="the token's id (from `docket tokens list`)")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_tokens)

    p = sub.add_parser("new", help="start a bundle of your own from a small working one",
                       description="Create FOLDER with a small working bundle to change into your process: a "
                                   "request form, a review-and-approve flow, an SLA, a dashboard and two "
                                   "scenarios. It is valid and its scenarios pass as created.")
    p.add_argument("folder", help="the new bundle's folder (must not exist, or be empty)")
    p.add_argument("--name", help="the bundle's name (default: the folder's name, in lower case with _)")
    _with_epilog(p, "example:\n  docket new leave_requests\n  docket serve leave_requests --db sqlite:///var/leave.db --demo\n"
                    f"from the starter to your own process, step by step: {NEW_PROCESS_GUIDE}\n")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("schema", help="write JSON Schemas of every definition kind for editors",
                       description="Write one JSON Schema (Draft 2020-12) per definition kind.")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("db", help="database administration", description="Database administration.")
    db_sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    q = db_sub.add_parser("upgrade", help="migrate the engine tables to the newest revision",
                          description="Migrate the engine tables (dk_*) to the newest revision.")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_db_upgrade)
    q = db_sub.add_parser(
        "backup", help="copy the database and the files it names into FOLDER, while Docket runs",
        description="Write FOLDER/docket-<UTC time>.db, a consistent copy of the SQLite database taken "
                    "while servers and workers keep running, checked with SQLite's integrity check, and "
                    "copy into FOLDER/files/ every uploaded file it names that is not there yet (each "
                    "checked against its checksum). Exits 1 if a named file is missing. PostgreSQL "
                    "databases are backed up with pg_dump.")
    q.add_argument("folder", help="where backups are kept (created if missing)")
    q.add_argument("--keep", type=int, help="then remove all but the newest N backups in FOLDER, and the files "
                                            "only they named")
    q.add_argument("--db", help=DB_HELP)
    _with_epilog(q, "example (cron, nightly, 14 kept):\n  docket db backup /srv/backups/docket --keep 14\n")
    q.set_defaults(func=cmd_db_backup)
    q = db_sub.add_parser(
        "restore", help="put a backup in place of the database (Docket stopped)",
        description="Check BACKUP and put it in place of the database; the database it replaces is "
                    "kept beside it as <name>.before-restore-<UTC time>. Refused while any server or "
                    "worker has the database open. The uploaded files it names are copied back from "
                    "the backup's files/ folder.")
    q.add_argument("backup", help="a backup file written by docket db backup")
    q.add_argument("--db", help=DB_HELP)
    q.set_defaults(func=cmd_db_restore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `docket` console script."""
    args = build_parser().parse_args(argv)
    configure_logging(getattr(args, "log_level", None))
    if hasattr(args, "db"):
        problem = database_problem(args.db)
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 1
    # Only a server and a worker send messages: the others' channel warnings were cron mail.
    sends = args.func in (cmd_serve, cmd_worker)
    try:
        with quieted(*(() if sends else ("engine.outbox.settings",))):
            code = int(args.func(args))
        sys.stdout.flush()  # here, where a reader gone away is caught below, not at exit
        return code
    except BrokenPipeError:
        # `docket users list | head`: the reader stopped reading. Quietly, as other commands do
        # (Python would print "Exception ignored ... BrokenPipeError" as it exits).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except DefinitionError as exc:
        _print_diagnostics(exc.diagnostics)
        print(f"{len(exc.diagnostics)} error(s): fix them and try again", file=sys.stderr)
        return 1
    except (NotFoundError, ConflictError, WriteFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        explained = _explain_failure(exc, getattr(args, "db", None))
        if explained is None:
            raise  # a bug in Docket: the traceback is what its developers need
        print(explained, file=sys.stderr)
        return 1


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
SERVER_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str | None) -> None:
    """Docket's log: warnings for one-off commands; for `serve` and `worker` (which have
    --log-level) that level, with timestamps, so a demo's logged messages and the scheduler's
    start show up. Called once, by `main`: a second basicConfig would be silently ignored
    (which is how `docket worker --log-level` once had no effect)."""
    if level is None:
        logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
        return
    logging.basicConfig(level=level.upper(), format=SERVER_LOG_FORMAT)
    if level != "debug":
        # At INFO, APScheduler logs every run of every job (a line a second), Alembic its
        # plugins and SQLAlchemy's pools (named after Docket's SQLite pool class) every dispose.
        for chatty in ("apscheduler", "alembic", "sqlalchemy", "engine.storage.db._FilePool"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


DATABASE_URL_FORMS = "sqlite:///var/docket.db or postgresql+psycopg://user@host:5432/dbname"


def database_problem(explicit: str | None) -> str | None:
    """Why the database URL (--db, else $DOCKET_DATABASE_URL, else the SQLite default) cannot
    work, found before the bundle loads; None when it may. The URL itself is not repeated
    when it does not parse: it may hold a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from engine.storage.db import database_url

    try:
        missing = sqlite_folder_missing(explicit)
        if missing is not None:
            return missing
        raw = database_url(explicit)
        url = make_url(raw)
    except ArgumentError:
        return f"the database URL (--db or $DOCKET_DATABASE_URL) is not a URL; write {DATABASE_URL_FORMS}"
    except OSError as exc:  # the SQLite file's folder could not be created
        return (f"cannot create the folder for the SQLite database {Path(exc.filename or '').resolve()}: "
                f"{exc.strerror}")
    if raw.partition("://")[2].partition("?")[0].count("@") > 1:
        # Read as it stands, the password's tail becomes the host name, which messages show.
        return ("the database URL (--db or $DOCKET_DATABASE_URL) has more than one '@': write each @ of "
                "the password as %40 (and / as %2F, : as %3A, % as %25)")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        return f"'{url.drivername}' is not a database Docket knows; write {DATABASE_URL_FORMS}"
    if url.get_backend_name() == "sqlite" and url.host:
        return (f"a SQLite URL has no host ('{url.host}' was read as one): write three slashes before a "
                "path under the working folder (sqlite:///var/docket.db), four before a path from / "
                "(sqlite:////srv/docket/docket.db)")
    try:
        url.get_dialect().import_dbapi()
    except NoSuchModuleError:
        return f"'{url.drivername}' is not a database Docket knows; write {DATABASE_URL_FORMS}"
    except ImportError as exc:
        return (f"the PostgreSQL driver '{exc.name}' is not installed; install Docket with it: "
                "pip install -e '.[postgres]'")
    return None


def sqlite_folder_missing(explicit: str | None) -> str | None:
    """Why a SQLite URL the operator gave cannot be right: its folder does not exist. Only the
    quick start's own var/ is created: any other missing folder is a mistyped path (three
    slashes where four were meant), which would have started an empty database beside the
    real one. None for PostgreSQL, the default, or a folder that exists. ArgumentError for a
    URL that does not parse."""
    from sqlalchemy.engine import make_url

    from engine.storage.db import DEFAULT_URL

    source = "--db" if explicit else "$DOCKET_DATABASE_URL"
    raw = explicit or os.environ.get("DOCKET_DATABASE_URL") or DEFAULT_URL
    url = make_url(raw)
    database = url.database or ""
    if (raw == DEFAULT_URL or url.get_backend_name() != "sqlite" or url.host
            or database in ("", ":memory:") or database.startswith("file:")):
        return None
    folder = Path(database).resolve().parent
    if folder.is_dir():
        return None
    problem = (f"the folder {folder} of the SQLite database does not exist (from {source} "
               f"{url.render_as_string(hide_password=True)}): create it first (mkdir -p {folder})")
    if Path(database).is_absolute():
        return problem + ", or correct the path"
    return (problem + f", or, if /{database} was meant, write four slashes: sqlite:////{database} "
            "(three are a path under the folder Docket starts in)")


def _explain_failure(exc: Exception, db: str | None) -> str | None:
    """A plain message for a failure that is not a bug in Docket (the database refused, a
    plugin raised); None for anything else."""
    from engine.storage.migrations import DatabaseTooNew
    from engine.storage.refusal import database_refusal

    if database_refusal(exc) is not None:
        return _database_failure(exc, db)
    if isinstance(exc, DatabaseTooNew):
        from engine.storage.db import database_url

        return f"error: {_safe_url(database_url(db))}: {exc}"
    from engine.registry import plugin_in_traceback

    plugin = plugin_in_traceback(exc)
    if plugin is None:
        return None
    import traceback

    traceback.print_exception(exc)
    return (f"error: the plugin {plugin} raised {type(exc).__name__} (traceback above): a bug in "
            "that plugin, not in the bundle or in Docket")


def _database_failure(exc: Exception, db: str | None) -> str:
    """The database refused: say which one and why, without the SQL or its parameters (they
    can hold personal data) and without the password."""
    from engine.storage.db import database_url
    from engine.storage.refusal import database_refusal, refusal_hint

    url = database_url(db)
    reason = database_refusal(exc) or type(exc).__name__
    return f"error: cannot use the database {_safe_url(url)}: {reason}{refusal_hint(exc, url)}"


if __name__ == "__main__":
    sys.exit(main())
