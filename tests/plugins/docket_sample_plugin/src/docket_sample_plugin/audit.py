"""`random_audit`: send a fixed share of records to an audit step, the rest straight on.

The choice is a hash of the record (its id, or the value of `seed_field`), the flow and the
node, so it is the same every time the flow runs over the same record: replays, tests and a
re-opened record all take the path they took before, with no random state to store.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

from flows.nodes.base import NodeType

SCALE = float(2**64)


def audit_fraction(flow: str, node: str, key: object) -> float:
    """Where a record falls in [0, 1): records below the node's `share` are audited."""
    digest = hashlib.sha256(f"{flow}\x1f{node}\x1f{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / SCALE


def is_audited(flow: str, node: str, key: object, share: float) -> bool:
    """True when a record with this key goes to the audit step."""
    return audit_fraction(flow, node, key) < share


class RandomAudit(NodeType):
    name = "random_audit"
    aliases = ("spot_check",)
    description = ("Sends a share of records (`share`, 0 to 1) to the `audit` node and the rest to "
                   "`next`; the same record always goes the same way.")
    options_schema = {
        "required": ["audit", "share"],
        "properties": {
            "audit": {"type": "string", "description": "the node audited records go to"},
            "share": {"type": "number", "minimum": 0, "maximum": 1,
                      "description": "the share of records audited, 0 to 1 (0.1 is one in ten)"},
            "seed_field": {"type": "string",
                           "description": "a field whose value picks the records (default: the record id)"},
        },
    }
    examples = ("spot_check:\n  type: random_audit\n  share: 0.1\n  audit: audit\n  next: handle\n",)
    edge_labels = {"audit": {"en": "audited", "zh-CN": "抽检"}, "next": {"en": "not audited", "zh-CN": "免检"}}

    def targets(self, node: Any) -> Iterator[tuple[tuple[Any, ...], str]]:
        """Both edges, so the graph checks see the audit node as reachable and each path ending."""
        if "audit" in node.options:
            yield ("audit",), node.options["audit"]
        yield from super().targets(node)

    def compile(self, node: Any, flow: Any, ctx: Any, doc: Any, path: tuple[Any, ...],
                scope: set[str] | None) -> dict[str, Any]:
        """Load-time checks beyond the schema; returns what `enter` needs."""
        options = node.options
        if options.get("audit") is not None and options.get("audit") == node.next:
            ctx.error(doc, path + ("audit",), "'audit' and 'next' are the same node: nothing is sampled",
                      code="random-audit", hint="send audited records to their own step")
        seed_field = options.get("seed_field")
        form = ctx.definitions.get("form", {}).get(flow["form"])
        if seed_field is not None and form is not None and seed_field not in form.fields:
            ctx.unknown(doc, path + ("seed_field",), "field", seed_field, form.fields)
        return {"share": float(options["share"]), "seed_field": seed_field}

    def enter(self, run: Any) -> None:
        compiled = run.node.compiled
        seed_field = compiled["seed_field"]
        key = run.record.get(seed_field) if seed_field else run.instance["record_id"]
        if key is None:
            run.incident(f"'{seed_field}' is empty: cannot choose whether to audit this record")
        audited = is_audited(run.flow.name, run.node.id, key, compiled["share"])
        run.move_to(run.node.options["audit"] if audited else run.node.next)
