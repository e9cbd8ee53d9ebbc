"""Choice field types: select, radio, multiselect, checkboxes, cascade (tree), region, boolean."""

from __future__ import annotations

import json
from typing import Any, Callable

from sqlalchemy import JSON, Boolean as SqlBoolean, String
from sqlalchemy.types import TypeEngine

from engine.schema import LABEL_SCHEMA
from forms.fields.base import FastCheck, FieldType
from forms.spec import FieldSpec

OPTIONS_SCHEMA: dict[str, Any] = {
    "description": "the name of a list in lists/, or the options written inline",
    "anyOf": [
        {"type": "string"},
        {"type": "array", "minItems": 1, "items": {
            "anyOf": [
                {"type": ["string", "integer"]},
                {"type": "object", "required": ["value"], "additionalProperties": False,
                 "properties": {"value": {"type": ["string", "integer"]}, "label": LABEL_SCHEMA,
                                "color": {"type": ["string", "null"],
                                          "description": 'a colour for the option: "#rrggbb" (in quotes)'}}},
            ]}},
    ],
}


class Select(FieldType):
    name = "select"
    aliases = ("dropdown",)
    value_kind = "text"
    description = "One choice from an option list (a list in lists/ or inline options)."
    options_schema = {"required": ["options"], "properties": {"options": OPTIONS_SCHEMA}}
    examples = ("urgency:\n  type: select\n  label: {zh-CN: 紧急程度, en: Urgency}\n  options: urgency\n  required: true\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(64)

    def leaf_only(self) -> bool:
        return False

    def allowed(self, spec: FieldSpec) -> set[str]:
        if spec.choices is None:
            return set()
        if self.leaf_only():
            return {o.value for _, o, _ in spec.choices.walk() if not o.children}
        return {o.value for o in spec.choices.options}

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise self.invalid("not_choice")
        value = str(raw).strip()
        if value not in self.allowed(spec):
            raise self.invalid("not_choice")
        return value

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        if type(self).parse is not Select.parse:
            return super().parser(spec)
        allowed = frozenset(self.allowed(spec))  # the option tree is walked once, at load
        invalid = self.invalid

        def parse_choice(raw: Any) -> Any:
            if type(raw) is str:
                value = raw.strip()
            elif isinstance(raw, bool) or not isinstance(raw, (str, int)):
                raise invalid("not_choice")
            else:
                value = str(raw).strip()
            if value not in allowed:
                raise invalid("not_choice")
            return value

        return parse_choice

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        """An exact str that is itself an option (no spaces to trim) is that option."""
        exact = frozenset(v for v in self.allowed(spec) if v.__class__ is str and v and v == v.strip())
        return FastCheck("raw.__class__ is str and raw in {options}", "raw", {"options": exact})

    def value_schema(self, spec: FieldSpec) -> dict[str, Any]:
        """JSON Schema of a value (forms.json_schema): one of the values it accepts."""
        allowed = sorted(self.allowed(spec))
        return {"type": "string", "enum": allowed} if allowed else {"type": "string"}

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None or spec.choices is None:
            return "" if value is None else str(value)
        option = spec.choices.find(str(value))
        return option.text(locale) if option else str(value)


class Radio(Select):
    name = "radio"
    aliases = ()
    description = "One choice shown as radio buttons (best for 2-5 options)."
    examples = ("channel:\n  type: radio\n  options: [phone, email, web]\n",)


class Cascade(Select):
    name = "cascade"
    aliases = ("tree_select", "category_tree")
    description = ("A choice from a tree (e.g. a three-level category tree in lists/); the leaf "
                   "value is stored, its ancestors are derived from the list.")
    options_schema = {"required": ["options"], "properties": {
        "options": OPTIONS_SCHEMA,
        "leaf_only": {"type": "boolean", "description": "only the last level may be chosen (default true)"},
    }}
    examples = ("category:\n  type: cascade\n  label: {zh-CN: 问题分类, en: Category}\n  options: complaint_category\n",)

    leaf_only_default = True

    def allowed(self, spec: FieldSpec) -> set[str]:
        if spec.choices is None:
            return set()
        leaf_only = spec.opt("leaf_only", self.leaf_only_default)
        return {o.value for _, o, _ in spec.choices.walk() if not (leaf_only and o.children)}

    def path(self, value: str, spec: FieldSpec) -> tuple[str, ...]:
        """The values from the root to `value`."""
        for _, option, parents in spec.choices.walk():
            if option.value == value:
                return parents + (value,)
        return (value,)

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None or spec.choices is None:
            return ""
        names = []
        for part in self.path(str(value), spec):
            option = spec.choices.find(part)
            names.append(option.text(locale) if option else part)
        return " / ".join(names)


class Region(Cascade):
    name = "region"
    aliases = ("area",)
    description = ("A place from a list or a tree of regions (province / city / district); any "
                   "level may be chosen unless `leaf_only: true`.")
    options_schema = {"required": ["options"], "properties": {
        "options": OPTIONS_SCHEMA,
        "leaf_only": {"type": "boolean", "description": "only the last level may be chosen (default false)"},
    }}
    examples = ("service_region:\n  type: region\n  label: {zh-CN: 所属区域, en: Region}\n  options: region\n",)
    leaf_only_default = False


class MultiSelect(Select):
    name = "multiselect"
    aliases = ("multi_select",)
    value_kind = None  # a list of values: `"x" in field` is checked against the options
    description = "Several choices from an option list; stored as a JSON list."
    options_schema = {"required": ["options"], "properties": {
        "options": OPTIONS_SCHEMA, "max_choices": {"type": "integer", "minimum": 1}}}
    examples = ("waybill_issues:\n  type: multiselect\n  options: [late, damaged, lost]\n",)
    multiple = True

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return JSON()

    def is_empty(self, value: Any) -> bool:
        return value in (None, "", [], ())

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, str):
            raw = [part for part in (p.strip() for p in raw.split(",")) if part]
        if not isinstance(raw, (list, tuple)):
            raise self.invalid("not_choices")
        allowed = self.allowed(spec)
        values = []
        for item in raw:
            if isinstance(item, bool) or not isinstance(item, (str, int)) or str(item) not in allowed:
                raise self.invalid("not_choices")
            if str(item) not in values:
                values.append(str(item))
        if spec.opt("max_choices") and len(values) > spec.opt("max_choices"):
            raise self.invalid("too_many", max=spec.opt("max_choices"))
        return values

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def value_schema(self, spec: FieldSpec) -> dict[str, Any]:
        """JSON Schema of a value (forms.json_schema): a list of accepted values."""
        schema: dict[str, Any] = {"type": "array", "items": Select.value_schema(self, spec)}
        if spec.opt("max_choices"):
            schema["maxItems"] = spec.opt("max_choices")
        return schema

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        return ", ".join(Select.display(self, v, spec, locale) for v in value or [])


