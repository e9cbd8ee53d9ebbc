"""No request handler opens a write transaction on the event loop thread.

A write transaction waits for the database's write lock (up to the busy timeout); on the loop
thread that wait holds up every other request of the process. Handlers hand such work to
`web.offload.offload.run`. Found by this scan: the public form's submission and the API token
commands did it.
"""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"


def _direct_calls(function: ast.AsyncFunctionDef) -> list[tuple[str, int]]:
    """Calls made by the coroutine itself, not by functions defined inside it (those run
    wherever they are handed to)."""
    found, stack = [], list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            target = node.func
            name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
            found.append((name, node.lineno))
        stack.extend(ast.iter_child_nodes(node))
    return found


def test_no_coroutine_in_web_opens_a_write_transaction_itself() -> None:
    offenders = []
    for path in sorted(WEB.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.AsyncFunctionDef):
                offenders += [f"{path.name}:{line} {node.name}" for name, line in _direct_calls(node)
                              if name in ("transaction", "submit", "update_fields")]
    assert offenders == []
