"""Text-like field types: text, textarea, hidden, phone, email, url."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Any, Callable
from urllib.parse import urlsplit

from sqlalchemy import String
from sqlalchemy import Text as SqlText
from sqlalchemy.types import TypeEngine

from forms.fields.base import FastCheck, FieldType
from forms.fields.patterns import PATTERN_INPUT_CAP, compile_pattern, full_match, pattern_problem
from forms.spec import FieldSpec

_LENGTH_OPTIONS = {
    "min_length": {"type": "integer", "minimum": 0},
    "max_length": {"type": "integer", "minimum": 1, "maximum": 100000},
    "pattern": {"type": "string", "description": "a regular expression the whole value must match"},
    "pattern_message": {"description": "message shown when the pattern does not match (a label)",
                        "anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}]},
}


INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
"""Characters a text field refuses: control characters other than tab and line breaks (NUL is
refused by PostgreSQL, and stored by SQLite), and the Unicode direction overrides, embeddings
and isolates, which make a text display in another order than it is stored ("Trojan Source")."""


def check_visible(field: FieldType, value: str) -> None:
    """Raise FieldInvalid when `value` holds a character of `INVISIBLE`, naming it (U+202E)."""
    found = INVISIBLE.search(value)
    if found is not None:
        raise field.invalid("invisible_char", char=f"U+{ord(found.group()):04X}")


def check_pattern_option(field: FieldType, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> None:
    """Compile the field's `pattern` at load; a bad or dangerous one is an error at its position."""
    pattern = spec.opt("pattern")
    if pattern is None:
        return
    problem = pattern_problem(pattern)
    if problem:
        ctx.error(doc, path + ("pattern",), problem, code="bad-pattern",
                  hint="patterns use Python's regular expressions and must match the whole value")


def match_pattern(field: FieldType, value: str, spec: FieldSpec) -> None:
    """Raise FieldInvalid unless `value` matches the field's pattern (length-capped)."""
    pattern = spec.opt("pattern")
    if not pattern:
        return
    if len(value) > PATTERN_INPUT_CAP:
        raise field.invalid("too_long", max=PATTERN_INPUT_CAP)
    if not full_match(pattern, value):
        raise field.invalid("pattern", custom=spec.opt("pattern_message"))


AUTOCOMPLETE_OPTION = {
    "enum": ["name", "given-name", "family-name", "honorific-prefix", "nickname", "organization",
             "organization-title", "street-address", "address-line1", "address-line2", "address-level1",
             "address-level2", "postal-code", "country-name", "username", "off"],
    "description": "what the field holds, so a phone or browser offers what it knows (the HTML "
                   "autocomplete token): name, organization, street-address, postal-code, ...",
}


