"""`docket validate` on a bundle's scenario files (scenarios/*.yaml), without running them.

Each file is read by the loader `docket test` uses (`web.scenarios.load_scenario`: its shape and
its steps), then every name it uses is looked up in the loaded bundle: the forms it submits and
follows, the flow steps it completes, claims, reassigns, reopens and answers, the users in `by`
and `to` (the bundle's `demo_users`), the channels it replies on or counts messages of, the
fields in `values` and `expect.fields`, the status and outcome in `expect.status` and
`expect.outcome`, and the SLA targets of `expect.sla`. Steps act on the record of the last `submit` or
`follow`, so the names of a step are those of that form. A misspelt name is a
`file:line:col` error with a did-you-mean hint, found before a scenario runs into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from engine.bundle import Bundle, display_path
from engine.errors import ConflictError, Diagnostic, Diagnostics, did_you_mean
from engine.expr.context import label_hint
from engine.kinds import BuildContext
from engine.outbox import configured_channels
from engine.registry import Registry
from engine.types import YamlPath
from forms.statuses import record_statuses
from rules.triggers import flow_outcomes
from web.scenarios import ACTIONS, Scenario, load_scenario, scenario_files

NODE_ACTIONS = ("complete", "claim", "reassign", "reopen", "answer")
"""Steps that name a step (node) of the record's flow."""
NO_RECORD_ACTIONS = ("submit", "follow", "wait")
"""Steps that do not act on the current record."""


def check_scenarios(root: Path | str, bundle: Bundle | None, registry: Registry) -> list[Diagnostic]:
    """Every problem of the bundle's scenario files: their shape always, the names they use when
    the bundle loaded (`bundle` not None)."""
    diags = Diagnostics()
    for path in scenario_files(Path(root)):
        scenario = load_scenario(path, display_path(path), diags)
        if scenario is not None and bundle is not None:
            # The loaded lists and flows: what a record's statuses are read from (record_statuses).
            ctx = BuildContext(registry, diags, meta=bundle.meta,
                               definitions={kind: dict(bundle.all(kind)) for kind in ("list", "flow")})
            _Names(bundle, ctx).check(scenario)
    return diags.sorted()


