"""Definition kinds: what a file in `forms/`, `flows/`, `lists/`... is, and how it is built.

`engine/` knows definitions only in general. Each engine package registers the kinds it owns
(`registry.definition_kinds.add(FormKind())`), so the bundle loader stays generic: it finds files
by folder, validates them against the kind's schema (plugin types chosen at `Dispatch` points),
calls `build`, then `check` once every file of every kind is built.
"""

from __future__ import annotations

import difflib
import logging
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from engine.errors import Diagnostics, ExpressionError, did_you_mean, invisible_hint, plural, wide_punctuation_hint
from engine.registry import BUILT_IN, plugin_in_traceback
from engine.types import Span, YamlPath
from engine.yamlsource import Document

log = logging.getLogger(__name__)


class _Crashed:
    def __repr__(self) -> str:
        return "CRASHED"


CRASHED: Any = _Crashed()
"""What `BuildContext.guarded` returns when its step raised (the error is reported)."""

if TYPE_CHECKING:
    from engine.bundle import Bundle
    from engine.registry import Registry


_DECLARED_IN = {
    "role": "declare it under roles: in bundle.yaml",
    "channel": "set it up under channels: in bundle.yaml",
    "list": "add lists/{name}.yaml",
    "user": "add it to demo_users: in bundle.yaml",
}
"""Where a name of each kind is declared: the hint for one an analyst is adding."""


@dataclass(frozen=True)
class Dispatch:
    """A place where a plugin type is chosen by a `type` key, e.g. every field of a form.

    `path` may contain '*' for any mapping key or list index: ('fields', '*').
    """

    path: tuple[str, ...]
    registry_kind: str
    common_schema: dict[str, Any]
    discriminator: str = "type"


class DefinitionKind(Protocol):
    """A kind of definition file: its folder, schema, and how it becomes a spec."""

    name: str
    aliases: tuple[str, ...]
    folder: str
    key: str
    order: int
    options_schema: dict[str, Any]
    dispatch: tuple[Dispatch, ...]

    def build(self, doc: Document, ctx: "BuildContext") -> Any | None:
        """Turn a schema-valid document into a frozen spec; report problems to ctx."""

    def check(self, bundle: "Bundle", ctx: "BuildContext") -> None:
        """Cross-file checks, once every definition of every kind is built."""


def walk_dispatch(data: Any, pattern: tuple[str, ...], prefix: YamlPath = ()) -> Iterator[tuple[YamlPath, Any]]:
    """Every (path, value) in `data` matching a dispatch path with '*' wildcards."""
    if not pattern:
        yield prefix, data
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if isinstance(data, dict):
            for key, value in data.items():
                yield from walk_dispatch(value, rest, prefix + (key,))
        elif isinstance(data, list):
            for index, value in enumerate(data):
                yield from walk_dispatch(value, rest, prefix + (index,))
    elif isinstance(data, dict) and head in data:
        yield from walk_dispatch(data[head], rest, prefix + (head,))


