"""A record as its detail page shows it: fields, timeline, dwell times, SLA, open tasks and what
this user may do with each. Built on the server from the engines' own queries; the template
only loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from markupsafe import Markup
from sqlalchemy import select

from engine.identity import CUSTOMER_ACTOR, Principal
from engine.storage.db import read_transaction
from engine.storage.tables import flow_instances, history, tasks, users
from engine.types import label_text
from flows.history import record_timeline
from forms.access import can_read
from forms.attachments.kinds import INLINE_TYPES
from forms.render import Section, form_view
from web.flow_diagram import node_label, node_text, render_svg
from web.i18n import ui
from web.required_marks import mark_required_live, mark_required_now
from web.form_files import kept_files, mark_file_limits
from web.staff import (SlaChip, display_names, field_text, hidden_fields, holds, latest_instance, local_time,
                       may_claim, may_reassign, may_reopen, may_withdraw, people_for, people_picker, record_picker,
                       reference_words, sla_states, worst_sla)

if TYPE_CHECKING:
    from web.app import Web

APPROVAL_OUTCOMES = ("approve", "reject", "return")
COMMENT_REQUIRED = {"approval": {"reject", "return"}}
"""Node type -> outcomes that need a comment (the node type refuses them without one too)."""


@dataclass
class Outcome:
    value: str | None
    needs_comment: bool = False


@dataclass
class TaskPanel:
    """One open task of the record and what the viewing user may do with it."""

    id: int
    version: int
    node: str
    node_label: str
    node_type: str
    status: str
    holder: str | None
    candidates: list[str]
    mine: bool
    can_claim: bool
    can_reassign: bool
    instructions: str = ""
    summary: list["FieldRow"] = field(default_factory=list)
    """The fields the step's `show:` puts before the person who decides (e.g. the amount to approve)."""
    customer_may_answer: bool = False
    """The step is also offered to the customer on the progress lookup (`customer:`)."""
    timeout: str = ""
    """When the step gives up waiting and where the flow goes then (its `timeout:`), in words."""
    outcomes: list[Outcome] = field(default_factory=list)
    return_to: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    people: list[tuple[str, str]] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    comment: str = ""
    message: str = ""
    sent_back: "SentBack | None" = None
    """Why the step is being done again: the rejection or return that brought the record back."""


@dataclass(frozen=True)
class SentBack:
    """Who sent the record back to a step, how (reject / return) and what they said."""

    by: str
    outcome: str
    comment: str


@dataclass
class FieldRow:
    name: str
    label: str
    text: str
    files: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "text"
    url: str = ""
    """The page of the record a `reference` field names, when the reader may open it."""


@dataclass
class Activity:
    """One entry of the record's history as people read it."""

    at: datetime
    kind: str
    actor: str
    node_label: str
    outcome: str = ""
    comment: str = ""
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    """(field label, before, after)"""
    detail: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    """Files kept with a comment: name, size and the record page's link to each."""
    link: str = ""
    """The page `detail` names (the linked record a rule created), when the reader may open it."""


@dataclass
class RecordPage:
    form: str
    record_id: int
    record: dict[str, Any]
    title: str
    groups: list[tuple[str | None, list[FieldRow]]]
    activity: list[Activity]
    steps: list[dict[str, Any]]
    current: list[str]
    assignees: list[str]
    candidates: list[str]
    age_wall: timedelta
    age_work: timedelta
    sla: list[Any]
    sla_worst: SlaChip | None
    tasks: list[TaskPanel]
    diagram: Markup | None
    flow_status: str
    sla_names: dict[str, str] = field(default_factory=dict)
    """The SLA policies' and targets' labels in the page's language, keyed `policy` and
    `policy.target` (the clocks store only the names)."""
    can_withdraw: bool = False
    reopen_steps: list[tuple[str, str]] = field(default_factory=list)
    """(node, label) of the steps the reader may reopen the ended record at; empty: may not."""
    created_by: str = ""
    """Who created the record, by name; the word for the system; "" for a customer's submission."""
    unsent: list[tuple[str, str]] = field(default_factory=list)
    """(label, text) of what the user typed into a step that is no longer theirs to complete (done
    in another tab, taken over): no form shows it any more, so the page lists it to copy."""
    linked: list[tuple[str, str]] = field(default_factory=list)
    """(page, words) of the records a rule created from this one and the one this was created
    from, that the reader may see: the summary links them both ways."""


