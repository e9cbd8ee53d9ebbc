"""The one sandboxed renderer for everything an analyst writes as a template.

Print templates (reply letters), e-mail and IM message subjects and bodies all go through
`compile_template`. Analysts are trusted to edit definitions, not to run code on the server, and
the data rendered into a template comes from customers, so the renderer holds on three fronts
(RELIABILITY.md, tests 11-14):

- No way out of the sandbox: Jinja2's `ImmutableSandboxedEnvironment`, with every `_name`,
  `format`/`format_map`, `mro` and the `attr` filter refused when the template is compiled
  (a positioned error), and again when it runs.
- No resource bombs: `lipsum` removed, `range` capped, `*`, `**`, `%`, `+`, `~` and the filters
  and string methods that can build big values checked *before* they allocate, output streamed
  under a size cap, and a wall-clock budget enforced by a watchdog that interrupts the rendering
  thread (a nested loop that prints nothing still stops).
- No file or markup injection: includes only by constant name from the bundle's own templates
  (no `..`, no absolute path, no name from data), autoescape for HTML, and `|safe` or
  `{% autoescape false %}` on data refused at load (stored XSS).

Errors at compile time are `TemplateLoadError` (every problem with its line and column, mapped to
`file:line:col` diagnostics); errors while rendering are `TemplateRenderError` with the template's
file and line, never a Python traceback.
"""

from __future__ import annotations

import ctypes
import decimal
import heapq
import itertools
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from types import BuiltinMethodType, ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from engine.errors import Diagnostic, DocketError, did_you_mean
from engine.types import Span, YamlPath

if TYPE_CHECKING:
    from engine.kinds import BuildContext
    from engine.yamlsource import Document

MAX_OUTPUT_CHARS = 1_000_000
"""Default cap on a rendered template: a letter or an e-mail is a few kilobytes."""
MAX_VALUE_CHARS = 200_000
"""Cap on any string or list built while rendering (`'a' * n`, `center`, `join`, ...)."""
MAX_RANGE = 10_000
"""`range()` yields at most this many numbers."""
MAX_INT_BITS = 14_000
"""Integers built by `*` and `**` stay below this size (about 4,200 decimal digits: Python
refuses to print integers of more than 4,300)."""
MAX_WIDTH = 1_000
"""Widths and precisions in `%` formats, `indent`, `wordwrap`, `tojson(indent)`."""
TIME_LIMIT_SECONDS = 1.0
"""Default wall-clock budget of one render."""
MAX_TEMPLATE_CHARS = 512 * 1024

REFUSED_ATTRIBUTES = frozenset({"format", "format_map", "mro", "gi_frame", "gi_code", "cr_frame",
                                "cr_code", "ag_frame", "ag_code", "f_globals", "f_locals",
                                "func_globals", "func_code", "tb_frame"})
"""Attributes refused on top of every `_name` (the sandbox refuses those already)."""
REFUSED_FILTERS = frozenset({"attr"})
"""`attr` only exists to reach attributes by computed name: refused outright."""
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)*\.[A-Za-z0-9]+|"
                            r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


class TemplateLoadError(DocketError):
    """A template was refused when compiled; `problems` lists every problem with its position."""

    def __init__(self, name: str, problems: list["TemplateProblem"]):
        self.name = name
        self.problems = problems
        super().__init__("\n".join(f"{name}:{p.line}:{p.col}: {p.message}" for p in problems))

    def diagnostics(self, locate: Callable[[int, int], Span] | None = None) -> list[Diagnostic]:
        """The problems as diagnostics; `locate(line, col)` maps a position in the template's
        text to a position in its file (e.g. inside a YAML scalar). Default: the template file."""
        out = []
        for p in self.problems:
            span = locate(p.line, p.col) if locate else Span(self.name, p.line, p.col)
            out.append(Diagnostic(p.message, span, p.code, p.hint))
        return out


class TemplateRenderError(DocketError):
    """Rendering failed: a clear message with the template file and line, never internals."""

    def __init__(self, message: str, *, name: str, line: int | None = None):
        self.message = message
        self.name = name
        self.line = line
        where = f"{name}:{line}" if line else name
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class TemplateProblem:
    """One problem in a template's text, 1-based line and column."""

    message: str
    line: int
    col: int = 1
    code: str = "template-invalid"
    hint: str | None = None


class _RenderTimeout(BaseException):
    """Injected into the rendering thread by the watchdog; BaseException so that no `except
    Exception` in a filter swallows it."""


class _Refused(SecurityError):
    """A size or safety bound was hit while rendering."""