class Text(FieldType):
    name = "text"
    aliases = ("string",)
    value_kind = "text"
    description = "One line of text."
    options_schema = {"properties": {**_LENGTH_OPTIONS, "autocomplete": AUTOCOMPLETE_OPTION}}
    examples = ("customer_name:\n  type: text\n  label: {zh-CN: 大客户名称, en: Key-account name}\n  required: true\n  max_length: 100\n",)
    default_max = 200

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(spec.opt("max_length", self.default_max))

    def prepare(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        check_pattern_option(self, spec, ctx, doc, path)
        return None

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise self.invalid("not_text")
        value = str(raw).strip()
        max_length = spec.opt("max_length", self.default_max)
        if len(value) > max_length:
            raise self.invalid("too_long", max=max_length)
        if len(value) < spec.opt("min_length", 0):
            raise self.invalid("too_short", min=spec.opt("min_length"))
        check_visible(self, value)
        match_pattern(self, value, spec)
        return value

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        if type(self).parse is not Text.parse:
            return super().parser(spec)
        return self._text_parser(spec)

    def _text_parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        """Text.parse with the options looked up once."""
        max_length = spec.opt("max_length", self.default_max)
        min_length = spec.opt("min_length", 0)
        pattern = spec.opt("pattern")
        compiled = compile_pattern(pattern) if pattern else None
        pattern_message = spec.opt("pattern_message")
        invalid = self.invalid
        invisible = INVISIBLE.search

        def parse_text(raw: Any) -> Any:
            if type(raw) is str:
                value = raw.strip()
            elif isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise invalid("not_text")
            else:
                value = str(raw).strip()
            if len(value) > max_length:
                raise invalid("too_long", max=max_length)
            if len(value) < min_length:
                raise invalid("too_short", min=min_length)
            if invisible(value) is not None:
                check_visible(self, value)
            if compiled is not None:
                if len(value) > PATTERN_INPUT_CAP:
                    raise invalid("too_long", max=PATTERN_INPUT_CAP)
                if compiled.fullmatch(value) is None:
                    raise invalid("pattern", custom=pattern_message)
            return value

        return parse_text

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        """A string whose trimmed text fits the length and matches the pattern is that text."""
        return _fast_text(spec, spec.opt("max_length", self.default_max))


class Textarea(Text):
    name = "textarea"
    aliases = ("long_text",)
    description = "Several lines of plain text."
    examples = ("description:\n  type: textarea\n  label: {zh-CN: 问题详细描述, en: Detailed description}\n  max_length: 5000\n",)
    default_max = 10000

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlText()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        value = super().parse(raw, spec)
        return value.replace("\r\n", "\n")

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        if type(self).parse is not Textarea.parse:
            return FieldType.parser(self, spec)
        text = self._text_parser(spec)

        def parse_textarea(raw: Any) -> Any:
            return text(raw).replace("\r\n", "\n")

        return parse_textarea

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        """As text, for values without a carriage return (those have their line ends rewritten)."""
        return _fast_text(spec, spec.opt("max_length", self.default_max), "'\\r' not in raw and ")


def _fast_text(spec: FieldSpec, max_length: int, also: str = "") -> FastCheck:
    """The test of `Text._text_parser`'s accepting path: an exact str, trimmed, that fits
    (`also`: a further test of the str, written before the length)."""
    shortest = max(spec.opt("min_length", 0), 1)  # an empty result would need the required check
    pattern = spec.opt("pattern")
    test = (f"raw.__class__ is str and {also}{{low}} <= len(value := raw.strip()) <= {{high}}"
            " and {invisible}(value) is None")
    if not pattern:
        return FastCheck(test, "value", {"low": shortest, "high": max_length, "invisible": INVISIBLE.search})
    return FastCheck(test + " and {match}(value) is not None", "value",
                     {"low": shortest, "high": min(max_length, PATTERN_INPUT_CAP),
                      "match": compile_pattern(pattern).fullmatch, "invisible": INVISIBLE.search})


class Hidden(Text):
    name = "hidden"
    aliases = ("hidden_text",)
    description = "A line of text kept with the record but not shown on the form (a source tag, a campaign code)."
    examples = ("source_campaign:\n  type: hidden\n  label: {zh-CN: 来源活动, en: Campaign}\n  default: qr_poster\n",)
    widget = "hidden"


_MOBILE_CN = re.compile(r"1[3-9][0-9]{9}")
_LANDLINE_CN = re.compile(r"0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?")
_SERVICE_CN = re.compile(r"(400|800)-?[0-9]{3}-?[0-9]{4}")
_INTERNATIONAL = re.compile(r"\+[1-9][0-9]{6,14}")


def normalize_phone(raw: str) -> str:
    """Digits with at most a leading + and single dashes kept for landlines. Full-width digits,
    dashes and brackets (a Chinese input method's full-width mode) are read as ASCII ones."""
    value = re.sub(r"[\s()]", "", unicodedata.normalize("NFKC", raw))
    if value.startswith("00"):
        value = "+" + value[2:]
    if value.startswith("+86"):
        value = value[3:].lstrip("-")
    return value


class Phone(FieldType):
    name = "phone"
    value_kind = "text"
    description = "A phone number: Chinese mobile, landline with area code, 400/800, or international (+country)."
    options_schema = {"properties": {"allow": {"type": "array", "items": {"enum": ["mobile", "landline", "service", "international"]}}}}
    examples = ("contact_phone:\n  type: phone\n  label: {zh-CN: 联系电话, en: Contact phone}\n  required: true\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(32)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            raise self.invalid("not_phone")
        value = normalize_phone(str(raw))
        allow = spec.opt("allow", ["mobile", "landline", "service", "international"])
        checks = {"mobile": _MOBILE_CN, "landline": _LANDLINE_CN, "service": _SERVICE_CN,
                  "international": _INTERNATIONAL}
        if any(checks[kind].fullmatch(value) for kind in allow):
            return value
        raise self.invalid("not_phone")


_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


class Email(FieldType):
    name = "email"
    value_kind = "text"
    description = "An e-mail address."
    options_schema = {"properties": {}}
    examples = ("contact_email:\n  type: email\n  label: {zh-CN: 电子邮箱, en: E-mail}\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(254)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if not isinstance(raw, str):
            raise self.invalid("not_email")
        # Full-width letters, digits, ＠ and ． (a Chinese input method's full-width mode) and
        # the ideographic space read as ASCII; ASCII text is unchanged by NFKC.
        value = unicodedata.normalize("NFKC", raw).strip()
        if len(value) > 254 or not _EMAIL.fullmatch(value):
            raise self.invalid("not_email")
        return value

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        """`parse`'s answer where an exact str is at most 254 characters and its trimmed text
        matches as it is (NFKC leaves such text unchanged); anything else goes to `parse`."""
        return FastCheck("raw.__class__ is str and len(raw) <= 254 and {match}(value := raw.strip()) is not None",
                         "value", {"match": _EMAIL.fullmatch})


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return 0 < len(ascii_host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


class Url(FieldType):
    name = "url"
    aliases = ("link", "website")
    value_kind = "text"
    description = "A web address (http or https only), e.g. the customer's tracking page."
    options_schema = {"properties": {"max_length": {"type": "integer", "minimum": 10, "maximum": 8000}}}
    examples = ("tracking_page:\n  type: url\n  label: {zh-CN: 查询链接, en: Tracking page}\n  max_length: 500\n",)
    widget = "url"
    default_max = 2000

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(spec.opt("max_length", self.default_max))

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if not isinstance(raw, str):
            raise self.invalid("not_url")
        value = raw.strip()
        max_length = spec.opt("max_length", self.default_max)
        if len(value) > max_length:
            raise self.invalid("too_long", max=max_length)
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise self.invalid("not_url")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise self.invalid("not_url") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise self.invalid("not_url")
        if "@" in parts.netloc or not parts.hostname or not _valid_host(parts.hostname):
            raise self.invalid("not_url")  # user:password@ hides the real host from readers
        return value
