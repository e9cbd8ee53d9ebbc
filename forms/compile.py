"""A form compiled once at load: its field types resolved, its record table, its validator."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field as dataclass_field
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping

from engine.clock import checking_at
from engine.errors import ExpressionError, ValidationFailed
from engine.expr import EvalContext
from engine.expr.safe_ops import foreign_value, kind
from engine.registry import Registry
from engine.storage.records import ColumnSpec, RecordTableSpec
from forms.codegen import EMPTY_DICT as _EMPTY_DICT, EMPTY_LIST as _EMPTY_LIST, SCALARS as _SCALARS
from forms.codegen import FirstPass, Recheck, generate_validator
from forms.fields.base import FieldType
from forms.plugin_guard import guarded_type
from forms.messages import FieldInvalid, message
from forms.spec import FieldSpec, FormSpec

log = logging.getLogger(__name__)
_MISSING = object()
_CONTAINERS = (list, dict)


@dataclass(frozen=True)
class FieldPlan:
    """One stored field as the validator walks it: everything looked up once, at load."""

    name: str
    spec: FieldSpec
    ftype: FieldType
    parse: Callable[[Any], Any]
    is_empty: Callable[[Any], bool]
    conditional: bool
    """Has a computed value, a condition or a default: handled in the second pass."""
    custom_empty: bool = True
    """False for types using the base `is_empty`: a non-empty string then needs no call."""
    required: bool = False
    """A plain required field (no condition): checked in the first pass."""


@dataclass(frozen=True)
class CompiledForm:
    """Everything the runtime needs about one form, built once per bundle load."""

    spec: FormSpec
    types: Mapping[str, FieldType]
    stored: tuple[str, ...]
    table_spec: RecordTableSpec
    plans: tuple[FieldPlan, ...] = ()
    accepted: frozenset[str] = frozenset()
    """Field names a submission may carry (stored fields)."""
    validator: FirstPass | None = dataclass_field(default=None, repr=False, compare=False)
    """The first pass generated for this form (forms/codegen.py), used for a plain new record."""
    validator_source: str = dataclass_field(default="", repr=False, compare=False)
    """Its Python source, to read."""

    @property
    def name(self) -> str:
        return self.spec.name

    def field(self, name: str) -> FieldSpec:
        return self.spec.fields[name]

    def edited(self, clean: Mapping[str, Any], editable: Iterable[str]) -> dict[str, Any]:
        """What an edit of `editable` writes from `validate`'s result: those fields, and the
        computed values that read them (else a decision after a step, or a report, would read
        the value from before the edit)."""
        allowed = set(editable)
        return {k: v for k, v in clean.items() if k in allowed or self.field(k).computed is not None}

    def validate(
        self,
        data: Mapping[str, Any],
        *,
        locale: str = "en",
        existing: Mapping[str, Any] | None = None,
        editable: set[str] | None = None,
        extra_names: Mapping[str, Any] | None = None,
        ctx: EvalContext | None = None,
    ) -> dict[str, Any]:
        """Check and convert submitted data; returns clean values or raises ValidationFailed.

        `existing` is the stored record when updating (fields not sent keep their value);
        `editable` limits which fields this caller may set (a flow node's permissions).
        All problems are reported at once, per field, in `locale`.
        """
        if ctx is not None and self.refuses_future:
            with checking_at(ctx.now):  # "now" is the runtime's instant, not the machine's
                return self._validate(data, locale, existing, editable, extra_names, ctx)
        return self._validate(data, locale, existing, editable, extra_names, ctx)

    def _validate(self, data: Mapping[str, Any], locale: str, existing: Mapping[str, Any] | None,
                  editable: set[str] | None, extra_names: Mapping[str, Any] | None,
                  ctx: EvalContext | None) -> dict[str, Any]:
        generated = self.validator
        if generated is not None and existing is None and editable is None and self.accepted.issuperset(data):
            values, errors, recheck = generated(data, locale)  # the common call: a new record
        else:
            values, errors, recheck = self._first_pass(data, locale, existing, editable)
        return self._finish(values, errors, recheck, locale, existing, extra_names, ctx)

    def _validate_interpreted(self, data: Mapping[str, Any], *, locale: str = "en",
                              existing: Mapping[str, Any] | None = None, editable: set[str] | None = None,
                              extra_names: Mapping[str, Any] | None = None,
                              ctx: EvalContext | None = None) -> dict[str, Any]:
        """`validate` through the interpreter alone: the reference the generated validator is tested against."""
        values, errors, recheck = self._first_pass(data, locale, existing, editable)
        return self._finish(values, errors, recheck, locale, existing, extra_names, ctx)

    def _first_pass(self, data: Mapping[str, Any], locale: str, existing: Mapping[str, Any] | None,
                    editable: set[str] | None) -> tuple[dict[str, Any], dict[str, list[str]], list[Recheck]]:
        """Parse what was sent, field by field: the values, the errors so far, and the required
        fields to look at again once every field is parsed."""
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = dict(existing) if existing else {}
        accepted = self.accepted
        for key in (() if editable is None and accepted.issuperset(data) else data):
            if key not in accepted:
                errors.setdefault(key, []).append(message("unknown_field", locale))
            elif editable is not None and key not in editable:
                if data[key] != values.get(key) and not self.types[key].is_empty(data[key]):
                    errors.setdefault(key, []).append(message("readonly", locale))
        # One pass parses what was sent. A plain required field whose value is plainly there
        # (not None, not "", not a list or dict, a type with the base emptiness test) needs no
        # further look; any other goes on `recheck`, tested in `_finish` exactly as the rule reads.
        get = data.get
        recheck: list[Recheck] = []
        for name, parse, is_empty, custom_empty, required in self._validation_steps:
            raw = get(name, _MISSING)
            if raw is _MISSING or (editable is not None and name not in editable):
                if existing is None:
                    values[name] = None
                if required:
                    recheck.append((name, is_empty, custom_empty))
                continue
            cls = raw.__class__
            if cls is str:
                empty = not raw or (custom_empty and is_empty(raw))
            elif cls in _SCALARS and not custom_empty:
                empty = False  # a number, a boolean or a date is never empty by the base test
            else:  # the base test inlined (most types), else the type's own
                empty = raw is None or raw == "" or (
                    is_empty(raw) if custom_empty else (raw == _EMPTY_LIST or raw == _EMPTY_DICT))
            if empty:
                values[name] = None
                if required:
                    recheck.append((name, is_empty, custom_empty))
                continue
            try:
                values[name] = value = parse(raw)
            except FieldInvalid as exc:
                for key, text in exc.messages(name, locale).items():  # sub-table cells too
                    errors.setdefault(key, []).append(text)
                values[name] = None
                if required:
                    recheck.append((name, is_empty, custom_empty))
                continue
            if required and (custom_empty or not (value.__class__ in _SCALARS
                                                  or (value.__class__ is str and value))):
                recheck.append((name, is_empty, custom_empty))
        return values, errors, recheck

    def _finish(self, values: dict[str, Any], errors: dict[str, list[str]], recheck: list[Recheck],
                locale: str, existing: Mapping[str, Any] | None, extra_names: Mapping[str, Any] | None,
                ctx: EvalContext | None) -> dict[str, Any]:
        """The required checks, the second pass, then the clean values or ValidationFailed."""
        for name, is_empty, custom_empty in recheck:
            value = values.get(name)
            if (value is None or value == "" or ((custom_empty or value.__class__ in _CONTAINERS)
                                                 and is_empty(value))) and name not in errors:
                errors.setdefault(name, []).append(message("required", locale))
        if self.conditional:
            self._conditions(values, errors, existing, extra_names, ctx, locale)
        if errors:
            raise ValidationFailed(errors)
        if existing is None:
            return values  # exactly the stored fields, each set by the first pass
        return {name: values.get(name) for name in self.stored}

    @cached_property
    def steps(self) -> tuple[tuple[str, Callable[[Any], Any], Callable[[Any], bool], bool], ...]:
        """The plans as plain tuples: the parsing loop unpacks them instead of reading attributes."""
        return tuple((p.name, p.parse, p.is_empty, p.custom_empty) for p in self.plans)

    @cached_property
    def _validation_steps(self) -> tuple[tuple[str, Callable[[Any], Any], Callable[[Any], bool], bool, bool], ...]:
        """`steps` with a last flag: a plain required field (no condition), checked in the pass."""
        return tuple((*step, p.required) for step, p in zip(self.steps, self.plans))

    @cached_property
    def public_fields(self) -> set[str]:
        """Stored fields anyone may fill in (all but `staff_only` ones)."""
        return {name for name in self.stored if not self.spec.fields[name].staff_only}

    @cached_property
    def conditional(self) -> bool:
        return any(plan.conditional for plan in self.plans)

    @cached_property
    def refuses_future(self) -> bool:
        """A field (or a sub-table column) is `not_future`: checking it needs the instant."""
        return any(_refuses_future(plan.spec.options) or any(
            _refuses_future(column) for column in (plan.spec.opt("columns") or {}).values())
            for plan in self.plans)

    @cached_property
    def needs_context(self) -> bool:
        """Validation reads the `EvalContext` (conditions, defaults, computed values, "now")."""
        return self.conditional or self.refuses_future

    def _conditions(self, values: dict[str, Any], errors: dict[str, list[str]],
                    existing: Mapping[str, Any] | None, extra_names: Mapping[str, Any] | None,
                    ctx: EvalContext | None, locale: str) -> None:
        """Second pass, in field order: computed values, visibility, defaults, required_if."""
        names = {**(extra_names or {}), **values}
        if existing is None and ctx is not None:
            # A new record is created now: its expressions may read when (a computed field on
            # created_at passed validation, then stored nothing).
            names.setdefault("created_at", ctx.now)
            names.setdefault("updated_at", ctx.now)
        for plan in self.plans:
            if not plan.conditional:
                continue
            name, spec, ftype = plan.name, plan.spec, plan.ftype
            if spec.computed is not None:
                given = self._evaluate(spec.computed, names, ctx, None)
                value = ftype.coerce(given, spec)
                if value is None and given is not None:
                    # A value of another kind (text from a function where a number is meant) is
                    # left out rather than stored wrong; the analyst must learn why it is empty.
                    where = spec.computed.span
                    log.warning("computed field '%s' of form '%s' left empty: its expression gave %s, which "
                                "cannot be stored as its result, %s%s", name, self.name, _shown(given),
                                spec.opt("result", "number"),
                                f" ({where.file}:{where.line}:{where.col})" if where is not None else "")
                values[name] = names[name] = value
                continue
            if not self._evaluate(spec.visible_if, names, ctx, True):
                values[name] = names[name] = None
                for key in [k for k in errors if k == name or k.startswith(name + "[")]:
                    del errors[key]
                continue
            if ftype.is_empty(values.get(name)) and existing is None:
                default = self._default(spec, ftype, names, ctx)
                if default is not None:
                    values[name] = names[name] = default
            required = spec.required or bool(self._evaluate(spec.required_if, names, ctx, False))
            if required and ftype.is_empty(values.get(name)) and name not in errors:
                errors.setdefault(name, []).append(message("required", locale))

    def _default(self, spec: FieldSpec, ftype: FieldType, names: Mapping[str, Any],
                 ctx: EvalContext | None) -> Any:
        if spec.default_expr is not None:
            return self._evaluate(spec.default_expr, names, ctx, None)
        if spec.default is not None:
            return ftype.parse(spec.default, spec)
        return None

    @staticmethod
    def _evaluate(expr: Any, names: Mapping[str, Any], ctx: EvalContext | None, fallback: Any) -> Any:
        if expr is None:
            return fallback
        try:
            return expr.evaluate(names, ctx)
        except ExpressionError as exc:
            # A broken condition must not block intake; the analyst sees it in the log with its position.
            log.warning("expression failed, using %r: %s", fallback, exc)
            return fallback

    def to_json(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Field values as JSON."""
        out = {}
        for name, convert, spec in self._json_plan:
            if name in values:
                out[name] = values[name] if convert is None else convert(values[name], spec)
        return out

    @cached_property
    def _json_plan(self) -> tuple[tuple[str, Callable[[Any, FieldSpec], Any] | None, FieldSpec], ...]:
        """Per stored field: its type's `to_json`, or None where that is the base identity
        (most fields), so every submission's history entry skips one call per field."""
        return tuple((n, None if type(self.types[n]).to_json is FieldType.to_json else self.types[n].to_json,
                      self.spec.fields[n]) for n in self.stored)

    def display(self, name: str, value: Any, locale: str) -> str:
        return self.types[name].display(value, self.spec.fields[name], locale)


def compile_form(spec: FormSpec, registry: Registry) -> CompiledForm:
    """Resolve field types and derive the record table's columns."""
    types: dict[str, FieldType] = {}
    columns = []
    stored = []
    for name, field in spec.fields.items():
        ftype = registry.field_types.get(field.type)
        if not type(ftype).__module__.startswith("forms.fields."):
            ftype = guarded_type(ftype, f"{spec.name}.{name}", registry.field_types.source(field.type))
        types[name] = ftype
        if not ftype.stores_value:
            continue
        column = ftype.column_type(field)
        if column is None:
            continue
        stored.append(name)
        columns.append(ColumnSpec(name, column, nullable=True, index=field.index, unique=field.unique))
    plans = tuple(_plan(name, spec.fields[name], types[name]) for name in stored)
    validator, source = generate_validator(plans, spec.name)
    return CompiledForm(spec, types, tuple(stored), RecordTableSpec(spec.name, tuple(columns)),
                        plans, frozenset(stored), validator, source)


def _plan(name: str, spec: FieldSpec, ftype: FieldType) -> FieldPlan:
    conditional = _is_conditional(spec)
    parse = ftype.parser(spec)
    if not type(ftype).__module__.startswith("forms.fields."):
        parse = _guarded_parser(parse, ftype, name)
    return FieldPlan(name, spec, ftype, parse, ftype.is_empty, conditional,
                     type(ftype).is_empty is not FieldType.is_empty, spec.required and not conditional)


def _guarded_parser(parse: Callable[[Any], Any], ftype: FieldType, name: str) -> Callable[[Any], Any]:
    """A plugin field type's parser whose unexpected exception (a bug in the plugin) refuses
    the value with a plain message and logs the traceback, instead of failing the whole
    submission with a server error. Built-in parsers are not wrapped: they are on the hot path
    and raise only FieldInvalid."""
    def guarded(raw: Any) -> Any:
        try:
            value = parse(raw)
        except FieldInvalid:
            raise
        except Exception:
            log.exception("field type '%s' failed to read field '%s'", ftype.name, name)
            raise FieldInvalid("unreadable") from None
        foreign = foreign_value(value)
        if foreign is not None:  # it would fail the insert, or be stored as its repr
            log.error("field type '%s' read field '%s' as %s, not a value a record can hold "
                      "(text, a number, a date, ...): a bug in that plugin", ftype.name, name,
                      kind(foreign))
            raise FieldInvalid("unreadable")
        return value
    return guarded


def _shown(value: Any) -> str:
    """A value and its kind for a log line, cut short: 'five' (text)."""
    text = repr(value)
    return f"{text[:60] + '...' if len(text) > 60 else text} ({kind(value)})"


def _refuses_future(options: Any) -> bool:
    return isinstance(options, Mapping) and bool(options.get("not_future"))


def _is_conditional(spec: FieldSpec) -> bool:
    return (spec.computed is not None or spec.visible_if is not None or spec.required_if is not None
            or spec.default is not None or spec.default_expr is not None)
