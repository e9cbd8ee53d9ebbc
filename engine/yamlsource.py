"""Safe YAML loading that keeps the position of every node.

The document is built from PyYAML's event stream (the scanner and parser are iterative), not
with PyYAML's recursive composer and its YAML 1.1 resolver, so that in one pass:
- every mapping key and value gets a `Span` in a `SourceMap`;
- duplicate keys are errors naming both lines (PyYAML silently keeps the last one);
- aliases are counted by the size they expand to, so a 300-byte "billion laughs" bomb is
  refused in microseconds, before anything walks the tree (JSON Schema would take seconds);
- nesting depth, node count and file size are bounded;
- only JSON-like tags exist; `!!python/...` and other tags are refused, nothing is constructed;
- plain scalars are resolved the YAML 1.2 way: `NO`, `on`, `yes` stay strings, `12:30` is not
  750, `0755` is not 493, `2024-01-02` stays a string. Only `true/false`, `null/~`, decimal
  integers without leading zeros and ordinary floats become non-strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml import events as ev

from engine.errors import Diagnostics
from engine.types import Span, YamlPath

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}
"""Words YAML 1.1 turns into booleans; Docket keeps them as strings and hints where it matters."""

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STD}str", f"{_STD}int", f"{_STD}float", f"{_STD}bool", f"{_STD}null"}


@dataclass(frozen=True, slots=True)
class ScalarInfo:
    """Where a scalar's text begins and how it was written (for positions inside it)."""

    span: Span
    style: str  # '' plain, "'" or '"' quoted, '|' or '>' block
    indent: int  # block scalars: column (0-based) of the content lines


@dataclass
class SourceMap:
    """YAML path -> position, with nearest-ancestor fallback."""

    file: str
    values: dict[YamlPath, Span] = field(default_factory=dict)
    keys: dict[YamlPath, Span] = field(default_factory=dict)
    scalars: dict[YamlPath, ScalarInfo] = field(default_factory=dict)
    plain: set[YamlPath] = field(default_factory=set)
    aliases: dict[YamlPath, YamlPath] = field(default_factory=dict)
    """Where an alias (`*escalation`) stands -> where its anchor's content was written."""

    def written(self, path: YamlPath) -> YamlPath:
        """The path whose text holds the value at `path`: inside an alias, the same place under
        its anchor (`nodes.propose.escalation[1].assign` -> `nodes.accept.escalation[1].assign`),
        so a problem is shown where it can be fixed, once for every use."""
        if not self.aliases:
            return path
        for i in range(len(path) - 1, 0, -1):  # the alias itself keeps its own place
            anchor = self.aliases.get(path[:i])
            if anchor is not None:
                return self.written(anchor + path[i:])
        return path

    def value(self, path: YamlPath) -> Span:
        """The span of the value at `path`, or of its nearest ancestor."""
        path = self.written(path)
        for i in range(len(path), -1, -1):
            span = self.values.get(path[:i])
            if span is not None:
                return span
        return Span(self.file, 1, 1)

    def key(self, path: YamlPath) -> Span:
        """The span of the mapping key naming `path` (the value's if it has no key)."""
        path = self.written(path)
        return self.keys.get(path) or self.value(path)

    def is_plain(self, path: YamlPath) -> bool:
        """Was the scalar at `path` written unquoted (so YAML may have resolved it)?"""
        return self.written(path) in self.plain

    def inside(self, path: YamlPath, line_offset: int, col_offset: int) -> Span:
        """The position of character (line_offset, col_offset) inside the scalar at `path`."""
        path = self.written(path)
        info = self.scalars.get(path)
        if info is None:
            return self.value(path)
        if info.style in ("|", ">"):
            return Span(self.file, info.span.line + line_offset, info.indent + 1 + col_offset)
        return info.span.shifted(line_offset, col_offset)


@dataclass
class Document:
    """One loaded YAML file: plain data plus where every piece of it was written."""

    file: str
    data: Any
    source_map: SourceMap

    def span(self, path: YamlPath) -> Span:
        return self.source_map.value(path)


def _span(file: str, mark: Any, end: Any | None = None) -> Span:
    if end is None:
        return Span(file, mark.line + 1, mark.column + 1)
    return Span(file, mark.line + 1, mark.column + 1, end.line + 1, end.column + 1)