def outcomes_of(node: Any) -> list[Outcome]:
    """The buttons completing a task at `node` offers (a single plain "complete" when None)."""
    needs = COMMENT_REQUIRED.get(node.type, set())
    if node.options.get("outcomes"):
        return [Outcome(str(o), o in needs) for o in node.options["outcomes"]]
    if node.type == "approval":
        allowed = ["approve", "reject"] + (["return"] if node.options.get("return_to") else [])
        return [Outcome(o, o in needs) for o in allowed]
    if node.type == "countersign":
        return [Outcome("approve"), Outcome("reject")]
    return [Outcome(None)]


def build_record_page(web: "Web", form_name: str, record_id: int, principal: Principal, locale: str,
                      *, posted: Mapping[int, Mapping[str, Any]] | None = None) -> RecordPage:
    """Everything the record page shows, read in one read transaction.

    `posted` carries, per task id, what the user just sent (values, errors, comment, message)
    so a refused completion shows the same page with the errors next to the fields.
    """
    system = web.system
    runtime = system.runtime
    form = system.forms.form(form_name)
    zone_calendar = runtime.bundle.meta.calendar
    hidden = hidden_fields(runtime, form_name, principal)
    now = runtime.clock.now()
    # The customer who answered a step from the progress lookup has no account: a word, not a name.
    with read_transaction(system.db) as conn:
        names = {**display_names(conn), CUSTOMER_ACTOR: ui("customer_actor", locale)}
        record = system.forms.read(conn, form_name, record_id)
        timeline = record_timeline(conn, form_name, record_id, now=now, calendar=zone_calendar,
                                   created_at=record["created_at"])
        entries = conn.execute(select(history).where(history.c.form == form_name,
                                                     history.c.record_id == record_id)
                               .order_by(history.c.id)).mappings().all()
        holder = users.alias("holder")
        open_tasks = conn.execute(
            select(tasks, holder.c.username.label("holder"), flow_instances.c.flow)
            .join(flow_instances, flow_instances.c.id == tasks.c.instance_id)
            .outerjoin(holder, holder.c.id == tasks.c.assignee_user)
            .where(tasks.c.form == form_name, tasks.c.record_id == record_id,
                   tasks.c.status.in_(("open", "claimed"))).order_by(tasks.c.id)).mappings().all()
        instance = latest_instance(conn, form_name, record_id)
        states = sla_states(runtime, conn, form_name, [record_id]).get(record_id, [])
        links = derived_links(conn, runtime, entries, principal, locale)
        refs = reference_links(conn, runtime, form, record, hidden, principal, locale)
        panels = [_panel(web, conn, t, principal, locale, form, hidden, record, (posted or {}).get(int(t["id"])), names,
                         refs) for t in open_tasks]
    holders = {str(t["node"]): str(t["holder"]) for t in open_tasks if t["holder"]}
    returns = sent_back_to(entries, names)
    for panel in panels:
        panel.sent_back = returns.get(panel.node)
    shown = {p.id for p in panels if p.mine}
    unsent = [row for task_id, kept in (posted or {}).items() if int(task_id) not in shown
              for row in _unsent_rows(form, kept, hidden, locale, names)]
    flow = system.flows.flows.get(instance["flow"]) if instance else None
    diagram = None
    if flow is not None:
        visited = {s.node for s in timeline.steps}
        diagram = render_svg(flow, runtime.bundle.registry, locale, current=timeline.current,
                             visited=visited)
    title_field = form.spec.title_field
    title = form.display(title_field, record.get(title_field), locale) if title_field and title_field not in hidden else ""
    return RecordPage(
        form=form_name, record_id=record_id, record=record, title=title,
        groups=_field_groups(form, record, hidden, locale, record_id, names, refs),
        activity=_once([_activity(e, form, flow, hidden, locale, names, runtime.bundle, links.get(int(e["id"])))
                        for e in entries]),
        steps=[{"node": node_label(flow, s.node, locale), "entered_at": s.entered_at, "left_at": s.left_at,
                "wall": s.wall, "work": s.work,
                # An open step names who holds it now; a finished one, who completed it.
                "by": names.get(who, who) if (who := s.completed_by or (holders.get(s.node, "") if s.open else "")) else "",
                "outcome": s.outcome or "", "open": s.open} for s in timeline.steps],
        current=[node_label(flow, n, locale) for n in timeline.current],
        assignees=[names.get(a, a) for a in timeline.assignees],
        candidates=[_candidate_label(web, c, locale, names) for c in timeline.candidates],
        age_wall=timeline.age_wall, age_work=timeline.age_work, sla=list(states),
        sla_worst=worst_sla(states), tasks=panels, diagram=diagram,
        flow_status=instance["status"] if instance else "",
        sla_names=_sla_names(runtime.bundle, locale),
        can_withdraw=bool(instance) and may_withdraw(record, instance["status"], principal),
        reopen_steps=[(n, node_label(flow, n, locale)) for n in flow.reopen_steps()]
        if flow is not None and instance and may_reopen(flow, instance["status"], principal) else [],
        created_by=_creator(record.get("created_by"), names, locale), unsent=unsent,
        linked=list(dict.fromkeys(links.values())))


