"""Frozen specs of forms and fields, each holding where it was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from engine.expr import Names
from engine.types import Label, Span, label_text


@dataclass(frozen=True)
class FieldSpec:
    """One field of a form as the analyst wrote it (options are the type's own keys)."""

    name: str
    type: str
    label: Label
    span: Span
    options: Mapping[str, Any]
    required: bool = False
    required_if: Any = None  # compiled Expression
    visible_if: Any = None
    readonly_if: Any = None
    computed: Any = None
    default: Any = None
    default_expr: Any = None
    unique: bool = False
    public: bool = False
    index: bool = False
    staff_only: bool = False
    help: Label | None = None
    placeholder: Label | None = None
    choices: Any = None  # engine.lists.OptionList for choice types, resolved at load
    timezone: str = "UTC"  # the bundle's zone: naive dates and times are read in it
    compiled: Any = None  # the type's state built once at load (FieldType.prepare): a regex, columns

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.name)

    def opt(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class FormSpec:
    """A form: its fields in order, its numbering, and how it appears."""

    name: str
    label: Label
    fields: Mapping[str, FieldSpec]
    span: Span
    numbering: str | None = None
    public: bool = False
    title_field: str | None = None
    list_fields: tuple[str, ...] = ()
    description: Label | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    lookup: Mapping[str, Any] | None = None
    """Progress lookup: `verify` field, `digits` the customer types, `statuses` list name."""
    wizard: bool = False
    """Pages show one section at a time, with Back and Next (all sections without script)."""
    editors: tuple[str, ...] = ()
    """Roles whose holders may change any field of a record they can see."""
    choice_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Single-choice field -> the option values it can hold, at any level of a tree: what a
    literal compared with the field in an expression must be (checked at load)."""
    multi_choice_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Multi-choice field -> the option values its list can hold: what `"x" in field` may test."""
    value_kinds: Mapping[str, str] = field(default_factory=dict)
    """Field -> the kind of value it holds ("number" or "text", from its type's `value_kind`):
    a literal of the other kind compared with it is a load error."""

    def expression_names(self, extra: Iterable[str] = ()) -> Names:
        """The names an expression over this form's records sees (its fields and `extra`),
        carrying what the load check needs to know of each field."""
        return Names(frozenset(self.fields) | frozenset(extra), self.choice_values,
                     multi_choices=self.multi_choice_values, kinds=self.value_kinds,
                     optional=self.optional_fields())

    def optional_fields(self) -> frozenset[str]:
        """Fields a record may leave empty: neither always required, given a default, nor
        computed (a computed value is worked out on every save; its own fallbacks decide)."""
        return frozenset(name for name, spec in self.fields.items()
                         if not (spec.required and spec.visible_if is None) and spec.default is None
                         and spec.default_expr is None and spec.computed is None and spec.type != "computed")

    def always_required(self) -> tuple[str, ...]:
        """Fields every record must be given: required, always shown, with no default. A record
        made by a rule or a subflow without one of them is refused when it runs."""
        return tuple(name for name, spec in self.fields.items()
                     if spec.required and spec.visible_if is None and spec.default is None
                     and spec.default_expr is None and spec.computed is None)

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.name)
