"""The plugin registry: one `Kind` per plugin kind, held by a `Registry` instance.

Built-ins and third-party plugins register through the same call, `register(registry)`. There is
no module-level registry: the composition root (cli.py, web.app) builds one and passes it down,
so tests build fresh ones and never need to restore global state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Callable, Generic, Iterator, Protocol, TypeVar, runtime_checkable

from engine.errors import DocketError, did_you_mean
from engine.registry_contracts import CONTRACTS, RESERVED, Contract, contract_problems, word_problems

ENTRY_POINT_GROUP = "docket.plugins"
BUILT_IN = "built-in"
"""The source of Docket's own types: trusted (their tests check the contracts), so only the
cheap name checks run for them and start-up stays fast."""


@runtime_checkable
class PluginType(Protocol):
    """What every registered type declares about itself.

    `name` is the word analysts write in YAML (`type: task`); `aliases` keep renamed types
    working; `options_schema` is the JSON Schema fragment of the type's YAML options, merged
    into the kind's schema so editors validate and complete plugin options like built-ins.
    """

    name: str
    aliases: tuple[str, ...]
    options_schema: dict[str, Any]


class RegistryError(DocketError):
    """A plugin could not be registered (duplicate name, missing attribute).

    `kind` and `words` say which type was refused (its name and aliases), so a bundle that uses
    one of those words can be told which plugin meant to add it and why it could not.
    """

    def __init__(self, message: str, *, kind: str | None = None, words: tuple[str, ...] = ()):
        super().__init__(message)
        self.kind = kind
        self.words = words
        self.where: str | None = None
        """`file:line` of the plugin's `add` call, for a refusal collected by `Registry.use`."""


T = TypeVar("T")


class Kind(Generic[T]):
    """The registered types of one plugin kind, looked up by name or alias."""

    def __init__(self, kind: str, *, contract: Contract | None = None, reserved: str | None = None):
        self.kind = kind
        self.contract = contract
        """What the engines call on this kind's types, checked when a plugin adds one."""
        self.reserved = reserved
        """Why nothing may be added yet (no engine reads this kind), or None."""
        self._types: dict[str, T] = {}
        self._sources: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self.loading: str | None = None
        """The plugin whose `register` is running (set by `Registry.use`), or None."""
        self.refusals: list[RegistryError] | None = None
        """While `Registry.use` runs a plugin: where `add` puts each type it refuses, instead of
        raising, so the plugin's author sees every refused type in one run, not one per fix."""
        self.problems: list[str] = []
        """The plugins that failed to load: the holding `Registry.problems` itself."""
        self.refused: dict[tuple[str, str], tuple[str, str]] = {}
        """(kind, word) -> (plugin, reason) of a type that plugin could not register: the
        holding `Registry.refused` itself."""

    def add(self, plugin: T, *, source: str | None = None) -> T:
        """Register a type; a name or alias already taken is an error naming both sources.

        A type that breaks the kind's contract (docs/plugins.md) is a RegistryError saying what
        is wrong, raised here rather than as a traceback while a bundle loads; inside
        `Registry.use` it is collected instead, and `use` reports it with the others. Without
        `source` the type is the loading plugin's (inside `Registry.use`) or Docket's own; a
        plugin cannot pass itself off as built-in, which would skip the contract checks.
        """
        if self.loading is not None and source in (None, BUILT_IN):
            source = self.loading
        source = BUILT_IN if source is None else source
        refusal = self._refusal(plugin, source)
        if refusal is None:
            self._put(plugin, source)
        elif self.refusals is not None:
            refusal.where = _plugin_line()
            self.refusals.append(refusal)
        else:
            raise refusal
        return plugin

    def _refusal(self, plugin: Any, source: str) -> RegistryError | None:
        """Why `plugin` cannot be added from `source`, or None when it can."""
        name = getattr(plugin, "name", None)
        words = _words(name, getattr(plugin, "aliases", ()))
        if self.reserved is not None:
            return RegistryError(f"{self.kind} {name!r} from {source}: {self.reserved}",
                                 kind=self.kind, words=words)
        problems = self.problems_of(plugin, source=source)
        if problems:
            # Without a name, the class is what its author can look for.
            what = (f"{self.kind} '{name}'" if isinstance(name, str) and name
                    else f"{self.kind} {type(plugin).__name__}")
            return RegistryError(f"{what} from {source}: {'; '.join(problems)}", kind=self.kind, words=words)
        for word in (name, *tuple(getattr(plugin, "aliases", ()) or ())):
            owner = self._aliases.get(word)
            if owner is not None:
                return RegistryError(f"{self.kind} '{word}' from {source} is already registered by "
                                     f"{self._sources[owner]}", kind=self.kind, words=words)
        return None

    def _put(self, plugin: Any, source: str) -> None:
        name = plugin.name
        aliases = tuple(getattr(plugin, "aliases", ()) or ())
        self._types[name] = plugin
        self._sources[name] = source
        for word in (name, *aliases):
            self._aliases[word] = name

    def problems_of(self, plugin: Any, *, source: str = "plugin") -> list[str]:
        """Why `plugin` cannot be registered in this kind ([] when it can); built-ins get only
        the name checks."""
        problems = word_problems(getattr(plugin, "name", None), getattr(plugin, "aliases", ()))
        if source != BUILT_IN:
            problems += contract_problems(self.contract, plugin)
        return problems

    def get(self, name: str) -> T | None:
        """The type registered under this name or alias, or None."""
        canonical = self._aliases.get(name)
        return None if canonical is None else self._types[canonical]

    def canonical(self, name: str) -> str | None:
        """The canonical name for a name or alias."""
        return self._aliases.get(name)

    def hint(self, name: str) -> str | None:
        """A did-you-mean hint for an unknown name; when a plugin failed to load, it names that
        plugin too: 'did you mean join?' alone sends the analyst after a typo that is not there.
        When a plugin tried to add this very name and was refused, the hint names it and why."""
        refused = self.refused.get((self.kind, name))
        if refused is not None:
            plugin, reason = refused
            return (f"the plugin {plugin} adds '{name}' but Docket refused it: {reason}. "
                    "A bug in that plugin, not in this file")
        close = did_you_mean(name, self._aliases)
        failed = [problem.split(": ", 1)[0].removeprefix("plugin ") for problem in self.problems]
        if not failed:
            return close
        if len(failed) == 1:
            note = (f"the plugin {failed[0]} failed to load (see its warning): it may be the one "
                    f"that adds '{name}'")
        else:
            note = (f"the plugins {', '.join(failed[:-1])} and {failed[-1]} failed to load (see "
                    f"their warnings): one of them may add '{name}'")
        return f"{close} Or {note}" if close else note

    def names(self) -> list[str]:
        """Canonical names, sorted."""
        return sorted(self._types)

    def words(self) -> list[str]:
        """Every name and alias, sorted: what YAML may write."""
        return sorted(self._aliases)

    def source(self, name: str) -> str:
        return self._sources[self._aliases[name]]

    def __contains__(self, name: object) -> bool:
        return name in self._aliases

    def __iter__(self) -> Iterator[T]:
        return iter([self._types[n] for n in self.names()])

    def __len__(self) -> int:
        return len(self._types)

    def copy(self) -> "Kind[T]":
        new: Kind[T] = Kind(self.kind, contract=self.contract, reserved=self.reserved)
        new._types = dict(self._types)
        new._sources = dict(self._sources)
        new._aliases = dict(self._aliases)
        return new


