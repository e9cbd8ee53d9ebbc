"""Rendering a print template: a record -> HTML (sandboxed analyst template) -> PDF (WeasyPrint).

What a template reads (anything else is a load error):

- `record`: the record's stored values and its `id`, `query_no`, `status`, `created_at`...;
- `fields.<name>`: `label`, `value`, `text` (as people read it: option labels, dates in the
  bundle's zone), and for a sub-table `columns` (each `name`, `label`) and `rows` (text by column);
- `form`, `template`, `bundle` (each `name`, `label`); `values` (the template's fixed values);
- `status` (in the customer's words, when the form has a progress lookup), `locale`, `today`,
  `now` (bundle time zone), `printed_by`;
- `lookup_url`: the public progress lookup for this record's query number, and `qr(text)`: a
  QR code image (SVG) of any text, e.g. `{{ qr(lookup_url) }}`;
- `asset(name)`: an SVG or CSS file of `templates/` as a data URI (`<img src="{{ asset(...) }}">`).

WeasyPrint fetches nothing from the network or the disk: stylesheets and SVG images come from the
bundle's loaded `templates/` only (referred to by relative name), plus `data:` URIs.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote
from zoneinfo import ZoneInfo

from markupsafe import Markup

from engine.errors import NotFoundError, did_you_mean
from engine.site import PUBLIC_URL_ENV, lookup_url
from engine.storage.db import read_transaction
from engine.templating import AnalystTemplate, TemplateLoadError, TemplateProblem, compile_template
from engine.types import label_text
from forms.messages import FieldInvalid
from reports.print.kind import CSS_LENGTH

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from engine.bundle import Bundle
    from engine.runtime import Runtime
    from reports.print.kind import PrintTemplateSpec

CONTEXT_NAMES = frozenset({"record", "fields", "form", "template", "bundle", "values", "status",
                           "locale", "today", "now", "printed_by", "lookup_url", "qr", "asset"})
RECORD_COLUMNS = frozenset({"id", "query_no", "version", "status", "created_at", "updated_at",
                            "created_by"})
"""The system columns `record` carries besides the form's fields (forms/records.py reads them)."""
"""The public progress lookup page (web/lookup.py); `?query_no=` fills in the number."""
DEFAULT_PUBLIC_URL = "http://localhost:8000"
ASSET_BASE = "https://templates.docket.invalid/"
"""The base URL relative names in a template resolve against; it is served from the bundle's
loaded templates only (`.invalid` never resolves, should anything try)."""
MAX_PRINT_HTML = 300_000
"""A letter is a few kilobytes of HTML; this keeps the PDF layout step short."""
MAX_QR_TEXT = 1_000
_CSS_SIZE = re.compile(CSS_LENGTH)
BASE_CSS = """
html { font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", "Source Han Serif SC", serif;
       font-size: 11pt; line-height: 1.6; }
"""
"""Chinese fonts first (fonts-noto-cjk), so a template that names none still prints Chinese."""


@dataclass(frozen=True)
class Column:
    """A sub-table column as a template reads it."""

    name: str
    label: str


@dataclass(frozen=True)
class FieldView:
    """One field as a template reads it."""

    name: str
    label: str
    value: Any
    text: str
    columns: tuple[Column, ...] = ()
    rows: tuple[Mapping[str, str], ...] = ()


class PrintError(NotFoundError):
    """A print template or record that does not exist, or a template for another form."""


def public_base_url() -> str:
    """Where customers reach this Docket: $DOCKET_PUBLIC_URL (e.g. https://ts.example-post.cn)."""
    return os.environ.get(PUBLIC_URL_ENV, DEFAULT_PUBLIC_URL).rstrip("/")


def qr(text: Any, size: str = "30mm") -> Markup:
    """`{{ qr(lookup_url) }}`: an <img> with the QR code of `text` as an SVG data URI."""
    import segno

    text = str(text)
    if len(text) > MAX_QR_TEXT:
        raise ValueError(f"qr() takes at most {MAX_QR_TEXT} characters")
    if not _CSS_SIZE.fullmatch(str(size)):
        raise ValueError(f"qr() size '{size}' is not a length such as '30mm'")
    uri = segno.make(text, error="m").svg_data_uri(border=2)
    return Markup('<img class="qr" src="{}" alt="{}" style="width:{};height:{}">').format(
        uri, text, size, size)


