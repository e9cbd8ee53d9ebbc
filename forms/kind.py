"""`forms/*.yaml`: the form definition kind (schema, build, cross-file checks)."""

from __future__ import annotations

import json
import keyword
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Mapping

from engine.expr import Names
from engine.expr.checker import LITERAL_NAMES
from engine.expr.context import VALUE_KINDS, Options, label_hint
from engine.errors import did_you_mean
from engine.kinds import CRASHED, BuildContext, Dispatch
from engine.registry import BUILT_IN
from engine.storage.records import column_type_problem
from engine.lists import Option, OptionList, check_color
from engine.schema import CONDITION_KEY, LABEL_SCHEMA, NAME_PATTERN
from engine.types import YamlPath
from engine.yamlsource import Document
from forms.fields.base import FieldType
from forms.messages import FieldInvalid
from forms.numbering import check_pattern, has_random
from forms.plugin_guard import guarded_type
from forms.spec import FieldSpec, FormSpec

EXPRESSION = {"type": ["string", "boolean"], "description": "an expression over the form's fields"}

COMMON_FIELD_SCHEMA: dict[str, Any] = {
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "description": "the field type"},
        "label": LABEL_SCHEMA,
        "help": LABEL_SCHEMA,
        "placeholder": LABEL_SCHEMA,
        "required": {"type": "boolean", CONDITION_KEY: "required_if"},
        "required_if": EXPRESSION,
        "visible_if": EXPRESSION,
        "readonly_if": EXPRESSION,
        "computed": {"type": "string", "description": "an expression; the field is read-only and computed"},
        "default": {"description": "a value used when nothing is entered"},
        "default_expr": {"type": "string", "description": "an expression giving the default, e.g. now()"},
        "unique": {"type": "boolean", "description": "no two records may share a value"},
        "public": {"type": "boolean", "description": "shown to the customer in the public progress lookup"},
        "index": {"type": "boolean", "description": "index the column for reports and filters"},
        "staff_only": {"type": "boolean", "description": "filled in by staff: not on the public form, refused from anonymous submitters"},
    },
}

FORM_NAMES = {"id", "query_no", "status", "created_at", "updated_at", "created_by", "version",
              "bundle_hash", "extra", "user", "record", "now", "today"}
"""Names a field may not take: the record table's own columns and expression names."""

EXPRESSION_NAMES = frozenset({"user", "record", "query_no", "status", "created_at"})

COLUMN_EXCLUDED = ("required_if", "visible_if", "readonly_if", "computed", "default_expr", "unique",
                   "public", "index")
"""Common keys that mean nothing inside a sub-table row."""


_UNRESOLVED: Any = object()
"""`build_field` without a resolved option list: it resolves the list itself."""


def _field_facts(resolved: dict[str, tuple[Any, OptionList | None]], raw_fields: Mapping[str, Any]) -> tuple[
        dict[str, frozenset[str]], dict[str, frozenset[str]], dict[str, str]]:
    """What expressions are checked against: the option values of single- and multi-choice
    fields, and the kind of value ("number", "text", "date", ...) each field holds, as its type
    says given the field's options (a computed field's `result`)."""
    single: dict[str, frozenset[str]] = {}
    multi: dict[str, frozenset[str]] = {}
    kinds: dict[str, str] = {}
    for name, (field_type, choices) in resolved.items():
        if choices is not None:
            raw_field = raw_fields.get(name)
            leaf_only = getattr(field_type, "leaf_only_default", None)  # a cascade: records hold the last level
            if isinstance(raw_field, Mapping) and leaf_only is not None:
                leaf_only = raw_field.get("leaf_only", leaf_only)
            (multi if field_type.multiple else single)[name] = Options(
                choices.values(), choices.labels(), choices.groups() if leaf_only else None)
        raw = raw_fields.get(name)
        kind_of = getattr(field_type, "value_kind_of", None)  # a plugin may not derive from FieldType
        if kind_of is not None and isinstance(raw, Mapping):
            kind = kind_of(raw)
        else:
            kind = getattr(field_type, "value_kind", None)
        if kind in VALUE_KINDS:
            kinds[name] = kind
    return single, multi, kinds