def _kind(kind: str, attribute: str) -> Kind[Any]:
    """The empty kind a `Registry` holds under `attribute`, with its contract."""
    return Kind(kind, contract=CONTRACTS.get(attribute), reserved=RESERVED.get(attribute))


@dataclass
class Registry:
    """One registry per plugin kind. Build it in a composition root; pass it down."""

    field_types: Kind[Any] = field(default_factory=lambda: _kind("field type", "field_types"))
    node_types: Kind[Any] = field(default_factory=lambda: _kind("node type", "node_types"))
    actions: Kind[Any] = field(default_factory=lambda: _kind("action", "actions"))
    functions: Kind[Any] = field(default_factory=lambda: _kind("function", "functions"))
    chart_types: Kind[Any] = field(default_factory=lambda: _kind("chart type", "chart_types"))
    channels: Kind[Any] = field(default_factory=lambda: _kind("channel", "channels"))
    sms_providers: Kind[Any] = field(default_factory=lambda: _kind("SMS provider", "sms_providers"))
    assignment_strategies: Kind[Any] = field(
        default_factory=lambda: _kind("assignment strategy", "assignment_strategies"))
    definition_kinds: Kind[Any] = field(default_factory=lambda: _kind("definition kind", "definition_kinds"))
    problems: list[str] = field(default_factory=list)
    """Plugins that failed to load, by name, with the reason. The others still load."""
    refused: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(kind, name or alias) -> (plugin, reason) for each type a plugin could not register."""

    def __post_init__(self) -> None:
        for kind in self.kinds().values():  # so an unknown name's hint can name a failed plugin
            kind.problems = self.problems
            kind.refused = self.refused

    def kinds(self) -> dict[str, Kind[Any]]:
        """Every plugin kind, by attribute name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("problems", "refused")}

    def plugins(self) -> dict[str, int]:
        """How many types each plugin registered, by its source (`docket serve` prints it)."""
        counts: dict[str, int] = {}
        for kind in self.kinds().values():
            for source in kind._sources.values():
                if source != BUILT_IN:
                    counts[source] = counts.get(source, 0) + 1
        return dict(sorted(counts.items()))

    def copy(self) -> "Registry":
        """An independent copy (like jsonschema's `extend()`): add to it without touching this."""
        return Registry(**{name: kind.copy() for name, kind in self.kinds().items()},
                        problems=list(self.problems), refused=dict(self.refused))

    def use(self, register: Callable[["Registry"], None], *, source: str) -> bool:
        """Run one plugin's `register(registry)`; a failure is recorded, not raised.

        A plugin registers whole or not at all: when `register` raises or `add` refuses any of
        its types, nothing it added stays (half a plugin, say a node type without the action
        its flows need, fails later and further from the cause). Every refused type is its own
        line of `problems`, so one run shows all that its author must fix.

        Recorded only: the composition roots show `problems` once (`docket validate` as
        warnings, `web.system.boot` in the log), so a failure is not reported twice.
        """
        if isinstance(register, ModuleType):  # `module` instead of `module:register`
            self.problems.append(
                f"plugin {source}: TypeError: the entry point names the module {register.__name__}, "
                f"not its register function: write \"{register.__name__}:register\" in the "
                "plugin's pyproject.toml")
            return False
        if not callable(register):
            self.problems.append(f"plugin {source}: TypeError: {register!r} is not a "
                                 "register(registry) function")
            return False
        kinds = list(self.kinds().values())
        before = [(dict(k._types), dict(k._sources), dict(k._aliases)) for k in kinds]
        refusals: list[RegistryError] = []
        failure: Exception | None = None
        for kind in kinds:  # what it adds without source= is its own, and contract-checked
            kind.loading, kind.refusals = source, refusals
        try:
            register(self)
        except Exception as exc:  # a broken plugin must not stop the others
            failure = exc
        finally:
            for kind in kinds:
                kind.loading, kind.refusals = None, None
        if failure is None and not refusals:
            return True
        for kind, (types, sources, aliases) in zip(kinds, before):
            kind._types, kind._sources, kind._aliases = types, sources, aliases
        for refusal in refusals:
            where = f" (raised in {refusal.where})" if refusal.where else ""
            self.problems.append(f"plugin {source}: RegistryError: {refusal}{where}")
        if failure is not None:
            self.problems.append(_problem(source, failure))
        for refusal in [*refusals, *([failure] if isinstance(failure, RegistryError) else [])]:
            if refusal.kind is not None:
                for word in refusal.words:
                    self.refused.setdefault((refusal.kind, word), (source, str(refusal)))
        return False

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register every installed plugin of the `docket.plugins` entry-point group, in the
        order of their names: Python finds distributions in the order of the file system, so
        when two plugins claim one name, the one that wins would differ between machines."""
        loaded = []
        for ep in sorted(entry_points(group=group), key=lambda ep: (ep.name, ep.value)):
            try:
                register = ep.load()
            except Exception as exc:
                self.problems.append(_problem(f"{ep.name} ({ep.value})", exc))
                continue
            if self.use(register, source=f"{ep.name} ({ep.value})"):
                loaded.append(ep.name)
        return loaded


def _words(name: Any, aliases: Any) -> tuple[str, ...]:
    """The words a type would be known by, as far as they are words at all."""
    listed = aliases if isinstance(aliases, (tuple, list)) else ()
    return tuple(word for word in (name, *listed) if isinstance(word, str) and word)


def _problem(source: str, exc: BaseException) -> str:
    """One line of `Registry.problems`: the plugin, the exception and, since no traceback is
    shown, the plugin's line it came from (for a RegistryError, the `add` call)."""
    where = raised_in(exc)
    return f"plugin {source}: {type(exc).__name__}: {exc}" + (f" (raised in {where})" if where else "")


