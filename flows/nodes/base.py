"""The node-type plugin contract: one class per type, describing itself completely."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping

from engine.durations import Duration, parse_duration
from engine.errors import ConflictError
from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA, WORD_MEANS
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.spec import NodeSpec

if TYPE_CHECKING:
    from flows.node_run import NodeRun


class NodeType:
    """Base of every node type.

    Load time: `options_schema` validates the node's own keys; `targets` names the nodes it can
    lead to (for the graph checks); `compile` checks references and compiles expressions,
    returning what the runtime needs. Run time: `enter` is called when a token arrives;
    `check_completion` before one of the node's tasks is completed, `on_task_completed` after.
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    options_schema: ClassVar[dict[str, Any]] = {"properties": {}}
    examples: ClassVar[tuple[str, ...]] = ()
    terminal: ClassVar[bool] = False
    """True for node types that end a path (no `next` needed)."""
    needs_next: ClassVar[bool] = True
    edge_labels: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    """The words on the flow diagram's arrows, by the first key of the path `targets` yields
    (`"next"`, `"audit"`), each a label `{"en": ..., "zh-CN": ...}`; an arrow without one is
    blank, or reads as a built-in's (`approve`, `reject`, `return`, `timeout`)."""

    def targets(self, node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
        """(path inside the node, target node id) for every outgoing edge."""
        if node.next is not None:
            yield ("next",), node.next

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        """Check the node against the rest of the bundle; return compiled parts."""
        return {}

    def check_bundle(self, node: NodeSpec, flow: Any, bundle: Any, ctx: BuildContext, doc: Document,
                     path: YamlPath) -> None:
        """Checks against other definitions once the whole bundle is built (e.g. another flow)."""
        return None

    @abstractmethod
    def enter(self, run: "NodeRun") -> None:
        raise NotImplementedError

    def outcomes(self, node: NodeSpec) -> list[str]:
        """The outcomes a person chooses between when completing the node's task (none: the
        task is simply done), the usual one first. By default the node's `outcomes`."""
        return list(node.options.get("outcomes") or [])

    def recorded_outcomes(self, node: NodeSpec) -> frozenset[str] | None:
        """The values `flow.<node>.outcome` may hold once the node is done, or None when they
        are not known: a condition comparing it with another value is a load error
        (the scope `flows/kind.py` gives expressions). By default the node's `outcomes`."""
        outcomes = node.options.get("outcomes")
        return frozenset(outcomes) if outcomes else None

    def check_completion(self, node: NodeSpec, outcome: str | None, comment: str | None,
                         return_to: str | None) -> None:
        """Refuse a completion the node cannot take (ConflictError / ValidationFailed), before
        anything is written. By default the outcome must be one of the node's `outcomes`, and a
        node without outcomes takes none (an integration's "approve" on a plain step was kept in
        the history as if the step had been approved), nor a step to return to."""
        outcomes = node.options.get("outcomes")
        if outcomes and outcome not in outcomes:
            raise ConflictError(f"choose one of: {', '.join(outcomes)}")
        if not outcomes and outcome is not None:
            raise ConflictError(f"step '{node.id}' has no outcomes to choose from: complete it without one")
        if return_to is not None:
            raise ConflictError(f"step '{node.id}' cannot return the record to an earlier step: "
                                "only an approval with return_to: can")

    def on_task_completed(self, run: "NodeRun", task: Any, outcome: str | None) -> None:
        run.move_to(run.node.next)


HIDDEN_FIELDS_SCHEMA: dict[str, Any] = {
    "type": "array", "items": {"type": "string"},
    "description": "form fields the people working at this step may not see (server-enforced on "
                   "pages, lists, exports and prints), e.g. the compensation amount for frontline staff"}

SHOW_FIELDS_SCHEMA: dict[str, Any] = {
    "type": "array", "items": {"type": "string"}, "uniqueItems": True,
    "description": "form fields shown read-only at the top of the step's task, what the person "
                   "decides on (e.g. the amount and basis of a compensation to approve)"}


def check_people_and_fields(node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                            path: YamlPath) -> None:
    """The load checks every node that gives people work shares: the fields it names (`fields`,
    `show`, `hidden_fields`) exist on the form, and the roles and departments its `assign` names
    (including watchers) exist in bundle.yaml."""
    form = ctx.definitions.get("form", {}).get(flow["form"])
    for key in ("fields", "hidden_fields", "show"):
        for i, name in enumerate(node.options.get(key, [])):
            if form is not None and name not in form.fields:
                ctx.unknown(doc, path + (key, i), "field", name, form.fields)
    hidden, edited = set(node.options.get("hidden_fields", [])), set(node.options.get("fields", []))
    for i, name in enumerate(node.options.get("show", [])):
        if name in hidden:
            ctx.error(doc, path + ("show", i), f"field '{name}' is both shown and hidden at this step",
                      code="show-hidden", hint="remove it from `show` or from `hidden_fields`")
        elif name in edited:
            ctx.warning(doc, path + ("show", i), f"field '{name}' is in `fields` too: the step's form "
                        "already shows it, to edit", code="show-edited", hint="remove it from `show`")
    _check_roles_and_departments(node.options.get("assign", {}), ctx, doc, path + ("assign",))
    if form is not None:
        _check_required_here(node, form, ctx, doc, path)


def _check_required_here(node: NodeSpec, form: Any, ctx: BuildContext, doc: Document, path: YamlPath) -> None:
    """A field required while the record has this step's status (`required_if: status ==
    "awaiting_reply"`) that the step does not let its person fill in: unless an earlier step or a
    rule fills it, every completion of the task is refused ("This field is required") and the
    record is stuck there. It loaded clean when an analyst swapped `resolution` out of the reply."""
    status = node.options.get("status")
    if not isinstance(status, str):
        return
    edited = list(node.options.get("fields", []))
    for name, spec in form.fields.items():
        if name in edited or spec.required_if is None:
            continue
        if status in statuses_compared(getattr(spec.required_if, "source", "")):
            ctx.warning(doc, path + (("fields",) if "fields" in node.options else ("status",)),
                        f"field '{name}' is required while the record's status is '{status}' (its "
                        "required_if), and this step does not let its person fill it in: unless an "
                        "earlier step or a rule fills it, the step can never be completed",
                        code="required-not-editable",
                        hint=f"add it to the step's fields: [{', '.join([*edited, name])}]")


def statuses_compared(source: str) -> frozenset[str]:
    """The statuses a condition holds at when it is only a test of the status (`status ==
    "a"`, `status in ("a", "b")`, or such tests joined by `or`); empty for any other condition."""
    import ast

    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    tests = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.Or) else [tree]
    found: set[str] = set()
    for test in tests:
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.Name)
                and test.left.id == "status"):
            return frozenset()
        right = test.comparators[0]
        if isinstance(test.ops[0], ast.Eq) and isinstance(right, ast.Constant) and isinstance(right.value, str):
            found.add(right.value)
        elif isinstance(test.ops[0], ast.In) and isinstance(right, (ast.Tuple, ast.List)) and all(
                isinstance(item, ast.Constant) and isinstance(item.value, str) for item in right.elts):
            found.update(item.value for item in right.elts)
        else:
            return frozenset()
    return frozenset(found)


