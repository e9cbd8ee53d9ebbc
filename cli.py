"""The `docket` command line: the composition root for validate, serve, submit, schema, db.

Every command exits 0 on success and 1 with readable messages on a user error (an invalid
bundle, a bad JSON file, a validation failure); a traceback means a bug in Docket.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from engine.errors import (ConflictError, DefinitionError, Diagnostic, NotFoundError, ValidationFailed,
                           format_diagnostic)

DEFAULT_BUNDLE = "definitions/postal_complaints"


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diag in diagnostics:
        print(format_diagnostic(diag), file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from engine.bundle import validate_bundle
    from web.system import build_registry

    registry = build_registry()
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    bundle, diagnostics = validate_bundle(args.bundle, registry)
    if args.format == "json":
        print(json.dumps([d.to_json() for d in diagnostics], ensure_ascii=False, indent=2))
    else:
        _print_diagnostics(diagnostics)
    errors = [d for d in diagnostics if d.severity == "error"]
    if bundle is None:
        if args.format != "json":
            print(f"{len(errors)} error(s) in {args.bundle}", file=sys.stderr)
        return 1
    if args.format != "json":
        counts = ", ".join(f"{len(v)} {k}(s)" for k, v in bundle.definitions.items() if v)
        print(f"{args.bundle}: valid ({counts}; version {bundle.version}, hash {bundle.hash})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.bundle import write_bundle_schemas
    from web.system import build_registry

    written = write_bundle_schemas(build_registry(), Path(args.out))
    for path in written:
        print(path)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.storage.db import create_engine, database_url
    from engine.storage.migrations import current_revision, upgrade

    engine = create_engine(database_url(args.db))
    upgrade(engine)
    print(f"database at revision {current_revision(engine)}")
    return 0


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
    with data:
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
    from web.system import boot

    url = database_url(args.db)
    system = boot(args.bundle, db_url=url)
    app = create_app(system)
    host = "localhost" if args.host in ("127.0.0.1", "0.0.0.0", "::") else args.host
    print(f"Docket is serving '{system.bundle.meta.title('en')}' ({system.bundle.name} "
          f"{system.bundle.version}, hash {system.bundle.hash})")
    print(f"  database: {_safe_url(url)}")
    print(f"  open:     http://{host}:{args.port}/")
    if system.bundle.meta.demo_users:
        print("  demo users (sign-in arrives with the web issue; roles shown for reference):")
        for user in system.bundle.meta.demo_users:
            print(f"    {user.username:<14} {', '.join(user.roles)}")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `docket` command."""
    parser = argparse.ArgumentParser(prog="docket", description="Docket: YAML forms, flows, rules and reports.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("validate", help="check a bundle; exit 0 when valid, 1 with every error",
                       description="Load and check every file of a bundle; print file:line:col: messages.")
    p.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("serve", help="run the web application",
                       description="Check the bundle, migrate the database, and serve the web application.")
    p.add_argument("bundle", nargs="?", default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--db", help="database URL (default: $DOCKET_DATABASE_URL or sqlite:///var/docket.db)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("submit", help="submit a record from a JSON file",
                       description="Validate and store one record (starting its flow), print its query number.")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("form", help="form name")
    p.add_argument("--data", required=True, help="JSON file with field values")
    p.add_argument("--db", help="database URL")
    p.add_argument("--user", help="submitting username")
    p.add_argument("--locale", default="en", help="language of error messages (en, zh-CN)")
    p.add_argument("--key", help="idempotency key: a retry with the same key returns the first record")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("export", help="write a form's records to a CSV or XLSX file",
                       description="Export every record of a form, headed by the form's labels.")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("form", help="form name")
    p.add_argument("--format", choices=["csv", "xlsx"], help="file format (default: from --out's extension)")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--db", help="database URL")
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
    p.add_argument("--db", help="database URL")
    p.add_argument("--user", help="importing username (recorded as the records' creator)")
    p.add_argument("--locale", default="en", help="language of error messages (en, zh-CN)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("schema", help="write JSON Schemas of every definition kind for editors",
                       description="Write one JSON Schema (Draft 2020-12) per definition kind.")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("db", help="database administration", description="Database administration.")
    db_sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    q = db_sub.add_parser("upgrade", help="migrate the engine tables to the newest revision",
                          description="Migrate the engine tables (dk_*) to the newest revision.")
    q.add_argument("--db", help="database URL")
    q.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `docket` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except DefinitionError as exc:
        _print_diagnostics(exc.diagnostics)
        print(f"{len(exc.diagnostics)} error(s): fix them and try again", file=sys.stderr)
        return 1
    except (NotFoundError, ConflictError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
