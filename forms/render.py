"""A form as the page shows it: widgets in order, grouped by sections, with values and errors.

The page template (web/templates/form_fill.html) only loops over what `form_view` returns, so
everything a widget needs (its kind, options, limits, labels in the user's locale) is decided
here, next to the field types, and can be tested without a browser. `parse_form_post` turns an
HTML form submission back into the JSON-like dict the validator takes, so pages, the API and
imports all share one validator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from engine.expr.client import client_condition
from engine.types import label_text
from forms.compile import CompiledForm
from forms.spec import FieldSpec

# field type name -> widget kind; a plugin type may set `widget` on its class instead.
WIDGETS: dict[str, str] = {
    "text": "text", "phone": "tel", "email": "email", "url": "url", "id_number": "text",
    "user": "text", "textarea": "textarea", "rich_text": "textarea", "number": "number",
    "integer": "number", "money": "number", "percent": "number", "rating": "rating",
    "select": "select", "region": "select", "role": "select", "department": "select",
    "reference": "number", "radio": "radio", "multiselect": "checkboxes",
    "checkboxes": "checkboxes", "cascade": "select", "boolean": "checkbox", "date": "date",
    "datetime": "datetime-local", "time": "time", "duration": "text", "section": "section",
    "hidden": "hidden", "attachment": "file", "image": "file", "subtable": "table",
}
NOT_FILLED = frozenset({"computed", "auto_number"})
"""Types whose value the system sets: never an input on a fill page."""

TABLE_BLANK_ROWS = 2
"""Blank rows a table widget offers below the filled ones (blank rows are ignored on submit)."""
MAX_TABLE_ROWS = 200

STEP = {"integer": "1", "rating": "1", "money": "0.01", "percent": "0.01"}


@dataclass
class Choice:
    value: str
    label: str
    depth: int = 0
    selectable: bool = True
    selected: bool = False


@dataclass
class Widget:
    """One input (or section heading) of a rendered form."""

    name: str
    kind: str
    label: str
    required: bool = False
    help: str | None = None
    placeholder: str | None = None
    value: Any = None
    errors: list[str] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    conditional: bool = False
    """Shown only under a condition (`visible_if`): the server decides, the page says so."""
    columns: list[tuple[str, str, str]] = field(default_factory=list)
    """For a table widget: (column name, label, input kind) of each column."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """For a table widget: the rows shown (values so far, then blank rows to fill in)."""
    visible_if: str | None = None
    """The `visible_if` condition as JSON for the page's script, when a browser can evaluate it."""
    files: list[dict[str, Any]] = field(default_factory=list)
    """For a file widget: the files already stored ({id, name, size}) the page sends again."""
    cell_errors: list["CellError"] = field(default_factory=list)
    """For a table widget: the messages of single cells (`errors` holds the table's own)."""

    @property
    def input_id(self) -> str:
        return f"f-{self.name}"

    @property
    def invalid(self) -> bool:
        """Whether the field, or one of its cells, has an error to show."""
        return bool(self.errors or self.cell_errors)

    def cell_error(self, row: int, column: str) -> "CellError | None":
        """The error of one table cell, if it has one (the page marks that cell only)."""
        return next((e for e in self.cell_errors if (e.row, e.column) == (row, column)), None)


@dataclass
class CellError:
    """The messages of one cell of a table widget, as the page shows them under the table."""

    row: int
    column: str
    text: str
    """'Row 2 Waybill number: ...': where the cell is, then what is wrong."""
    id: str
    """The message's element id, which the cell's input names in aria-describedby."""


@dataclass
class Section:
    """A group of widgets under an optional heading (a `section` field starts one)."""

    title: str | None
    widgets: list[Widget] = field(default_factory=list)


People = Callable[[str | None], Iterable[tuple[str, str]]]
"""role (or None) -> the (username, display name) of the users a `user` field may name."""

Records = Callable[[FieldSpec], Iterable[tuple[int, str]]]
"""A `reference` field -> the (id, words) of the records it may name that the page offers."""