def check_filled(ctx: BuildContext, doc: Document, path: YamlPath, target: FormSpec,
                 given: Mapping[str, Any]) -> None:
    """A record made of `given` (a rule's `create_record`, a subflow's `fill`) needs every field
    its form always requires: without one it is refused each time it runs, an incident, though
    the bundle loaded."""
    missing = [name for name in target.always_required() if name not in given]
    if missing:
        names = ", ".join(f"'{name}'" for name in missing)
        ctx.error(doc, path, f"a new '{target.name}' record needs {names} (required on its form), and "
                  "this gives no value for it: every record it makes would be refused",
                  code="missing-required", at_key=True,
                  hint="add " + ", ".join(f"{name}: <an expression>" for name in missing)
                  + " here, or give the field a default on the form")


def check_written_value(value: Any, field_type: Any, spec: FieldSpec, ctx: BuildContext, doc: Document,
                        path: YamlPath, *, noun: str = "default", subject: str = "this field",
                        code: str = "invalid-default") -> bool:
    """Whether a value written in the YAML for a field (its `default:`, a webhook's constant)
    is one the field accepts, as a submitted value is parsed; an error at `path` when not."""
    if spec.opt("options") is not None and spec.choices is None:
        return True  # its option list is unknown or broken, reported there: every value would fail
    try:
        field_type.parse(value, spec)
    except FieldInvalid as exc:
        values = spec.choices.values() if spec.choices is not None else set()
        if isinstance(value, str) and values and value not in values:
            labelled = {spec.name: Options(values, spec.choices.labels())}  # type: ignore[union-attr]
            ctx.error(doc, path, f"the {noun} '{value}' is not an option of {subject}", code=code,
                      hint=label_hint(value, labelled, spec.name) or did_you_mean(value, values)
                      or "options: " + ", ".join(sorted(values)[:12]))
        else:
            shown = f"'{value}'" if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            ctx.error(doc, path, f"the {noun} {shown} is not valid for {subject}: {exc.text()}", code=code)
        return False
    return True


