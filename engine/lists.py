"""Option lists and category trees (`lists/*.yaml`): a core definition kind every engine reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from engine.kinds import BuildContext, Dispatch
from engine.schema import LABEL_SCHEMA, NAME_PATTERN, WORD_MEANS
from engine.types import Label, Span, label_text
from engine.yamlsource import Document

_OPTION: dict[str, Any] = {
    "type": "object",
    WORD_MEANS: "value",  # `- gold`, the short form of inline options: say how an item is written here
    "required": ["value"],
    "additionalProperties": False,
    "properties": {
        "value": {"type": ["string", "integer"], "description": "stored value"},
        "label": LABEL_SCHEMA,
        "customer_label": LABEL_SCHEMA,  # what customers read where it differs (Option.customer_label)
        "description": LABEL_SCHEMA,
        "color": {"type": ["string", "null"], "description": 'a colour for the option: "#rrggbb" (in quotes)'},
        "children": {"type": "array", "items": {"$ref": "#/$defs/option"}},
    },
}


COLOR_PATTERN = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
"""An option's colour: CSS hex, `#rgb` or `#rrggbb`, the one form every page and chart can use as
it is (and nothing a style attribute could be made to do more with)."""

_NAMED_COLORS = {"red": "#d1242f", "green": "#1a7f37", "amber": "#bf8700", "yellow": "#bf8700",
                 "orange": "#bc4c00", "blue": "#0969da", "purple": "#8250df", "grey": "#57606a",
                 "gray": "#57606a", "black": "#1b1f24"}
"""Colour words analysts write, and the hex of the same colour in Docket's own palette."""


def check_color(raw: Any, ctx: BuildContext, doc: Document, path: tuple[Any, ...]) -> str | None:
    """The colour written at `path` (the item's `color:`), or None with an error there when it is
    not `#rgb` or `#rrggbb`."""
    if raw is None:
        ctx.error(doc, path, "the colour is empty", code="invalid-color",
                  hint='put it in quotes, color: "#d1242f": unquoted, # starts a YAML comment')
        return None
    text = str(raw).strip()
    if COLOR_PATTERN.fullmatch(text):
        return text
    if text.lower() in _NAMED_COLORS:
        hint = f"write it as \"{_NAMED_COLORS[text.lower()]}\" ({text.lower()})"
    elif re.fullmatch(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}", text):
        hint = f"did you mean \"#{text}\"?"
    else:
        hint = 'write it as "#rrggbb", e.g. "#d1242f" (red), "#bf8700" (amber), "#1a7f37" (green)'
    ctx.error(doc, path, f"'{text}' is not a colour: write it as \"#rrggbb\"", code="invalid-color", hint=hint)
    return None


@dataclass(frozen=True)
class Option:
    """One choice; `children` make a tree (a three-level category tree, say)."""

    value: str
    label: Label
    children: tuple["Option", ...]
    span: Span
    color: str | None = None
    customer_label: Label | None = None
    """What customers read instead of `label` (a status in their words), when it differs."""

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.value)

    def customer_text(self, locale: str = "en") -> str:
        """The option as a customer reads it: `customer_label`, else `label`."""
        return label_text(self.customer_label or self.label, locale, self.value)


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

    def labels(self) -> dict[str, tuple[str, ...]]:
        """Each label text, in any language -> the values of the options it labels (a tree
        may label several alike: 时效延误 / Delay at each business step)."""
        found: dict[str, list[str]] = {}
        for _, option, _ in self.walk():
            texts = option.label.values() if isinstance(option.label, Mapping) else [option.label]
            for text in texts:
                if isinstance(text, str) and text != option.value and option.value not in found.setdefault(text, []):
                    found[text].append(option.value)
        return {text: tuple(values) for text, values in found.items()}

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Each option with children -> the last-level values under it."""
        found: dict[str, list[str]] = {}
        for _, option, parents in self.walk():
            if option.children:
                found.setdefault(option.value, [])
            else:
                for parent in parents:
                    found.setdefault(parent, []).append(option.value)
        return {group: tuple(leaves) for group, leaves in found.items()}

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
            color = check_color(raw["color"], ctx, doc, path + ("color",)) if "color" in raw else None
            return Option(value, raw.get("label", value), children, span, color, raw.get("customer_label"))

        options = tuple(option(o, ("items", i)) for i, o in enumerate(data["items"]))
        return OptionList(data["list"], data.get("label", data["list"]), options, doc.span(()))

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        return None


def register(registry: Any) -> None:
    """Register the core definition kinds that live in engine/."""
    registry.definition_kinds.add(ListKind())
