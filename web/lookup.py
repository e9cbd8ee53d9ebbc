"""Public progress lookup (查询进度): a query number plus the last digits of a phone the customer gave
(the form's `lookup.verify` field).

Only what the form marks `public` is shown, with the status in the customer's words (the
form's `lookup.statuses` list) and the path of statuses so far. "No such number" and "wrong
digits" get the same answer, after the same work, so the page cannot be used to find which
numbers exist; each client has a small budget of lookups (RELIABILITY 45).

When the record's flow waits at a step the customer may answer (a task with `customer:`), the
answer page also shows that step's fields. Its form carries a signed pass naming the record and
the task, valid for `StepPass.MAX_AGE`: the customer proved who they are once, on the lookup,
and nothing else (no account, no cookie) lets anyone answer.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from urllib.parse import urlencode
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from starlette.datastructures import MultiDict
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from engine.errors import ConflictError, NotFoundError, ValidationFailed
from engine.identity import CUSTOMER_ACTOR
from engine.storage.db import read_transaction
from engine.types import label_text
from forms.records import NEW_STATUS
from forms.render import Section, form_view, parse_form_post
from web.api import field_json, iso, json_object
from web.form_files import files_budget, mark_file_limits, read_kept_files, store_files
from web.forms_body import read_form
from web.json_answer import JSONAnswer
from web.auth import FailureWindows
from web.i18n import ui, wait_text
from web.offload import offload
from web.ratelimit import Limit, retry_after
from web.required_marks import mark_required_live, mark_required_now
from web.security import let_embedders_frame
from web.staff import local_time, status_labeller

if TYPE_CHECKING:
    from web.app import Web

LOOKUPS = Limit(20, 600)
GUESSES_PER_NUMBER = {"hour": Limit(10, 3600), "day": Limit(30, 24 * 3600)}
"""Looks at one query number whose digits were wrong, from every client together. The per-client
budget (LOOKUPS) does not stop many addresses guessing the 10,000 four-digit endings of one
number, which is printed on letters and SMS and follows the day's count (ADR 0005)."""
ANSWERS = Limit(10, 600)
MAX_ANSWER_FILES = 10
MAX_ANSWER_BYTES = 60 * 1024 * 1024
"""An answer may carry photos: at most this many files and bytes (each file also within its
field's own limit, checked as it streams in)."""
QUERY_NO = re.compile(r"[A-Za-z0-9-]{4,64}")
KEPT = "kept."
"""Prefix of the hidden inputs of the lookup form carrying an answer sent with an expired pass:
looked up again, the step shows what the customer wrote instead of losing it."""
_NEVER = "-" * 64
"""What the digits are compared with when there is nothing to match (an unknown number, a record
whose phone is empty): typed digits never equal it. A run of "0" did: 64 zeros opened a record
without a phone."""


class StepPass:
    """Signs and checks the pass a lookup answer gives for answering the customer's step."""

    MAX_AGE = 30 * 60
    """Seconds a pass stays good: time to read the reply and answer, not to keep a link."""

    def __init__(self, secret: str | bytes):
        self._signer = TimestampSigner(secret, salt="docket.customer-step")

    def issue(self, form: str, record_id: int, task_id: int) -> str:
        return self._signer.sign(f"{form}|{record_id}|{task_id}").decode()

    def check(self, token: str) -> tuple[str, int, int] | None:
        """(form, record id, task id) of a good pass; None if altered or older than MAX_AGE."""
        try:
            form, record_id, task_id = self._signer.unsign(token, max_age=self.MAX_AGE).decode().split("|")
            return form, int(record_id), int(task_id)
        except (BadSignature, SignatureExpired, ValueError, UnicodeDecodeError):
            return None


@dataclass
class CustomerStep:
    """The step on the answer page: its pass, what it asks, and what the customer sent."""

    token: str
    title: str
    prompt: str
    sections: list[Any]
    answer_by: str = ""
    """The local time the step stops waiting for the answer (its `timeout:`), or ""."""


def _query_no(value: Any) -> str:
    """A query number as typed or pasted, read as the number it means: full-width letters and
    digits (a Chinese input method's full-width mode types ＴＳ２０２６…) as ASCII, spaces from an
    SMS or a letter left out, lower case raised."""
    return "".join(unicodedata.normalize("NFKC", str(value or "")).split()).upper()