ASSIGN_PROPERTIES: dict[str, Any] = {
    "role": {"type": "string"},
    "user": {"type": "string"},
    "department": {"type": "string"},
    "department_from": {"type": "string",
                        "description": "an expression giving a department of bundle.yaml, e.g. a "
                                       "department field such as owner_department"},
    "expression": {"type": "string", "description": "an expression giving a username, e.g. account_manager"},
    "submitter": {"type": "boolean", "description": "the user who created the record"},
    "assignee_of": {"type": "string", "description": "whoever did (or holds) the task of that node"},
    "manager_of": {"type": "string",
                   "description": "the manager (bundle.yaml `manager`) of: `submitter`, "
                                  "`assignee_of: <node>`, or an expression giving a username"},
    "strategy": {"enum": ["claim", "round_robin", "least_loaded"]},
    "cc": {"type": "object", "additionalProperties": False,
           "description": "watchers told about the task (抄送), e.g. the account manager",
           "properties": {"roles": {"type": "array", "items": {"type": "string"}},
                          "users": {"type": "array", "items": {"type": "string"}},
                          "expression": {"type": "string",
                                         "description": "an expression giving a username or a list"}}},
}
ASSIGN_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "description": "who does the task",
    "properties": ASSIGN_PROPERTIES,
    WORD_MEANS: "role",  # `assign: agent` is the role agent's work: say so
}

ESCALATION_SCHEMA: dict[str, Any] = {
    "type": "array", "minItems": 1, "maxItems": 3,
    "description": "graded response (分级响应): what escalating the task to level 1-3 changes",
    "items": {
        "type": "object", "required": ["level"], "additionalProperties": False,
        "properties": {
            "level": {"enum": [1, 2, 3]},
            "label": LABEL_SCHEMA,
            "when": {"type": ["string", "boolean"],
                     "description": "escalate to this level at once when the task opens and this holds"},
            "assign": ASSIGN_SCHEMA,
            "keep_assignees": {"type": "boolean",
                               "description": "add the new people to the task instead of replacing its assignees"},
            "cc": ASSIGN_PROPERTIES["cc"],
            "status": {"type": "string", "description": "record status once escalated to this level"},
        },
    },
}