# ---------------------------------------------------------------------------------------------
# bounded helpers


def _check_len(n: int, what: str) -> None:
    if n > MAX_VALUE_CHARS:
        raise _Refused(f"{what} would build a value of {n:,} characters or items; the limit is {MAX_VALUE_CHARS:,}")


def _check_width(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
        raise _Refused(f"{what} of {value:,} is too large; the limit is {MAX_WIDTH:,}")
    if isinstance(value, str) and len(value) > MAX_WIDTH:
        raise _Refused(f"{what} of {len(value):,} characters is too long; the limit is {MAX_WIDTH:,}")


_CONTAINERS = (list, tuple, set, frozenset, dict, Mapping)
_SEQUENCES = frozenset({list, tuple, set, frozenset})


def _weigh(value: Any, what: str = "printing a value") -> int:
    """How big `value` gets when printed: characters of text plus items of containers, counting
    a list as often as it is referenced (a macro can nest one list 2^40 times in a few lines, and
    `str()` of it would expand every copy, in C, where no time budget can stop it). The walk is
    refused as soon as the total passes MAX_VALUE_CHARS, so it is itself bounded."""
    total = 0
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is Markup:
            total += len(item)
        elif kind in _SEQUENCES:
            total += len(item) + 1
            if total <= MAX_VALUE_CHARS:
                extend(item)
        elif kind is dict or isinstance(item, Mapping):
            total += len(item) + 1
            if total <= MAX_VALUE_CHARS:
                extend(item.items())
        elif isinstance(item, (list, tuple, set, frozenset, str)):  # subclasses, e.g. Markup
            total += len(item) + 1
            if total <= MAX_VALUE_CHARS and not isinstance(item, str):
                extend(item)
        else:
            total += 1
        if total > MAX_VALUE_CHARS:
            _check_len(total, what)
    return total


def _weigh_arguments(args: Iterable[Any], what: str) -> None:
    for arg in args:
        if isinstance(arg, _CONTAINERS):
            _weigh(arg, what)


def _finalize(value: Any) -> Any:
    """Every `{{ value }}` passes here before it is turned into text."""
    if isinstance(value, _CONTAINERS):
        _weigh(value)
    return value


def _safe_range(*args: Any) -> range:
    """`range()` for templates: at most MAX_RANGE numbers."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise _Refused(f"range() of {len(rng):,} numbers is too large; the limit is {MAX_RANGE:,}")
    return rng


def _check_percent_format(fmt: str) -> None:
    """Refuse `%` formats whose width or precision would pad a value to a huge size."""
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise _Refused("'*' widths in % formats are not allowed in templates")
            if part is not None and int(part) > MAX_WIDTH:
                raise _Refused(f"a % format width of {int(part):,} is too large; the limit is {MAX_WIDTH:,}")


def _mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            _check_len(len(seq) * max(count, 0), "'*'")
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _Refused("'*' would build a number too large to print")
    return left * right


def _pow(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if right > MAX_INT_BITS or (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise _Refused(f"'**' would build a number too large to print ({left} ** {right})")
    try:
        return left ** right
    except OverflowError:
        raise _Refused(f"'**' overflows ({left} ** {right})") from None


def _mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        _check_percent_format(left)
        _weigh_arguments((right,), "'%'")
        result = left % right
        _check_len(len(result), "'%'")
        return result
    return left % right


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        _check_len(len(left) + len(right), "'+'")
    return left + right


def _bounded_concat(values: Iterable[Any], join: Callable[[Iterable[Any]], str]) -> str:
    """`a ~ b`: the same join Jinja uses, with the size checked first."""
    values = list(values)
    _check_len(sum(_weigh(v, "'~'") for v in values), "'~'")
    return join(values)


def _bounded_join(parts: Iterable[str]) -> str:
    """How Jinja joins the output of a macro, a `{% set %}` block or a `{% call %}` (their
    output is built in memory, not streamed under the output cap): with the size checked first,
    or a macro printing its argument twice, called on its own output, doubles a string per call."""
    parts = parts if isinstance(parts, list) else list(parts)
    _check_len(sum(map(len, parts)), "a macro's or block's output")
    return "".join(parts)


class _Generator(CodeGenerator):
    """Jinja's code generator with `~` routed through a size check; it also collects the names
    a template reads without defining them (what `jinja2.meta.find_undeclared_variables` finds,
    without a second code generation pass)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.undeclared: set[str] = set()

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        for action, param in frame.symbols.loads.values():
            if action == "resolve" and param not in self.environment.globals:
                self.undeclared.add(param)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {func_name})")