def sent_back_to(entries: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> dict[str, SentBack]:
    """Per step, the rejection or return that last brought the record into it, from the history
    (oldest first): the person who gets the step again reads why beside its form, not only far
    down the timeline. A step last entered some other way has no entry."""
    completed: dict[str, Mapping[str, Any]] = {}
    found: dict[str, SentBack] = {}
    for entry in entries:
        data = entry["data"] if isinstance(entry["data"], Mapping) else {}
        if entry["kind"] == "task.completed" and entry["node"]:
            completed[entry["node"]] = entry
        elif entry["kind"] == "flow.entered" and entry["node"]:
            found.pop(entry["node"], None)
            cause = completed.get(str(data.get("from") or ""))
            cause_data = cause["data"] if cause is not None and isinstance(cause["data"], Mapping) else {}
            if cause_data.get("outcome") in ("reject", "return"):
                actor = str(cause["actor"] or "")  # type: ignore[index]
                found[entry["node"]] = SentBack(by=names.get(actor, actor), outcome=str(cause_data["outcome"]),
                                                comment=str(cause_data.get("comment") or ""))
    return found


def _unsent_rows(form: Any, kept: Mapping[str, Any], hidden: set[str], locale: str,
                 names: Mapping[str, str]) -> list[tuple[str, str]]:
    """What a refused post held, as (label, text) rows: its fields with a value (files are not
    kept: they were never stored), then its comment."""
    rows = []
    for name, value in (kept.get("values") or {}).items():
        if name in hidden or name not in form.spec.fields or value in (None, "", [], {}):
            continue
        if getattr(form.types[name], "holds_attachments", False):
            continue
        rows.append((form.spec.fields[name].text(locale), field_text(form, name, value, locale, names)))
    if kept.get("comment"):
        rows.append((ui("comment", locale), str(kept["comment"])))
    return rows


def _creator(username: str | None, names: Mapping[str, str], locale: str) -> str:
    """Who created a record as people read it (a public submission has no account: nothing)."""
    if not username:
        return ""
    return ui("system", locale) if username == SYSTEM_ACTOR else names.get(username, username)


def _panel(web: "Web", conn: Any, task: Mapping[str, Any], principal: Principal, locale: str,
           form: Any, hidden: set[str], record: Mapping[str, Any],
           posted: Mapping[str, Any] | None, names: Mapping[str, str],
           refs: Mapping[str, tuple[str, str]] | None = None) -> TaskPanel:
    flows = web.system.flows
    meta = web.bundle.meta
    flow = flows.flows.get(task["flow"])
    node = flow.nodes.get(task["node"]) if flow else None
    mine = holds(task, principal)
    panel = TaskPanel(
        id=int(task["id"]), version=int(task["version"]), node=task["node"],
        node_label=node_text(node, locale) if node else task["node"],
        node_type=node.type if node else "", status=task["status"],
        holder=names.get(task["holder"], task["holder"]) if task["holder"] else None,
        # People read the role's, person's and department's names, not their codes.
        candidates=[*(label_text(meta.roles[r].label, locale, r) if r in meta.roles else r
                      for r in task["candidate_roles"] or []),
                    *(names.get(u, u) for u in task["candidate_users"] or []),
                    *([label_text(meta.departments[d].label, locale, d) if d in meta.departments else d
                       for d in [task["candidate_department"]] if d])],
        mine=mine, can_claim=may_claim(task, principal) and not mine,
        can_reassign=may_reassign(web.system.runtime, task, principal))
    if node is None:
        return panel
    if node.options.get("instructions"):
        panel.instructions = label_text(node.options["instructions"], locale, "")
    panel.customer_may_answer = node.options.get("customer") is not None
    if node.compiled.get("timeout") is not None:
        panel.timeout = _timeout_text(web, conn, task, flow, locale)
    panel.summary = [_field_row(form, name, record.get(name), locale, int(task["record_id"]), names, refs)
                     for name in node.options.get("show", []) if name in form.stored and name not in hidden]
    if mine:
        posted = posted or {}
        editable = [f for f in node.options.get("fields", []) if f not in hidden]
        panel.outcomes = outcomes_of(node)
        panel.return_to = [(n, node_text(flow.nodes[n], locale)) for n in node.options.get("return_to", [])
                           if n in flow.nodes]
        panel.errors = dict(posted.get("errors") or {})
        # Files already on the record, or stored by a refused post, are listed to be kept.
        values = kept_files(conn, web, form, posted.get("values") or {n: record.get(n) for n in editable},
                            record_id=int(task["record_id"]))
        panel.sections = form_view(form, locale, values=values, errors=panel.errors,
                                   only=editable, people=people_picker(conn),
                                   records=record_picker(conn, web.system.runtime, principal, locale)) if editable else []
        mark_file_limits(web, form, panel.sections)
        mark_required_now(web, form, record, panel.sections)
        mark_required_live(form, panel.sections)
        panel.comment = str(posted.get("comment") or "")
        panel.message = str(posted.get("message") or "")
    if panel.can_reassign:
        # Who may claim an open task takes it with Claim: offered to themselves here, the
        # director's only choice for an approval was their own name.
        skip = {task["holder"], principal.username if panel.can_claim else None}
        panel.people = [p for p in people_for(conn, task) if p[0] not in skip]
    return panel


def _timeout_text(web: "Web", conn: Any, task: Mapping[str, Any], flow: Any, locale: str) -> str:
    """"If nobody completes it by <time>, the record goes on to <step>", or "" without one."""
    armed = web.system.flows.timeout_of(conn, int(task["instance_id"]), task["node"])
    if armed is None:
        return ""
    due, to = armed
    return ui("task_timeout", locale).format(at=local_time(due, web.bundle.meta.timezone),
                                             step=node_text(flow.nodes[to], locale) if to in flow.nodes else to)


def _field_groups(form: Any, record: Mapping[str, Any], hidden: set[str], locale: str,
                  record_id: int, names: Mapping[str, str],
                  refs: Mapping[str, tuple[str, str]]) -> list[tuple[str | None, list[FieldRow]]]:
    groups: list[tuple[str | None, list[FieldRow]]] = [(None, [])]
    for name, spec in form.spec.fields.items():
        ftype = form.types[name]
        if ftype.name == "section":
            groups.append((spec.text(locale), []))
            continue
        if name not in form.stored or name in hidden:
            continue
        groups[-1][1].append(_field_row(form, name, record.get(name), locale, record_id, names, refs))
    return [(title, rows) for title, rows in groups if rows]


def _field_row(form: Any, name: str, value: Any, locale: str, record_id: int,
               names: Mapping[str, str], refs: Mapping[str, tuple[str, str]] | None = None) -> FieldRow:
    """One stored field as the record page shows it: its text, or links to its files; a user
    by their name; the record a reference names by its words (`refs`, reference_links)."""
    ftype = form.types[name]
    row = FieldRow(name, form.spec.fields[name].text(locale), "")
    if getattr(ftype, "holds_attachments", False):
        row.kind = "files"
        row.files = [_file_link(f"/records/{form.spec.name}/{record_id}/files/{item.get('id')}", item,
                                image=ftype.name == "image")
                     for item in (value or []) if isinstance(item, Mapping) and item.get("id")]
    elif refs and name in refs:
        row.url, row.text = refs[name]
    else:
        row.text = field_text(form, name, value, locale, names)
        row.kind = "long" if ftype.name in ("textarea", "rich_text", "subtable") else "text"
    return row


def reference_links(conn: Any, runtime: Any, form: Any, record: Mapping[str, Any], hidden: set[str],
                    principal: Principal, locale: str) -> dict[str, tuple[str, str]]:
    """Field -> (page, words) of each record the record's `reference` fields name: the words
    that identify it and a link, for the records the reader may open; one they may not reads
    as its id only (reference_words)."""
    shown = {name: [record.get(name)] for name, ftype in form.types.items()
             if ftype.name == "reference" and name not in hidden and isinstance(record.get(name), int)}
    words = reference_words(conn, runtime, form, shown, principal, locale)
    out: dict[str, tuple[str, str]] = {}
    for name, (value,) in shown.items():
        found = words.get(name, {}).get(value)
        out[name] = (f"/records/{form.spec.fields[name].opt('form')}/{value}", found) if found else ("", f"#{value}")
    return out


def _file_link(url: str, item: Mapping[str, Any], *, image: bool) -> dict[str, Any]:
    """A stored file as the record page links it: a photo opens in the browser (`view`, the
    route's `?inline=1`), where each one clicked was saved as a download to open from there."""
    return {"name": str(item.get("name") or "file"), "size": item.get("size"), "url": url, "image": image,
            "view": f"{url}?inline=1" if image else ""}


SYSTEM_ACTOR = "system"
"""The actor the rules and SLA engines write: shown as the page's word for the system."""


def _once(activity: list[Activity]) -> list[Activity]:
    """The timeline with a return's comment said once: the approval's completion just before it
    carries the same words, and the director's reason showed twice in a row."""
    for before, entry in zip(activity, activity[1:]):
        if entry.kind == "flow.returned" and before.kind == "task.completed" and entry.comment == before.comment:
            entry.comment = ""
    return activity


def derived_links(conn: Any, runtime: Any, entries: Sequence[Mapping[str, Any]],
                  principal: Principal, locale: str) -> dict[int, tuple[str, str]]:
    """History entry id -> (page, words) of the other record an entry names, for the records
    the reader may see: the record a rule created from this one (`record.derived`: "created a
    linked record · PC2026...": the compensation form was named but could not be opened from
    here), and the record this one was created from (`record.created` with a `source`: the
    compensation's page had no way back to its complaint). A record without a query number
    reads as its form."""
    forms = runtime.services["forms"].forms
    links: dict[int, tuple[str, str]] = {}
    for entry in entries:
        data = entry["data"] if isinstance(entry["data"], Mapping) else {}
        if entry["kind"] == "record.derived":
            other = data
        elif entry["kind"] == "record.created" and isinstance(data.get("source"), Mapping):
            other = data["source"]
        else:
            continue
        target, record_id = str(other.get("form") or ""), other.get("record_id")
        if target not in forms or not isinstance(record_id, int):
            continue
        if can_read(conn, runtime, target, record_id, principal):
            words = forms[target].spec.text(locale)
            links[int(entry["id"])] = (f"/records/{target}/{record_id}",
                                       f"{words} {other['query_no']}" if other.get("query_no") else words)
    return links


def _activity(entry: Mapping[str, Any], form: Any, flow: Any, hidden: set[str], locale: str,
              names: Mapping[str, str], bundle: Any = None, link: tuple[str, str] | None = None) -> Activity:
    data = entry["data"] if isinstance(entry["data"], Mapping) else {}
    changes = []
    for name, pair in (data.get("changes") or {}).items():
        if name in hidden or name not in form.spec.fields or not isinstance(pair, (list, tuple)) or len(pair) != 2:
            continue
        changes.append((form.field(name).text(locale), field_text(form, name, pair[0], locale, names),
                        field_text(form, name, pair[1], locale, names)))
    detail = ""
    step: str | None = None
    if entry["kind"] in ("task.reassigned", "task.delegated") and data.get("to"):
        detail = names.get(str(data["to"]), str(data["to"]))
    elif entry["kind"] == "task.escalated":
        detail = _escalation_text(flow, entry["node"], data.get("level"), locale)
    elif entry["kind"] == "task.copied":
        detail = ui("list_sep", locale).join(names.get(str(u), str(u)) for u in data.get("to") or [])
    elif entry["kind"] == "flow.returned":
        # "returned to · <the step it went back to>": the step it came from (the entry's node)
        # read as the destination ("returned to · Finance director approval · Compensation proposal").
        step = node_label(flow, str(data.get("to") or ""), locale)
    elif entry["kind"] in ("flow.ended",):
        outcome = str(data.get("outcome") or "")
        word = ui(f"outcome_{outcome}", locale)  # the common outcomes have words; others read as written
        detail = outcome if word == f"outcome_{outcome}" else word
    elif entry["kind"] == "incident":
        detail = str(data.get("message") or "")
    elif bundle is not None:
        detail = _engine_detail(bundle, entry["kind"], data, locale)
    kind = entry["kind"]
    if link is not None:
        detail = link[1]
        if kind == "record.created":
            kind = "record.created_from"  # "created from · Complaint TS2026...", not "created the record · ..."
    actor = entry["actor"] or ""
    actor = "" if actor == SYSTEM_ACTOR else names.get(actor, actor)
    if step is None:
        step = node_label(flow, entry["node"], locale) if entry["node"] else ""
    return Activity(at=entry["at"], kind=kind, actor=actor, node_label=step,
                    outcome=str(data.get("outcome") or "") if entry["kind"] == "task.completed" else "",
                    comment=str(data.get("comment") or data.get("text") or ""), changes=changes,
                    detail=detail, link=link[0] if link else "",
                    files=[_file_link(f"/records/{form.spec.name}/{entry['record_id']}/files/{f.get('id')}", f,
                                      image=f.get("type") in INLINE_TYPES)
                           for f in data.get("attachments") or [] if isinstance(f, Mapping)])


def _escalation_text(flow: Any, node: str | None, level: Any, locale: str) -> str:
    """The level a task was escalated to, by the step's label for it (二级响应：部门经理);
    "level 2" where the step names none (an SLA's escalation path)."""
    spec = flow.nodes.get(node) if flow is not None and node else None
    for step in (spec.options.get("escalation") or []) if spec is not None else []:
        if isinstance(step, Mapping) and str(step.get("level")) == str(level) and step.get("label"):
            return label_text(step["label"], locale, str(level))
    return ui("escalation_level", locale).format(n=level) if level not in (None, "") else ""


def _engine_detail(bundle: Any, kind: str, data: Mapping[str, Any], locale: str) -> str:
    """What an entry written by the rules or SLA engine was about, in the analyst's labels
    (a rule's label, not `complaint_rules.acknowledge`; an SLA target's, not `response`)."""
    if kind == "rule.fired":
        return _rule_label(bundle, str(data.get("rule") or ""), locale)
    if kind == "notified":
        return _rule_label(bundle, str(data.get("by") or "").removeprefix("rule:"), locale)
    if kind == "kb.recommended":
        return ui("sentence_sep", locale).join(
            str(e.get("title") or "") for e in data.get("entries") or [] if isinstance(e, Mapping))
    if kind == "record.derived":
        return str(data.get("query_no") or "")
    if kind == "tag.added":
        return str(data.get("note") or data.get("tag") or "")
    if kind.startswith("webhook."):
        config = (getattr(bundle.meta, "channels", None) or {}).get(str(data.get("channel") or ""))
        channel = label_text(config.label, locale, config.name) if config is not None and config.label \
            else str(data.get("channel") or "")
        return f"{channel}: {data['reason']}" if data.get("reason") else channel
    if kind.startswith("sla."):
        names = _sla_names(bundle, locale)
        policy, target = str(data.get("policy") or ""), str(data.get("target") or "")
        return names.get(f"{policy}.{target}") or names.get(policy) or target
    return ""


def _rule_label(bundle: Any, key: str, locale: str) -> str:
    """A rule's label from its `ruleset.rule` key; the key itself for a rule no longer defined."""
    ruleset, _, name = key.partition(".")
    spec = bundle.all("ruleset").get(ruleset)
    rule = spec.rules.get(name) if spec is not None else None
    return rule.text(locale) if rule is not None else key


def _sla_names(bundle: Any, locale: str) -> dict[str, str]:
    """SLA policy and target labels, keyed `policy` and `policy.target`."""
    names: dict[str, str] = {}
    for policy in bundle.all("sla").values():
        names[policy.name] = label_text(policy.label, locale, policy.name)
        for target in policy.targets.values():
            names[f"{policy.name}.{target.name}"] = label_text(target.label, locale, target.name)
    return names


def _candidate_label(web: "Web", name: str, locale: str, names: Mapping[str, str]) -> str:
    meta = web.bundle.meta
    if name in meta.roles:
        return label_text(meta.roles[name].label, locale, name)
    return names.get(name, name)


__all__ = ["Activity", "FieldRow", "Outcome", "RecordPage", "TaskPanel", "build_record_page", "outcomes_of"]
