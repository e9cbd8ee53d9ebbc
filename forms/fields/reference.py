"""A link to a record of another form (e.g. the customer master), stored as that record's id."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import BigInteger, select
from sqlalchemy.types import TypeEngine

from engine.schema import NAME_PATTERN
from forms.fields.base import FieldType
from forms.spec import FieldSpec


class Reference(FieldType):
    name = "reference"
    aliases = ("record_link", "lookup")
    description = ("A record of another form, e.g. `form: customer`; stored as the record's id. "
                   "The form must exist in the bundle; `show` names the field that identifies a "
                   "record on pages (default: that form's `title`), after its query number. Staff "
                   "choose it from a list of the newest 200 records they may read; the record page "
                   "links to it.")
    options_schema = {"required": ["form"], "properties": {
        "form": {"type": "string", "pattern": NAME_PATTERN, "description": "the form whose records are chosen"},
        "show": {"type": "string", "pattern": NAME_PATTERN, "description": "the field shown for a chosen record"},
    }}
    examples = ("related_ticket:\n  type: reference\n  label: {zh-CN: 关联工单, en: Related ticket}\n  form: ticket\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return BigInteger()

    def check_bundle(self, spec: FieldSpec, bundle: Any, ctx: Any, doc: Any, path: tuple[Any, ...]) -> None:
        forms = bundle.all("form")
        target = spec.opt("form")
        if target not in forms:
            ctx.unknown(doc, path + ("form",), "form", target, forms)
            return
        show = spec.opt("show")
        fields = forms[target].fields
        if show is not None and show not in fields:
            ctx.unknown(doc, path + ("show",), "field", show, fields)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool):
            raise self.invalid("not_reference")
        if isinstance(raw, str):
            text = raw.strip().lstrip("#")
            if not (text.isascii() and text.isdigit()) or len(text) > 18:
                raise self.invalid("not_reference")
            raw = int(text)
        if not isinstance(raw, int) or not 1 <= raw < 2**63:
            raise self.invalid("not_reference")
        return raw

    def check_stored(self, conn: Any, value: Any, spec: FieldSpec, tables: Mapping[str, Any]) -> None:
        table = tables.get(spec.opt("form"))
        if value is None or table is None:
            return
        if conn.execute(select(table.c.id).where(table.c.id == value)).first() is None:
            raise self.invalid("no_record")

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        return "" if value is None else f"#{value}"
