"""`templates/*.yaml`: print templates (打印模板) such as the reply letter (答复函).

A print template names a form, an HTML template and its stylesheets in the bundle's
`templates/` folder, and the paper. The HTML is an analyst template (engine/templating.py):
compiled and checked when the bundle loads, with every problem reported at its `file:line:col`
in the HTML file, including record fields that do not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from engine.bundle import TEMPLATE_FOLDER, display_path
from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.templating import TemplateLoadError, check_template_name
from engine.types import Label, Span, label_text
from engine.yamlsource import Document

PAPER_SIZES = ("A3", "A4", "A5", "B5", "letter", "legal")
CSS_LENGTH = r"\d+(?:\.\d+)?(?:mm|cm|in|pt|px)"
MARGIN = re.compile(rf"{CSS_LENGTH}(?: {CSS_LENGTH}){{0,3}}")
STYLESHEET_SUFFIX = ".css"
HTML_SUFFIXES = (".html", ".htm")


@dataclass(frozen=True)
class PrintTemplateSpec:
    """One print template as the analyst wrote it."""

    name: str
    label: Label
    form: str
    html: str
    stylesheets: tuple[str, ...] = ()
    paper: str = "A4"
    orientation: str = "portrait"
    margin: str = "20mm"
    filename: str | None = None
    roles: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    span: Span | None = None

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.name)

    @property
    def page_css(self) -> str:
        """The `@page` rule from paper, orientation and margin (the stylesheets may add to it)."""
        return f"@page {{ size: {self.paper} {self.orientation}; margin: {self.margin}; }}"


class PrintTemplateKind:
    """`template: reply_letter`, `form: complaint`, `html: reply_letter.html`, `paper: A4`."""

    name = "template"
    aliases: tuple[str, ...] = ("print_template",)
    folder = TEMPLATE_FOLDER
    key = "template"
    order = 60
    dispatch = ()
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["template", "form", "html"],
        "additionalProperties": False,
        "properties": {
            "template": {"type": "string", "pattern": NAME_PATTERN},
            "label": LABEL_SCHEMA,
            "description": LABEL_SCHEMA,
            "form": {"type": "string", "description": "the form whose records it prints"},
            "html": {"type": "string", "description": "the HTML template in templates/, e.g. reply_letter.html"},
            "stylesheets": {"type": "array", "items": {"type": "string"},
                            "description": "CSS files in templates/ (paged media: @page, page breaks)"},
            "paper": {"enum": list(PAPER_SIZES), "description": "the paper size (default A4)"},
            "orientation": {"enum": ["portrait", "landscape"]},
            "margin": {"type": "string", "description": "page margins in CSS, e.g. '20mm' or '18mm 20mm'"},
            "filename": {"type": "string",
                         "description": "the downloaded file's name, a template, e.g. '答复函-{{ record.query_no }}'"},
            "roles": {"type": "array", "items": {"type": "string"},
                      "description": "who may print it (default: anyone who may read the record)"},
            "values": {"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                       "description": "fixed values the template reads as `values.x` (a text or a label map)"},
        },
    }

    def build(self, doc: Document, ctx: BuildContext) -> PrintTemplateSpec | None:
        data = doc.data
        forms = ctx.definitions.get("form", {})
        if data["form"] not in forms:
            ctx.unknown(doc, ("form",), "form", data["form"], forms)
        self._check_file(doc, ("html",), data["html"], HTML_SUFFIXES, ctx)
        for i, sheet in enumerate(data.get("stylesheets", ())):
            self._check_file(doc, ("stylesheets", i), sheet, (STYLESHEET_SUFFIX,), ctx)
        margin = data.get("margin", "20mm")
        if not MARGIN.fullmatch(margin):
            ctx.error(doc, ("margin",), f"'{margin}' is not a margin: write one to four lengths "
                      "such as '20mm' or '18mm 20mm'", code="template-margin")
        roles = tuple(data.get("roles", ()))
        if ctx.meta is not None:
            for i, role in enumerate(roles):
                if role not in ctx.meta.roles:
                    ctx.unknown(doc, ("roles", i), "role", role, ctx.meta.roles)
        return PrintTemplateSpec(
            name=data["template"], label=data.get("label", data["template"]), form=data["form"],
            html=data["html"], stylesheets=tuple(data.get("stylesheets", ())),
            paper=data.get("paper", "A4"), orientation=data.get("orientation", "portrait"),
            margin=margin, filename=data.get("filename"), roles=roles,
            values=MappingProxyType(dict(data.get("values", {}))), span=doc.span(()))

    @staticmethod
    def _check_file(doc: Document, path: tuple[Any, ...], name: str, suffixes: tuple[str, ...],
                    ctx: BuildContext) -> None:
        problem = check_template_name(name)
        if problem is None and not name.endswith(suffixes):
            problem = f"'{name}' should end with {' or '.join(suffixes)}"
        if problem:
            ctx.error(doc, path, problem, code="template-file")

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        """Every print template's files exist and its HTML compiles against its form."""
        from reports.print.render import compile_print_template, filename_template

        for name, spec in bundle.all("template").items():
            doc = ctx.doc("template", name)
            missing = False
            for path, file in [(("html",), spec.html),
                               *((("stylesheets", i), s) for i, s in enumerate(spec.stylesheets))]:
                if check_template_name(file) is None and file not in bundle.templates:
                    missing = True
                    ctx.unknown(doc, path, "template file", file,
                                [t for t in bundle.templates if t.endswith(HTML_SUFFIXES + (STYLESHEET_SUFFIX,))],
                                code="template-not-found")
            if spec.filename is not None:
                try:
                    filename_template(spec, bundle)
                except TemplateLoadError as exc:
                    for diag in exc.diagnostics(lambda line, col: doc.source_map.inside(
                            ("filename",), line - 1, col - 1)):
                        ctx.diags.error(diag.message, diag.span, code=diag.code, hint=diag.hint,
                                        yaml_path=("filename",))
            if missing or spec.form not in bundle.all("form") or check_template_name(spec.html):
                continue
            shown = display_path(bundle.root / TEMPLATE_FOLDER / spec.html)
            try:
                compile_print_template(spec, bundle, check_fields=True)
            except TemplateLoadError as exc:
                for diag in exc.diagnostics(lambda line, col: Span(shown, line, col)):
                    ctx.diags.add(diag)