def _bounded_filters(env: ImmutableSandboxedEnvironment) -> None:
    """Wrap the built-in filters that can allocate far more than their input."""
    f = env.filters
    orig = dict(f)

    def center(value: Any, width: int = 80) -> str:
        _check_len(int(width), "center()")
        return orig["center"](value, width)

    def indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        _check_width(width, "indent()")
        result = orig["indent"](s, width, first, blank)
        _check_len(len(result), "indent()")
        return result

    def format_(value: str, *args: Any, **kwargs: Any) -> str:
        _check_percent_format(str(value))
        result = orig["format"](value, *args, **kwargs)
        _check_len(len(result), "format()")
        return result

    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        items = list(value)
        _check_len(_weigh(d) * max(len(items) - 1, 0) + sum(_weigh(i, "join()") for i in items), "join()")
        return orig["join"](eval_ctx, items, d, attribute)

    def replace(eval_ctx: Any, s: Any, old: str, new: str, count: int | None = None) -> str:
        text = str(s)
        hits = text.count(str(old)) if old else len(text) + 1
        if count is not None and count >= 0:
            hits = min(hits, count)
        _check_len(len(text) + hits * max(len(str(new)) - len(str(old)), 0), "replace()")
        return orig["replace"](eval_ctx, s, old, new, count)

    def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
        _check_len(int(linecount), "batch()")
        return orig["batch"](value, linecount, fill_with)

    def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
        _check_width(int(slices), "slice()")
        return orig["slice"](value, slices, fill_with)

    def wordwrap(environment: Any, s: str, width: int = 79, break_long_words: bool = True,
                 wrapstring: str | None = None, break_on_hyphens: bool = True) -> str:
        if wrapstring is not None:
            _check_width(wrapstring, "wordwrap() wrapstring")
        if int(width) < 1:
            raise _Refused("wordwrap() needs a width of at least 1")
        return orig["wordwrap"](environment, s, width, break_long_words, wrapstring, break_on_hyphens)

    def tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Markup:
        _check_width(indent, "tojson() indent")
        return orig["tojson"](eval_ctx, value, indent)

    def sum_(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        items = list(iterable)
        if isinstance(start, (str, list, tuple)):  # concatenation, not addition
            _check_len(len(start) + sum(_weigh(i, "sum()") for i in items), "sum()")
        return orig["sum"](environment, items, attribute, start)

    bounded = {"center": center, "indent": indent, "format": format_, "join": join,
               "replace": replace, "batch": batch, "slice": slice_, "wordwrap": wordwrap,
               "tojson": tojson, "sum": sum_}
    for name, fn in bounded.items():  # the same calling convention as the filter it replaces
        if hasattr(orig[name], "jinja_pass_arg"):
            fn.jinja_pass_arg = orig[name].jinja_pass_arg  # type: ignore[attr-defined]
    f.update(bounded)
    for name in REFUSED_FILTERS:
        f.pop(name, None)
    f["money"] = money
    f["number"] = number
    for name, fn in list(f.items()):
        f[name] = _weighing(name, fn)


def _weighing(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that first weighs its container arguments: most filters turn their value into
    text (`upper`, `string`, `tojson`, `pprint`...), which must not expand a shared nested list."""

    def weighed(*args: Any, **kwargs: Any) -> Any:
        _weigh_arguments((*args, *kwargs.values()), f"the '{name}' filter")
        return fn(*args, **kwargs)

    weighed.__name__ = getattr(fn, "__name__", name)
    if hasattr(fn, "jinja_pass_arg"):
        weighed.jinja_pass_arg = fn.jinja_pass_arg  # type: ignore[attr-defined]
    return weighed


_STR_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill"}
ALLOWED_METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, frozenset({
        "capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find", "index",
        "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "islower", "isnumeric",
        "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition",
        "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title",
        "upper", "zfill"})),
    ((list, tuple), frozenset({"count", "index"})),
    (Mapping, frozenset({"get", "items", "keys", "values"})),
    ((date, dtime), frozenset({"strftime", "isoformat", "weekday", "isoweekday", "date", "time"})),
    ((int, float, Decimal), frozenset({"is_integer"})),
)
"""The methods of plain values a template may call (an allow-list: `int.to_bytes(10**9)` or
`str.encode` lead to values nothing else here bounds). Methods of Python objects Docket puts in
the context (`loop.cycle`, macros, `qr`) are Python code, which the time budget interrupts."""


def _allowed(owner: Any, name: str) -> bool:
    for types_, names in ALLOWED_METHODS:
        if isinstance(owner, types_):
            return name in names
    return False


def _check_method_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse methods outside the allow-list; bound the ones that can build big values from
    small arguments; weigh container arguments."""
    _weigh_arguments((*args, *kwargs.values()), "a call")
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(obj, BuiltinMethodType) and (owner is None or isinstance(owner, (type, ModuleType))):
        # a static or class method reached through a value: 'x'.maketrans, {}.fromkeys
        raise _Refused(f"calling {name}() is not allowed in templates")
    if owner is None or isinstance(obj, type):
        return  # macros, Docket's helpers (qr, range), classes such as dict and namespace
    if isinstance(obj, BuiltinMethodType) or isinstance(owner, (str, int, float, Decimal, date, dtime,
                                                                   list, tuple, dict, bytes)):
        if not _allowed(owner, name):
            raise _Refused(f"calling {type(owner).__name__}.{name}() is not allowed in templates")
    if not isinstance(owner, str):
        if name == "strftime":
            _check_width(args[0] if args else kwargs.get("format", ""), "strftime() format")
        return
    if name in _STR_WIDTH_METHODS and args and isinstance(args[0], int):
        _check_len(args[0], f"{name}()")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        _check_width(size, "expandtabs()")
        _check_len(len(owner) + owner.count("\t") * max(int(size), 0), "expandtabs()")
    elif name == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        hits = owner.count(old) if old else len(owner) + 1
        _check_len(len(owner) + hits * max(len(new) - len(old), 0), "replace()")
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, (list, tuple)):
            _check_len(len(owner) * max(len(items) - 1, 0) + sum(_weigh(i, "join()") for i in items), "join()")


# ---------------------------------------------------------------------------------------------
# formatting helpers every analyst template gets


def number(value: Any, places: int = 0) -> str:
    """`1234.5|number(2)` -> `1,234.50`; empty for None."""
    if value is None or value == "":
        return ""
    _check_width(places, "number() places")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{amount:,.{int(places)}f}"


def date_filter(value: Any, fmt: str = "%Y-%m-%d", *, timezone: str | None = None) -> str:
    """`created_at|date('%Y年%m月%d日')`: dates and times (aware ones in the bundle's time
    zone); ISO text is read too; empty for None."""
    if value is None or value == "":
        return ""
    _check_width(fmt, "date() format")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime) and value.tzinfo is not None and timezone:
        value = value.astimezone(ZoneInfo(timezone))
    if isinstance(value, (date, dtime)):
        return value.strftime(fmt)
    return str(value)


