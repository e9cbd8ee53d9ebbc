"""The definitions browser: what the running bundle defines, as analysts and staff read it.

Forms (fields, types, rules), flows (drawn as SVG by web.flow_diagram, with a table of nodes),
option lists (trees shown indented), roles and departments. Read-only, for any signed-in user;
every page reads `web.bundle` at request time, so a reloaded bundle shows at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.types import label_text
from web import auth
from web.flow_diagram import flow_edges, node_text, render_svg

if TYPE_CHECKING:
    from web.app import Web

RULE_KEYS = ("visible_if", "required_if", "readonly_if", "computed", "default_expr")
OPTION_KEYS = ("max_length", "min_length", "min", "max", "max_rows", "max_files", "max_size_mb",
               "currency", "accept", "allow", "role", "options", "mask", "not_future")


def _expr(value: Any) -> str:
    return str(getattr(value, "source", value)) if value is not None else ""


def form_rows(form: Any, locale: str) -> list[dict[str, Any]]:
    """One row per field: name, label, type, required, flags, rules and notable options."""
    rows = []
    for name, spec in form.spec.fields.items():
        rules = [(key, _expr(getattr(spec, key))) for key in RULE_KEYS if getattr(spec, key, None) is not None]
        flags = [flag for flag in ("required", "unique", "public", "staff_only", "index") if getattr(spec, flag, False)]
        options = [(key, ", ".join(map(str, spec.options[key])) if isinstance(spec.options[key], (list, tuple))
                    else str(spec.options[key])) for key in OPTION_KEYS if key in spec.options]
        if spec.default is not None:
            options.append(("default", str(spec.default)))
        rows.append({"name": name, "label": spec.text(locale), "type": spec.type, "flags": flags,
                     "rules": rules, "options": options, "section": spec.type == "section"})
    return rows


def flow_nodes(flow: Any, registry: Any, locale: str) -> list[dict[str, Any]]:
    """One row per node: id, label, type, who does it, fields it edits, where it leads."""
    edges = flow_edges(flow, registry, locale)
    rows = []
    for node_id, node in flow.nodes.items():
        assign = node.options.get("assign") or {}
        who = ", ".join(f"{k}: {v}" for k, v in assign.items() if k in ("role", "user", "department",
                                                                       "expression", "strategy", "users",
                                                                       "departments"))
        leads = [(node_text(flow.nodes[e.target], locale), e.label) for e in edges if e.source == node_id]
        rows.append({"id": node_id, "label": node_text(node, locale), "type": node.type, "who": who,
                     "fields": list(node.options.get("fields", [])), "shows": list(node.options.get("show", [])),
                     "status": node.options.get("status", ""),
                     "leads": leads, "start": node_id == flow.start})
    return rows


def _role_text(meta: Any, name: str | None, locale: str) -> str:
    """A role as people read it (its label), "" for none: the roles table named the role a role
    reports to by its code (supervisor) beside the others' labels."""
    if not name:
        return ""
    return label_text(meta.roles[name].label, locale, name) if name in meta.roles else name


def _department_text(meta: Any, code: str | None, locale: str) -> str:
    """A department as people read it (its label), "" for none."""
    if not code:
        return ""
    return label_text(meta.departments[code].label, locale, code) if code in meta.departments else code


def routes(web: "Web") -> list[Route]:
    """The definitions browser's pages."""

    def find(kind: str, name: str) -> Any:
        found = web.bundle.all(kind).get(name)
        if found is None:
            raise HTTPException(404, f"no {kind} '{name}' in this bundle")
        return found

    async def overview(request: Request) -> Response:
        principal = auth.require_principal(request)
        reports = web.system.runtime.services.get("reports")
        # Only the dashboards the reader may open are links (the others led to "you may not open this page").
        openable = {d.name for d in reports.visible(principal)} if reports is not None else set()
        locale = web.locale_of(request)
        bundle = web.bundle
        meta = bundle.meta
        return web.page(
            request, "definitions.html",
            version=bundle.version, hash=bundle.hash,
            forms=[(n, label_text(f.label, locale, n), len(f.fields)) for n, f in bundle.all("form").items()],
            flows=[(n, f.text(locale), label_text(bundle.all("form")[f.form].label, locale, f.form)
                    if f.form in bundle.all("form") else f.form, len(f.nodes)) for n, f in bundle.all("flow").items()],
            lists=[(n, label_text(lst.label, locale, n), len(lst.values())) for n, lst in bundle.all("list").items()],
            roles=[(n, label_text(r.label, locale, n), r.sees, _role_text(meta, r.reports_to, locale), r.admin)
                   for n, r in meta.roles.items()],
            departments=[(c, label_text(d.label, locale, c), _department_text(meta, d.parent, locale))
                         for c, d in meta.departments.items()],
            other=[(kind, [(name, label_text(getattr(items[name], "label", None), locale, ""))
                           for name in sorted(items)])
                   for kind, items in bundle.definitions.items() if kind not in ("form", "flow", "list") and items],
            openable=openable)

    async def form_page(request: Request) -> Response:
        auth.require_principal(request)
        locale = web.locale_of(request)
        spec = find("form", request.path_params["name"])
        form = web.system.forms.form(spec.name)
        flows = [(n, f.text(locale)) for n, f in web.bundle.all("flow").items() if f.form == spec.name]
        return web.page(request, "definitions_form.html", name=spec.name, title=spec.text(locale),
                        description=label_text(spec.description, locale, "") if spec.description else "",
                        numbering=spec.numbering or "", public=spec.public, rows=form_rows(form, locale),
                        flows=flows, list_fields=list(spec.list_fields), title_field=spec.title_field or "")

    async def flow_page(request: Request) -> Response:
        auth.require_principal(request)
        locale = web.locale_of(request)
        flow = find("flow", request.path_params["name"])
        registry = web.bundle.registry
        meta = web.bundle.meta
        reopen_by = [label_text(meta.roles[r].label, locale, r) if r in meta.roles else r for r in flow.reopen_roles]
        return web.page(request, "definitions_flow.html", name=flow.name, title=flow.text(locale),
                        form=flow.form, diagram=render_svg(flow, registry, locale),
                        nodes=flow_nodes(flow, registry, locale), reopen_by=reopen_by,
                        reopen_at=[flow.nodes[n].text(locale) for n in flow.reopen_steps()])

    async def flow_svg(request: Request) -> Response:
        auth.require_principal(request)
        flow = find("flow", request.path_params["name"])
        svg = render_svg(flow, web.bundle.registry, web.locale_of(request))
        return Response(str(svg), media_type="image/svg+xml",
                        headers={"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
                                 "cache-control": "private, max-age=0"})

    async def list_page(request: Request) -> Response:
        auth.require_principal(request)
        locale = web.locale_of(request)
        lst = find("list", request.path_params["name"])
        items = [{"value": o.value, "label": o.text(locale), "depth": depth - 1, "leaf": not o.children}
                 for depth, o, _ in lst.walk()]
        return web.page(request, "definitions_list.html", name=lst.name,
                        title=label_text(lst.label, locale, lst.name), items=items)

    return [
        Route("/definitions", overview, methods=["GET"]),
        Route("/definitions/forms/{name}", form_page, methods=["GET"]),
        Route("/definitions/flows/{name}.svg", flow_svg, methods=["GET"]),
        Route("/definitions/flows/{name}", flow_page, methods=["GET"]),
        Route("/definitions/lists/{name}", list_page, methods=["GET"]),
    ]


__all__ = ["flow_nodes", "form_rows", "routes"]