def form_view(form: CompiledForm, locale: str, *, values: Mapping[str, Any] | None = None,
              errors: Mapping[str, list[str]] | None = None,
              only: Iterable[str] | None = None, people: People | None = None,
              records: Records | None = None) -> list[Section]:
    """The sections and widgets of `form` for a fill page in `locale`.

    `values` are what the user typed (shown again after an error), `errors` the validator's
    messages per field; `only` limits the page to the fields a flow step may edit. With
    `people` (staff pages only: it names the staff), a `user` field is a list of the people
    it may name, shown by their names, instead of a box for a user name; with `records`
    (staff pages too), a `reference` field is a list of records by their words, not a box for an id.
    """
    values = values or {}
    errors = errors or {}
    allowed = set(only) if only is not None else None
    sections = [Section(None)]
    for name, spec in form.spec.fields.items():
        ftype = form.types[name]
        kind = getattr(ftype, "widget", None) or WIDGETS.get(ftype.name, "text")
        if kind == "section":
            sections.append(Section(spec.text(locale)))
            continue
        if ftype.name in NOT_FILLED or spec.computed is not None or not ftype.stores_value:
            continue
        if allowed is not None and name not in allowed:
            continue
        value = values.get(name) if name in values or errors else spec.default
        offered = list(people(spec.opt("role"))) if people is not None and ftype.name == "user" else None
        linkable = list(records(spec)) if records is not None and ftype.name == "reference" else None
        if offered is not None or linkable is not None:
            kind = "select"
        widget = _widget(spec, ftype, kind, locale, value, list(errors.get(name, ())))
        if offered is not None:
            widget.choices = _people_choices(offered, value)
        if linkable is not None:
            widget.choices = _record_choices(linkable, value)
        if kind == "table":
            widget.cell_errors = _cell_errors(widget, ftype, spec, errors, locale)
        sections[-1].widgets.append(widget)
    return [s for s in sections if s.widgets]


def _widget(spec: FieldSpec, ftype: Any, kind: str, locale: str, value: Any,
            errors: list[str]) -> Widget:
    widget = Widget(
        name=spec.name, kind=kind, label=spec.text(locale), required=spec.required,
        help=label_text(spec.help, locale, "") or None if spec.help else None,
        placeholder=label_text(spec.placeholder, locale, "") or None if spec.placeholder else None,
        value=_shown(value), errors=errors,
        conditional=spec.visible_if is not None or spec.required_if is not None,
    )
    if spec.visible_if is not None:
        tree = client_condition(spec.visible_if.source)
        widget.visible_if = json.dumps(tree, ensure_ascii=False) if tree is not None else None
    if kind == "number":
        widget.attrs["step"] = STEP.get(ftype.name, "any")
        for key in ("min", "max"):
            if spec.opt(key) is not None:
                widget.attrs[key] = str(spec.opt(key))
        widget.attrs["inputmode"] = "numeric" if ftype.name == "integer" else "decimal"
    if kind == "rating":
        widget.choices = [Choice(str(n), "★" * n, selected=str(value) == str(n))
                          for n in range(1, int(spec.opt("max", 5)) + 1)]
    if spec.opt("autocomplete") and kind in ("text", "textarea"):
        widget.attrs["autocomplete"] = str(spec.opt("autocomplete"))
    for key in ("max_length", "min_length"):
        if spec.opt(key) is not None and kind in ("text", "tel", "email", "url", "textarea"):
            widget.attrs[key.replace("_", "")] = str(spec.opt(key))
    if kind == "file":
        widget.files = _kept_files(value)
        widget.value = ""
        widget.attrs["multiple"] = "multiple"
        if ftype.name == "image":
            widget.attrs["accept"] = "image/jpeg,image/png,image/gif,image/webp"
    if kind == "table":
        columns = ftype.columns(spec)
        widget.columns = [(col, column.spec.text(locale), WIDGETS.get(column.type.name, "text"))
                          for col, column in columns.items()]
        rows = [dict(r) for r in value if not _blank_row(r, columns)] if isinstance(value, list) else []
        blank = max(TABLE_BLANK_ROWS, int(spec.opt("min_rows", 0)) - len(rows))
        limit = int(spec.opt("max_rows", 20))
        widget.rows = (rows + [{} for _ in range(blank)])[:max(limit, len(rows))]
        widget.value = ""
    if spec.choices is not None and kind in ("select", "radio", "checkboxes"):
        chosen = {str(v) for v in value} if isinstance(value, (list, tuple, set)) else {str(value)}
        leaf_only = ftype.name == "cascade" and spec.opt("leaf_only", True)
        widget.choices = [
            Choice(option.value, option.text(locale), depth - 1,
                   selectable=not (leaf_only and option.children), selected=option.value in chosen)
            for depth, option, _ in spec.choices.walk()
        ]
    return widget


def _people_choices(offered: list[tuple[str, str]], value: Any) -> list[Choice]:
    """The people a user field offers, by name (user name beside it when two share a name); the
    current value stays offered even when that person no longer is (left, or lost the role)."""
    current = str(value) if value not in (None, "") else None
    shown = [display for _u, display in offered]
    choices = [Choice(username, display if shown.count(display) == 1 and display != username
                      else f"{display} ({username})" if display != username else username,
                      selected=username == current)
               for username, display in offered]
    if current is not None and current not in {u for u, _d in offered}:
        choices.insert(0, Choice(current, current, selected=True))
    return choices


