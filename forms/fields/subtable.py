"""A sub-table: repeating rows (several waybills, several items), each row checked column by column."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from sqlalchemy import JSON
from sqlalchemy.types import TypeEngine

from engine.schema import NAME_PATTERN
from forms.fields.base import FieldType
from forms.messages import FieldInvalid
from forms.spec import FieldSpec

ROW_CAP = 200
DEFAULT_MAX_ROWS = 50
MAX_JSON_TEXT = 1024 * 1024
CELL_BAR = " | "
"""Between the cells of one row written as a line of text (an export's sub-table cell)."""


@dataclass(frozen=True)
class Column:
    """One column of a sub-table: its field type and its spec (built like a form's fields)."""

    type: FieldType
    spec: FieldSpec


class Subtable(FieldType):
    name = "subtable"
    aliases = ("sub_table", "repeating_rows")
    description = ("Repeating rows, each with the `columns` given (any stored field type except "
                   "subtable, auto_number and computed); stored as a JSON list of rows; errors "
                   "are reported per cell as `field[row].column` (rows counted from 0).")
    options_schema = {"required": ["columns"], "properties": {
        "columns": {"type": "object", "minProperties": 1, "maxProperties": 30,
                    "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": {"type": "object"},
                    "description": "column name -> a field definition (type, label, required, options...)"},
        "min_rows": {"type": "integer", "minimum": 0, "maximum": ROW_CAP},
        "max_rows": {"type": "integer", "minimum": 1, "maximum": ROW_CAP},
    }}
    examples = ("waybills:\n  type: subtable\n  label: {zh-CN: 涉及的运单, en: Waybills}\n  min_rows: 1\n  max_rows: 20\n"
                "  columns:\n    number:\n      type: id_number\n      kind: waybill\n"
                "      label: {zh-CN: 运单号, en: Waybill number}\n      required: true\n"
                "    note:\n      type: text\n      label: {zh-CN: 备注, en: Note}\n      max_length: 200\n",)
    widget = "table"
    in_subtable = False

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return JSON()

    def prepare(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        low, high = spec.opt("min_rows", 0), spec.opt("max_rows", DEFAULT_MAX_ROWS)
        if low > high:
            ctx.error(doc, path + ("min_rows",), f"min_rows ({low}) is more than max_rows ({high})",
                      code="invalid-option")
        kind = ctx.registry.definition_kinds.get("form")
        columns: dict[str, Column] = {}
        for name, raw in spec.opt("columns", {}).items():
            built = kind.build_column(doc, path + ("columns", name), name, raw, ctx)
            if built is not None:
                columns[name] = Column(*built)
        return MappingProxyType(columns)

    def columns(self, spec: FieldSpec) -> Mapping[str, Column]:
        if spec.compiled is None:
            raise RuntimeError(f"sub-table '{spec.name}' was not prepared by the form loader")
        return spec.compiled  # type: ignore[no-any-return]

    def check_bundle(self, spec: FieldSpec, bundle: Any, ctx: Any, doc: Any, path: tuple[Any, ...]) -> None:
        for name, column in self.columns(spec).items():
            column.type.check_bundle(column.spec, bundle, ctx, doc, path + ("columns", name))

    def is_empty(self, value: Any) -> bool:
        return value is None or value == "" or value == [] or value == ()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, str):
            raw = self._rows_from_text(raw, spec)
        if not isinstance(raw, (list, tuple)) or not all(isinstance(row, dict) for row in raw):
            raise self.invalid("not_rows")
        high = spec.opt("max_rows", DEFAULT_MAX_ROWS)
        if len(raw) > high:  # refuse before any per-row work
            raise self.invalid("too_many_rows", max=high)
        columns = self.columns(spec)
        rows: list[dict[str, Any]] = []
        parts: dict[str, FieldInvalid] = {}
        for row in raw:
            if all(column.type.is_empty(row.get(name)) for name, column in columns.items()) \
                    and set(row) <= set(columns):
                continue  # a blank row left on the page
            index = len(rows)
            clean: dict[str, Any] = {}
            for key in row:
                if key not in columns:
                    parts[f"[{index}].{key}"] = self.invalid("unknown_field")
            for name, column in columns.items():
                clean[name] = self._cell(row.get(name), column, parts, f"[{index}].{name}")
            rows.append(clean)
        if parts:
            raise self.invalid("rows_invalid", parts=parts)
        low = spec.opt("min_rows", 0)
        if len(rows) < low:
            raise self.invalid("too_few_rows", min=low)
        return rows

    def _rows_from_text(self, text: str, spec: FieldSpec) -> Any:
        """Rows from one text: a JSON list (a page's table widget), or else one line per row
        filling the first column, then the next ones after " | " (a plain text box, a
        spreadsheet cell: "SF1234567890 | 外包装破损\nYT98...")."""
        if len(text) > MAX_JSON_TEXT:
            raise self.invalid("not_rows")
        if text.lstrip().startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise self.invalid("not_rows") from None
        names = list(self.columns(spec))
        # Later columns follow the first after " | " (a spreadsheet cell of an export:
        # "SF1234567890 | 外包装破损"); the last column keeps any further bars as written.
        return [{name: cell.strip() or None for name, cell in zip(names, line.split(CELL_BAR, len(names) - 1))}
                for line in text.splitlines() if line.strip()]

    @staticmethod
    def _cell(raw: Any, column: Column, parts: dict[str, FieldInvalid], where: str) -> Any:
        ftype, sub = column.type, column.spec
        try:
            if ftype.is_empty(raw):
                if sub.default is not None:
                    return ftype.to_json(ftype.parse(sub.default, sub), sub)
                if sub.required:
                    parts[where] = FieldInvalid("required")
                return None
            return ftype.to_json(ftype.parse(raw, sub), sub)
        except FieldInvalid as exc:
            parts[where] = exc
            return None

    def check_stored(self, conn: Any, value: Any, spec: FieldSpec, tables: Mapping[str, Any]) -> None:
        parts: dict[str, FieldInvalid] = {}
        for index, row in enumerate(value or []):
            for name, column in self.columns(spec).items():
                cell = row.get(name)
                if cell is None:
                    continue
                try:
                    column.type.check_stored(conn, column.type.parse(cell, column.spec), column.spec, tables)
                except FieldInvalid as exc:
                    parts[f"[{index}].{name}"] = exc
        if parts:
            raise self.invalid("rows_invalid", parts=parts)

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def value_schema(self, spec: FieldSpec) -> dict[str, Any]:
        """JSON Schema of a value (forms.json_schema): rows of the columns' values."""
        from forms.json_schema import value_schema

        columns = self.columns(spec)
        row = {"type": "object", "additionalProperties": False,
               "properties": {name: value_schema(c.type, c.spec) for name, c in columns.items()}}
        return {"type": "array", "items": row, "maxItems": spec.opt("max_rows", DEFAULT_MAX_ROWS)}

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if not value:
            return ""
        columns = self.columns(spec)
        lines = []
        for row in value:
            cells = []
            for name, column in columns.items():
                cell = row.get(name)
                if cell is None:
                    continue
                try:
                    shown = column.type.display(column.type.parse(cell, column.spec), column.spec, locale)
                except FieldInvalid:
                    shown = str(cell)
                cells.append(f"{column.spec.text(locale)}: {shown}")
            lines.append(", ".join(cells))
        return "; ".join(lines)