@dataclass
class BuildContext:
    """What a kind's build and check steps may use: the registry and the diagnostics."""

    registry: "Registry"
    diags: Diagnostics
    documents: dict[tuple[str, str], Document] = field(default_factory=dict)
    """(kind, name) -> the document it came from, for positions in cross-file checks."""
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """kind -> name -> spec, filled kind by kind (lower `order` first) while loading."""
    meta: Any = None
    """The bundle's `BundleMeta` (roles, departments, calendar), None if bundle.yaml failed."""
    incomplete: set[str] = field(default_factory=set)
    """Kinds with a file that failed to load: a reference to one of their names may be defined
    in the broken file, so "unknown" would be noise on top of the real error."""

    def doc(self, kind: str, name: str) -> Document:
        """The document a definition came from."""
        return self.documents[(kind, name)]

    def guarded(self, step: Callable[[], Any], doc: Document | None, path: YamlPath, what: str, *,
                source: str | None = None) -> Any:
        """Run one build or check step (a definition's build, or a plugin's hook called where a
        bundle uses its type) and return its value, or `CRASHED`. An exception from inside it (a
        plugin's code, or a fault in Docket) becomes an error at `path`, naming where it was
        raised, instead of aborting the load; the rest of the file is still checked. `source`
        names the type's plugin when the caller knows it. The traceback goes to the log at info
        level, for whoever fixes the plugin (a server logs it; `docket validate` shows the analyst
        only the error)."""
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - reported, with its origin, as a diagnostic
            log.info("%s failed", what, exc_info=True)
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            origin = f" in {frame.filename}:{frame.lineno}" if frame else ""
            plugin = (source if source not in (None, BUILT_IN) else None) or plugin_in_traceback(exc)
            span = doc.source_map.value(path) if doc is not None else Span("bundle.yaml", 1, 1)
            self.diags.error(f"{what} failed: {type(exc).__name__}: {exc} (raised{origin})", span,
                             code="build-crashed", yaml_path=path,
                             hint=f"a bug in the plugin {plugin}, not in this file" if plugin else
                             "a fault in Docket or a plugin, not in this file")
            return CRASHED

    def error(self, doc: Document, path: YamlPath, message: str, *, code: str = "invalid",
              hint: str | None = None, at_key: bool = False) -> None:
        """Report an error at the value (or key) found at `path` in `doc`."""
        span = doc.source_map.key(path) if at_key else doc.source_map.value(path)
        self.diags.error(message, span, code=code, hint=hint, yaml_path=path)

    def warning(self, doc: Document, path: YamlPath, message: str, *, code: str = "warning",
                hint: str | None = None) -> None:
        self.diags.warning(message, doc.source_map.value(path), code=code, hint=hint,
                           yaml_path=path)

    def unknown(self, doc: Document, path: YamlPath, what: str, name: str,
                known: Any, *, code: str = "unknown-reference", at_key: bool = False) -> None:
        """Report a reference to something that does not exist, with a did-you-mean hint
        (at the key of `path` when the name is the key, as in `{field: where it comes from}`)."""
        if what in self.incomplete:
            return
        names = sorted(known)
        slip = invisible_hint(name) or wide_punctuation_hint(name)  # a character typed or pasted by mistake
        hint = slip or did_you_mean(name, names)
        if hint is None and names:
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            hint = f"known {plural(what)}: {shown}"
        declared = _DECLARED_IN.get(what)
        typo = difflib.get_close_matches(str(name), names, n=1, cutoff=0.8)  # `agnt`: surely a slip
        if declared is not None and not typo and not slip:
            # A name the analyst is adding, not misspelling: "did you mean exception_team?" alone
            # sent them after a typo when the role was simply not declared yet.
            new = f"if '{name}' is a new {what}, {declared.format(name=name)}"
            if hint is None:
                hint = new.capitalize()
            else:
                hint = f"{hint}{'' if hint.endswith('?') else '.'} Or, {new}"
        self.error(doc, path, f"unknown {what} '{name}'", code=code, hint=hint, at_key=at_key)

    def expression(self, doc: Document, path: YamlPath, names: Any, *, source: str | None = None) -> Any:
        """Compile the expression written at `path`; problems are reported with positions.

        Returns the compiled `Expression`, or None when it has errors. `names` None means the
        names are unknown (the form failed to load): nothing is checked or compiled.
        """
        if names is None:
            return None
        from engine.expr import Scope, check_expression, compile_expression

        text = source if source is not None else _get(doc.data, path)
        if not isinstance(text, str):
            text = "true" if text is True else "false" if text is False else str(text)
        scope = Scope.of(names)
        origin = Span(doc.file, 1, 1)
        found = check_expression(text, scope=scope, functions=self.registry.functions, span=origin, warnings=True)
        for diag in found:
            span = diag.span or origin
            report = self.diags.warning if diag.severity == "warning" else self.diags.error
            report(diag.message, doc.source_map.inside(path, span.line - 1, span.col - 1),
                   code=diag.code, hint=diag.hint, yaml_path=path)
        if any(diag.severity != "warning" for diag in found):
            return None
        try:
            return compile_expression(text, scope=scope, functions=self.registry.functions,
                                      span=doc.source_map.inside(path, 0, 0))
        except ExpressionError as exc:  # check and compile must agree; report, never crash
            self.diags.error(exc.message, exc.span, code="expr-invalid", yaml_path=path)
            return None


def _get(data: Any, path: YamlPath) -> Any:
    for part in path:
        data = data[part]
    return data
