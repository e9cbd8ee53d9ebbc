"""What a rendered form says of a field required only in some cases (`required_if`).

Such a field's label says "needed in some cases" (_widgets.html). Where the case holds, the page
marks it required instead, as the completion will refuse it empty: a page saying "needed in some
cases" and then refusing the empty field reads as a trick. The server decides on every post; a
mark only tells the person filling in what that decision will be.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from engine.errors import ExpressionError
from engine.expr.client import client_condition

if TYPE_CHECKING:
    from web.app import Web

__all__ = ["mark_required_live", "mark_required_now"]

LIVE_KINDS = frozenset({"text", "textarea", "number", "tel", "email", "url", "date", "datetime-local", "time"})
"""The widgets whose input carries its `attrs` (_widgets.html): a choice group or a table does not."""


def mark_required_now(web: "Web", form: Any, record: Mapping[str, Any], sections: Iterable[Any]) -> None:
    """Mark required the widgets whose `required_if` holds for `record` as it stands: a step's
    condition is usually the record's status (required_if: status == "awaiting_reply"), which
    is true all the while its step is open."""
    ctx = web.system.forms.eval_context()
    for section in sections:
        for widget in section.widgets:
            spec = form.spec.fields.get(widget.name)
            condition = spec.required_if if spec is not None else None
            if widget.required or condition is None:
                continue
            try:
                widget.required = bool(condition.evaluate(record, ctx))
            except ExpressionError:
                continue  # the completion decides, as it would for a broken condition anywhere


def mark_required_live(form: Any, sections: Iterable[Any]) -> None:
    """Give each widget whose `required_if` reads only fields of this page that condition as JSON
    (`data-required-if`, evaluated by static/form.js as they change), so that the page marks the
    field required as soon as its case holds: the claim amount once a damage is chosen. A
    condition naming anything else (the record's status) is left to `mark_required_now`."""
    widgets = [w for section in sections for w in section.widgets]
    on_page = {w.name for w in widgets}
    for widget in widgets:
        spec = form.spec.fields.get(widget.name)
        if spec is None or spec.required_if is None or widget.kind not in LIVE_KINDS:
            continue
        tree = client_condition(spec.required_if.source)
        if tree is not None and _names(tree) <= on_page:
            widget.attrs["data-required-if"] = json.dumps(tree, ensure_ascii=False)


def _names(tree: Any) -> set[str]:
    """The field names a client condition reads."""
    if not isinstance(tree, list) or not tree:
        return set()
    if tree[0] == "field":
        return {str(tree[1])}
    if tree[0] == "lit":
        return set()
    return set().union(*(_names(node) for node in tree[1:]))
