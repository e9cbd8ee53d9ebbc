"""Option lists and category trees (`lists/*.yaml`): a core definition kind every engine reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from engine.kinds import BuildContext, Dispatch
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.types import Label, Span, label_text
from engine.yamlsource import Document

_OPTION: dict[str, Any] = {
    "type": "object",
    "required": ["value"],
    "additionalProperties": False,
    "properties": {
        "value": {"type": ["string", "integer"], "description": "stored value"},
        "label": LABEL_SCHEMA,
        "description": LABEL_SCHEMA,
        "color": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/option"}},
    },
}


@dataclass(frozen=True)
class Option:
    """One choice; `children` make a tree (a three-level category tree, say)."""

    value: str
    label: Label
    children: tuple["Option", ...]
    span: Span
    color: str | None = None

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.value)


@dataclass(frozen=True)
class OptionList:
    """A named list of options, possibly a tree."""

    name: str
    label: Label
    options: tuple[Option, ...]
    span: Span

    def walk(self) -> Iterator[tuple[int, Option, tuple[str, ...]]]:
        """(depth, option, ancestor values) for every option, depth first."""
        stack = [(1, o, ()) for o in reversed(self.options)]
        while stack:
            depth, option, parents = stack.pop()
            yield depth, option, parents
            stack.extend((depth + 1, c, parents + (option.value,)) for c in reversed(option.children))

    def values(self) -> set[str]:
        return {o.value for _, o, _ in self.walk()}

    def find(self, value: str) -> Option | None:
        for _, option, _ in self.walk():
            if option.value == value:
                return option
        return None

    @property
    def depth(self) -> int:
        return max((d for d, _, _ in self.walk()), default=0)


class ListKind:
    """`lists/*.yaml`: `list: name`, `items: [...]`."""

    name = "list"
    aliases: tuple[str, ...] = ()
    folder = "lists"
    key = "list"
    order = 0
    dispatch: tuple[Dispatch, ...] = ()
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["list", "items"],
        "additionalProperties": False,
        "properties": {
            "list": {"type": "string", "pattern": NAME_PATTERN},
            "label": LABEL_SCHEMA,
            "description": LABEL_SCHEMA,
            "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/option"}},
        },
        "$defs": {"option": _OPTION},
    }

    def build(self, doc: Document, ctx: BuildContext) -> OptionList:
        data = doc.data
        seen: dict[str, int] = {}

        def option(raw: dict[str, Any], path: tuple[Any, ...]) -> Option:
            value = str(raw["value"])
            span = doc.source_map.value(path + ("value",))
            if isinstance(raw["value"], float):
                # JSON Schema counts 1e3 as an integer; stored it would read "1000.0".
                ctx.error(doc, path + ("value",), f"option value {raw['value']!r} is a decimal number",
                          code="invalid-type", hint="put it in quotes to keep it exactly as written")
            if value in seen:
                ctx.error(doc, path + ("value",),
                          f"duplicate option value '{value}' (first at line {seen[value]})",
                          code="duplicate-option")
            else:
                seen[value] = span.line
            children = tuple(option(c, path + ("children", i))
                             for i, c in enumerate(raw.get("children", [])))
            return Option(value, raw.get("label", value), children, span, raw.get("color"))

        options = tuple(option(o, ("items", i)) for i, o in enumerate(data["items"]))
        return OptionList(data["list"], data.get("label", data["list"]), options, doc.span(()))

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        return None


def register(registry: Any) -> None:
    """Register the core definition kinds that live in engine/."""
    registry.definition_kinds.add(ListKind())