def money(value: Any, currency: str = "¥") -> str:
    """`1234.5|money` -> `¥1,234.50`; empty for None."""
    text = number(value, 2)
    return f"{currency}{text}" if text else ""


# ---------------------------------------------------------------------------------------------
# loader


def check_template_name(name: Any) -> str | None:
    """Why a template name may not be used (None: fine). Names are relative paths inside the
    bundle's `templates/` folder: no `..`, no absolute path, no backslash."""
    if not isinstance(name, str) or not name:
        return "a template name must be a non-empty text"
    if name.startswith("/") or "\\" in name or ":" in name:
        return f"template '{name}' must be a path inside the bundle's templates/ folder"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return f"template '{name}' may not contain '.', '..' or empty path parts"
    if not _TEMPLATE_NAME.fullmatch(name):
        return f"template '{name}' has characters other than letters, digits, '_', '-', '.' and '/'"
    return None


class ConfinedLoader(BaseLoader):
    """Templates by relative name from one folder (or an in-memory {name: text} mapping),
    never outside it: names are checked, and a resolved path (symlinks followed) must stay
    inside the folder."""

    def __init__(self, root: Path | None = None, files: Mapping[str, str] | None = None):
        self.root = root.resolve() if root is not None else None
        self.files = files

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        if check_template_name(template) is not None:
            raise TemplateNotFound(template)
        if self.files is not None:
            if template not in self.files:
                raise TemplateNotFound(template)
            return self.files[template], template, lambda: True
        if self.root is None:
            raise TemplateNotFound(template)
        path = (self.root / template).resolve()
        if self.root not in path.parents or not path.is_file():
            raise TemplateNotFound(template)
        if path.stat().st_size > MAX_TEMPLATE_CHARS:
            raise TemplateNotFound(template)
        text = path.read_text("utf-8")
        mtime = path.stat().st_mtime
        return text, template, lambda: path.stat().st_mtime == mtime

    def names(self) -> list[str]:
        if self.files is not None:
            return sorted(self.files)
        if self.root is None or not self.root.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# the environment