def _digits(value: Any) -> str:
    """The ASCII digits of what was typed for the phone (５６７８ is 5678; spaces and dashes go)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", str(value or "")) if "0" <= ch <= "9")


def verify_field_label(specs: list[Any], locale: str) -> str:
    """The label of the field whose last digits the lookup of these forms asks for (`lookup.verify`):
    the customer must know which number they gave is meant. Forms that verify with fields of
    different labels share one lookup page, which then names them all in one phrase."""
    labels = {label_text(spec.fields[spec.lookup["verify"]].label, locale, spec.lookup["verify"])
              for spec in specs if spec.lookup.get("verify") in spec.fields}
    return labels.pop() if len(labels) == 1 else ui("verify_field_any", locale)


def routes(web: "Web") -> list[Route]:
    """The lookup page, its answer, and the customer's answer to their step."""
    forms = [f for f in web.system.forms.forms.values() if f.spec.lookup and f.spec.numbering]
    passes = web.step_pass
    zone = web.system.bundle.meta.timezone

    def digits_wanted() -> int:
        return max((int(f.spec.lookup.get("digits", 4)) for f in forms), default=4)

    def page(request: Request, **context: Any) -> Response:
        """The lookup page; the sites that may frame the public form may frame it too, as the
        form and its acknowledgement link here."""
        return let_embedders_frame(web.page(request, "lookup.html", digits=digits_wanted(), verify_field=verify_field_label(
            [f.spec for f in forms], web.locale_of(request)), **context), web.embedders)

    def relook(query_no: str) -> Callable[[str], str]:
        """The language links of a page showing `query_no`: the lookup in that language with the
        number filled in (a well-formed one: the customer typed it or it is theirs); never the
        digits, which are the customer's proof."""
        if not QUERY_NO.fullmatch(query_no):
            return lambda loc: f"/track?{urlencode({'lang': loc})}"
        return lambda loc: f"/track?{urlencode({'lang': loc, 'query_no': query_no})}"

    def changes(form: Any, record: dict[str, Any]) -> list[tuple[datetime, str]]:
        """(when, status) of each change, the record's creation first."""
        return [(record["created_at"], NEW_STATUS), *web.system.flows.status_path(form.name, record["id"])]

    def public_fields(form: Any, record: dict[str, Any], locale: str) -> list[tuple[str, str, str]]:
        """(name, label, shown value) of each filled field the form shows its customers."""
        return [(name, spec.text(locale), str(form.display(name, record.get(name), locale)))
                for name, spec in form.spec.fields.items()
                if spec.public and name in form.stored and record.get(name) not in (None, "", [])]

    def progress(form: Any, record: dict[str, Any], locale: str) -> list[tuple[str, str]]:
        """(local time, status word) per change the customer can tell apart, oldest first."""
        word = status_labeller(web.system.bundle, form, locale, customer=True)
        shown: list[tuple[str, str]] = []
        for at, status in changes(form, record):
            if not shown or shown[-1][1] != word(status):
                shown.append((local_time(at, zone), word(status)))
        return shown

    def step_of(form: Any, record: dict[str, Any], locale: str, *, values: dict[str, Any] | None = None,
                errors: dict[str, list[str]] | None = None) -> CustomerStep | None:
        found = web.system.flows.customer_step(form.name, record["id"])
        if found is None:
            return None
        task, node = found
        prompt = _prompt(node, locale)
        fields = list(node.options.get("fields", []))
        shown = values if values is not None else {name: record.get(name) for name in fields}
        sections = form_view(form, locale, values=shown, errors=errors or {}, only=fields)
        mark_file_limits(web, form, sections)  # a too-large photo is refused as it is chosen (form.js)
        mark_required_now(web, form, record, sections)
        mark_required_live(form, sections)
        # In the step's order, not the form's: what the prompt asks for first, its files after.
        widgets = sorted((w for section in sections for w in section.widgets), key=lambda w: fields.index(w.name))
        armed = None
        if node.compiled.get("timeout") is not None:
            with read_transaction(web.system.db) as conn:
                armed = web.system.flows.timeout_of(conn, int(task["instance_id"]), node.id)
        # One group without the staff form's section headings: the customer sees only the step.
        return CustomerStep(token=passes.issue(form.name, record["id"], int(task["id"])),
                            title="" if prompt else node.text(locale), prompt=prompt,
                            sections=[Section(None, widgets)],
                            answer_by=local_time(armed[0], zone) if armed else "")

    def kept_values(form: Any, record: dict[str, Any], posted: Any) -> dict[str, Any] | None:
        """The answer carried through the lookup form (KEPT) for the step now open, or None when
        nothing was carried: the step then shows the record's values."""
        carried = MultiDict([(k[len(KEPT):], v) for k, v in posted.multi_items()
                             if k.startswith(KEPT) and isinstance(v, str)])
        found = web.system.flows.customer_step(form.name, record["id"]) if carried else None
        if found is None:
            return None
        return parse_form_post(form, carried, only=list(found[1].options.get("fields", [])))

    def result_page(request: Request, form: Any, record: dict[str, Any], *, status: int = 200,
                    notice: str | None = None, alert: str | None = None,
                    values: dict[str, Any] | None = None, errors: dict[str, list[str]] | None = None) -> Response:
        locale = web.locale_of(request)
        result = {"form": form.spec.text(locale), "query_no": record["query_no"],
                  "status": status_labeller(web.system.bundle, form, locale, customer=True)(record["status"]),
                  "created_at": local_time(record["created_at"], zone),
                  "fields": [(label, value) for _name, label, value in public_fields(form, record, locale)],
                  "progress": progress(form, record, locale),
                  "step": step_of(form, record, locale, values=values, errors=errors)}
        # The answer is not a page to link to (it needs the digits): another language opens the
        # lookup with the number filled in, and the customer types the digits again.
        return page(request, result=result, failed=False, query_no=record["query_no"], notice=notice,
                    alert=alert, status=status, lang_url=relook(record["query_no"]),
                    max_files_bytes=files_budget(MAX_ANSWER_BYTES))

    async def show(request: Request) -> Response:
        web.limit(request, "lookup-view", Limit(120, 60))
        # `?query_no=` (the QR code on a reply letter) fills in the number; the digits are typed.
        given = _query_no(request.query_params.get("query_no", ""))
        return page(request, result=None, failed=False, query_no=given if QUERY_NO.fullmatch(given) else "")

    guesses = FailureWindows(web.limiter.clock)

    def count_guess(request: Request, query_no: str) -> None:
        """Count a look at `query_no` as a wrong guess before its digits are checked (parallel
        guesses cannot all slip through one free slot); 429 once the number has had too many.
        Unknown numbers are counted alike, so the refusal says nothing about which exist."""
        if not QUERY_NO.fullmatch(query_no):
            return  # no record can match it: nothing to guess
        wait = guesses.take([(f"{span}|{query_no}", limit) for span, limit in GUESSES_PER_NUMBER.items()])
        if wait is not None:
            header = retry_after(wait)
            locale = web.locale_of(request)
            raise HTTPException(429, ui("too_many", locale).format(wait=wait_text(header, locale)),
                                headers={"Retry-After": header})

    def found_it(query_no: str) -> None:
        """The digits were right: that look does not count against the number."""
        for span in GUESSES_PER_NUMBER:
            guesses.forget_one(f"{span}|{query_no}")

    def find(query_no: str, typed: str) -> tuple[Any, dict[str, Any]] | None:
        """The record this query number and these digits name; None for a wrong number or wrong
        digits alike, after the same work (no enumeration)."""
        found = None
        if QUERY_NO.fullmatch(query_no):
            for form in forms:
                record = web.system.forms.find_by_query_no(form.name, query_no)
                if record is not None:
                    found = (form, record)
                    break
        expected = _NEVER
        if found is not None:
            form, record = found
            wanted = int(form.spec.lookup.get("digits", 4))
            expected = _digits(record.get(form.spec.lookup["verify"]))[-wanted:] or _NEVER
        # Compare even when nothing was found, so both failures cost the same.
        matches = hmac.compare_digest(typed.encode()[-len(expected):] if typed else b"", expected.encode()) \
            and len(typed) >= 4
        return found if matches else None

    def open_step(token: str) -> tuple[str, Any, dict[str, Any] | None, Any]:
        """What a pass opens: ("expired", None, None, None) for an altered or old one; ("taken",
        form, record, None) when the step is no longer open; ("open", form, record, (task, node))."""
        checked = passes.check(token)
        form = next((f for f in forms if checked and f.name == checked[0]), None)
        if checked is None or form is None:
            return "expired", None, None, None
        _name, record_id, task_id = checked
        record = web.system.forms.get(form.name, record_id)
        found = web.system.flows.customer_step(form.name, record_id)
        if found is None or int(found[0]["id"]) != task_id:
            return "taken", form, record, None
        return "open", form, record, found

    def send_answer(form: Any, record: dict[str, Any], found: Any, values: dict[str, Any], locale: str) -> dict[str, Any]:
        """Complete the customer's step with `values`; the record as it is then. ValidationFailed
        and ConflictError pass through."""
        task, _node = found
        web.system.flows.complete(int(task["id"]), CUSTOMER_ACTOR, values=values, locale=locale,
                                  expected_version=int(task["version"]))
        return web.system.forms.get(form.name, record["id"])

    async def answer(request: Request) -> Response:
        web.limit(request, "lookup", LOOKUPS)
        # Room for an answer carried from an expired step (KEPT): a long text, a few choices.
        posted = await read_form(request, max_fields=60, max_part_size=16 * 1024, max_body=128 * 1024)
        query_no = _query_no(posted.get("query_no", ""))
        count_guess(request, query_no)
        found = await offload.run(find, query_no, _digits(posted.get("verify", "")))
        if found is None:
            # The number comes back, the digits do not: they are the customer's proof, like a
            # password on the sign-in page, so the page never writes them into its HTML (a shared
            # counter screen, the browser's page cache), and they are never put in a link.
            return page(request, result=None, failed=True, query_no=query_no, status=200,
                        lang_url=relook(query_no), kept=carried(posted))
        found_it(query_no)
        form, record = found
        values = await offload.run(kept_values, form, record, posted)
        return await offload.run(lambda: result_page(request, form, record, values=values))

    async def answer_step(request: Request) -> Response:
        web.limit(request, "lookup-step", ANSWERS)
        posted = await read_form(request, max_fields=60, max_part_size=16 * 1024, max_files=MAX_ANSWER_FILES,
                                 max_body=MAX_ANSWER_BYTES)
        locale = web.locale_of(request)
        state, form, record, found = await offload.run(open_step, str(posted.get("pass", "")))
        if state == "expired":
            # Back to the lookup with the number the page carried: only the digits are typed again.
            # What the customer wrote rides along in the lookup form and comes back in the step;
            # files are not kept (nothing says whose step they were for): the page says so.
            given = _query_no(posted.get("query_no", ""))
            kept = [(KEPT + name, value) for name, value in posted.multi_items()
                    if isinstance(value, str) and value != "" and name not in ("pass", "query_no")]
            files = any(not isinstance(value, str) and value.filename for _name, value in posted.multi_items())
            alert = ui("answer_expired_kept" if kept else "answer_expired", locale)
            if files:
                alert += ui("choose_files_again", locale)
            return page(request, result=None, failed=False, query_no=given if QUERY_NO.fullmatch(given) else "",
                        alert=alert, status=400, kept=kept)
        if state == "taken":
            return await offload.run(lambda: result_page(
                request, form, record, status=409, alert=ui("answer_taken", locale)))
        fields = list(found[1].options.get("fields", []))
        values = parse_form_post(form, posted, only=fields)
        # Photos and documents go through the same checks as on the public form (web.form_files);
        # a refused post lists the files already stored, to be kept without sending them again.
        errors: dict[str, list[str]] = await store_files(web, form, posted, values, locale, only=fields,
                                                         anonymous=True)
        fresh = record
        if not errors:
            try:
                fresh = await offload.run(send_answer, form, record, found, values, locale)
            except ValidationFailed as exc:
                errors = exc.errors
            except (ConflictError, NotFoundError):
                fresh = await offload.run(web.system.forms.get, form.name, record["id"])
                return await offload.run(lambda: result_page(
                    request, form, fresh, status=409, alert=ui("answer_taken", locale)))
        if errors:
            # The step's own files too (its record's photos, listed on the first view): without
            # them the next send removed the complaint's photo.
            shown = await offload.run(lambda: read_kept_files(web, form, values, record_id=int(record["id"])))
            return await offload.run(lambda: result_page(
                request, form, record, status=422, values=shown, errors=errors,
                alert=ui("fix_errors", locale)))
        return await offload.run(lambda: result_page(request, form, fresh, notice=ui("answer_thanks", locale)))

    # -- the same for apps (a WeChat official account, a customer portal): JSON -----------------
    def view_json(form: Any, record: dict[str, Any], locale: str) -> dict[str, Any]:
        found = web.system.flows.customer_step(form.name, record["id"])
        step = None
        if found is not None:
            task, node = found
            step = {"node": node.id, "label": node.text(locale), "prompt": _prompt(node, locale),
                    "pass": passes.issue(form.name, record["id"], int(task["id"])),
                    "fields": [field_json(form, name, locale) for name in node.options.get("fields", [])]}
        word = status_labeller(web.system.bundle, form, locale, customer=True)
        return {"form": form.name, "form_label": form.spec.text(locale), "query_no": record["query_no"],
                "status": record["status"], "status_label": word(record["status"]),
                "created_at": iso(record["created_at"]),
                "progress": [{"at": iso(at), "status": status, "label": word(status)}
                             for at, status in changes(form, record)],
                "fields": [{"name": name, "label": label, "value": value}
                           for name, label, value in public_fields(form, record, locale)],
                "step": step}

    async def api_lookup(request: Request) -> Response:
        web.limit(request, "lookup", LOOKUPS)
        data = await json_object(request)
        query_no = _query_no(data.get("query_no", ""))
        count_guess(request, query_no)
        found = await offload.run(find, query_no, _digits(data.get("verify", "")))
        if found is None:
            return JSONAnswer({"error": "no record matches this query number and these digits"}, 404)
        found_it(query_no)
        return JSONAnswer(await offload.run(view_json, found[0], found[1], web.locale_of(request)))

    async def api_answer(request: Request) -> Response:
        web.limit(request, "lookup-step", ANSWERS)
        data = await json_object(request)
        values = data.get("values")
        if not isinstance(values, dict):
            return JSONAnswer({"error": "`values` must be an object of the step's fields"}, 400)
        state, form, record, found = await offload.run(open_step, str(data.get("pass", "")))
        if state == "expired":
            return JSONAnswer({"error": "the pass is altered or expired: look the record up again"}, 400)
        if state == "taken":
            return JSONAnswer({"error": "this step has already been answered"}, 409)
        fields = list(found[1].options.get("fields", []))
        unknown = sorted(set(values) - set(fields))
        if unknown:
            return JSONAnswer({"error": f"this step takes {', '.join(fields)}; not {', '.join(unknown)}"}, 400)
        locale = web.locale_of(request)
        fresh = await offload.run(send_answer, form, record, found, values, locale)
        return JSONAnswer(await offload.run(view_json, form, fresh, locale))

    async def answer_again(request: Request) -> Response:
        # The address an answer was posted to, opened again (a phone reopening the tab, the
        # browser's history): the lookup, not a bare "Method Not Allowed".
        return RedirectResponse(f"/track?{urlencode({'lang': web.locale_of(request)})}", status_code=303)

    return [Route("/track", show, methods=["GET"]), Route("/track", answer, methods=["POST"]),
            Route("/track/answer", answer_step, methods=["POST"]),
            Route("/track/answer", answer_again, methods=["GET"]),
            Route("/api/v1/lookup", api_lookup, methods=["POST"]),
            Route("/api/v1/lookup/answer", api_answer, methods=["POST"])]


def carried(posted: Any) -> list[tuple[str, str]]:
    """The answer a lookup form carried (KEPT inputs), to carry again when the digits were wrong."""
    return [(name, value) for name, value in posted.multi_items() if name.startswith(KEPT) and isinstance(value, str)]


def _prompt(node: Any, locale: str) -> str:
    """What a customer step asks, in `locale` (its `customer: {prompt}`; none for `customer: true`)."""
    option = node.options["customer"]
    return label_text(option.get("prompt"), locale, "") if isinstance(option, Mapping) else ""
