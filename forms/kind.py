"""`forms/*.yaml`: the form definition kind (schema, build, cross-file checks)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from engine.kinds import BuildContext, Dispatch
from engine.lists import Option, OptionList
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.yamlsource import Document
from forms.messages import FieldInvalid
from forms.numbering import check_pattern
from forms.spec import FieldSpec, FormSpec

EXPRESSION = {"type": ["string", "boolean"], "description": "an expression over the form's fields"}

COMMON_FIELD_SCHEMA: dict[str, Any] = {
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "description": "the field type"},
        "label": LABEL_SCHEMA,
        "help": LABEL_SCHEMA,
        "placeholder": LABEL_SCHEMA,
        "required": {"type": "boolean"},
        "required_if": EXPRESSION,
        "visible_if": EXPRESSION,
        "readonly_if": EXPRESSION,
        "computed": {"type": "string", "description": "an expression; the field is read-only and computed"},
        "default": {"description": "a value used when nothing is entered"},
        "default_expr": {"type": "string", "description": "an expression giving the default, e.g. now()"},
        "unique": {"type": "boolean", "description": "no two records may share a value"},
        "public": {"type": "boolean", "description": "shown to the customer in the public progress lookup"},
        "index": {"type": "boolean", "description": "index the column for reports and filters"},
    },
}

FORM_NAMES = {"id", "query_no", "status", "created_at", "updated_at", "created_by", "version",
              "bundle_hash", "extra", "user", "record", "now", "today"}
"""Names a field may not take: the record table's own columns and expression names."""

EXPRESSION_NAMES = frozenset({"user", "record", "query_no", "status", "created_at"})


class FormKind:
    """`form: complaint` with `fields:` (each field's `type` picks a field-type plugin)."""

    name = "form"
    aliases: tuple[str, ...] = ()
    folder = "forms"
    key = "form"
    order = 10
    dispatch = (Dispatch(("fields", "*"), "field_types", COMMON_FIELD_SCHEMA),)
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["form", "fields"],
        "additionalProperties": False,
        "properties": {
            "form": {"type": "string", "pattern": NAME_PATTERN},
            "label": LABEL_SCHEMA,
            "description": LABEL_SCHEMA,
            "numbering": {"type": "string", "description": "query-number pattern, e.g. TS{date:%Y%m%d}{seq:5}"},
            "public": {"type": "boolean", "description": "customers may submit it without signing in"},
            "title": {"type": "string", "description": "the field that names a record in lists"},
            "list": {"type": "array", "items": {"type": "string"}, "description": "fields shown in record lists"},
            "fields": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"type": "object"},
            },
        },
    }

    def build(self, doc: Document, ctx: BuildContext) -> FormSpec | None:
        data = doc.data
        timezone = ctx.meta.timezone if ctx.meta else "UTC"
        names = set(data["fields"])
        scope = names | EXPRESSION_NAMES
        fields: dict[str, FieldSpec] = {}
        unknown_types = False
        for name, raw in data["fields"].items():
            path = ("fields", name)
            if name in FORM_NAMES:
                ctx.error(doc, path, f"'{name}' is a reserved name; choose another field name",
                          code="reserved-name", at_key=True)
                continue
            field_type = ctx.registry.field_types.get(raw["type"])
            if field_type is None:  # reported by the schema check; the other fields are still checked
                unknown_types = True
                continue
            options = {k: v for k, v in raw.items() if k not in COMMON_FIELD_SCHEMA["properties"]}
            choices = self._choices(doc, path, raw, ctx)
            exprs = {key: ctx.expression(doc, path + (key,), scope)
                     for key in ("required_if", "visible_if", "readonly_if", "computed", "default_expr")
                     if key in raw}
            spec = FieldSpec(
                name=name, type=field_type.name, label=raw.get("label", name),
                span=doc.source_map.key(path), options=MappingProxyType(options),
                required=bool(raw.get("required", False)), unique=bool(raw.get("unique", False)),
                public=bool(raw.get("public", False)), index=bool(raw.get("index", False)),
                help=raw.get("help"), placeholder=raw.get("placeholder"), choices=choices,
                timezone=timezone, default=raw.get("default"),
                required_if=exprs.get("required_if"), visible_if=exprs.get("visible_if"),
                readonly_if=exprs.get("readonly_if"), computed=exprs.get("computed"),
                default_expr=exprs.get("default_expr"),
            )
            if spec.default is not None:
                try:
                    field_type.parse(spec.default, spec)
                except FieldInvalid as exc:
                    ctx.error(doc, path + ("default",), f"default is not valid for this field: {exc.text()}",
                              code="invalid-default")
            field_type.check(spec, ctx, doc, path)
            fields[name] = spec
        for key in ("title",):
            if data.get(key) and data[key] not in names:
                ctx.unknown(doc, (key,), "field", data[key], names)
        for i, name in enumerate(data.get("list", [])):
            if name not in names and name not in FORM_NAMES:
                ctx.unknown(doc, ("list", i), "field", name, names)
        if data.get("numbering"):
            problem = check_pattern(data["numbering"])
            if problem:
                ctx.error(doc, ("numbering",), problem, code="numbering")
        if unknown_types:
            return None
        return FormSpec(
            name=data["form"], label=data.get("label", data["form"]),
            fields=MappingProxyType(fields), span=doc.span(()), numbering=data.get("numbering"),
            public=bool(data.get("public", False)), title_field=data.get("title"),
            list_fields=tuple(data.get("list", ())), description=data.get("description"),
        )

    def _choices(self, doc: Document, path: tuple[Any, ...], raw: dict[str, Any],
                 ctx: BuildContext) -> OptionList | None:
        options = raw.get("options")
        if options is None:
            return None
        if isinstance(options, str):
            lists = ctx.definitions.get("list", {})
            if options not in lists:
                ctx.unknown(doc, path + ("options",), "list", options, lists)
                return None
            return lists[options]
        items = []
        for i, item in enumerate(options):
            item_path = path + ("options", i)
            if isinstance(item, dict):
                items.append(Option(str(item["value"]), item.get("label", str(item["value"])), (),
                                    doc.source_map.value(item_path), item.get("color")))
            else:
                items.append(Option(str(item), str(item), (), doc.source_map.value(item_path)))
        values = [o.value for o in items]
        for i, value in enumerate(values):
            if value in values[:i]:
                ctx.error(doc, path + ("options", i), f"duplicate option value '{value}'",
                          code="duplicate-option")
        return OptionList(path[-1], raw.get("label", path[-1]), tuple(items), doc.source_map.value(path))

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        return None


