"""The record list's query: search, filters, date range and paging as ONE SQL condition.

The same `ListQuery` drives the page and its CSV/XLSX export, so an export holds exactly the
rows the user filtered, within their row-level scope (forms.access.record_scope). Every value
from the query string is checked against the form (a choice filter only takes the field's
options, dates must be dates) and bound as a parameter; LIKE wildcards typed by the user are
escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from engine.identity import Principal
from engine.storage.db import read_transaction
from engine.storage.tables import sla_clocks, users
from forms.access import record_scope
from web.staff import (field_text, hidden_fields, local_time, names_for, reference_words, sla_states,
                       status_labeller, worst_sla)

if TYPE_CHECKING:
    from web.app import Web

PAGE_SIZE = 50
TEXT_TYPES = frozenset({"text", "textarea", "phone", "email", "url", "id_number", "user", "rich_text"})
"""Field types the search box looks in (besides the query number)."""
CHOICE_TYPES = frozenset({"select", "radio", "region", "cascade", "role", "department"})
MAX_SEARCH = 100
LATENESS = ("at_risk", "overdue")
"""The SLA filter's choices: a running clock past its warning (yellow or red), or past due (red)."""
SORTS = ("newest", "oldest", "updated", "due")
"""The list's orders: newest first (the default), oldest first (a backlog worked from its oldest),
last changed first, and due soonest (the earliest running SLA clock; records with none last)."""


@dataclass
class ChoiceFilter:
    name: str
    label: str
    options: list[tuple[str, str, int]]
    """(value, label, depth) of every option, depth first."""
    chosen: str = ""


@dataclass
class ListQuery:
    """What the user asked the list for, already checked against the form."""

    table: Any
    scope: ColumnElement[bool] | None
    text: str = ""
    text_fields: tuple[str, ...] = ()
    user_fields: tuple[str, ...] = ()
    """The text fields holding a user name: the search also finds them by the person's name."""
    status: str = ""
    choices: list[ChoiceFilter] = field(default_factory=list)
    choice_values: dict[str, set[str]] = field(default_factory=dict)
    date_from: date | None = None
    date_to: date | None = None
    late: Any = None
    """The ids of records whose SLA is as late as `lateness` asks (a subquery), or None."""
    lateness: str = ""
    has_sla: bool = False
    """The form's records keep SLA clocks: the list offers the lateness filter."""
    zone: str = "UTC"
    form: str = ""
    sort: str = "newest"
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, system: Any, form: Any, principal: Principal, params: Mapping[str, str],
                    locale: str) -> "ListQuery":
        table = system.forms.tables[form.name]
        hidden = hidden_fields(system.runtime, form.name, principal)
        query = cls(table=table, scope=record_scope(system.runtime, form.name, principal, table),
                    zone=system.bundle.meta.timezone, form=form.name)
        query.text = str(params.get("q", ""))[:MAX_SEARCH].strip()
        query.text_fields = tuple(n for n in form.stored if form.types[n].name in TEXT_TYPES and n not in hidden)
        query.user_fields = tuple(n for n in query.text_fields if form.types[n].name == "user")
        query.status = str(params.get("status", ""))[:50]
        listed = list(form.spec.list_fields) + [n for n in form.stored if form.field(n).index]
        for name in dict.fromkeys(listed):
            spec = form.field(name)
            if name in hidden or name not in form.stored or spec.choices is None or form.types[name].name not in CHOICE_TYPES:
                continue
            options = [(o.value, o.text(locale), depth - 1) for depth, o, _ in spec.choices.walk()]
            chosen = str(params.get(name, ""))
            if chosen and chosen not in {v for v, _, _ in options}:
                chosen = ""  # not an option of this field: ignored, never put into SQL
            query.choices.append(ChoiceFilter(name, spec.text(locale), options, chosen))
            if chosen:
                # A category chosen from a tree includes everything under it.
                query.choice_values[name] = {chosen} | {
                    o.value for _, o, parents in spec.choices.walk() if chosen in parents}
        sla = system.runtime.services.get("sla")
        query.has_sla = sla is not None and sla.covers(form.name)
        lateness = str(params.get("sla", ""))
        if query.has_sla and lateness in LATENESS:
            query.lateness = lateness
            query.late = sla.late_records(form.name, lateness, system.runtime.clock.now())
        query.date_from = _date(params.get("from"), query.errors, "from")
        query.date_to = _date(params.get("to"), query.errors, "to")
        if query.date_from and query.date_to and query.date_from > query.date_to:
            query.errors.append("reversed")  # no record can match: say why, not just "none found"
        sort = str(params.get("sort", ""))
        if sort in SORTS and (sort != "due" or query.has_sla):
            query.sort = sort
        page = str(params.get("page", "1"))
        query.page = int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 7 and int(page) > 0 else 1
        return query

    def condition(self) -> ColumnElement[bool]:
        """Scope AND search AND filters, on the form's record table."""
        t = self.table
        parts: list[ColumnElement[bool]] = [] if self.scope is None else [self.scope]
        if self.text:
            like = "%" + self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            columns = [t.c.query_no] + [t.c[n] for n in self.text_fields]
            matches = [c.ilike(like, escape="\\") for c in columns]
            if self.user_fields:
                # Pages show a user field by the person's name: "赵经理" finds what holds "accounts".
                named = select(users.c.username).where(users.c.display_name.ilike(like, escape="\\"))
                matches += [t.c[n].in_(named) for n in self.user_fields]
            parts.append(or_(*matches))
        if self.status:
            parts.append(t.c.status == self.status)
        for name, values in self.choice_values.items():
            parts.append(t.c[name].in_(sorted(values)))
        if self.late is not None:
            parts.append(t.c.id.in_(self.late))
        zone = ZoneInfo(self.zone)
        if self.date_from is not None:
            parts.append(t.c.created_at >= datetime.combine(self.date_from, time(0), zone))
        if self.date_to is not None:
            parts.append(t.c.created_at < datetime.combine(self.date_to + timedelta(days=1), time(0), zone))
        return and_(true(), *parts)

    def order(self) -> list[ColumnElement[Any]]:
        """The ORDER BY of the list's page; the record id last, so paging never repeats a row."""
        t = self.table
        if self.sort == "oldest":
            return [t.c.id.asc()]
        if self.sort == "updated":
            return [t.c.updated_at.desc(), t.c.id.desc()]
        if self.sort == "due":
            due = (select(func.min(sla_clocks.c.due_at))
                   .where(sla_clocks.c.form == self.form, sla_clocks.c.record_id == t.c.id,
                          sla_clocks.c.status == "running").scalar_subquery())
            return [due.is_(None), due.asc(), t.c.id.asc()]  # no running clock: after those with one
        return [t.c.id.desc()]

    def params(self) -> dict[str, str]:
        """The filters and the order as query parameters (for links, the export and the audit log)."""
        out: dict[str, str] = {}
        if self.text:
            out["q"] = self.text
        if self.status:
            out["status"] = self.status
        for c in self.choices:
            if c.chosen:
                out[c.name] = c.chosen
        if self.lateness:
            out["sla"] = self.lateness
        if self.date_from:
            out["from"] = self.date_from.isoformat()
        if self.date_to:
            out["to"] = self.date_to.isoformat()
        if self.sort != "newest":
            out["sort"] = self.sort
        return out


