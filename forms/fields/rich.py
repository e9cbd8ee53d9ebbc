"""Rich text: a little formatting, sanitised with nh3 (the Rust `ammonia` cleaner) on input."""

from __future__ import annotations

import html
import re
from typing import Any

import nh3
from sqlalchemy import Text as SqlText
from sqlalchemy.types import TypeEngine

from forms.fields.base import FieldType
from forms.spec import FieldSpec

ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "u", "ul", "ol", "li", "a", "blockquote"})
LINK_SCHEMES = ("http://", "https://", "mailto:")
_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|li|blockquote)>", re.I)


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Only absolute http(s) and mailto links survive; relative and other schemes are dropped."""
    if tag == "a" and attribute == "href":
        return value if value.strip().lower().startswith(LINK_SCHEMES) else None
    return value  # the allow-list has already chosen the attributes (and rel is ours)


def sanitize(raw: str) -> str:
    """The HTML with only the allowed tags; scripts and styles are removed with their content."""
    return nh3.clean(
        raw,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes={"a": {"href"}},
        attribute_filter=_keep_attribute,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ).strip()


def plain_text(value: str) -> str:
    """The text of sanitised HTML, one line per paragraph or list item."""
    text = nh3.clean(_BLOCK_END.sub("\n", value), tags=set())
    return "\n".join(line.strip() for line in html.unescape(text).splitlines() if line.strip())


class RichText(FieldType):
    name = "rich_text"
    aliases = ("richtext", "html")
    value_kind = "text"
    description = ("Formatted text (paragraphs, bold, italic, underline, lists, quotes, http(s) and "
                   "mailto links); everything else is removed when it is saved.")
    options_schema = {"properties": {
        "max_length": {"type": "integer", "minimum": 1, "maximum": 200000,
                       "description": "longest sanitised HTML, in characters (default 20000)"}}}
    examples = ("reply_letter:\n  type: rich_text\n  label: {zh-CN: 答复函, en: Reply letter}\n  max_length: 20000\n",)
    default_max = 20000

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlText()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if not isinstance(raw, str):
            raise self.invalid("not_text")
        max_length = spec.opt("max_length", self.default_max)
        if len(raw) > 4 * max_length:  # bound the sanitiser's work before it starts
            raise self.invalid("too_long", max=max_length)
        value = sanitize(raw)
        if len(value) > max_length:
            raise self.invalid("too_long", max=max_length)
        return value if plain_text(value) else ""

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        return "" if value is None else plain_text(value)

    def html(self, value: Any) -> str:
        """The stored (already sanitised) HTML, for pages that show the formatting."""
        return "" if value is None else sanitize(value)
