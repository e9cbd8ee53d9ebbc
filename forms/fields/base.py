"""The field-type plugin contract: one class per type, describing itself completely."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, NamedTuple

from sqlalchemy.types import TypeEngine

from forms.messages import FieldInvalid
from forms.spec import FieldSpec


class FastCheck(NamedTuple):
    """A shortcut the generated validator of a form writes inline before calling the parser.

    `test` is a Python expression over the raw value, named `raw`; where it is true, the field's
    parser would return the value of the expression `value` without raising, and neither `raw`
    nor that value is empty (None, "", or empty by the type's `is_empty`). The test must never
    raise, whatever `raw` is (test its class first). `value` may use a name the test bound with `:=` (`value` itself is
    free to bind). `{key}` in either names the constant `names[key]` (a bound, an option set, a
    compiled pattern's `fullmatch`); the generator gives it a name or writes it as a literal.
    """

    test: str
    value: str = "raw"
    names: Mapping[str, Any] = {}


class FieldType:
    """Base of every field type. Subclasses set the class attributes and override hooks.

    Load time (once per bundle load, in this order):
    - `options_schema`: JSON Schema of the type's own YAML keys (merged with the common keys).
    - `load_choices`: the option list of a choice type when it does not come from `options:`
      (roles and departments come from bundle.yaml).
    - `prepare`: build the spec's compiled state (a regex, the columns of a sub-table), kept in
      `spec.compiled`, and report bad options with their position.
    - `check`: further checks of the field's own options.
    - `check_bundle`: checks that need every definition of the bundle (a referenced form).

    Run time:
    - `parse`: turn raw input (JSON value or the text of an HTML form) into the stored value,
      raising `FieldInvalid` with a message key. Empty input is handled by the caller.
    - `fast_check`: optional; a test of values the parser certainly accepts unchanged or
      trimmed, inlined by the form's generated validator (forms/codegen.py).
    - `coerce`: turn the value of an expression (a computed field) into the stored value.
    - `check_stored`: checks that need the database (the referenced record exists), run by the
      caller inside the submitting transaction.
    - `column_type`: the SQL column of the form's record table (None: not stored).
    - `to_json`, `from_db`, `display`: the value in the API, as read back, as a person reads it.
    - `examples`: YAML snippets used in the docs and loaded by the tests.

    Hints for renderers: `widget` (empty: the renderer decides by type name) and `read_only`
    (the system sets the value: never an input).
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    options_schema: ClassVar[dict[str, Any]] = {"properties": {}}
    examples: ClassVar[tuple[str, ...]] = ()
    stores_value: ClassVar[bool] = True
    widget: ClassVar[str] = ""
    read_only: ClassVar[bool] = False
    in_subtable: ClassVar[bool] = True
    """May be a column of a `subtable` (only stored types that need no expression or insert hook)."""
    expression_option: ClassVar[str | None] = None
    """An own option holding an expression compiled like the common `computed` key."""
    multiple: ClassVar[bool] = False
    """Holds a list of values (several choices), so `field == "x"` is not how it is tested."""
    value_kind: ClassVar[str | None] = None
    """The kind of value an expression reads from the field: "number" (a number, an amount, a
    rating), "text", "date" (a calendar day), "datetime" (an instant), "time" (a time of day) or
    "boolean". A literal of another kind compared with the field is a load error
    (`satisfaction == "5"` never holds; `occurred_at > "2026-01-31"` fails when it runs). None:
    not known, nothing is checked."""

    def value_kind_of(self, options: Mapping[str, Any]) -> str | None:
        """The kind of value a field of this type holds given its options as written (a
        computed field's `result`); by default the type's `value_kind`."""
        return self.value_kind

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any] | None:
        raise NotImplementedError

    def load_choices(self, raw: Mapping[str, Any], ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        """The field's OptionList when it is not written as `options:`; None to use `options:`."""
        return None

    def prepare(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        """Compiled state for `spec.compiled` (None: nothing); report bad options to ctx."""
        return None

    def check(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> None:
        """Cross-file checks of the field's options (option lists exist, ...)."""
        return None

    def check_bundle(self, spec: FieldSpec, bundle: Any, ctx: Any, doc: Any, path: tuple[Any, ...]) -> None:
        """Checks run once every definition of the bundle is built (e.g. a referenced form)."""
        return None

    def is_empty(self, value: Any) -> bool:
        return value is None or value == "" or value == [] or value == {}

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        """Convert and check one value; raise FieldInvalid. Empty input is handled by the caller."""
        raise NotImplementedError

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        """`parse` bound to one field, built once per form at load.

        Types override it to look their options up once instead of on every value (the form
        validator calls it hundreds of thousands of times a second); it must accept and refuse
        exactly what `parse` does.
        """
        parse = self.parse
        return lambda raw: parse(raw, spec)

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        """An inline test for the common values of this field, or None: always call the parser.

        It must agree exactly with `parser(spec)` and `is_empty` where its test holds. The
        generator uses it only while `parse`, `parser` and `is_empty` come from the class that
        defines `fast_check` or from its bases: a subclass overriding one of them, without a
        `fast_check` of its own, goes through its parser.
        """
        return None

    def coerce(self, value: Any, spec: FieldSpec) -> Any:
        """The value of an expression as this field stores it; never raises (None if impossible)."""
        return value

    def check_stored(self, conn: Any, value: Any, spec: FieldSpec, tables: Mapping[str, Any]) -> None:
        """Checks against the database (`tables`: record tables by form name); raise FieldInvalid."""
        return None

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

    def sample(self, spec: FieldSpec, rng: Any) -> Any:
        """A plausible raw input for this field, as a person would type it (`parse` must accept
        it), drawn with `rng` (a `random.Random`), for `docket simulate` and `docket demo`; None
        for none. The demo runner (reports/demo.py) samples most built-in types itself and asks
        the type for the others (`percent`, a plugin's types)."""
        return None

    def invalid(self, key: str, **params: Any) -> FieldInvalid:
        return FieldInvalid(key, **params)
