"""Display-only elements between fields: help text and dividers. They store nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.types import TypeEngine

from engine.schema import LABEL_SCHEMA
from forms.fields.base import FieldType
from forms.spec import FieldSpec


class _DisplayOnly(FieldType):
    stores_value = False
    in_subtable = False

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any] | None:
        return None

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        return None

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        return ""


class HelpText(_DisplayOnly):
    name = "help_text"
    aliases = ("paragraph", "instructions")
    description = "A paragraph of guidance shown between fields (`text`, a label); stores nothing."
    options_schema = {"properties": {"text": LABEL_SCHEMA}}
    examples = ("privacy_note:\n  type: help_text\n  text:\n    zh-CN: 您的联系方式仅用于处理本次投诉。\n"
                "    en: Your contact details are used only to handle this complaint.\n",)
    widget = "help_text"


class Divider(_DisplayOnly):
    name = "divider"
    aliases = ("separator",)
    description = "A horizontal line between groups of fields; stores nothing."
    options_schema = {"properties": {}}
    examples = ("contact_divider:\n  type: divider\n",)
    widget = "divider"
