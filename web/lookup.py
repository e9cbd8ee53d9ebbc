"""Public progress lookup (查询进度): a query number plus the last digits of the contact phone.

Only what the form marks `public` is shown, with the status in the customer's words (the
form's `lookup.statuses` list). "No such number" and "wrong digits" get the same answer, after
the same work, so the page cannot be used to find which numbers exist; each client has a small
budget of lookups (RELIABILITY 45).
"""

from __future__ import annotations

import hmac
import re
from zoneinfo import ZoneInfo
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.types import label_text
from web.forms_body import read_form
from web.ratelimit import Limit

if TYPE_CHECKING:
    from web.app import Web

LOOKUPS = Limit(20, 600)
QUERY_NO = re.compile(r"[A-Za-z0-9-]{4,64}")
_DUMMY = "0" * 64


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def routes(web: "Web") -> list[Route]:
    """The lookup page and its answer."""
    forms = [f for f in web.system.forms.forms.values() if f.spec.lookup and f.spec.numbering]

    def digits_wanted() -> int:
        return max((int(f.spec.lookup.get("digits", 4)) for f in forms), default=4)

    async def show(request: Request) -> Response:
        web.limit(request, "lookup-view", Limit(120, 60))
        # `?query_no=` (the QR code on a reply letter) fills in the number; the digits are typed.
        given = request.query_params.get("query_no", "").strip().upper()
        return web.page(request, "lookup.html", digits=digits_wanted(), result=None, failed=False,
                        query_no=given if QUERY_NO.fullmatch(given) else "")

    async def answer(request: Request) -> Response:
        web.limit(request, "lookup", LOOKUPS)
        posted = await read_form(request, max_fields=10, max_part_size=4096, max_body=64 * 1024)
        query_no = str(posted.get("query_no", "")).strip().upper()
        typed = _digits(posted.get("verify", ""))
        locale = web.locale_of(request)
        found = None
        if QUERY_NO.fullmatch(query_no):
            for form in forms:
                record = web.system.forms.find_by_query_no(form.name, query_no)
                if record is not None:
                    found = (form, record)
                    break
        expected = _DUMMY
        if found is not None:
            form, record = found
            wanted = int(form.spec.lookup.get("digits", 4))
            expected = _digits(record.get(form.spec.lookup["verify"]))[-wanted:] or _DUMMY
        # Compare even when nothing was found, so both failures cost the same.
        matches = hmac.compare_digest(typed.encode()[-len(expected):] if typed else b"", expected.encode()) \
            and len(typed) >= 4
        if found is None or not matches:
            return web.page(request, "lookup.html", digits=digits_wanted(), result=None, failed=True,
                            query_no=query_no, status=200)
        form, record = found
        statuses = web.system.bundle.all("list").get(form.spec.lookup.get("statuses", ""))
        option = statuses.find(str(record["status"])) if statuses else None
        status = option.text(locale) if option else str(record["status"])
        shown = [(spec.text(locale), form.display(name, record.get(name), locale))
                 for name, spec in form.spec.fields.items()
                 if spec.public and name in form.stored and record.get(name) not in (None, "", [])]
        result = {"form": form.spec.text(locale), "query_no": record["query_no"], "status": status,
                  "created_at": record["created_at"].astimezone(ZoneInfo(web.system.bundle.meta.timezone)),
                  "fields": shown,
                  "timezone": web.system.bundle.meta.timezone}
        return web.page(request, "lookup.html", digits=digits_wanted(), result=result, failed=False,
                        query_no=query_no, label_text=label_text)

    return [Route("/track", show, methods=["GET"]), Route("/track", answer, methods=["POST"])]