def resolve_plain(text: str) -> Any:
    """The value of an unquoted scalar under Docket's YAML 1.2-style rules."""
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and any(c in text for c in ".eE"):
        return float(text)
    return text


class _Refused(Exception):
    """Stops loading a file: the document is unsafe or malformed beyond recovery."""


@dataclass
class _Frame:
    value: Any
    path: YamlPath
    size: int = 1
    anchor: str | None = None
    pending_key: str | None = None
    pending_key_span: Span | None = None
    first_seen: dict[str, int] = field(default_factory=dict)
    key_mode: bool = False


class _Builder:
    """Turns an event stream into data + SourceMap, enforcing every limit on the way."""

    def __init__(self, file: str, text: str, diags: Diagnostics, max_nodes: int, max_depth: int):
        self.file = file
        self.text = text
        self.diags = diags
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.smap = SourceMap(file)
        self.anchors: dict[str, tuple[Any, int, YamlPath]] = {}
        self.stack: list[_Frame] = []
        self.total = 0
        self.root: Any = None
        self.documents = 0

    def fail(self, message: str, span: Span, *, code: str, hint: str | None = None) -> None:
        self.diags.error(message, span, code=code, hint=hint)
        raise _Refused

    # -- the current container --------------------------------------------------------------
    def child_path(self, span: Span) -> YamlPath | None:
        """Path of the next value; None means the next scalar is a mapping key."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return top.path + (len(top.value),)
        if top.pending_key is None:
            return None
        return top.path + (top.pending_key,)

    def count(self, n: int, span: Span) -> None:
        self.total += n
        if self.total > self.max_nodes:
            self.fail(
                f"document expands to more than {self.max_nodes:,} nodes",
                span,
                code="yaml-too-large",
                hint="aliases (*name) repeat whole subtrees; this looks like an alias bomb",
            )

    def attach(self, value: Any, size: int, path: YamlPath) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        top.size += size
        if isinstance(top.value, list):
            top.value.append(value)
        else:
            top.value[top.pending_key] = value
            top.pending_key = None

    # -- events -------------------------------------------------------------------------------
    def check_tag(self, tag: str | None, allowed: set[str], span: Span) -> None:
        if tag is None or tag == "!" or tag in allowed:
            return
        shown = tag.replace(_STD, "!!")
        self.fail(
            f"tag '{shown}' is not allowed in definitions",
            span,
            code="yaml-tag",
            hint="definitions are plain data: remove the tag",
        )

    def scalar(self, e: ev.ScalarEvent) -> None:
        span = _span(self.file, e.start_mark, e.end_mark)
        self.check_tag(e.tag, _SCALAR_TAGS, span)
        path = self.child_path(span)
        if path is None:  # a mapping key
            self.key(e.value, span)
            return
        plain = e.style in (None, "") and e.implicit[0] and e.tag in (None, "!")
        if plain:
            value = resolve_plain(e.value)
            self.smap.plain.add(path)
        else:
            value = self.typed_scalar(e, span)
        self.smap.values[path] = span
        self.smap.scalars[path] = self.scalar_info(e, span)
        self.count(1, span)
        if e.anchor:
            self.anchors[e.anchor] = (value, 1, path)
        self.attach(value, 1, path)

    def typed_scalar(self, e: ev.ScalarEvent, span: Span) -> Any:
        if e.tag in (None, "!", f"{_STD}str"):
            return e.value
        value = resolve_plain(e.value)
        expected = {f"{_STD}int": int, f"{_STD}float": (int, float), f"{_STD}bool": bool,
                    f"{_STD}null": type(None)}[e.tag]
        if not isinstance(value, expected) or (e.tag == f"{_STD}int" and isinstance(value, bool)):
            self.fail(f"'{e.value}' is not a valid {e.tag.replace(_STD, '!!')}", span,
                      code="yaml-tag")
        return float(value) if e.tag == f"{_STD}float" else value

    def scalar_info(self, e: ev.ScalarEvent, span: Span) -> ScalarInfo:
        style = e.style or ""
        if style in ("'", '"'):
            return ScalarInfo(span.shifted(0, 1), style, 0)
        if style in ("|", ">"):
            lines = self.text.splitlines()
            line = e.start_mark.line + 1  # content starts on the line after the indicator
            while line < len(lines) and not lines[line].strip():
                line += 1
            indent = len(lines[line]) - len(lines[line].lstrip(" ")) if line < len(lines) else 0
            return ScalarInfo(Span(self.file, line + 1, indent + 1), style, indent)
        return ScalarInfo(span, "", 0)

    def key(self, text: str, span: Span) -> None:
        top = self.stack[-1]
        if text == "<<":
            self.fail("merge keys (<<) are not supported", span, code="yaml-merge",
                      hint="write the keys out; repeated blocks are clearer for the next reader")
        if text in top.first_seen:
            self.diags.error(
                f"duplicate key '{text}' (first defined at line {top.first_seen[text]})",
                span,
                code="yaml-duplicate-key",
                hint=f"a key may appear once per mapping; the one at line {top.first_seen[text]} "
                "would be silently replaced",
                yaml_path=top.path + (text,),
            )
        else:
            top.first_seen[text] = span.line
        top.pending_key = text
        top.pending_key_span = span
        self.smap.keys[top.path + (text,)] = span

    def start(self, e: ev.CollectionStartEvent, container: Any, tag: str) -> None:
        span = _span(self.file, e.start_mark)
        self.check_tag(e.tag, {tag}, span)
        path = self.child_path(span)
        if path is None:
            self.fail("mapping keys must be plain text, not lists or mappings", span,
                      code="yaml-complex-key")
        if len(self.stack) >= self.max_depth:
            self.fail(f"nesting deeper than {self.max_depth} levels", span, code="yaml-too-deep")
        self.count(1, span)
        self.smap.values[path] = span
        self.stack.append(_Frame(container, path, anchor=e.anchor))

    def end(self) -> None:
        frame = self.stack.pop()
        if frame.anchor:
            self.anchors[frame.anchor] = (frame.value, frame.size, frame.path)
        if isinstance(frame.value, dict) and frame.pending_key is not None:
            frame.value[frame.pending_key] = None
        self.attach(frame.value, frame.size, frame.path)

    def alias(self, e: ev.AliasEvent) -> None:
        span = _span(self.file, e.start_mark)
        if e.anchor not in self.anchors:
            self.fail(f"alias '*{e.anchor}' names no anchor defined before it", span,
                      code="yaml-alias")
        value, size, anchored = self.anchors[e.anchor]
        path = self.child_path(span)
        if path is None:
            self.fail("an alias cannot be a mapping key", span, code="yaml-complex-key")
        self.count(size, span)
        self.smap.values.setdefault(path, span)
        self.smap.aliases[path] = anchored
        self.attach(value, size, path)

    def feed(self, e: ev.Event) -> None:
        if isinstance(e, ev.ScalarEvent):
            self.scalar(e)
        elif isinstance(e, ev.MappingStartEvent):
            self.start(e, {}, f"{_STD}map")
        elif isinstance(e, ev.SequenceStartEvent):
            self.start(e, [], f"{_STD}seq")
        elif isinstance(e, (ev.MappingEndEvent, ev.SequenceEndEvent)):
            self.end()
        elif isinstance(e, ev.AliasEvent):
            self.alias(e)
        elif isinstance(e, ev.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self.fail("a definition file holds one YAML document; found a second '---'",
                          _span(self.file, e.start_mark), code="yaml-multi-document")


_CHINESE_COLON_KEY = re.compile(r"(?:^|[\s{,])[A-Za-z_][\w-]*\s*：")
"""`label：` after a key: at the start of a line, or after `{` or `,` in a flow mapping (`- {value: x, label： y}`)."""

_GLUED_KEY = re.compile(r"\s*(?:- )?([A-Za-z_][\w-]*):(?=[^\s:/\\])")
"""`type:phone`: without a space after the colon YAML reads one word, not a key and a value."""


_RESERVED_START = re.compile(r":\s+([>|%@`])(.*)")
"""`amount: > 5000`, `numbering: %Y...`: a value YAML reads as a block-text sign or a reserved mark."""


def _syntax_hint(problem: str, text: str, mark: Any) -> str | None:
    # LibYAML and PyYAML word their errors differently: look at the text itself where we can.
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines):
        line = lines[mark.line]
        if "\t" in line[: mark.column + 1] and not line[: line.index("\t")].strip():
            return "indent with spaces, not tabs"
    if "'\\t'" in problem or "\\t" in problem:
        return "indent with spaces, not tabs"
    # YAML trips over a key it could not read on the line after it: look there too.
    here = mark.line if mark is not None and mark.line < len(lines) else None
    above = _line_above(lines, here) if here is not None else None
    for n in (here, above):
        if n is None:
            continue
        code = lines[n].split(" #", 1)[0]
        # In a key: a value may hold one (注意：...); keys are ASCII names, so `Note：` inside a
        # quoted value or Chinese text before the colon is not taken for one.
        if "：" in code.split(":", 1)[0] or _CHINESE_COLON_KEY.search(code):
            return (f"line {n + 1} has a Chinese colon '：': write ':' and a space "
                    "(switch the input method to English punctuation)")
        if code.lstrip(" ").startswith("\u3000") or ":\u3000" in code:
            # The ideographic space of a Chinese input method looks like two spaces; YAML reads
            # it as text, so the line is not indented (or the key not followed by a space).
            return (f"line {n + 1} has a full-width space '\u3000': write ordinary spaces "
                    "(switch the input method to half-width)")
        glued = _GLUED_KEY.match(code)
        if glued and not code.lstrip().startswith(("\"", "'")):
            return f"line {n + 1}: put a space after '{glued[1]}:' (YAML reads '{code.strip()}' as one word)"
    if any(words in problem for words in ("cannot start any token", "block scalar", "expected comment or line break")):
        reserved = _RESERVED_START.search(lines[here].split(" #", 1)[0]) if here is not None else None
        if reserved:
            sign, rest = reserved[1], reserved[2]
            if re.search(r"[{\[]", lines[here][: reserved.start()]):  # in brackets: up to the entry's end
                rest = re.split(r"[,}\]]", rest, maxsplit=1)[0]
            value = sign + rest.rstrip()
            return f"a value starting with '{sign}' must be in quotes: \"{value}\" ('{sign}' means something else in YAML)"
    if "mapping values are not allowed" in problem:
        return _colon_hint(lines, here, above)
    if ("could not find expected ':'" in problem or "expected <block end>" in problem
            or "did not find expected key" in problem or "did not find expected '-'" in problem):
        if here is not None and above is not None:
            col, col_above = _indent(lines[here]) + 1, _indent(lines[above]) + 1
            if col != col_above:
                return (f"check the indentation: line {here + 1} starts in column {col}, line {above + 1} "
                        f"above it in column {col_above}; keys of one mapping start in the same column")
        return "check the indentation: keys of one mapping must start in the same column"
    if "expected ',' or ']'" in problem or "expected ',' or '}'" in problem:
        current = lines[here] if here is not None else ""
        entry = re.split(r"[{,\[]", current[: mark.column])[-1]
        if current[mark.column: mark.column + 2] in (": ", ":") and ": " in entry:
            # `{en: Closed: no documents}`: the second ': ' ends the value where the analyst
            # meant text; in brackets YAML then wants a comma.
            return "a value holding ': ' must be quoted: write it in quotes, e.g. en: \"Closed: no reply\""
        return "a bracket opened here is not closed, or an item lacks its comma"
    return None


_KEY_WITH_VALUE = re.compile(r"\s*(?:- )?([^\s:#'\"{\[][^:#]*?):\s+\S")
"""`options: vip_level`, `- value: x`: a key whose value is written on its own line."""


def _colon_hint(lines: list[str], here: int | None, above: int | None) -> str:
    """YAML met `key:` where it reads a value: a line indented under a key that already has its
    value (`visible_if:` pushed in under `options: vip_level`), or a value holding ': '."""
    if here is not None and above is not None:
        code = lines[above].split(" #", 1)[0]
        holder = _KEY_WITH_VALUE.match(code)
        keys_at = _indent(code) + (2 if code.lstrip(" ").startswith("- ") else 0)
        if holder and _indent(lines[here]) > keys_at:
            hint = (f"line {here + 1} starts in column {_indent(lines[here]) + 1}, further in than line "
                    f"{above + 1} above it (column {keys_at + 1}), where '{holder[1]}' already has its "
                    f"value: start it in column {keys_at + 1}, like the keys beside it")
            # `gm_approval:` then `type: approval` in the same column: it is the line above that
            # was meant to be pushed in under the empty key before it.
            before = _line_above(lines, above)
            opener = re.match(r"\s*(?:- )?([^\s:#]+):\s*$", lines[before].split(" #", 1)[0]) if before is not None else None
            if opener and _indent(lines[before]) == _indent(code):
                hint += (f"; or, if '{holder[1]}' belongs under '{opener[1]}:' (line {before + 1}), "
                         f"indent line {above + 1} as far as line {here + 1}")
            return hint
    return ("a value holding ': ' must be quoted: write it in quotes, e.g. en: \"Closed: no reply\"; "
            "else check the indentation of this line against the line above")


def _line_above(lines: list[str], n: int) -> int | None:
    """The nearest line before line `n` (0-based) holding more than a comment."""
    for i in range(n - 1, -1, -1):
        if lines[i].strip() and not lines[i].lstrip().startswith("#"):
            return i
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _decode(data: bytes, file: str, diags: Diagnostics) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")) + 1
        diags.error(f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                    Span(file, line, col), code="yaml-encoding",
                    hint="save the file as UTF-8")
        return None
    return text.removeprefix("\ufeff")


_EVENT_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""LibYAML's parser when PyYAML was built with it (~8x faster), else the pure-Python one; both
give the same events and marks, and every resolution rule is ours, not the loader's."""


