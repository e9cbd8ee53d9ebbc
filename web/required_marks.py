"""What a rendered form says of a field required only in some cases (`required_if`).

Such a field's label says "needed in some cases" (_widgets.html). Where the case holds, the page
marks it required instead, as the completion will refuse it empty: a page saying "needed in some
cases" and then refusing the empty field reads as a trick. The server decides on every post; a
mark only tells the person filling in what that decision will be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from engine.errors import ExpressionError

if TYPE_CHECKING:
    from web.app import Web

__all__ = ["mark_required_now"]


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