def asset_uri(files: Mapping[str, str], name: Any) -> str:
    """`{{ asset('parts/logo.svg') }}`: a file of the bundle's templates as a data URI, so the
    same template shows its images in the PDF and in the browser preview."""
    name = str(name)
    kind = name.rsplit(".", 1)[-1].lower()
    if name not in files or kind not in _MIME:
        raise ValueError(f"asset '{name}' is not an SVG or CSS file in the bundle's templates/ folder")
    return f"data:{_MIME[kind]};charset=utf-8,{quote(files[name], safe='')}"


def compile_print_template(spec: "PrintTemplateSpec", bundle: "Bundle", *,
                           check_fields: bool = False) -> AnalystTemplate:
    """The template's HTML compiled in the sandbox; with `check_fields`, every `record.x`,
    `fields.x` and `values.x` is checked against the form and the template's values."""
    template = compile_template(bundle.templates[spec.html], name=spec.html, html=True,
                                files=bundle.templates, names=CONTEXT_NAMES,
                                globals={"qr": qr, "asset": functools.partial(asset_uri, bundle.templates)},
                                timezone=bundle.meta.timezone,
                                max_output=MAX_PRINT_HTML)
    if check_fields:
        form = bundle.all("form").get(spec.form)
        fields = set(form.fields) if form is not None else set()
        problems = []
        for root, known, what in (("record", fields | RECORD_COLUMNS, "field"),
                                  ("fields", fields, "field"),
                                  ("values", set(spec.values), "value")):
            for key, line, col in template.attribute_uses(root):
                if key not in known:
                    problems.append(TemplateProblem(
                        f"unknown {what} '{key}' in {root}.{key} (form '{spec.form}')"
                        if what == "field" else f"unknown value '{key}': add it under 'values:'",
                        line, col, "template-unknown-name", did_you_mean(key, known)))
        for name, line, col in template.constant_calls("asset"):
            if name not in bundle.templates:
                problems.append(TemplateProblem(
                    f"asset '{name}' is not a file in the bundle's templates/ folder", line, col,
                    "template-not-found", did_you_mean(name, bundle.templates)))
        if problems:
            raise TemplateLoadError(spec.html, problems)
    return template


def filename_template(spec: "PrintTemplateSpec", bundle: "Bundle") -> AnalystTemplate | None:
    """The download name's template (plain text), None when the template names none."""
    if spec.filename is None:
        return None
    return compile_template(spec.filename, name=f"{spec.name}.filename", html=False,
                            names=CONTEXT_NAMES, timezone=bundle.meta.timezone, max_output=200)


@dataclass(frozen=True)
class Printed:
    """One record rendered with a print template."""

    html: str
    filename: str
    spec: "PrintTemplateSpec"


