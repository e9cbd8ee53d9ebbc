"""The field-type plugin contract: one class per type, describing itself completely."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.types import TypeEngine

from forms.messages import FieldInvalid
from forms.spec import FieldSpec


class FieldType:
    """Base of every field type. Subclasses set the class attributes and override hooks.

    - `options_schema`: JSON Schema of the type's own YAML keys (merged with the common keys).
    - `parse`: turn raw input (JSON value or the text of an HTML form) into the stored value,
      raising `FieldInvalid` with a message key.
    - `column_type`: the SQL column of the form's record table (None: not stored).
    - `examples`: YAML snippets used in the docs and tested by the docs test.
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    options_schema: ClassVar[dict[str, Any]] = {"properties": {}}
    examples: ClassVar[tuple[str, ...]] = ()
    stores_value: ClassVar[bool] = True

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any] | None:
        raise NotImplementedError

    def check(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> None:
        """Cross-file checks of the field's options (option lists exist, ...)."""
        return None

    def is_empty(self, value: Any) -> bool:
        return value is None or value == "" or value == [] or value == {}

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        """Convert and check one value; raise FieldInvalid. Empty input is handled by the caller."""
        raise NotImplementedError

    def to_json(self, value: Any, spec: FieldSpec) -> Any:
        """The value as JSON (API answers, history diffs)."""
        return value

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        """The value as read back from the record table."""
        return value

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        """The value as an end user reads it."""
        if value is None:
            return ""
        return str(value)

    def invalid(self, key: str, **params: Any) -> FieldInvalid:
        return FieldInvalid(key, **params)