class FormKind:
    """`form: complaint` with `fields:` (each field's `type` picks a field-type plugin)."""

    name = "form"
    aliases: tuple[str, ...] = ()
    folder = "forms"
    key = "form"
    order = 10
    dispatch = (Dispatch(("fields", "*"), "field_types", COMMON_FIELD_SCHEMA),
                Dispatch(("fields", "*", "columns", "*"), "field_types", COMMON_FIELD_SCHEMA))
    """Every field picks its type; so does every column of a sub-table."""
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["form", "fields"],
        "additionalProperties": False,
        "properties": {
            "form": {"type": "string", "pattern": NAME_PATTERN},
            "label": LABEL_SCHEMA,
            "description": LABEL_SCHEMA,
            "numbering": {"type": "string", "description": "query-number pattern, e.g. TS{date:%Y%m%d}{random:6}"},
            "public": {"type": "boolean", "description": "customers may submit it without signing in"},
            "title": {"type": "string", "description": "the field that names a record in lists"},
            "list": {"type": "array", "items": {"type": "string"}, "description": "fields shown in record lists"},
            "wizard": {"type": "boolean", "description": "fill the form one section at a time"},
            "editors": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                        "description": "roles whose holders may change any field of a record they can see "
                                       "(e.g. through the API); task assignees change their step's fields"},
            "lookup": {
                "type": "object", "additionalProperties": False, "required": ["verify"],
                "description": "customers look up progress by query number plus the end of this field",
                "properties": {
                    "verify": {"type": "string", "description": "the field whose last characters the customer types"},
                    "digits": {"type": "integer", "minimum": 4, "maximum": 8},
                    "statuses": {"type": "string", "description": "a list in lists/ naming statuses for customers"},
                },
            },
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
        names = set(data["fields"])
        # Every field's type and options first: an expression of one field may compare another
        # field with a literal, which is checked against that field's options and kind.
        resolved = self._resolve_fields(doc, data["fields"], ctx)
        choice_values, multi_choice_values, value_kinds = _field_facts(resolved, data["fields"])
        scope = Names(names | EXPRESSION_NAMES, choice_values, multi_choices=multi_choice_values,
                      kinds=value_kinds)
        fields: dict[str, FieldSpec] = {}
        unknown_types = False
        for name, raw in data["fields"].items():
            path = ("fields", name)
            if name in FORM_NAMES:
                ctx.error(doc, path, f"'{name}' is a reserved name; choose another field name",
                          code="reserved-name", at_key=True)
                continue
            if keyword.iskeyword(name) or name in LITERAL_NAMES:
                # `from: {type: text}` loaded, and every expression naming it was a syntax error.
                ctx.error(doc, path, f"'{name}' is a word of the expression language, so no condition "
                          "could name this field; choose another field name", code="reserved-name",
                          at_key=True)
                continue
            if name not in resolved:  # an unknown type, reported by the schema check
                unknown_types = True
                continue
            built = self.build_field(doc, path, name, raw, ctx, scope, choices=resolved[name][1])
            if built is not None:
                fields[name] = built[1]
        _check_computed_order(fields, doc, ctx)
        if data.get("public"):
            _check_public_requirements(fields, doc, ctx)
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
        lookup = data.get("lookup")
        if lookup is not None:
            if lookup["verify"] not in names:
                ctx.unknown(doc, ("lookup", "verify"), "field", lookup["verify"], names)
            lists = ctx.definitions.get("list", {})
            if "statuses" in lookup and lookup["statuses"] not in lists:
                ctx.unknown(doc, ("lookup", "statuses"), "list", lookup["statuses"], lists)
            if not data.get("numbering"):
                ctx.error(doc, ("lookup",), "a progress lookup needs query numbers: add 'numbering'",
                          code="lookup-needs-numbering", at_key=True)
            elif not has_random(data["numbering"]):
                # The number is half of what opens a record's public page: one that counts tells
                # anyone holding their own number the numbers of today's other customers.
                ctx.warning(doc, ("numbering",), "query numbers that count ({seq:N}) can be guessed from "
                            "one another, and a number and 4 digits open the progress lookup",
                            code="guessable-numbers", hint="draw them at random: e.g. TS{date:%Y%m%d}{random:6}")
        roles = ctx.meta.roles if ctx.meta is not None else None
        for i, role in enumerate(data.get("editors", [])):
            if roles is not None and role not in roles:
                ctx.unknown(doc, ("editors", i), "role", role, roles)
        if unknown_types:
            return None
        return FormSpec(
            name=data["form"], label=data.get("label", data["form"]),
            fields=MappingProxyType(fields), span=doc.span(()), numbering=data.get("numbering"),
            public=bool(data.get("public", False)), title_field=data.get("title"),
            list_fields=tuple(data.get("list", ())), description=data.get("description"),
            wizard=bool(data.get("wizard", False)), editors=tuple(data.get("editors", ())),
            lookup=MappingProxyType(dict(lookup)) if lookup else None,
            choice_values=MappingProxyType(choice_values),
            multi_choice_values=MappingProxyType(multi_choice_values),
            value_kinds=MappingProxyType(value_kinds),
        )

    def _resolve_fields(self, doc: Document, raw_fields: dict[str, Any],
                        ctx: BuildContext) -> dict[str, tuple[Any, OptionList | None]]:
        """name -> (field type, option list or None) of every field of a known type that does
        not take a reserved name; problems with the options are reported once, here."""
        resolved = {}
        for name, raw in raw_fields.items():
            field_type = ctx.registry.field_types.get(raw["type"])
            if field_type is not None and name not in FORM_NAMES:
                resolved[name] = (field_type, self.field_choices(field_type, doc, ("fields", name), raw, ctx))
        return resolved

    def field_choices(self, field_type: Any, doc: Document, path: YamlPath, raw: dict[str, Any],
                      ctx: BuildContext) -> OptionList | None:
        """The option list of a choice field: its type's own (roles, departments) or `options:`."""
        choices = field_type.load_choices(raw, ctx, doc, path)
        return choices if choices is not None else self._choices(doc, path, raw, ctx)

    def build_field(self, doc: Document, path: YamlPath, name: str, raw: dict[str, Any],
                    ctx: BuildContext, scope: set[str] | None, *,
                    choices: Any = _UNRESOLVED) -> tuple[Any, FieldSpec] | None:
        """One field (or sub-table column, `scope` None: no expressions) as (type, spec).

        None when the type is unknown (the schema check has reported it). Problems with the
        field's options are reported to ctx; the spec is still returned so neighbours are checked.
        `choices` is the field's option list when the caller has resolved it already.
        """
        field_type = ctx.registry.field_types.get(raw["type"])
        if field_type is None:
            return None
        timezone = ctx.meta.timezone if ctx.meta else "UTC"
        options = {k: v for k, v in raw.items() if k not in COMMON_FIELD_SCHEMA["properties"]}
        if choices is _UNRESOLVED:
            choices = self.field_choices(field_type, doc, path, raw, ctx)
        exprs = {key: ctx.expression(doc, path + (key,), scope)
                 for key in ("required_if", "visible_if", "readonly_if", "computed", "default_expr")
                 if key in raw and scope is not None}
        own = field_type.expression_option
        if own and own in raw and scope is not None:
            if "computed" in raw:
                ctx.error(doc, path + (own,), f"write the expression once: `{own}` or `computed`",
                          code="invalid-option")
            exprs["computed"] = ctx.expression(doc, path + (own,), scope)
        spec = FieldSpec(
            name=name, type=field_type.name, label=raw.get("label", name),
            span=doc.source_map.key(path), options=MappingProxyType(options),
            required=bool(raw.get("required", False)), unique=bool(raw.get("unique", False)),
            public=bool(raw.get("public", False)), index=bool(raw.get("index", False)),
            staff_only=bool(raw.get("staff_only", False)),
            help=raw.get("help"), placeholder=raw.get("placeholder"), choices=choices,
            timezone=timezone, default=raw.get("default"),
            required_if=exprs.get("required_if"), visible_if=exprs.get("visible_if"),
            readonly_if=exprs.get("readonly_if"), computed=exprs.get("computed"),
            default_expr=exprs.get("default_expr"),
        )
        # The type's own hooks (a plugin's code): one that raises is an error at this field's
        # type, and the form's other fields are still checked.
        checked = ctx.guarded(lambda: self._check_with_type(field_type, spec, raw, choices, doc, path, ctx),
                              doc, path + ("type",), f"checking field '{name}' (type '{field_type.name}')",
                              source=ctx.registry.field_types.source(field_type.name))
        return field_type, (spec if checked is CRASHED else checked)

    def _check_with_type(self, field_type: Any, spec: FieldSpec, raw: dict[str, Any], choices: Any,
                         doc: Document, path: YamlPath, ctx: BuildContext) -> FieldSpec:
        """The field's spec with its type's compiled state, after the type's checks of its options
        and of its default."""
        before = len(ctx.diags.errors)
        compiled = field_type.prepare(spec, ctx, doc, path)
        if compiled is not None:
            spec = replace(spec, compiled=compiled)
        # Without its option list (an unknown or broken list, reported there) every default
        # would be refused: saying so again at the default is only noise.
        lost_options = raw.get("options") is not None and choices is None
        if spec.default is not None and len(ctx.diags.errors) == before and not lost_options:
            check_written_value(spec.default, field_type, spec, ctx, doc, path + ("default",))
        field_type.check(spec, ctx, doc, path)
        if field_type.stores_value and ctx.registry.field_types.source(field_type.name) != BUILT_IN:
            _check_plugin_column(field_type, spec, ctx, doc, path)
        return spec

    def build_column(self, doc: Document, path: YamlPath, name: str, raw: dict[str, Any],
                     ctx: BuildContext) -> tuple[Any, FieldSpec] | None:
        """A column of a sub-table: a stored field without expressions or record-level keys."""
        field_type = ctx.registry.field_types.get(raw.get("type", ""))
        if field_type is None:
            return None
        if not (field_type.stores_value and field_type.in_subtable):
            ctx.error(doc, path + ("type",), f"a '{field_type.name}' field cannot be a column of a sub-table",
                      code="invalid-column",
                      hint="columns hold stored values: text, number, money, date, select, id_number, ...")
            return None
        for key in COLUMN_EXCLUDED:
            if key in raw:
                ctx.error(doc, path + (key,), f"'{key}' is not available in a sub-table column",
                          code="invalid-column", at_key=True)
        built = self.build_field(doc, path, name, raw, ctx, None)
        source = ctx.registry.field_types.source(field_type.name)
        if built is None or source == BUILT_IN:
            return built
        # Its cells call the type's hooks directly: a plugin's bug refuses a cell, not the record.
        where = f"{doc.data.get('form') if isinstance(doc.data, dict) else '?'}.{path[1]}[].{name}"
        return guarded_type(built[0], where, source, column=True), built[1]

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
                color = check_color(item["color"], ctx, doc, item_path + ("color",)) if "color" in item else None
                items.append(Option(str(item["value"]), item.get("label", str(item["value"])), (),
                                    doc.source_map.value(item_path), color))
            else:
                items.append(Option(str(item), str(item), (), doc.source_map.value(item_path)))
        values = [o.value for o in items]
        for i, value in enumerate(values):
            if value in values[:i]:
                ctx.error(doc, path + ("options", i), f"duplicate option value '{value}'",
                          code="duplicate-option")
        return OptionList(path[-1], raw.get("label", path[-1]), tuple(items), doc.source_map.value(path))

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        """Checks of fields that need the whole bundle (a reference to another form)."""
        for form_name, form in bundle.all("form").items():
            doc = ctx.doc("form", form_name)
            for name, spec in form.fields.items():
                field_type = ctx.registry.field_types.get(spec.type)
                if field_type is not None:
                    ctx.guarded(lambda: field_type.check_bundle(spec, bundle, ctx, doc, ("fields", name)),
                                doc, ("fields", name, "type"), f"checking field '{name}' (type '{spec.type}')",
                                source=ctx.registry.field_types.source(spec.type))


