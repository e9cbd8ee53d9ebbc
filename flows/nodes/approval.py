"""`approval`: a person approves, rejects, or returns the record to an earlier step."""

from __future__ import annotations

from typing import Any, Iterator

from engine.errors import ConflictError, ValidationFailed
from engine.kinds import BuildContext
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.nodes.base import timeout_target
from flows.nodes.basic import Task
from flows.spec import NodeSpec

OUTCOMES = {"approve": "approved", "reject": "rejected", "return": "returned"}
"""Task outcome -> the outcome written to `flow.<node>.outcome`."""


class Approval(Task):
    name = "approval"
    aliases = ()
    description = ("A person approves (-> `approve`), rejects (-> `reject`) or returns the record "
                   "to one of `return_to`; rejecting and returning need a comment.")
    needs_next = False
    options_schema = {"required": ["approve", "reject"], "properties": {
        **{k: v for k, v in Task.options_schema["properties"].items() if k != "outcomes"},
        "approve": {"type": "string", "description": "the node after an approval"},
        "reject": {"type": "string", "description": "the node after a rejection"},
        "return_to": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"},
                      "description": "earlier nodes the record may be sent back to"},
    }}
    examples = ("director_approval:\n  type: approval\n  assign: {role: finance_director}\n"
                "  approve: pay\n  reject: closed\n  return_to: [accept]\n",)

    def targets(self, node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
        for key in ("approve", "reject"):
            if key in node.options:
                yield (key,), node.options[key]
        for i, target in enumerate(node.options.get("return_to", [])):
            yield ("return_to", i), target
        yield from timeout_target(node)

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        if node.next is not None:
            ctx.error(doc, path + ("next",), "an approval goes on through 'approve:' and 'reject:', not 'next'",
                      code="approval-next", hint=f"write 'approve: {node.next}'")
        for i, target in enumerate(node.options.get("return_to", [])):
            if target == node.id:
                ctx.error(doc, path + ("return_to", i), "an approval cannot return to itself",
                          code="approval-return")
        return super().compile(node, flow, ctx, doc, path, scope)

    def outcomes(self, node: NodeSpec) -> list[str]:
        # Returning also needs the node to send the record back to: chosen on the page.
        return ["approve", "reject"]

    def recorded_outcomes(self, node: NodeSpec) -> frozenset[str]:
        return frozenset(OUTCOMES.values())

    def check_completion(self, node: NodeSpec, outcome: str | None, comment: str | None,
                         return_to: str | None) -> None:
        allowed = ["approve", "reject"] + (["return"] if node.options.get("return_to") else [])
        if outcome not in allowed:
            raise ConflictError(f"choose one of: {', '.join(allowed)}")
        if outcome != "approve" and not (comment or "").strip():
            raise ValidationFailed({"comment": [f"a comment is required to {outcome}"]})
        if outcome == "return" and return_to is not None and return_to not in node.options["return_to"]:
            raise ValidationFailed({"return_to": [
                f"'{return_to}' is not a step this approval may return to: "
                f"{', '.join(node.options['return_to'])}"]})

    def on_task_completed(self, run: Any, task: Any, outcome: str | None) -> None:
        node = run.node
        run.variables[node.id] = {"outcome": OUTCOMES[outcome or ""], "comment": run.comment,
                                  "by": run.actor}
        if outcome == "approve":
            run.move_to(node.options["approve"])
        elif outcome == "reject":
            run.move_to(node.options["reject"])
        else:
            target = run.return_to or node.options["return_to"][0]
            run.history("flow.returned", {"to": target, "comment": run.comment})
            run.move_to(target)