def _record_choices(offered: list[tuple[int, str]], value: Any) -> list[Choice]:
    """The records a reference field offers; the current one stays offered (as its id) when it
    is not among them (older than the newest offered, or not the reader's to see)."""
    current = str(value).strip().lstrip("#") if value not in (None, "") else None
    choices = [Choice(str(record_id), words, selected=str(record_id) == current) for record_id, words in offered]
    if current is not None and not any(c.selected for c in choices):
        choices.insert(0, Choice(current, f"#{current}", selected=True))
    return choices


def _kept_files(value: Any) -> list[dict[str, Any]]:
    """The stored files (entries with an id and a name) in a file field's value; bare ids are
    not shown, as nothing says yet that they are files this page may offer."""
    if not isinstance(value, list):
        return []
    return [{"id": item["id"], "name": str(item["name"]), "size": item.get("size")}
            for item in value if isinstance(item, Mapping) and item.get("id") and item.get("name")]


def _blank_row(row: Any, columns: Mapping[str, Any]) -> bool:
    """A row left empty on the page. The validator skips such rows before it counts them (it
    reports `waybills[0]` for the first row it kept), so the page drops them too before showing
    the rows again: otherwise an error would mark the wrong row."""
    return isinstance(row, Mapping) and set(row) <= set(columns) and all(
        column.type.is_empty(row.get(name)) for name, column in columns.items())


def _cell_errors(widget: Widget, ftype: Any, spec: FieldSpec, errors: Mapping[str, list[str]],
                 locale: str) -> list[CellError]:
    """The errors of single cells of a table widget, keyed by the validator like waybills[2].number."""
    out: list[CellError] = []
    for key, texts in errors.items():
        if not key.startswith(widget.name + "["):
            continue
        where = key[len(widget.name):]
        index, _, column = where.lstrip("[").partition("]")
        # Numbered, not named after the column: a posted column name may be anything.
        out.append(CellError(int(index) if _is_index(index) else -1, column.lstrip("."),
                             f"{_cell_label(ftype, spec, where, locale)}: {' '.join(texts)}",
                             f"{widget.input_id}-cell-{len(out)}-error"))
    return out


def _shown(value: Any) -> Any:
    """A value as an input shows it (datetimes as the datetime-local format)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat") and not isinstance(value, (list, dict)):
        text = value.isoformat()
        return text[:16] if "T" in text else text
    return value


def parse_form_post(form: CompiledForm, data: Any, *, only: Iterable[str] | None = None) -> dict[str, Any]:
    """An HTML form post (a MultiDict with `getlist`) as the dict the validator takes.

    Fields the page did not show are left out, so the validator applies defaults; an unchecked
    checkbox sends nothing, which for a boolean means "no".
    """
    allowed = set(only) if only is not None else None
    out: dict[str, Any] = {}
    for name, spec in form.spec.fields.items():
        ftype = form.types[name]
        if not ftype.stores_value or ftype.name in NOT_FILLED or spec.computed is not None:
            continue
        if allowed is not None and name not in allowed:
            continue
        kind = getattr(ftype, "widget", None) or WIDGETS.get(ftype.name, "text")
        if kind == "file":
            continue  # files are uploaded by the page handler, then passed as ids
        if kind == "table":
            rows = _table_rows(name, data)
            if rows:
                out[name] = rows
            continue
        if kind == "checkboxes":
            picked = [v for v in data.getlist(name) if v != ""]
            if picked:
                out[name] = picked
        elif kind == "checkbox":
            out[name] = name in data
        elif name in data:
            out[name] = data[name]
    return out


def _is_index(text: str) -> bool:
    """A row number as a page posts it: ASCII digits only. str.isdigit() also takes ² and ①,
    which int() refuses: a posted `waybills.².number` crashed the public form."""
    return text.isascii() and text.isdigit()


def _table_rows(name: str, data: Any) -> list[dict[str, Any]]:
    """Rows posted as `name.INDEX.COLUMN` inputs, in index order."""
    rows: dict[int, dict[str, Any]] = {}
    prefix = name + "."
    for key in data.keys():
        if not key.startswith(prefix):
            continue
        index, _, column = key[len(prefix):].partition(".")
        if _is_index(index) and column and int(index) < MAX_TABLE_ROWS:
            rows.setdefault(int(index), {})[column] = data[key]
    return [rows[i] for i in sorted(rows)]


def _cell_label(ftype: Any, spec: FieldSpec, where: str, locale: str) -> str:
    """`[2].number` as the user reads it: row 3, the column's label."""
    index, _, column = where.lstrip("[").partition("]")
    column = column.lstrip(".")
    columns = ftype.columns(spec)
    label = columns[column].spec.text(locale) if column in columns else column
    row = int(index) + 1 if _is_index(index) else index
    return f"{'第' + str(row) + '行' if locale.startswith('zh') else 'Row ' + str(row)} {label}".strip()