class Checkboxes(MultiSelect):
    name = "checkboxes"
    aliases = ("check_boxes",)
    description = "Several choices from a short option list, every option shown as a checkbox; stored as a JSON list."
    options_schema = {"required": ["options"], "properties": {
        "options": OPTIONS_SCHEMA, "max_choices": {"type": "integer", "minimum": 1}}}
    examples = ("contact_times:\n  type: checkboxes\n  label: {zh-CN: 方便联系时段, en: Best times to call}\n"
                "  options:\n    - {value: morning, label: {zh-CN: 上午, en: Morning}}\n"
                "    - {value: afternoon, label: {zh-CN: 下午, en: Afternoon}}\n"
                "    - {value: evening, label: {zh-CN: 晚上, en: Evening}}\n",)
    widget = "checkboxes"


_TRUE = {"true", "1", "yes", "on", "y", "是"}
_FALSE = {"false", "0", "no", "off", "n", "否"}


class Boolean(FieldType):
    name = "boolean"
    value_kind = "boolean"
    aliases = ("checkbox", "bool")
    description = "Yes or no."
    options_schema = {"properties": {}}
    examples = ("fees_involved:\n  type: boolean\n  label: {zh-CN: 涉及费用, en: Fees involved}\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlBoolean()

    def is_empty(self, value: Any) -> bool:
        return value is None or value == ""

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self.invalid("not_boolean")

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        if type(self).parse is not Boolean.parse:
            return super().parser(spec)
        slow = self.parse

        def parse_boolean(raw: Any) -> Any:
            return raw if raw is True or raw is False else slow(raw, spec)

        return parse_boolean

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        """True and False are themselves (and never empty)."""
        return FastCheck("raw is True or raw is False")

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None:
            return ""
        if locale.startswith("zh"):
            return "是" if value else "否"
        return "Yes" if value else "No"
