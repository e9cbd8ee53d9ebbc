"""The form engine: field types, validation, records, numbering."""

from __future__ import annotations

from engine.registry import Registry
from forms.fields.choice import Boolean, Cascade, MultiSelect, Radio, Select
from forms.fields.number import Integer, Money, Number
from forms.fields.temporal import Date, DateTime, Section
from forms.fields.text import Email, Phone, Text, Textarea
from forms.kind import FormKind

BUILT_IN_FIELD_TYPES = (Text, Textarea, Phone, Email, Number, Integer, Money, Select, Radio,
                        Cascade, MultiSelect, Boolean, Date, DateTime, Section)


def register(registry: Registry) -> None:
    """Register the form engine's definition kind and built-in field types."""
    registry.definition_kinds.add(FormKind())
    for field_type in BUILT_IN_FIELD_TYPES:
        registry.field_types.add(field_type())