def _plugin_line() -> str | None:
    """`file:line` of the innermost caller outside Docket's engine: the plugin's `add` call."""
    import sys

    frame = sys._getframe(1)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).split(".")[0] != "engine":
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def raised_in(exc: BaseException) -> str | None:
    """`file:line` of the innermost frame of `exc` that is neither Docket's engine (the registry
    that reported it) nor Python's import machinery (which only says a module or name is
    missing: the message says that already), or None when there is no such frame."""
    import traceback

    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        top = str(frame.f_globals.get("__name__", "")).split(".")[0]
        if top not in ("engine", "importlib", "_frozen_importlib", "_frozen_importlib_external"):
            found = f"{frame.f_code.co_filename}:{line}"
    return found


def plugin_in_traceback(exc: BaseException) -> str | None:
    """The installed plugin (distribution name) whose code is the innermost in the traceback,
    or None when no plugin's code is in it (the fault is Docket's)."""
    import traceback
    from importlib.metadata import entry_points

    owners = {ep.value.split(":")[0].split(".")[0]: (ep.dist.name if ep.dist else ep.name)
              for ep in entry_points(group=ENTRY_POINT_GROUP)}
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        top = str(frame.f_globals.get("__name__", "")).split(".")[0]
        if top in owners:
            found = owners[top]
    return found