TIMEOUT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["after", "to"], "additionalProperties": False,
    "description": "when nobody has completed the step this long after it opened, its task is "
                   "cancelled and the flow goes on to `to` (e.g. a customer who never answers)",
    "properties": {
        "after": {"type": "string", "description": "a duration: 10 workdays, 72h, 30d"},
        "to": {"type": "string", "description": "the step the flow goes on to"},
    },
}


DUE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["after"], "additionalProperties": False,
            "properties": {"when": {"type": "string", "description": "a condition on the record"},
                           "after": {"type": "string", "description": "a duration: 4 workhours, 1 workdays"}}}},
    ],
    "description": "how long after it opens the step's task is due (a duration: 4 workhours, "
                   "1 workdays, 2h; working time in the bundle calendar), or a list of `{when, after}` "
                   "of which the first whose `when` holds (the last without `when`) applies. The inbox "
                   "marks it overdue past that time and the step measures count it late; nothing fires "
                   "(reminders and escalation are the SLA's). Without it, a step with `timeout:` is due "
                   "at the timeout",
    "examples": ["4 workhours", [{"when": "urgency == 'urgent'", "after": "1 workhours"}, {"after": "4 workhours"}]],
}


def _duration(raw: Any, ctx: BuildContext, doc: Document, where: YamlPath, what: str, code: str,
              hint: str | None = None) -> Duration | None:
    """`raw` as a Duration longer than zero, or None with the error reported at `where` (`what`
    names the option in the message: "a timeout")."""
    try:
        amount = parse_duration(str(raw))
    except ValueError as exc:
        ctx.error(doc, where, str(exc), code=code, hint=hint)
        return None
    if amount.amount <= 0:
        ctx.error(doc, where, f"{what} must be longer than zero", code=code, hint=hint)
        return None
    return amount


def compile_timeout(node: NodeSpec, ctx: BuildContext, doc: Document, path: YamlPath) -> Any:
    """The node's `timeout:` as (Duration, target), or None (none, or reported at its position)."""
    raw = node.options.get("timeout")
    if not raw:
        return None
    if raw["to"] == node.id:
        ctx.error(doc, path + ("timeout", "to"), "a step cannot time out into itself", code="timeout",
                  hint="name the step that handles the case nobody completed this one in time")
        return None
    amount = _duration(raw["after"], ctx, doc, path + ("timeout", "after"), "a timeout", "timeout")
    return None if amount is None else (amount, raw["to"])


def compile_due(node: NodeSpec, ctx: BuildContext, doc: Document, path: YamlPath,
                scope: set[str] | None) -> tuple[tuple[Any, Duration], ...] | None:
    """The node's `due:` as ((condition or None, Duration), ...), the first whose condition
    holds applying; None when it has none or it is wrong (reported at its position)."""
    raw = node.options.get("due")
    if raw is None:
        return None
    hint = "how long the step's task may take once it opens, e.g. due: 4 workhours"
    if not isinstance(raw, list):
        amount = _duration(raw, ctx, doc, path + ("due",), "a due time", "due", hint=hint)
        return None if amount is None else ((None, amount),)
    choices: list[tuple[Any, Duration]] = []
    for i, item in enumerate(raw):
        at = path + ("due", i)
        when = ctx.expression(doc, at + ("when",), scope) if "when" in item else None
        amount = _duration(item["after"], ctx, doc, at + ("after",), "a due time", "due", hint=hint)
        if amount is None or ("when" in item and when is None):
            return None
        if "when" not in item and i < len(raw) - 1:
            ctx.error(doc, at, "a due time without `when` applies to every record: the ones after it "
                      "never do", code="due", hint="put the one without `when` last")
            return None
        choices.append((when, amount))
    if "when" in raw[-1]:
        ctx.warning(doc, path + ("due",), "every due time has a condition: a record matching none has "
                    "no due time at this step", code="due-no-default",
                    hint="end the list with one without `when`, e.g. - after: 4 workhours")
    return tuple(choices)


def warn_due_after_timeout(due: tuple[tuple[Any, Duration], ...], timeout: Duration, ctx: BuildContext,
                           doc: Document, path: YamlPath) -> None:
    """A due time later than the step's timeout is never reached (the timeout moves the record
    on first): a warning at `due:`. Compared only in one kind of time (wall or working)."""
    calendar = ctx.meta.calendar if ctx.meta is not None else None

    def length(amount: Duration) -> Any:
        if not amount.business:
            return amount.to_timedelta()
        return calendar.work_time(amount) if calendar is not None else None

    limit = length(timeout)
    for _, amount in due:
        own = length(amount)
        if limit is not None and own is not None and amount.business == timeout.business and own > limit:
            ctx.warning(doc, path + ("due",), f"the step is due {amount} after it opens, later than its "
                        f"timeout ({timeout}) moves the record on: that due time is never reached",
                        code="due-after-timeout",
                        hint="give a due time shorter than the timeout, or leave due: out (the step is "
                             "then due when the timeout acts)")
            return