class _Undefined(StrictUndefined):
    """A missing name is an error saying which name, not an empty string."""


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The analyst-template environment: see the module docstring for what it refuses."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, *, html: bool, loader: BaseLoader | None = None, timezone: str | None = None):
        # trim/lstrip blocks: a `{% if %}` on its own line leaves no blank line behind, which
        # matters in plain-text messages and in letters that keep line breaks.
        super().__init__(autoescape=html, loader=loader, undefined=_Undefined, auto_reload=False,
                         keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                         finalize=_finalize)
        self.globals.pop("lipsum", None)
        self.globals["range"] = _safe_range
        self.binop_table = {**self.binop_table, "*": _mul, "**": _pow, "%": _mod, "+": _add}
        _bounded_filters(self)
        self.filters["date"] = partial(date_filter, timezone=timezone)
        self.bounded_concat = _bounded_concat
        self.last_undeclared: set[str] = set()
        self.concat = _bounded_join  # type: ignore[assignment]

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in REFUSED_ATTRIBUTES:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        """`str.format` is refused (width bombs, attribute walks), not wrapped."""
        return None

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_method_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        generator = _Generator(self, name, filename, None, defer_init, self.optimized)
        generator.visit(source)
        self.last_undeclared = generator.undeclared
        return generator.stream.getvalue()  # type: ignore[attr-defined]

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then refuse what an analyst template may not do (also for included ones)."""
        tree = super()._parse(source, name, filename)
        problems = _check_tree(tree, source, self)
        if problems:
            raise TemplateLoadError(name or "<template>", problems)
        return tree


# ---------------------------------------------------------------------------------------------
# load-time checks


def _column(source: str, line: int, *needles: str) -> int:
    """The 1-based column of the first needle found on `line`, else 1."""
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return 1
    text = lines[line - 1]
    for needle in needles:
        pos = text.find(needle)
        if pos >= 0:
            return pos + 1
    return 1


def _describe(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_describe(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_describe(node.node)}[{node.arg.value!r}]"
    if isinstance(node, nodes.Filter):
        return f"{_describe(node.node)}|{node.name}" if node.node is not None else node.name
    if isinstance(node, nodes.Call):
        return f"{_describe(node.node)}(...)"
    return "a value"


def _is_constant(node: nodes.Node) -> bool:
    return isinstance(node, (nodes.Const, nodes.TemplateData)) or (
        isinstance(node, nodes.Concat) and all(_is_constant(n) for n in node.nodes))


def _check_tree(tree: nodes.Template, source: str, env: SandboxEnvironment) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []

    def add(node: nodes.Node, message: str, *needles: str, code: str = "template-unsafe",
            hint: str | None = None) -> None:
        line = getattr(node, "lineno", 1) or 1
        problems.append(TemplateProblem(message, line, _column(source, line, *needles), code, hint))

    for node in tree.find_all(nodes.Node):  # one walk: a template's checks cost one pass
        if isinstance(node, nodes.Getattr):
            if node.attr.startswith("_") or node.attr in REFUSED_ATTRIBUTES:
                add(node, f"attribute '{node.attr}' is not available in templates", "." + node.attr,
                    hint="templates read fields and values; Python internals are off limits")
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str) and (
                    arg.value.startswith("_") or arg.value in REFUSED_ATTRIBUTES):
                add(node, f"item '{arg.value}' is not available in templates", arg.value)
        elif isinstance(node, nodes.Filter):
            if node.name in REFUSED_FILTERS:
                add(node, f"the '{node.name}' filter is not available in templates", node.name,
                    hint="write the attribute directly: value.name")
            elif node.name not in env.filters:
                add(node, f"unknown filter '{node.name}'", node.name, code="template-invalid",
                    hint=did_you_mean(node.name, env.filters))
            elif node.name == "safe" and node.node is not None and not _is_constant(node.node):
                add(node, f"'|safe' on {_describe(node.node)} would let submitted text run as HTML "
                          "in the page (stored XSS)", "|safe", "safe",
                    hint="remove '|safe': values are escaped, and Docket's helpers already return HTML")
        elif isinstance(node, nodes.Test):
            if node.name not in env.tests:
                add(node, f"unknown test '{node.name}'", node.name, code="template-invalid",
                    hint=did_you_mean(node.name, env.tests))
        elif isinstance(node, nodes.ScopedEvalContextModifier):
            for option in node.options:
                if option.key == "autoescape" and not (isinstance(option.value, nodes.Const)
                                                       and option.value.value is True):
                    add(node, "'{% autoescape false %}' would let submitted text run as HTML "
                              "(stored XSS)", "autoescape", hint="remove the autoescape block")
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            target = node.template
            keyword = type(node).__name__.lower().replace("fromimport", "from")
            if not (isinstance(target, nodes.Const) and isinstance(target.value, str)):
                add(node, f"'{keyword}' needs a template name written in the template, not one "
                          "computed from data", keyword)
                continue
            problem = check_template_name(target.value)
            if problem:
                add(node, problem, target.value)
    problems.sort(key=lambda p: (p.line, p.col))
    return problems


def _syntax_problem(exc: TemplateSyntaxError, source: str) -> TemplateProblem:
    line = exc.lineno or 1
    message = exc.message or "syntax error"
    needle = re.search(r"'([^']+)'", message)
    col = _column(source, line, needle.group(1)) if needle else 1
    if col == 1:
        col = _column(source, line, "{%", "{{")
    return TemplateProblem(message, line, col, "template-syntax")


# ---------------------------------------------------------------------------------------------
# compile and render


class _Guard:
    """One render's deadline: `fire` interrupts the rendering thread with `_RenderTimeout`
    unless `finish` came first; after `finish` returns, no interrupt can arrive any more."""

    __slots__ = ("thread_id", "deadline", "lock", "done", "fired")

    def __init__(self, seconds: float):
        self.thread_id = threading.get_ident()
        self.deadline = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.done = False
        self.fired = False

    def fire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id),
                                                       ctypes.py_object(_RenderTimeout))

    def finish(self) -> None:
        """Idempotent."""
        with self.lock:
            self.done = True
            if self.fired:  # clear a timeout injected but not yet raised
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id), None)


class _Watchdog:
    """One daemon thread watching the deadlines of every render in the process (a thread per
    render would cost ~0.5 ms each; this costs a heap push)."""

    GRANULARITY = 0.05
    """Seconds a render may run past its limit before it is stopped, at most."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Guard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf  # when the watching thread wakes by itself (inf: never)

    def watch(self, seconds: float) -> _Guard:
        guard = _Guard(seconds)
        with self._cond:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="docket-template-watchdog",
                                                daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (guard.deadline, next(self._seq), guard))
            # Wake the thread only for a deadline before the one it already sleeps until: every
            # wake-up hands it the GIL, which cost each render of a rule's message ~40 us.
            if guard.deadline < self._wakes_at:
                self._wakes_at = guard.deadline
                self._cond.notify()
        return guard

    def _run(self) -> None:
        # A finished render's guard stays queued until its deadline (firing it then does
        # nothing): dropping it at once left the queue empty after each quick render, so the
        # next one woke the thread again. The thread wakes at most every `GRANULARITY` seconds.
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].fire()
                if not self._heap:
                    self._wakes_at = math.inf
                    self._cond.wait()
                    continue
                self._wakes_at = max(self._heap[0][0], now + self.GRANULARITY)
                self._cond.wait(self._wakes_at - now)


