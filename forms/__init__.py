"""The form engine: field types, validation, records, numbering."""

from __future__ import annotations

from engine.registry import Registry
from forms.fields.choice import Boolean, Cascade, Checkboxes, MultiSelect, Radio, Region, Select
from forms.fields.display import Divider, HelpText
from forms.fields.files import Attachment, Image
from forms.fields.identifiers import IdNumber
from forms.fields.location import Location
from forms.fields.number import Integer, Money, Number, Percent, Rating
from forms.fields.people import Department, Role, User
from forms.fields.reference import Reference
from forms.fields.rich import RichText
from forms.fields.signature import Signature
from forms.fields.subtable import Subtable
from forms.fields.system import AutoNumber, Computed
from forms.fields.temporal import Date, DateTime, Duration, Section, Time
from forms.fields.text import Email, Hidden, Phone, Text, Textarea, Url
from forms.inbound import WebhookKind
from forms.kind import FormKind

BUILT_IN_FIELD_TYPES = (
    # text
    Text, Textarea, RichText, Hidden, Phone, Email, Url, IdNumber,
    # numbers
    Number, Integer, Money, Percent, Rating,
    # choices
    Select, Radio, MultiSelect, Checkboxes, Cascade, Region, Boolean,
    # time
    Date, DateTime, Time, Duration,
    # people and records
    User, Role, Department, Reference,
    # composite values
    Location, Signature, Subtable,
    # files, stored outside the database
    Attachment, Image,
    # set by the system
    AutoNumber, Computed,
    # layout, storing nothing
    Section, HelpText, Divider,
)


def register(registry: Registry) -> None:
    """Register the form engine's definition kind and built-in field types."""
    registry.definition_kinds.add(FormKind())
    registry.definition_kinds.add(WebhookKind())
    for field_type in BUILT_IN_FIELD_TYPES:
        registry.field_types.add(field_type())
