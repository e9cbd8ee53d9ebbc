"""`parallel` splits the token into one per branch; `join` waits for all of them."""

from __future__ import annotations

from typing import Any, Iterator

from engine.kinds import BuildContext
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.nodes.base import NodeType
from flows.spec import NodeSpec


class Parallel(NodeType):
    name = "parallel"
    aliases = ("split",)
    description = "Starts one token per branch; the branches run at the same time until their `join`."
    needs_next = False
    options_schema = {"required": ["branches"], "properties": {
        "branches": {"type": "array", "minItems": 2, "uniqueItems": True, "items": {"type": "string"},
                     "description": "the first node of each branch"},
    }}
    examples = ("assess:\n  type: parallel\n  branches: [marketing_review, operations_review]\n",)

    def targets(self, node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
        for i, target in enumerate(node.options.get("branches", [])):
            yield ("branches", i), target

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        if node.next is not None:
            ctx.error(doc, path + ("next",), "a parallel split goes on through its branches, not 'next'",
                      code="parallel-next", hint="put 'next' on the join where the branches meet")
        return {}

    def enter(self, run: Any) -> None:
        run.fork(run.node.options["branches"])


class Join(NodeType):
    name = "join"
    description = ("Waits until a token of every branch of its `split` has arrived, then goes on "
                   "once to `next`.")
    options_schema = {"required": ["split"], "properties": {
        "split": {"type": "string", "description": "the parallel node whose branches meet here"},
    }}
    examples = ("assessed:\n  type: join\n  split: assess\n  next: propose\n",)

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        split = node.options.get("split")
        raw = flow["nodes"].get(split)
        if raw is None:
            ctx.unknown(doc, path + ("split",), "node", split, flow["nodes"], code="join-without-split")
            return {}
        split_type = ctx.registry.node_types.canonical(raw.get("type"))
        if split_type is None:
            return {}  # the split's type is unknown and already reported: say nothing more
        if split_type != Parallel.name:
            ctx.error(doc, path + ("split",), f"join '{node.id}' must name a parallel split; "
                      f"'{split}' is a {raw.get('type')} node", code="join-without-split")
            return {}
        return {"expected": len(raw.get("branches") or [])}

    def enter(self, run: Any) -> None:
        """Count the arrival in `variables[<join id>]`; the last branch in moves on."""
        expected = run.node.compiled["expected"]
        seen = dict(run.variables.get(run.node.id) or {"arrived": 0, "fired": 0})
        seen["arrived"] += 1
        seen["expected"] = expected
        if seen["arrived"] >= expected:
            seen.update(arrived=0, fired=seen["fired"] + 1)
            run.variables[run.node.id] = seen
            run.move_to(run.node.next)
        else:
            run.variables[run.node.id] = seen
            run.consume()