class _Names:
    """What a scenario's names are checked against, and the walk over its steps."""

    def __init__(self, bundle: Bundle, ctx: BuildContext):
        self.ctx = ctx
        self.forms: Mapping[str, Any] = bundle.all("form")
        self.users = {user.username for user in bundle.meta.demo_users}
        self.roles = set(bundle.meta.roles)
        self.channels = set(configured_channels(bundle.meta))
        self.nodes: dict[str, set[str]] = {}
        self.specs: dict[tuple[str, str], Any] = {}  # (form, node) -> its NodeSpec
        for flow in bundle.all("flow").values():
            self.nodes.setdefault(flow.form, set()).update(flow.nodes)
            for node in flow.nodes.values():
                self.specs.setdefault((flow.form, node.id), node)
        self.targets: dict[str, set[str]] = {}
        for policy in bundle.all("sla").values():
            self.targets.setdefault(policy.form, set()).update(policy.targets)

    def check(self, scenario: Scenario) -> None:
        doc, ctx = scenario.doc, self.ctx
        current: str | None = None
        lost = False  # the record's form is unknown (reported): its names cannot be checked
        for i, step in enumerate(scenario.steps):
            at: YamlPath = ("steps", i)
            action = next(key for key in step if key in ACTIONS)
            if action in ("submit", "follow"):
                name = step[action]
                if name in self.forms:
                    current, lost = name, False
                else:
                    ctx.unknown(doc, at + (action,), "form", name, self.forms)
                    current, lost = None, True
            elif current is None:
                if not lost and action not in NO_RECORD_ACTIONS:
                    ctx.error(doc, at, "there is no record yet: begin the scenario with a `submit` step",
                              code="scenario-no-record", at_key=True)
                continue
            self._people(doc, at, step)
            if current is None:
                continue
            if action in NODE_ACTIONS:
                self._node(doc, at + (action,), step[action], current)
            if action == "complete" and not step.get("by"):
                # Completed by no one in particular: whether a user of the role the task is
                # offered to could complete it goes unchecked, and the scenario proves less.
                ctx.warning(doc, at + ("complete",), "without `by`, no one's right to work on the task is "
                            "checked", code="scenario-no-by",
                            hint="name the user who completes it: by: USER (one of the bundle's demo_users)")
            if action == "complete" and "fails" not in step:
                self._outcome(doc, at, step, current)
            if "return_to" in step:
                self._node(doc, at + ("return_to",), step["return_to"], current)
            if action == "reply":
                self._channel(doc, at + ("reply",), step["reply"])
            if isinstance(step.get("values"), dict):  # a step that `fails` may mean a wrong option
                self._fields(doc, at + ("values",), step["values"], current, options="fails" not in step)
            if action == "expect":
                self._expect(doc, at + ("expect",), step["expect"], current)

    def _people(self, doc: Any, at: YamlPath, step: Mapping[str, Any]) -> None:
        for key in ("by", "to"):
            if key in step and step[key] not in self.users:
                self.ctx.unknown(doc, at + (key,), "user", step[key], self.users)

    def _node(self, doc: Any, at: YamlPath, name: str, form: str) -> None:
        nodes = self.nodes.get(form, set())
        if not nodes:
            self.ctx.error(doc, at, f"form '{form}' has no flow: there is no step '{name}' to work on",
                           code="unknown-reference")
        elif name not in nodes:
            self.ctx.unknown(doc, at, "node", name, nodes)

    def _outcome(self, doc: Any, at: YamlPath, step: Mapping[str, Any], form: str) -> None:
        """The completion's `outcome` must be one its step takes (an approval's approve, reject
        or return): the step's own check, run here, said so only when the scenario ran."""
        node = self.specs.get((form, step["complete"]))
        node_type = self.ctx.registry.node_types.get(node.type) if node is not None else None
        if node_type is None:
            return
        try:  # a comment, so that only the outcome is judged
            node_type.check_completion(node, step.get("outcome"), "checked", step.get("return_to"))
        except ConflictError as exc:
            where = at + ("outcome",) if "outcome" in step else at + ("complete",)
            given = f"outcome '{step['outcome']}'" if "outcome" in step else "no outcome"
            self.ctx.error(doc, where, f"step '{node.id}' cannot be completed with {given}",
                           code="scenario-outcome", hint=str(exc))
        except Exception:  # noqa: BLE001 - a comment or value it wants: the run will tell
            return

    def _channel(self, doc: Any, at: YamlPath, name: str, *, at_key: bool = False) -> None:
        if name not in self.channels:
            self.ctx.unknown(doc, at, "channel", name, self.channels, code="unknown-channel", at_key=at_key)

    def _fields(self, doc: Any, at: YamlPath, values: Mapping[str, Any], form: str, *, options: bool = True) -> None:
        spec = self.forms[form]
        for name, value in values.items():
            if name not in spec.fields:
                self.ctx.unknown(doc, at + (name,), "field", name, spec.fields, at_key=True)
            elif not options:
                continue
            elif name in spec.choice_values:
                self._option(doc, at + (name,), name, value, spec.choice_values)
            elif name in spec.multi_choice_values and isinstance(value, list):
                for i, item in enumerate(value):
                    self._option(doc, at + (name, i), name, item, spec.multi_choice_values)

    def _option(self, doc: Any, at: YamlPath, name: str, value: Any, choices: Mapping[str, Any]) -> None:
        """A value given to (or expected of) a choice field must be one of its options: the step
        would be refused when it ran ("Choose one of the listed options"), at the step, without
        the option meant; an expectation could never hold."""
        options = choices[name]
        leaves = getattr(options, "groups", {}).get(value)
        if leaves:
            self.ctx.error(doc, at, f"'{value}' is a group of '{name}': a record holds a value of the last level",
                           code="unknown-option", hint="one of: " + ", ".join(leaves[:8]) + (", ..." if len(leaves) > 8 else ""))
            return
        if not isinstance(value, str) or value in options:
            return
        hint = (label_hint(value, choices, name) or did_you_mean(value, options)
                or "options: " + ", ".join(sorted(options)[:12]) + (", ..." if len(options) > 12 else ""))
        self.ctx.error(doc, at, f"'{value}' is not an option of '{name}'", code="unknown-option", hint=hint)

    def _expect(self, doc: Any, at: YamlPath, expect: Mapping[str, Any], form: str) -> None:
        statuses = record_statuses(self.forms[form], self.ctx)
        if isinstance(expect.get("status"), str) and statuses is not None and expect["status"] not in statuses:
            self.ctx.unknown(doc, at + ("status",), "status", expect["status"], statuses)
        outcomes = flow_outcomes(self.ctx, form)
        if isinstance(expect.get("outcome"), str) and outcomes is not None and expect["outcome"] not in outcomes:
            self.ctx.unknown(doc, at + ("outcome",), "outcome", expect["outcome"], outcomes)
        if isinstance(expect.get("fields"), dict):
            self._fields(doc, at + ("fields",), expect["fields"], form)
        wanted = expect.get("at")
        if isinstance(wanted, str):
            self._node(doc, at + ("at",), wanted, form)
        elif isinstance(wanted, list):
            for i, name in enumerate(wanted):
                self._node(doc, at + ("at", i), name, form)
        for node, want in (expect.get("tasks") or {}).items():
            where = at + ("tasks", node)
            if node not in self.nodes.get(form, set()):
                self.ctx.unknown(doc, where, "node", node, self.nodes.get(form, set()), at_key=True)
            for i, role in enumerate(want.get("roles") or []):
                if role not in self.roles:
                    self.ctx.unknown(doc, where + ("roles", i), "role", role, self.roles)
            for i, user in enumerate(want.get("users") or []):
                if user not in self.users:
                    self.ctx.unknown(doc, where + ("users", i), "user", user, self.users)
        for target in expect.get("sla") or {}:
            known = self.targets.get(form, set())
            if not known:
                self.ctx.error(doc, at + ("sla", target), f"form '{form}' has no SLA policy: there is no "
                               f"target '{target}' to expect", code="unknown-reference", at_key=True)
            elif target not in known:
                self.ctx.unknown(doc, at + ("sla", target), "SLA target", target, known, at_key=True)
        for key in ("messages", "message_text"):
            for channel in expect.get(key) or {}:
                self._channel(doc, at + (key, channel), channel, at_key=True)


__all__ = ["check_scenarios"]
