"""`subflow`: start another flow and wait for it to end; its outcome is `flow.<node>.outcome`.

The other flow runs on a new record of its form (filled from this record by `fill:`
expressions), on this same record, or on a related record (`record_id:` expression). It runs
on the same bundle version as its parent. When it ends, this node's token goes on to `next`.
"""

from __future__ import annotations

from typing import Any

from engine.errors import ValidationFailed
from engine.kinds import BuildContext
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.nodes.base import NodeType
from flows.spec import NodeSpec
from forms.kind import check_filled


class Subflow(NodeType):
    name = "subflow"
    aliases = ("call",)
    description = ("Starts flow `flow` on a `new` record of its form (filled by `fill`), on the `same` "
                   "record, or on the record `record_id` gives; waits until it ends. Its outcome is "
                   "`flow.<node>.outcome`.")
    options_schema = {"required": ["flow"], "properties": {
        "flow": {"type": "string", "description": "the flow to start"},
        "record": {"enum": ["new", "same"], "description": "new (default) or same"},
        "record_id": {"type": "string", "description": "an expression giving the id of a related record"},
        "fill": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
                 "description": "field of the new record: expression over this record"},
        "status": {"type": "string", "description": "record status while the subflow runs"},
    }}
    examples = ("survey:\n  type: subflow\n  flow: site_survey\n  fill:\n    complaint_no: query_no\n"
                "    address: region\n  next: decide_liability\n",)

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        options = node.options
        compiled: dict[str, Any] = {"fill": {}}
        if "record_id" in options:
            if "record" in options or "fill" in options:
                ctx.error(doc, path + ("record_id",), "'record_id' names an existing record: "
                          "it cannot go with 'record' or 'fill'", code="subflow")
            compiled["record_id"] = ctx.expression(doc, path + ("record_id",), scope)
        elif options.get("record") == "same" and "fill" in options:
            ctx.error(doc, path + ("fill",), "'fill' is for a new record, not the same one", code="subflow")
        if options.get("flow") == flow.get("flow"):
            ctx.error(doc, path + ("flow",), "a flow cannot start itself as a subflow", code="subflow")
        for field, source in (options.get("fill") or {}).items():
            if isinstance(source, str):
                compiled["fill"][field] = ctx.expression(doc, path + ("fill", field), scope)
            else:
                compiled["fill"][field] = source
        return compiled

    def check_bundle(self, node: NodeSpec, flow: Any, bundle: Any, ctx: BuildContext, doc: Document,
                     path: YamlPath) -> None:
        """The named flow exists; a `same` record is of its form; `fill` names its fields."""
        flows = bundle.all("flow")
        child = flows.get(node.options["flow"])
        if child is None:
            ctx.unknown(doc, path + ("flow",), "flow", node.options["flow"], flows)
            return
        if self.mode(node) == "same" and child.form != flow.form:
            ctx.error(doc, path + ("flow",), f"flow '{child.name}' runs on {child.form} records, "
                      f"not on this {flow.form} record: use a new record", code="subflow")
        form = bundle.all("form").get(child.form)
        for field in node.options.get("fill") or {}:
            if form is not None and field not in form.fields:
                ctx.unknown(doc, path + ("fill", field), "field", field, form.fields)
        if form is not None and self.mode(node) == "new":
            check_filled(ctx, doc, path + (("fill",) if "fill" in node.options else ("flow",)), form,
                         node.options.get("fill") or {})

    @staticmethod
    def mode(node: NodeSpec) -> str:
        if "record_id" in node.compiled or "record_id" in node.options:
            return "related"
        return str(node.options.get("record", "new"))

    def enter(self, run: Any) -> None:
        node = run.node
        child = run.service.flow_named(node.options["flow"], run.instance)
        mode = self.mode(node)
        if mode == "same":
            record_id = run.instance["record_id"]
        elif mode == "related":
            value = run.evaluate(node.compiled["record_id"])
            if not isinstance(value, int) or isinstance(value, bool):
                run.incident(f"'record_id' gave {value!r}, not a record id")
            record_id = value
        else:
            values = {field: run.evaluate(source) if hasattr(source, "evaluate") else source
                      for field, source in node.compiled["fill"].items()}
            try:
                record_id = run.create_record(child.form, values, starting=child.name)
            except ValidationFailed as exc:
                problems = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items())
                run.incident(f"the new {child.form} record is not valid: {problems}")
        state = run.start_child(child, record_id)
        run.variables[node.id] = {"flow": child.name, "form": child.form, "record_id": record_id,
                                  "instance_id": state["id"], "outcome": state["outcome"]}
        run.history("subflow.started", {"flow": child.name, "form": child.form, "record_id": record_id,
                                        "instance_id": state["id"]})
        if state["status"] in ("completed", "withdrawn"):  # the child ended at once (no step waited)
            run.history("subflow.ended", {"instance_id": state["id"], "outcome": state["outcome"]})
            run.move_to(node.next)
