"""`flow.<node>` in a flow's conditions: the node must be one of the same flow, and a value its
`.outcome` is compared with must be one that node can record (`approved`, `rejected` or
`returned` after an approval; one of a task's `outcomes`). A misspelt node or outcome never
matches, so the record silently took the other branch; here it is a load error at the name.
"""

from __future__ import annotations

import ast
from typing import Any, Iterator, Mapping

from engine.errors import did_you_mean
from engine.kinds import BuildContext
from engine.types import Span, YamlPath
from engine.yamlsource import Document
from flows.spec import NodeSpec

CONDITION_KEYS = ("when", "until")
"""Keys of a node (at any depth) holding an expression over the record and `flow`."""


def check_flow_references(raw_nodes: Mapping[str, Any], nodes: Mapping[str, NodeSpec], doc: Document,
                          ctx: BuildContext) -> None:
    """Report every `flow.<node>` naming no node of the flow, and every outcome compared with
    `flow.<node>.outcome` that the node never records."""
    recorded = {node_id: _recorded(node, ctx) for node_id, node in nodes.items()}
    for node_id, raw in raw_nodes.items():
        for path, text in _conditions(raw, ("nodes", node_id)):
            for span, message, hint in _problems(text, path, recorded, doc):
                ctx.diags.error(message, span, code="unknown-reference", hint=hint, yaml_path=path)


def _recorded(node: NodeSpec, ctx: BuildContext) -> frozenset[str] | None:
    ntype = ctx.registry.node_types.get(node.type)
    recorded = getattr(ntype, "recorded_outcomes", None)  # a plugin need not derive from NodeType
    return recorded(node) if recorded is not None else None


def _conditions(value: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in CONDITION_KEYS and isinstance(item, str):
                yield path + (key,), item
            else:
                yield from _conditions(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _conditions(item, path + (i,))


def _problems(text: str, path: YamlPath, recorded: Mapping[str, frozenset[str] | None],
              doc: Document) -> Iterator[tuple[Span, str, str | None]]:
    tree, shift = _parse(text)
    if tree is None:
        return  # a syntax error, reported by the expression check
    lines = text.split("\n")

    def at(node: ast.AST) -> Span:
        """Where the node starts; for `flow.X`, where X does (ast counts columns in bytes)."""
        if isinstance(node, ast.Attribute):
            line, byte = (node.end_lineno or 1) - shift, node.end_col_offset or 0
            back = len(node.attr)
        else:
            line, byte, back = getattr(node, "lineno", 1) - shift, getattr(node, "col_offset", 0), 0
        col = len(lines[line - 1].encode()[:byte].decode("utf-8", "ignore")) - back
        return doc.source_map.inside(path, line - 1, col)

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "flow" \
                and node.attr not in recorded:
            yield at(node), f"unknown node '{node.attr}' in flow.{node.attr}", did_you_mean(node.attr, recorded)
        elif isinstance(node, ast.Compare):
            yield from _outcome_problems(node, recorded, at)


def _outcome_problems(node: ast.Compare, recorded: Mapping[str, frozenset[str] | None],
                      at: Any) -> Iterator[tuple[Span, str, str | None]]:
    sides = [node.left, *node.comparators]
    for left, right in zip(sides, sides[1:]):
        for outcome_of, other in ((left, right), (right, left)):
            name = _outcome_node(outcome_of)
            known = recorded.get(name) if name is not None else None
            if known is None:
                continue
            literals = other.elts if isinstance(other, (ast.Tuple, ast.List, ast.Set)) else [other]
            for literal in literals:
                if isinstance(literal, ast.Constant) and isinstance(literal.value, str) \
                        and literal.value not in known:
                    yield (at(literal), f"'{literal.value}' is not an outcome of '{name}': the comparison "
                           "could never hold",
                           did_you_mean(literal.value, known) or "its outcomes: " + ", ".join(sorted(known)))


def _outcome_node(node: ast.AST) -> str | None:
    """`X` of `flow.X.outcome`, else None."""
    if isinstance(node, ast.Attribute) and node.attr == "outcome" and isinstance(node.value, ast.Attribute) \
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "flow":
        return node.value.attr
    return None


def _parse(text: str) -> tuple[ast.Expression | None, int]:
    """The expression's tree and how many lines were added before it to parse it (a YAML `|`
    block is parsed inside brackets, as the expression check does)."""
    for source, shift in ((text, 0), ("(\n" + text + "\n)", 1)):
        try:
            return ast.parse(source, mode="eval"), shift
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None, 0