def _date(raw: Any, errors: list[str], name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        errors.append(name)
        return None


def list_page(web: "Web", form: Any, principal: Principal, query: ListQuery, locale: str) -> dict[str, Any]:
    """The context of the record list page."""
    system = web.system
    hidden = hidden_fields(system.runtime, form.name, principal)
    columns = [c for c in (form.spec.list_fields or form.stored[:5]) if c not in hidden and c in form.stored]
    condition = query.condition()
    total = system.forms.count(form.name, where=condition)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(query.page, pages)
    rows = system.forms.list(form.name, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, where=condition,
                             order_by=query.order())
    table = system.forms.tables[form.name]
    with read_transaction(system.db) as conn:
        statuses = sorted(r[0] for r in conn.execute(select(table.c.status).distinct()) if r[0])
        names = names_for(conn, form, columns)  # a `user` column shows the person, as the record page does
        refs = reference_words(conn, system.runtime, form, {c: [r.get(c) for r in rows] for c in columns},
                               principal, locale)
        # The worst SLA state of each record shown, as the inbox shows it: one query for the page.
        chips = ({i: worst_sla(s) for i, s in sla_states(system.runtime, conn, form.name,
                                                        [r["id"] for r in rows]).items()}
                 if query.has_sla else {})
    status_label = status_labeller(system.bundle, form, locale)
    zone = system.bundle.meta.timezone
    params = query.params()
    base = f"/records/{form.name}"
    return {
        "form_name": form.name, "form_title": form.spec.text(locale), "total": total, "page": page,
        "pages": pages, "query": query, "filters": params,
        "has_filters": bool({k: v for k, v in params.items() if k != "sort"}), "sorts": SORTS,
        "columns": [(c, form.field(c).text(locale)) for c in columns],
        "statuses": [(s, status_label(s)) for s in statuses],
        "has_sla": query.has_sla, "when": lambda at: local_time(at, zone),
        "rows": [{"id": r["id"], "url": f"{base}/{r['id']}", "query_no": r["query_no"] or f"#{r['id']}",
                  "sla": chips.get(r["id"]),
                  "status": status_label(r["status"]), "created_at": local_time(r["created_at"], zone),
                  "cells": [refs.get(c, {}).get(r.get(c)) or field_text(form, c, r.get(c), locale, names)
                            for c in columns]} for r in rows],
        "page_url": lambda n: base + "?" + urlencode({**params, "page": str(n)}),
        "export_csv": f"{base}/export.csv" + ("?" + urlencode(params) if params else ""),
        "export_xlsx": f"{base}/export.xlsx" + ("?" + urlencode(params) if params else ""),
        "share_url": base + ("?" + urlencode(params) if params else ""),
        "new_url": f"{base}/new",
    }


def overdue_counts(web: "Web", principal: Principal) -> list[tuple[str, str, int]]:
    """(form, list address, count) of the records past due that `principal` may see, for each
    form with SLA clocks: a manager's view of the team's overdue work, which the inbox (their
    own tasks) does not give."""
    system = web.system
    sla = system.runtime.services.get("sla")
    if sla is None:
        return []
    found = []
    now = system.runtime.clock.now()
    for form in system.forms.forms.values():
        if not sla.covers(form.name):
            continue
        # The list's own condition, without reading the page's filters (choices, search fields):
        # the inbox asks this on every view.
        table = system.forms.tables[form.name]
        query = ListQuery(table=table, scope=record_scope(system.runtime, form.name, principal, table),
                          late=sla.late_records(form.name, "overdue", now), lateness="overdue", has_sla=True)
        count = system.forms.count(form.name, where=query.condition())
        if count:
            found.append((form.name, f"/records/{form.name}?sla=overdue", count))
    return found


__all__ = ["ChoiceFilter", "LATENESS", "ListQuery", "PAGE_SIZE", "SORTS", "list_page", "overdue_counts"]