def load_yaml(
    data: bytes | str,
    file: str,
    diags: Diagnostics,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Document | None:
    """Load one YAML document; problems go to `diags`, and None is returned if it is unusable."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        diags.error(f"file is {len(raw):,} bytes; definition files are limited to {max_bytes:,}",
                    Span(file, 1, 1), code="yaml-too-large",
                    hint="split it into several files")
        return None
    text = _decode(raw, file, diags)
    if text is None:
        return None
    builder = _Builder(file, text, diags, max_nodes, max_depth)
    try:
        for event in yaml.parse(text, Loader=_EVENT_LOADER):
            builder.feed(event)
    except _Refused:
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        hint = _syntax_hint(problem, text, mark)
        if "quoted scalar" in (exc.context or "") and exc.context_mark is not None:
            # The end of the file is where YAML noticed; the quote left open is what to fix.
            mark, hint = exc.context_mark, "the quote opened here is not closed: end the text with the same quote"
        elif "flow " in (exc.context or "") and exc.context_mark is not None and hint is not None \
                and hint.startswith("a bracket"):
            opened = exc.context_mark
            hint = (f"the bracket opened on line {opened.line + 1} (column {opened.column + 1}) is not "
                    "closed, or an item before here lacks its comma")
        span = Span(file, mark.line + 1, mark.column + 1) if mark else Span(file, 1, 1)
        message = f"YAML syntax error: {problem}"
        if exc.context:
            message += f" ({exc.context})"
        diags.error(message, span, code="yaml-syntax", hint=hint)
        return None
    except yaml.YAMLError as exc:
        diags.error(f"YAML error: {exc}", Span(file, 1, 1), code="yaml-syntax")
        return None
    except RecursionError:
        diags.error("document is nested too deeply", Span(file, 1, 1), code="yaml-too-deep")
        return None
    return Document(file, builder.root, builder.smap)


def load_yaml_file(path: Path, display: str, diags: Diagnostics, **limits: int) -> Document | None:
    """Read and load a file; `display` is the name used in every diagnostic."""
    try:
        size = path.stat().st_size
        max_bytes = limits.get("max_bytes", MAX_FILE_BYTES)
        if size > max_bytes:
            diags.error(f"file is {size:,} bytes; definition files are limited to {max_bytes:,}",
                        Span(display, 1, 1), code="yaml-too-large",
                        hint="split it into several files")
            return None
        raw = path.read_bytes()
    except OSError as exc:
        diags.error(f"cannot read file: {exc.strerror}", Span(display, 1, 1), code="io")
        return None
    return load_yaml(raw, display, diags, **limits)
