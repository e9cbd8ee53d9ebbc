"""The small value types of the expression language: what an expression may name and call.

They live apart from the compiler so that functions, safe operators and the checker can share
them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple

if TYPE_CHECKING:  # pragma: no cover - typing only
    from engine.calendar import BusinessCalendar

__all__ = ["Scope", "Names", "Options", "Members", "Function", "EvalContext", "EvalFailure", "VALUE_KINDS"]


class Members(NamedTuple):
    """The only attributes a name has, and what each is called in an error: `flow` has one per
    node of its flow (`flow.assess`), so `flow.asess` is a load error, not an empty value that
    silently sends the record down the other branch."""

    noun: str
    names: frozenset[str]


_NO_CHOICES: Mapping[str, frozenset[str]] = MappingProxyType({})
_NO_KINDS: Mapping[str, str] = MappingProxyType({})
_NO_MEMBERS: Mapping[str, Members] = MappingProxyType({})

VALUE_KINDS = ("number", "text", "date", "datetime", "time", "boolean")
"""The kinds of value the load check compares literals with (`Scope.kinds`): a field type's
`value_kind`. A date is a calendar day, a datetime an instant with its time zone, a time a
time of day."""


class Options(frozenset):  # type: ignore[type-arg]
    """The option values of a choice field, carrying their labels (text in any language -> the
    values so labelled), so `urgency == "紧急"` is told the value meant: analysts read labels."""

    labels: Mapping[str, tuple[str, ...]]
    groups: Mapping[str, tuple[str, ...]]
    """Values of a tree no record holds (a category tree's upper levels, where only the last level
    may be chosen) -> the values under them that records do hold."""

    def __new__(cls, values: Iterable[str], labels: Mapping[str, tuple[str, ...]] | None = None,
                groups: Mapping[str, tuple[str, ...]] | None = None) -> "Options":
        self = super().__new__(cls, values)
        self.labels = MappingProxyType(dict(labels or {}))
        self.groups = MappingProxyType(dict(groups or {}))
        return self


def group_hint(name: str, leaves: tuple[str, ...]) -> str:
    """What to write for a group of a tree: the values under it that records hold."""
    shown = ", ".join(f'"{leaf}"' for leaf in leaves[:8]) + (", ..." if len(leaves) > 8 else "")
    return f"write {name} in ({shown}{',' if len(leaves) == 1 else ''})"


def label_hint(text: str, choices: Mapping[str, frozenset[str]], field: str | None = None) -> str | None:
    """'write "urgent"' when `text` is the label of an option (of `field`, or of any choice field)."""
    fields = [field] if field is not None else sorted(choices)
    for name in fields:
        values = getattr(choices.get(name), "labels", {}).get(text)
        if values:
            meant = " or ".join(f'"{value}"' for value in values[:4])
            return f"'{text}' is the label of an option of '{name}': write its value, {meant}"
    return None


def option_hint(name: str, choices: Mapping[str, frozenset[str]]) -> str | None:
    """'put it in quotes' when `name`, read as a name, is the value of an option of a choice field."""
    fields = [field for field in sorted(choices) if name in choices[field]]
    if not fields:
        return None
    return f"'{name}' is an option of '{fields[0]}': text goes in quotes, \"{name}\""


@dataclass(frozen=True)
class Scope:
    """The top-level names an expression may use (field names, `record`, `user`, ...), and what
    is known of the fields among them, for the load checks of literals compared with them.

    - `choices`: single-choice fields -> the values they can hold. A literal compared with one
      of them (`urgency == "urgnt"`) must be one of those values, or the condition could never
      hold.
    - `multi_choices`: multi-choice fields (a list of values) -> the values the list can hold,
      for `"x" in tags`.
    - `kinds`: fields -> the kind of value they hold, `"number"` or `"text"` (others are not
      checked): `satisfaction == "5"` compares a number with text and could never hold.
    - `members`: names whose attributes are a known set (see `Members`). `choices` may then
      also name a dotted path under them: `flow.assess.outcome` -> the outcomes node `assess`
      records.
    - `optional`: fields a record may leave empty, where an expression that fails stops the
      record (flows, rules, SLA policies): `compensation > 5000` on an empty compensation is an
      incident, so ordering or arithmetic on one without a fallback is a load warning.

    `record.NAME` (and `record["NAME"]`) stands for the field NAME when `record` is in `names`.
    """

    names: frozenset[str]
    choices: Mapping[str, frozenset[str]] = field(default_factory=lambda: _NO_CHOICES, compare=False)
    multi_choices: Mapping[str, frozenset[str]] = field(default_factory=lambda: _NO_CHOICES, compare=False)
    kinds: Mapping[str, str] = field(default_factory=lambda: _NO_KINDS, compare=False)
    members: Mapping[str, Members] = field(default_factory=lambda: _NO_MEMBERS, compare=False)
    optional: frozenset[str] = field(default_factory=frozenset, compare=False)

    @classmethod
    def of(cls, names: Iterable[str]) -> "Scope":
        """The scope of a set of names, with whatever a `Names` carries about its fields."""
        return cls(frozenset(names), getattr(names, "choices", None) or _NO_CHOICES,
                   getattr(names, "multi_choices", None) or _NO_CHOICES,
                   getattr(names, "kinds", None) or _NO_KINDS, getattr(names, "members", None) or _NO_MEMBERS,
                   getattr(names, "optional", None) or frozenset())


class Names(frozenset):  # type: ignore[type-arg]
    """A set of names that also carries what is known of its fields (see `Scope`): the option
    values of choice fields and the kind of value each field holds.

    It is a frozenset, so it goes wherever a set of names is expected; combining it with other
    names gives a plain frozenset again, which simply checks no literals.
    """

    choices: Mapping[str, frozenset[str]]
    multi_choices: Mapping[str, frozenset[str]]
    kinds: Mapping[str, str]
    members: Mapping[str, Members]
    optional: frozenset[str]

    def __new__(cls, names: Iterable[str], choices: Mapping[str, frozenset[str]] | None = None, *,
                multi_choices: Mapping[str, frozenset[str]] | None = None,
                kinds: Mapping[str, str] | None = None, members: Mapping[str, Members] | None = None,
                optional: Iterable[str] = ()) -> "Names":
        self = super().__new__(cls, names)
        self.optional = frozenset(optional)
        self.choices = MappingProxyType(dict(choices or {}))
        self.multi_choices = MappingProxyType(dict(multi_choices or {}))
        self.kinds = MappingProxyType(dict(kinds or {}))
        self.members = MappingProxyType(dict(members or {}))
        return self

    def with_members(self, name: str, members: Members,
                     choices: Mapping[str, frozenset[str]] | None = None) -> "Names":
        """These names, with `name`'s attributes limited to `members` and the option values of
        dotted paths under it (`choices`, e.g. `flow.assess.outcome`)."""
        return Names(self | {name}, {**self.choices, **(choices or {})}, multi_choices=self.multi_choices,
                     kinds=self.kinds, members={**self.members, name: members}, optional=self.optional)


@dataclass(frozen=True)
class Function:
    """A registered pure function an expression may call.

    `max_args=None` means variadic. With `needs_context=True` the function is called as
    `fn(ctx, *args)`, where `ctx` is the `EvalContext` (or None when the caller gave none).
    """

    name: str
    fn: Callable[..., Any]
    min_args: int
    max_args: int | None
    description: str = ""
    aliases: tuple[str, ...] = ()
    options_schema: dict[str, Any] = field(default_factory=dict)
    needs_context: bool = False
    examples: tuple[str, ...] = ()

    def arity_text(self) -> str:
        """`takes 1 to 2 arguments` style wording of the accepted argument count."""
        return arity_text(self.min_args, self.max_args)


def arity_text(low: int, high: int | None) -> str:
    """How many arguments something takes, in words."""
    def plural(n: int) -> str:
        return f"{n} argument" if n == 1 else f"{n} arguments"

    if high is None:
        return f"at least {plural(low)}"
    if low == high:
        return "no arguments" if low == 0 else plural(low)
    return f"{low} to {high} arguments"


@dataclass(frozen=True)
class EvalContext:
    """What an evaluation may know beyond its names: the instant, the calendar, services."""

    now: datetime
    calendar: "BusinessCalendar | None" = None
    services: Mapping[str, Any] | None = None
    locale: str = "en"


class EvalFailure(Exception):
    """Raised inside evaluation with a plain-English reason; `Expression.evaluate` turns it
    into an `ExpressionError` carrying the expression's position."""
