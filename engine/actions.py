"""The action contract: what a rule's `do:` step or a flow's `action` node runs.

Action types live in `registry.actions`, registered like every other plugin kind. Each type
declares its name, the JSON Schema of its YAML options, a `compile` step run once at bundle load
(references checked with positions, expressions compiled) and a `run` step given an
`ActionContext`. The rule engine (rules/) and the flow engine's `action`/`notify` nodes both run
actions through this contract only, so flows never import rules and a plugin's action works in
both places.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Protocol, runtime_checkable

from sqlalchemy.engine import Connection

from engine.errors import DocketError
from engine.events import Event
from engine.expr import EvalContext
from engine.kinds import BuildContext
from engine.registry import BUILT_IN, raised_in
from engine.types import YamlPath
from engine.yamlsource import Document

if TYPE_CHECKING:  # pragma: no cover - typing only
    from engine.runtime import Runtime

__all__ = ["ActionContext", "ActionError", "ActionScope", "ActionType", "BaseAction", "step_failure"]

log = logging.getLogger(__name__)


class ActionError(Exception):
    """An action could not do its work (a missing service, a bad value at run time).

    The caller rolls back what the action group did and leaves an incident naming the action.
    """


def step_failure(exc: BaseException, action: str, source: str) -> str:
    """Why an action step failed, as its incident says it: an `ActionError` (or Docket's own
    error) in its plain words; anything else with its type (a KeyError alone reads just 'text')
    and, for a plugin's action, the plugin's line it came from and whose bug it is, the
    traceback going to the log for that plugin's author."""
    if isinstance(exc, (ActionError, DocketError)) and str(exc):
        return str(exc)
    reason = f"{type(exc).__name__}: {exc}"
    if source == BUILT_IN:
        return reason
    log.error("action '%s' (plugin %s) failed", action, source, exc_info=exc)
    where = raised_in(exc)
    return f"{reason}{f' (raised in {where})' if where else ''}: a bug in the plugin {source}"


@dataclass(frozen=True)
class ActionScope:
    """What an action is compiled against: the form whose records it acts on (None when the
    action runs without a record, e.g. a scheduled rule) and the names expressions may use."""

    form: str | None
    names: frozenset[str] | None
    """Expression names (the form's fields, `record`, `user`, ...); None: the form failed to
    load, so expressions are not checked."""
    where: str = "rule"
    """'rule' or 'flow': some actions only make sense in one of them."""


@dataclass
class ActionContext:
    """Everything an action may use at run time, inside the caller's transaction.

    `evaluate(expr)` evaluates a compiled expression over the record's values (plus `record`,
    `user`, `event` and whatever the caller added); failures raise `ExpressionError`.
    """

    conn: Connection
    runtime: "Runtime"
    form: str | None
    record_id: int | None
    record: dict[str, Any]
    actor: str | None
    event: Event | None = None
    names: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    """Who runs the action, for history and incidents: `rule:<set>.<name>` or `flow:<flow>.<node>`."""

    def eval_context(self) -> EvalContext:
        rt = self.runtime
        return EvalContext(now=rt.clock.now(), calendar=rt.bundle.meta.calendar, services=rt.services)

    def evaluate(self, expression: Any) -> Any:
        """The value of a compiled expression (or the literal itself when not an expression)."""
        if expression is None or not hasattr(expression, "evaluate"):
            return expression
        return expression.evaluate(self.names or self.record, self.eval_context())

    def service(self, name: str) -> Any:
        """A runtime service (`outbox`, `flows`, `forms`, ...); ActionError when not running."""
        found = self.runtime.services.get(name)
        if found is None:
            raise ActionError(f"the '{name}' service is not running")
        return found

    def refresh(self) -> None:
        """Re-read the record after an action changed it, so later actions see the new values."""
        if self.form is None or self.record_id is None:
            return
        values = self.service("forms").read(self.conn, self.form, self.record_id)
        self.record.clear()
        self.record.update(values)
        if self.names:
            self.names.update(values)
            self.names["record"] = self.record


@runtime_checkable
class ActionType(Protocol):
    """An action plugin. `compile` returns whatever `run` needs (checked at load)."""

    name: str
    aliases: tuple[str, ...]
    options_schema: dict[str, Any]
    description: str
    examples: tuple[str, ...]

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        """Check the options at `path` in `doc` (report to ctx); return the compiled action."""

    def run(self, act: ActionContext, compiled: Any) -> None:
        """Do the work inside `act.conn`'s transaction; raise to fail the whole action group."""


class BaseAction:
    """Convenience base for built-in actions: class attributes and a no-op compile."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    options_schema: ClassVar[dict[str, Any]] = {"properties": {}}
    description: ClassVar[str] = ""
    examples: ClassVar[tuple[str, ...]] = ()
    needs_record: ClassVar[bool] = True
    """False for actions that also work without a record (notify, webhook in a scheduled rule)."""

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        return dict(options)

    @abstractmethod
    def run(self, act: ActionContext, compiled: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

