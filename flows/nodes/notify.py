"""The `notify` node: queues a message on the outbox (through the registered `notify` action)
and moves on at once; delivery happens after the transaction commits."""

from __future__ import annotations

from typing import Any

from engine.actions import ActionScope
from engine.kinds import BuildContext
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.nodes.action import run_actions
from flows.nodes.base import NodeType
from flows.spec import NodeSpec


class Notify(NodeType):
    name = "notify"
    description = ("Sends a message (SMS, e-mail, IM) to people or to an address in a field, "
                   "then moves on; the text is a sandboxed template over the record.")
    options_schema = {"required": ["to", "body"], "properties": {
        "channel": {"type": "string", "description": "a channel of bundle.yaml (default log)"},
        "to": {"description": "assignee, superior, submitter, {role|user|field|address: ...}, or a list"},
        "subject": {"type": "string"},
        "body": {"type": "string"},
        "once": {"type": "boolean"},
        "status": {"type": "string"},
    }}
    examples = ("tell_customer:\n  type: notify\n  to: {field: contact_phone}\n"
                "  body: \"Your complaint {{ query_no }} was received.\"\n  next: done\n",)

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str] | None) -> dict[str, Any]:
        if ctx.registry.actions.get("notify") is None:
            ctx.error(doc, path + ("type",), "no 'notify' action is installed", code="unknown-type")
            return {"steps": ()}
        action_scope = ActionScope(flow["form"], frozenset(scope) if scope is not None else None, "flow")
        options = {k: v for k, v in node.options.items() if k != "status"}
        before = len(ctx.diags.errors)
        # Compiled at the node's own path, so template errors point into the node.
        compiled = ctx.registry.actions.get("notify").compile(options, ctx, doc, path, action_scope)
        if len(ctx.diags.errors) != before:
            return {"steps": ()}
        return {"steps": (("notify", compiled),)}

    def enter(self, run: Any) -> None:
        run_actions(run, run.node.compiled["steps"])
        run.move_to(run.node.next)