_WATCHDOG = _Watchdog()
"""Process-wide, like the interpreter it interrupts (not configuration: nothing to inject)."""


def _template_line(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file and line where a render error happened: the innermost frame of
    template code (compiled template code maps its lines back through `debug_info`)."""
    tb = exc.__traceback__
    found: tuple[str | None, int | None] = (None, None)
    while tb is not None:
        frame_globals = tb.tb_frame.f_globals
        template = frame_globals.get("__jinja_template__")
        if template is not None:
            found = (template.name, template.get_corresponding_lineno(tb.tb_lineno))
        elif "__jinja_exception__" in frame_globals:  # a frame Jinja rewrote to the template line
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


class AnalystTemplate:
    """A compiled, checked analyst template; `render` is safe to call with any data."""

    def __init__(self, env: SandboxEnvironment, template: Any, name: str, *, tree: nodes.Template,
                 source: str, max_output: int, time_limit: float):
        self.env = env
        self.template = template
        self.name = name
        self.tree = tree
        self.source = source
        self.max_output = max_output
        self.time_limit = time_limit

    def constant_calls(self, function: str) -> list[tuple[str, int, int]]:
        """Every `function('text')` call with a constant first argument, as (text, line, col):
        lets a definition kind check names at load (`asset('parts/logo.svg')`)."""
        calls = []
        for node in self.tree.find_all(nodes.Call):
            if (isinstance(node.node, nodes.Name) and node.node.name == function and node.args
                    and isinstance(node.args[0], nodes.Const) and isinstance(node.args[0].value, str)):
                value = node.args[0].value
                calls.append((value, node.lineno, _column(self.source, node.lineno, value)))
        return calls

    def attribute_uses(self, root: str) -> list[tuple[str, int, int]]:
        """Every `root.key` and `root['key']` the template reads, as (key, line, col): lets a
        definition kind check field names at load (`record.custmer` -> unknown field)."""
        uses = []
        for node in self.tree.find_all((nodes.Getattr, nodes.Getitem)):
            if not (isinstance(node.node, nodes.Name) and node.node.name == root):
                continue
            if isinstance(node, nodes.Getattr):
                key, needle = node.attr, f"{root}.{node.attr}"
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                key, needle = node.arg.value, node.arg.value
            else:
                continue
            uses.append((key, node.lineno, _column(self.source, node.lineno, needle)))
        return uses

    def render(self, context: Mapping[str, Any]) -> str:
        """Render with `context`; `TemplateRenderError` (with file and line) on any failure,
        including the output cap and the time budget."""
        started = time.monotonic()
        # The timeout is injected asynchronously: it may surface anywhere up to finish(),
        # so both the render and the first finish() sit inside the handler's try.
        watchdog = None
        try:
            try:
                watchdog = _WATCHDOG.watch(self.time_limit)
                return self._render(context)
            finally:
                if watchdog is not None:
                    watchdog.finish()
        except _RenderTimeout as exc:
            if watchdog is not None:
                watchdog.finish()
            name, line = _template_line(exc)
            raise TemplateRenderError(
                f"rendering took longer than {self.time_limit:g} s and was stopped "
                f"(after {time.monotonic() - started:.2f} s)", name=name or self.name,
                line=line) from None

    def _render(self, context: Mapping[str, Any]) -> str:
        parts: list[str] = []
        size = 0
        try:
            for chunk in self.template.generate(dict(context)):
                size += len(chunk)
                if size > self.max_output:
                    raise TemplateRenderError(
                        f"the output is longer than {self.max_output:,} characters and was stopped",
                        name=self.name)
                parts.append(chunk)
        except TemplateRenderError:
            raise
        except TemplateLoadError as exc:  # an included template that fails its checks
            raise TemplateRenderError(str(exc), name=exc.name) from None
        except RecursionError as exc:
            name, line = _template_line(exc)
            raise TemplateRenderError("a macro calls itself too deeply", name=name or self.name,
                                      line=line) from None
        except MemoryError:
            raise TemplateRenderError("the template ran out of memory", name=self.name) from None
        except (UndefinedError, SecurityError, TemplateError, ArithmeticError, TypeError,
                ValueError, LookupError, AttributeError, OverflowError) as exc:
            name, line = _template_line(exc)
            raise TemplateRenderError(_explain(exc), name=name or self.name, line=line) from None
        return "".join(parts)


def _explain(exc: BaseException) -> str:
    if isinstance(exc, TemplateNotFound):
        return f"template '{exc.name}' does not exist in the bundle's templates/ folder"
    if isinstance(exc, UndefinedError):
        return str(exc.message or exc).replace("jinja2.", "")
    if isinstance(exc, SecurityError):
        return f"refused: {exc}"
    if isinstance(exc, (ZeroDivisionError, decimal.DivisionByZero)):
        return "division by zero"
    if isinstance(exc, (OverflowError, decimal.Overflow)):
        return "a number is too large"
    if isinstance(exc, decimal.InvalidOperation):
        return "invalid arithmetic on a number"
    return f"{type(exc).__name__}: {exc}"


def _make_env(html: bool, loader_root: Path | None, files: Mapping[str, str] | None,
              timezone: str | None) -> SandboxEnvironment:
    return SandboxEnvironment(html=html, loader=ConfinedLoader(loader_root, files), timezone=timezone)


def compile_template(source: str, *, name: str, html: bool, loader_root: Path | None = None,
                     files: Mapping[str, str] | None = None, names: Iterable[str] | None = None,
                     members: Mapping[str, Iterable[str]] | None = None,
                     globals: Mapping[str, Any] | None = None, timezone: str | None = None,
                     max_output: int = MAX_OUTPUT_CHARS,
                     time_limit: float = TIME_LIMIT_SECONDS) -> AnalystTemplate:
    """Compile an analyst template; `TemplateLoadError` lists every problem with its position.

    - `html`: autoescape on (HTML letters, HTML e-mail); off for plain text and subjects.
    - `loader_root` (a bundle's `templates/` folder) or `files` ({name: text}, e.g.
      `Bundle.templates`): where `{% include %}`/`{% import %}` find templates; without either,
      the template cannot include anything. Included templates are compiled and checked now.
    - `names`: the variables the template may use; any other name is a load error with a
      did-you-mean hint. None: not checked (a missing one fails when rendered).
    - `members`: for variables that are fixed mappings (e.g. a message's `text` of the form's
      fields), the attributes `name.attr` may read; any other is a load error.
    - `globals`: helpers every render gets (e.g. `qr`), on top of `range`, `dict`, `cycler`,
      `joiner`, `namespace` and the filters `money`, `number` and `date`.
    - `timezone`: the zone `date` shows aware datetimes in (the bundle's).
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateLoadError(name, [TemplateProblem(
            f"the template is longer than {MAX_TEMPLATE_CHARS:,} characters", 1, 1, "template-too-large")])
    env = _make_env(html, loader_root, files, timezone)
    if globals:
        env.globals.update(globals)
    try:
        tree = env.parse(source, name=name, filename=name)
    except TemplateSyntaxError as exc:
        raise TemplateLoadError(name, [_syntax_problem(exc, source)]) from None
    problems = _check_includes(env, tree, source, set())
    try:
        code = env.compile(tree, name=name, filename=name)
    except TemplateSyntaxError as exc:  # e.g. a block defined twice (found while compiling)
        raise TemplateLoadError(name, [*problems, _syntax_problem(exc, source)]) from None
    if names is not None:
        known = set(names) | set(env.globals)
        for missing in sorted(env.last_undeclared - known):
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == missing), 1)
            problems.append(TemplateProblem(f"unknown name '{missing}'", line,
                                            _column(source, line, missing), "template-unknown-name",
                                            did_you_mean(missing, known)))
    for variable, allowed in (members or {}).items():
        allowed = set(allowed)
        for node in tree.find_all(nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name == variable and node.attr not in allowed:
                problems.append(TemplateProblem(
                    f"'{variable}' has no '{node.attr}'", node.lineno,
                    _column(source, node.lineno, f"{variable}.{node.attr}"), "template-unknown-name",
                    did_you_mean(node.attr, allowed)))
    if problems:
        raise TemplateLoadError(name, sorted(problems, key=lambda p: (p.line, p.col)))
    template = env.template_class.from_code(env, code, env.make_globals(None))
    return AnalystTemplate(env, template, name, tree=tree, source=source, max_output=max_output,
                           time_limit=time_limit)


def _check_includes(env: SandboxEnvironment, tree: nodes.Template, source: str,
                    seen: set[str]) -> list[TemplateProblem]:
    """Every included / imported / extended template exists and passes the checks."""
    problems = []
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        target = node.template
        if not (isinstance(target, nodes.Const) and isinstance(target.value, str)):
            continue  # reported by _check_tree
        if check_template_name(target.value) is not None or target.value in seen:
            continue
        seen.add(target.value)
        col = _column(source, node.lineno, target.value)
        try:
            env.get_template(target.value)
        except TemplateNotFound:
            if getattr(node, "ignore_missing", False):
                continue
            known = env.loader.names() if isinstance(env.loader, ConfinedLoader) else []
            problems.append(TemplateProblem(
                f"template '{target.value}' does not exist in the bundle's templates/ folder",
                node.lineno, col, "template-not-found", did_you_mean(target.value, known)))
        except TemplateLoadError as exc:
            for p in exc.problems:
                problems.append(TemplateProblem(f"in '{target.value}' line {p.line}: {p.message}",
                                                node.lineno, col, p.code, p.hint))
        except TemplateSyntaxError as exc:
            problems.append(TemplateProblem(
                f"in '{target.value}' line {exc.lineno}: {exc.message}", node.lineno, col,
                "template-syntax"))
    return problems


def compile_in_document(ctx: "BuildContext", doc: "Document", path: YamlPath, *, html: bool,
                        names: Iterable[str] | None = None, **options: Any) -> AnalystTemplate | None:
    """Compile the template written as the YAML scalar at `path` (e.g. a notification body);
    problems go to `ctx` at their exact file:line:col inside the scalar. None when refused."""
    source = doc.data
    for part in path:
        source = source[part]
    name = f"{doc.file}:{'.'.join(str(p) for p in path)}"
    if getattr(ctx.meta, "timezone", None):  # `|date` shows times in the bundle's zone
        options.setdefault("timezone", ctx.meta.timezone)
    try:
        return compile_template(str(source), name=name, html=html, names=names, **options)
    except TemplateLoadError as exc:
        for diag in exc.diagnostics(lambda line, col: doc.source_map.inside(path, line - 1, col - 1)):
            ctx.diags.error(diag.message, diag.span, code=diag.code, hint=diag.hint, yaml_path=path)
        return None