def timeout_target(node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
    """The edge a step's `timeout:` adds to the flow graph."""
    raw = node.options.get("timeout")
    if isinstance(raw, Mapping) and isinstance(raw.get("to"), str):
        yield ("timeout", "to"), raw["to"]


def compile_assign(assign: Mapping[str, Any], flow: Any, ctx: BuildContext, doc: Document,
                   path: YamlPath, scope: set[str] | None) -> dict[str, Any]:
    """Check an `assign:` mapping and compile its expressions.

    Returns {"expression": Expression, "department_from": Expression, "manager_of":
    ("submitter",) | ("assignee_of", node) | ("expression", Expression), "cc": Expression} for
    the keys present.
    """
    compiled: dict[str, Any] = {}
    nodes = flow.get("nodes") or {}
    if "expression" in assign:
        compiled["expression"] = ctx.expression(doc, path + ("expression",), scope)
    if "department_from" in assign:
        compiled["department_from"] = ctx.expression(doc, path + ("department_from",), scope)
    if "assignee_of" in assign and assign["assignee_of"] not in nodes:
        ctx.unknown(doc, path + ("assignee_of",), "node", assign["assignee_of"], nodes)
    if "manager_of" in assign:
        text = str(assign["manager_of"]).strip()
        if text == "submitter":
            compiled["manager_of"] = ("submitter",)
        elif text.startswith("assignee_of:"):
            target = text.split(":", 1)[1].strip()
            if target not in nodes:
                ctx.unknown(doc, path + ("manager_of",), "node", target, nodes)
            compiled["manager_of"] = ("assignee_of", target)
        else:
            compiled["manager_of"] = ("expression", ctx.expression(doc, path + ("manager_of",), scope))
    cc = assign.get("cc") or {}
    if "expression" in cc:
        compiled["cc"] = ctx.expression(doc, path + ("cc", "expression"), scope)
    return compiled


def _check_roles_and_departments(assign: Mapping[str, Any], ctx: BuildContext, doc: Document,
                                 path: YamlPath) -> None:
    meta = ctx.meta
    if meta is None:
        return
    roles = [(path + ("role",), assign["role"])] if "role" in assign else []
    roles += [(path + ("cc", "roles", i), r) for i, r in enumerate((assign.get("cc") or {}).get("roles", []))]
    departments = [(path + ("department",), assign["department"])] if "department" in assign else []
    departments += [(path + ("departments", i), d) for i, d in enumerate(assign.get("departments", []))]
    for where, role in roles:
        if role not in meta.roles:
            ctx.unknown(doc, where, "role", role, meta.roles)
    for where, dep in departments:
        if dep not in meta.departments:
            ctx.unknown(doc, where, "department", dep, meta.departments)
    users = {u.username for u in meta.demo_users}
    named = [(path + ("user",), assign["user"])] if "user" in assign else []
    named += [(path + ("cc", "users", i), u) for i, u in enumerate((assign.get("cc") or {}).get("users", []))]
    for where, user in named:
        if users and user not in users:
            ctx.warning(doc, where, f"user '{user}' is not among bundle.yaml's users; "
                        "make sure the account exists", code="unknown-user")


def compile_escalation(node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document, path: YamlPath,
                       scope: set[str] | None) -> dict[int, dict[str, Any]]:
    """Compile a node's `escalation:` levels: {level: {"assign", "compiled", "when", ...}}."""
    levels: dict[int, dict[str, Any]] = {}
    for i, raw in enumerate(node.options.get("escalation") or []):
        where = path + ("escalation", i)
        level = int(raw["level"])
        if level in levels:
            ctx.error(doc, where + ("level",), f"escalation level {level} is defined twice",
                      code="escalation")
            continue
        when = raw.get("when")
        entry = {
            "level": level, "label": raw.get("label"), "assign": raw.get("assign"),
            "keep": bool(raw.get("keep_assignees", False)), "cc": raw.get("cc"),
            "status": raw.get("status"),
            "when": ctx.expression(doc, where + ("when",), scope) if isinstance(when, str) else when,
            "compiled": compile_assign(raw.get("assign") or {}, flow, ctx, doc, where + ("assign",), scope),
        }
        _check_roles_and_departments(raw.get("assign") or {}, ctx, doc, where + ("assign",))
        if raw.get("cc"):
            entry["cc_compiled"] = compile_assign({"cc": raw["cc"]}, flow, ctx, doc, where, scope)
            _check_roles_and_departments({"cc": raw["cc"]}, ctx, doc, where)
        levels[level] = entry
    return levels
