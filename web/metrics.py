"""`GET /metrics`: the server's vitals in Prometheus' text format, for the operator's monitoring.

Off unless $DOCKET_METRICS_TOKEN is set (404, like any unknown address); then only a request
carrying `Authorization: Bearer <that token>` is answered (Prometheus' `authorization`
setting), others get 401. The numbers are engine.vitals', read from the database, so every
server and worker of one installation reports the same; `docket_up` and the bundle's version
say which process answered. A database that does not answer gives `docket_database_up 0`
and no other numbers, not an error: the alert is the point of the scrape.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import TYPE_CHECKING, Iterable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from engine.storage.db import read_transaction
from engine.vitals import Vitals, read_vitals
from web.offload import offload
from web.settings import metrics_token
from web.tokens import METRICS_PATH

if TYPE_CHECKING:
    from web.app import Web

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def routes(web: "Web") -> list[Route]:
    """The metrics route."""
    token = metrics_token()

    async def metrics(request: Request) -> Response:
        if token is None:
            return PlainTextResponse("Not Found", status_code=404)
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return PlainTextResponse("a bearer token is needed", status_code=401,
                                     headers={"www-authenticate": 'Bearer realm="metrics"'})
        text = await offload.run(render, web)
        return Response(text, media_type=CONTENT_TYPE, headers={"cache-control": "no-store"})

    return [Route(METRICS_PATH, metrics, methods=["GET"])]


def render(web: "Web") -> str:
    """The exposition text: the bundle running, then the vitals when the database answers."""
    bundle = web.system.bundle
    lines = [*_metric("docket_up", "gauge", "1 when this process answers.", [("", 1)]),
             *_metric("docket_bundle_info", "gauge", "The bundle this process runs.",
                      [(_labels(bundle=bundle.name, version=bundle.version, hash=bundle.hash), 1)])]
    try:
        with read_transaction(web.system.db) as conn:
            vitals = read_vitals(conn, web.system.runtime.clock.now())
    except Exception:  # noqa: BLE001 - a database that does not answer is what this reports
        return "\n".join([*lines, *_metric("docket_database_up", "gauge",
                                           "1 when the database answers.", [("", 0)])]) + "\n"
    return "\n".join([*lines, *_metric("docket_database_up", "gauge", "1 when the database answers.", [("", 1)]),
                      *vitals_lines(vitals)]) + "\n"


def vitals_lines(v: Vitals) -> list[str]:
    """The vitals as metric families."""
    return [
        *_metric("docket_outbox_messages", "gauge", "Outgoing messages by status (dead: given up).",
                 [(_labels(status=s), n) for s, n in sorted(v.outbox.items())]),
        *_metric("docket_outbox_oldest_waiting_seconds", "gauge",
                 "How long the oldest message still to send has waited (0: none waits).",
                 [("", _seconds(v.outbox_oldest_pending))]),
        *_metric("docket_timers", "gauge", "Durable timers by status.",
                 [(_labels(status=s), n) for s, n in sorted(v.timers.items())]),
        *_metric("docket_timers_late", "gauge",
                 "Pending timers over a minute past due: no scheduler is firing them (is docket worker running?).",
                 [("", v.timers_late)]),
        *_metric("docket_timers_lateness_seconds", "gauge", "How late the latest pending timer is (0: none).",
                 [("", _seconds(v.timers_latest_lateness))]),
        *_metric("docket_incidents_open", "gauge", "Incidents waiting for an administrator.", [("", v.incidents_open)]),
        *_metric("docket_tasks_open", "gauge", "Open or claimed tasks.", [("", v.tasks_open)]),
        *_metric("docket_tasks_overdue", "gauge", "Open or claimed tasks past their step's due time.",
                 [("", v.tasks_overdue)]),
        *_metric("docket_sla_breached_open", "gauge", "SLA clocks past their target on records still being handled.",
                 [("", v.sla_breached_open)]),
    ]


def _seconds(span: timedelta | None) -> float:
    return 0 if span is None else round(span.total_seconds(), 3)


def _metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
            *(f"{name}{labels} {value}" for labels, value in samples)]


def _labels(**values: str) -> str:
    """`{a="x",b="y"}` with the exposition format's escapes (backslash, quote, newline)."""
    def escaped(text: str) -> str:
        return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{escaped(v)}"' for k, v in values.items()) + "}"
