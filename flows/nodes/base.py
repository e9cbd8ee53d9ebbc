"""The node-type plugin contract: one class per type, describing itself completely."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterator

from engine.errors import ConflictError
from engine.kinds import BuildContext
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.spec import NodeSpec

if TYPE_CHECKING:
    from flows.runtime import NodeRun


class NodeType:
    """Base of every node type.

    Load time: `options_schema` validates the node's own keys; `targets` names the nodes it can
    lead to (for the graph checks); `compile` checks references and compiles expressions,
    returning what the runtime needs. Run time: `enter` is called when a token arrives;
    `check_completion` before one of the node's tasks is completed, `on_task_completed` after.
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    options_schema: ClassVar[dict[str, Any]] = {"properties": {}}
    examples: ClassVar[tuple[str, ...]] = ()
    terminal: ClassVar[bool] = False
    """True for node types that end a path (no `next` needed)."""
    needs_next: ClassVar[bool] = True

    def targets(self, node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
        """(path inside the node, target node id) for every outgoing edge."""
        if node.next is not None:
            yield ("next",), node.next

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        """Check the node against the rest of the bundle; return compiled parts."""
        return {}

    def enter(self, run: "NodeRun") -> None:
        raise NotImplementedError

    def check_completion(self, node: NodeSpec, outcome: str | None, comment: str | None,
                         return_to: str | None) -> None:
        """Refuse a completion the node cannot take (ConflictError / ValidationFailed), before
        anything is written. By default the outcome must be one of the node's `outcomes`."""
        outcomes = node.options.get("outcomes")
        if outcomes and outcome not in outcomes:
            raise ConflictError(f"choose one of: {', '.join(outcomes)}")

    def on_task_completed(self, run: "NodeRun", task: Any, outcome: str | None) -> None:
        run.move_to(run.node.next)


def check_people_and_fields(node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                            path: YamlPath) -> None:
    """The load checks every node that gives people work shares: its `fields` exist on the form,
    and the roles and departments its `assign` names (including watchers) exist in bundle.yaml."""
    form = ctx.definitions.get("form", {}).get(flow["form"])
    for i, name in enumerate(node.options.get("fields", [])):
        if form is not None and name not in form.fields:
            ctx.unknown(doc, path + ("fields", i), "field", name, form.fields)
    meta = ctx.meta
    if meta is None:
        return
    assign = node.options.get("assign", {})
    apath = path + ("assign",)
    roles = [(apath + ("role",), assign["role"])] if "role" in assign else []
    roles += [(apath + ("cc", "roles", i), r) for i, r in enumerate((assign.get("cc") or {}).get("roles", []))]
    departments = [(apath + ("department",), assign["department"])] if "department" in assign else []
    departments += [(apath + ("departments", i), d) for i, d in enumerate(assign.get("departments", []))]
    for where, role in roles:
        if role not in meta.roles:
            ctx.unknown(doc, where, "role", role, meta.roles)
    for where, dep in departments:
        if dep not in meta.departments:
            ctx.unknown(doc, where, "department", dep, meta.departments)