class PrintService:
    """Compiled print templates of the running bundle, and rendering them for a record."""

    def __init__(self, runtime: "Runtime"):
        self.runtime = runtime
        self._compiled: dict[tuple[str, str], tuple[AnalystTemplate, AnalystTemplate | None]] = {}

    @classmethod
    def of(cls, runtime: "Runtime") -> "PrintService":
        """The runtime's print service (`runtime.services["print"]`), created on first use."""
        service = runtime.services.get("print")
        if service is None:
            service = runtime.services["print"] = cls(runtime)
        return service

    def spec(self, template_name: str, form: str | None = None) -> "PrintTemplateSpec":
        """A print template by name (of `form`, when given); PrintError if there is none."""
        spec = self.runtime.bundle.all("template").get(template_name)
        if spec is None or (form is not None and spec.form != form):
            raise PrintError(f"no print template '{template_name}'" + (f" for form '{form}'" if form else ""))
        return spec

    def templates_for(self, form: str) -> list["PrintTemplateSpec"]:
        """The print templates of a form, for the record page's print menu."""
        return [s for s in self.runtime.bundle.all("template").values() if s.form == form]

    def _templates(self, spec: "PrintTemplateSpec") -> tuple[AnalystTemplate, AnalystTemplate | None]:
        bundle = self.runtime.bundle
        key = (bundle.hash, spec.name)
        if key not in self._compiled:
            self._compiled[key] = (compile_print_template(spec, bundle), filename_template(spec, bundle))
        return self._compiled[key]

    def context(self, conn: "Connection", spec: "PrintTemplateSpec", record_id: int, locale: str, *,
                base_url: str | None = None, printed_by: str | None = None,
                hidden: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
        """What the template reads, for one record (see the module docstring). Fields in
        `hidden` (those the reader may not see) read as empty."""
        forms = self.runtime.services["forms"]
        bundle = self.runtime.bundle
        compiled = forms.form(spec.form)
        record = forms.read(conn, spec.form, record_id)
        for name in hidden:
            if name in record:
                record[name] = None
        zone = ZoneInfo(bundle.meta.timezone)
        now = self.runtime.clock.now().astimezone(zone)
        fields = {name: _field_view(compiled, name, record.get(name), locale)
                  for name in compiled.spec.fields if name in compiled.stored}
        return {
            "record": record,
            "fields": fields,
            "form": {"name": spec.form, "label": compiled.spec.text(locale)},
            "template": {"name": spec.name, "label": spec.text(locale)},
            "bundle": {"name": bundle.name, "label": label_text(bundle.meta.label, locale, bundle.name)},
            "values": {k: label_text(v, locale) if isinstance(v, (str, dict)) else v
                       for k, v in spec.values.items()},
            "status": _status_text(bundle, compiled.spec, record.get("status"), locale),
            "locale": locale,
            "today": now.date(),
            "now": now,
            "printed_by": printed_by or "",
            "lookup_url": lookup_url(base_url or public_base_url(), record.get("query_no")),
        }

    def render_html(self, template_name: str, form: str, record_id: int, locale: str, *,
                    base_url: str | None = None, printed_by: str | None = None,
                    hidden: frozenset[str] | set[str] = frozenset(),
                    conn: "Connection | None" = None) -> Printed:
        """The template's HTML for one record, and the file name of its PDF.

        Raises PrintError / NotFoundError (no such template or record) or TemplateRenderError.
        `conn`: read inside the caller's transaction, else in a read transaction of its own.
        """
        spec = self.spec(template_name, form)
        template, name_template = self._templates(spec)
        if conn is None:
            with read_transaction(self.runtime.db) as own:
                context = self.context(own, spec, record_id, locale, base_url=base_url,
                                       printed_by=printed_by, hidden=hidden)
        else:
            context = self.context(conn, spec, record_id, locale, base_url=base_url,
                                   printed_by=printed_by, hidden=hidden)
        html = template.render(context)
        stem = name_template.render(context).strip() if name_template else ""
        stem = stem or f"{spec.name}-{context['record'].get('query_no') or record_id}"
        return Printed(html, _safe_filename(stem) + ".pdf", spec)

    def to_pdf(self, printed: Printed) -> bytes:
        """Lay a rendered template out on its paper."""
        return html_to_pdf(printed.html, printed.spec, self.runtime.bundle)

    def preview(self, printed: Printed) -> str:
        """The rendered HTML with its stylesheets inlined, for a browser preview."""
        bundle = self.runtime.bundle
        css = BASE_CSS + "\n".join(bundle.templates[name] for name in printed.spec.stylesheets)
        style = "<style>" + css.replace("</", "<\\/") + "</style>"  # CSS cannot close the tag
        html = printed.html
        at = html.lower().find("</head>")
        return html[:at] + style + html[at:] if at >= 0 else style + html


def render_pdf(runtime: "Runtime", template_name: str, form: str, record_id: int, locale: str, *,
               base_url: str | None = None, conn: "Connection | None" = None) -> bytes:
    """A record printed with a print template, as PDF bytes: what a notification attaches.

    `conn`: render inside the caller's transaction (e.g. a rule action), else a read of its own.
    Raises NotFoundError (no such template / record) or TemplateRenderError.
    """
    service = PrintService.of(runtime)
    return service.to_pdf(service.render_html(template_name, form, record_id, locale,
                                              base_url=base_url, conn=conn))


def html_to_pdf(html: str, spec: "PrintTemplateSpec", bundle: "Bundle") -> bytes:
    """Lay the HTML out on the template's paper; resources only from the bundle's templates."""
    from weasyprint import CSS, HTML

    fonts = _font_configuration()
    fetcher = _fetcher_class()(bundle.templates)
    sheets = [CSS(string=BASE_CSS + spec.page_css, url_fetcher=fetcher, font_config=fonts)]
    sheets += [CSS(string=bundle.templates[name], base_url=ASSET_BASE, url_fetcher=fetcher,
                   font_config=fonts) for name in spec.stylesheets]
    document = HTML(string=html, base_url=ASSET_BASE, url_fetcher=fetcher)
    return document.write_pdf(stylesheets=sheets, font_config=fonts)


_THREAD = threading.local()


def _font_configuration() -> Any:
    """WeasyPrint's font configuration, one per thread (it wraps fontconfig and Pango objects,
    not meant to be shared across threads); reusing it saves about a quarter of each PDF."""
    fonts = getattr(_THREAD, "fonts", None)
    if fonts is None:
        from weasyprint.text.fonts import FontConfiguration

        fonts = _THREAD.fonts = FontConfiguration()
    return fonts


@functools.cache
def _fetcher_class() -> type:
    """The URL fetcher class; built on first use so that loading a bundle never imports
    WeasyPrint (about a second)."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class _BundleFetcher(URLFetcher):
        """Serves relative names from the bundle's templates and `data:` URIs; refuses the
        network and the file system (no SSRF, no local file read from a template)."""

        def __init__(self, files: Mapping[str, str]):
            super().__init__(allowed_protocols={"data"}, allow_redirects=False)
            self.files = files

        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith(ASSET_BASE):
                name = url[len(ASSET_BASE):].split("?")[0].split("#")[0]
                if name not in self.files:
                    raise ValueError(f"'{name}' is not in the bundle's templates/ folder")
                mime = _MIME.get(name.rsplit(".", 1)[-1].lower(), "text/plain")
                return URLFetcherResponse(url, self.files[name].encode("utf-8"),
                                          {"Content-Type": mime})
            if url.startswith("data:"):
                return super().fetch(url, headers)
            raise ValueError("print templates load nothing from the network or the disk")

    return _BundleFetcher


_MIME = {"css": "text/css", "svg": "image/svg+xml"}


def _field_view(compiled: Any, name: str, value: Any, locale: str) -> FieldView:
    spec = compiled.spec.fields[name]
    ftype = compiled.types[name]
    columns: tuple[Column, ...] = ()
    rows: tuple[Mapping[str, str], ...] = ()
    if spec.type == "subtable" and hasattr(ftype, "columns"):
        spec_columns = ftype.columns(spec)
        columns = tuple(Column(n, c.spec.text(locale)) for n, c in spec_columns.items())
        rows = tuple({n: _cell_text(c, row.get(n), locale) for n, c in spec_columns.items()}
                     for row in (value or ()))
    return FieldView(name, spec.text(locale), value, compiled.display(name, value, locale), columns, rows)


def _cell_text(column: Any, cell: Any, locale: str) -> str:
    if cell is None:
        return ""
    try:
        return column.type.display(column.type.parse(cell, column.spec), column.spec, locale)
    except FieldInvalid:
        return str(cell)


def _status_text(bundle: "Bundle", form: Any, status: Any, locale: str) -> str:
    """The status in the customer's words (the form's lookup statuses list, with an option's
    `customer_label` where it has one), else as stored."""
    lists = bundle.all("list")
    name = (form.lookup or {}).get("statuses")
    option = lists[name].find(str(status)) if name in lists and status is not None else None
    return option.customer_text(locale) if option else str(status or "")


def _safe_filename(stem: str) -> str:
    """A file name without path separators or control characters, at most 100 characters."""
    cleaned = "".join(ch for ch in stem if ch.isprintable() and ch not in '/\\:*?"<>|')
    return cleaned.strip(". ")[:100] or "document"
