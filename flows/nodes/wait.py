"""`wait`: the token waits until a time, for a duration (wall or working time), or for an event.

Times are durable timers of `engine/timers.py` (kind `flow.wait`, subject `instance:<id>`,
key the node id): a restart loses nothing, and the timer fires exactly once. An event wait
moves on when the named event is published for the same record (`FlowService.signal`, or any
engine publishing it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.durations import parse_duration
from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.nodes.base import NodeType
from flows.spec import NodeSpec

EVENT_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"


class Wait(NodeType):
    name = "wait"
    aliases = ("timer",)
    description = ("Waits `until` a time (an expression), `for` a duration (`3d`, `2 workdays` in the "
                   "bundle's calendar), or for an `event` on the same record, then goes on to `next`.")
    options_schema = {
        "properties": {
            "until": {"type": "string", "description": "an expression giving the time to go on at"},
            "for": {"type": "string", "description": "a duration: 30m, 24h, 2d, 2 workdays, 4 workhours"},
            "event": {"type": "string", "pattern": EVENT_PATTERN,
                      "description": "an event name, e.g. customer.replied"},
            "status": {"type": "string", "description": "record status while waiting"},
            "instructions": LABEL_SCHEMA,
        },
    }
    examples = ("cool_off:\n  type: wait\n  for: 2 workdays\n  next: confirm\n",
                "await_reply:\n  type: wait\n  event: customer.replied\n  next: confirm\n")

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        options = node.options
        if sum(key in options for key in ("until", "for", "event")) != 1:
            ctx.error(doc, path, "a wait node needs exactly one of 'until', 'for' or 'event'",
                      code="wait", at_key=True)
            return {}
        if "until" in options:
            return {"until": ctx.expression(doc, path + ("until",), scope)}
        if "for" in options:
            try:
                return {"for": parse_duration(str(options["for"]))}
            except ValueError as exc:
                ctx.error(doc, path + ("for",), str(exc), code="wait")
        return {}

    def enter(self, run: Any) -> None:
        node = run.node
        if "event" in node.options:
            run.history("wait.started", {"event": node.options["event"]})
            return  # FlowService._on_event moves the token on
        now = run.now
        if "until" in node.compiled:
            due = run.evaluate(node.compiled["until"])
            if not isinstance(due, datetime):
                run.incident(f"'until' gave {due!r}, not a date and time")
        else:
            due = run.due_after(node.compiled["for"])
        if due <= now:
            run.history("wait.started", {"due_at": due.isoformat(), "elapsed": True})
            run.move_to(node.next)
            return
        run.schedule_wait(due)
        run.history("wait.started", {"due_at": due.isoformat()})