def _check_plugin_column(field_type: Any, spec: FieldSpec, ctx: BuildContext, doc: Document,
                         path: YamlPath) -> None:
    """A plugin field type's `column_type` must give a SQLAlchemy type: a missing or wrong one
    is reported at the field's `type:` by `docket validate`, naming the plugin, instead of the
    first start failing with a traceback while it creates the record table."""
    source = ctx.registry.field_types.source(field_type.name)
    try:
        column = field_type.column_type(spec)
    except NotImplementedError:
        problem = ("has no column_type(spec): a type that stores a value must give its SQL column "
                   "(a type that stores nothing sets stores_value = False)")
    else:
        reason = None if column is None else column_type_problem(column)
        problem = None if reason is None else f"column_type(spec) is wrong: {reason}"
    if problem is not None:
        ctx.error(doc, path + ("type",), f"field type '{field_type.name}' (from {source}) {problem}",
                  code="plugin-column-type", hint=f"a bug in the plugin {source}, not in this file")
    elif (not field_type.read_only and spec.computed is None
          and all(getattr(type(field_type), hook) is getattr(FieldType, hook) for hook in ("parse", "parser"))):
        # Every value typed into the field would be refused as one that could not be checked.
        ctx.error(doc, path + ("type",), f"field type '{field_type.name}' (from {source}) has no "
                  "parse(raw, spec): a type people fill in must read what they type (a type the system "
                  "fills in sets read_only = True)",
                  code="plugin-parse", hint=f"a bug in the plugin {source}, not in this file")


