"""Small bundles written into a temporary folder, for loader tests.

`MINI` is a valid bundle; a test replaces or adds one file with a defect and reads back the
problems as (file, line, col, message) tuples, with the file relative to the bundle root.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Mapping

from engine.bundle import validate_bundle
from engine.errors import Diagnostic
from web.system import build_registry

MINI: dict[str, str] = {
    "bundle.yaml": """\
        bundle: mini
        version: "1"
        label: {zh-CN: 小工单, en: Mini tickets}
        roles:
          agent: {label: {zh-CN: 客服, en: Agent}}
        departments:
          service: {label: Service}
        """,
    "lists/urgency.yaml": """\
        list: urgency
        items:
          - {value: low, label: {zh-CN: 低, en: Low}}
          - {value: high, label: {zh-CN: 高, en: High}}
        """,
    "forms/ticket.yaml": """\
        form: ticket
        label: Ticket
        numbering: T{seq:4}
        fields:
          title:
            type: text
            required: true
          urgency:
            type: select
            options: urgency
          amount:
            type: money
            required_if: urgency == "high"
        """,
    "flows/ticket_flow.yaml": """\
        flow: ticket_flow
        form: ticket
        start: begin
        nodes:
          begin:
            type: start
            next: handle
          handle:
            type: task
            assign: {role: agent}
            fields: [urgency]
            next: route
          route:
            type: decision
            branches:
              - when: urgency == "high"
                to: done
              - else: done
          done:
            type: end
        """,
}

Problem = tuple[str, int, int, str]


def write_bundle(root: Path, files: Mapping[str, str | bytes | None]) -> Path:
    """Write MINI overridden by `files` (None deletes a file) under `root`; returns `root`."""
    merged: dict[str, str | bytes | None] = {**MINI, **files}
    for rel, text in merged.items():
        if text is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(dedent(text), encoding="utf-8")
    return root


def diagnostics(root: Path, files: Mapping[str, str | bytes | None] = {}) -> list[Diagnostic]:
    """Every diagnostic of MINI with `files` applied."""
    write_bundle(root, files)
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    return diags


def problems(root: Path, files: Mapping[str, str | bytes | None] = {}) -> list[Problem]:
    """The errors as (file relative to the bundle, line, col, message)."""
    out = []
    for d in diagnostics(root, files):
        if d.severity != "error":
            continue
        assert d.span is not None, f"error without a position: {d.message}"
        rel = Path(d.span.file).resolve().relative_to(root.resolve()).as_posix()
        out.append((rel, d.span.line, d.span.col, d.message))
    return out
