"""Print templates (打印模板): records laid out on paper as PDF, e.g. the reply letter (答复函).

`kind.py` is the `template` definition kind (YAML in the bundle's `templates/` folder beside its
HTML and CSS); `render.py` renders a record through the sandboxed analyst-template renderer to
HTML and WeasyPrint to PDF; `render_pdf` is what notifications attach.
"""

from __future__ import annotations

from engine.registry import Registry
from reports.print.kind import PrintTemplateKind, PrintTemplateSpec
from reports.print.render import PrintService, render_pdf

__all__ = ["PrintService", "PrintTemplateKind", "PrintTemplateSpec", "register", "render_pdf"]


def register(registry: Registry) -> None:
    """Register the print template definition kind."""
    registry.definition_kinds.add(PrintTemplateKind())