def _check_public_requirements(fields: Mapping[str, FieldSpec], doc: Document, ctx: BuildContext) -> None:
    """A public form cannot require a field its anonymous submitters may not fill in: every
    submission from the public form would be refused."""
    for name, spec in fields.items():
        if (spec.staff_only and spec.required and spec.computed is None and spec.default is None
                and spec.default_expr is None):
            ctx.error(doc, ("fields", name, "required"),
                      f"'{name}' is required but staff_only on a public form: anonymous submitters "
                      "cannot fill it in, so every public submission would be refused",
                      code="public-required-staff-only",
                      hint="leave out `required` (staff fill it in later, e.g. at a flow step), give it a "
                           "`default`, or let customers fill it in (leave out `staff_only`)")


def _check_computed_order(fields: Mapping[str, FieldSpec], doc: Document, ctx: BuildContext) -> None:
    """Computed values are worked out once per save, top to bottom: a computed field reading one
    computed below it (or itself) silently gets the value from before this save."""
    computed = {name: spec.computed for name, spec in fields.items() if spec.computed is not None}
    position = {name: i for i, name in enumerate(fields)}
    reads = {name: {n for n in expr.names_used if n in computed} for name, expr in computed.items()}

    def depends(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name == goal:
                return True
            if name not in seen:
                seen.add(name)
                todo.extend(reads.get(name, ()))
        return False

    for name in computed:
        raw = doc.data["fields"][name]
        key = next((k for k in ("computed", "expression") if k in raw), None)
        path = ("fields", name) + ((key,) if key else ())
        for used in sorted(reads[name], key=position.__getitem__):
            if used == name:
                ctx.error(doc, path, f"the computed field '{name}' reads its own value",
                          code="computed-order", hint="compute it from other fields only")
            elif position[used] < position[name]:
                continue  # already worked out in this save
            elif depends(used, name):
                ctx.error(doc, path, f"the computed fields '{name}' and '{used}' are computed from each "
                          "other, so neither can be worked out", code="computed-cycle",
                          hint=f"make one of them a field people fill in, or compute '{used}' "
                               f"without '{name}'")
            else:
                ctx.error(doc, path, f"the computed field '{name}' reads '{used}', which is computed "
                          "after it: it would get the value from before the save",
                          code="computed-order", hint=f"move '{used}' above '{name}' in the form")
