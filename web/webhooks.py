"""`POST /api/v1/webhooks/{name}`: an inbound webhook (forms/inbound.py) creates a record.

The sender signs every delivery with the webhook's shared secret (from the environment
variable the definition names):

    X-Docket-Timestamp: 1795404000                  (Unix seconds when it was sent)
    X-Docket-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">

A missing or wrong signature is 401; a timestamp further than the webhook's `tolerance`
(default 5 minutes) from the server's clock is 401 too, so a captured delivery cannot be
replayed later. Within the tolerance a replay is harmless: the `external_id` (e.g. the call
id) is the idempotency key, so a repeated delivery returns the first record (200) instead of
creating another; a payload without one is keyed by its signature, so the same delivery sent
again does the same. Values that do not validate are 422 with errors per field, like the API.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forms.inbound import MappingFailed, WebhookSpec, map_payload
from web.offload import offload

if TYPE_CHECKING:
    from web.app import Web

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-docket-signature"
TIMESTAMP_HEADER = "x-docket-timestamp"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp` (what a sender computes)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(spec: WebhookSpec, headers: Any, body: bytes, now: float) -> None:
    """Raise HTTPException(401) unless the delivery is signed with the secret and fresh."""
    secret = os.environ.get(spec.secret_env, "")
    if not secret:
        # Nothing can be verified: refuse, and tell the operator why in the log.
        log.error("webhook '%s' refused a delivery: $%s is not set", spec.name, spec.secret_env)
        raise HTTPException(401, "this webhook cannot verify deliveries yet (no secret configured)")
    stamp = headers.get(TIMESTAMP_HEADER, "").strip()
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12 or not given:
        raise HTTPException(401, f"sign the delivery: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers")
    expected = sign(secret, stamp, body)
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise HTTPException(401, "the signature does not match the body")
    if abs(now - int(stamp)) > spec.tolerance:
        raise HTTPException(401, f"the timestamp is more than {spec.tolerance} seconds from now: "
                                 "a delayed or replayed delivery")


def delivery_key(spec: WebhookSpec, headers: Any) -> str:
    """The idempotency key of a delivery whose payload has no external id: its signature, which
    names its timestamp and body. A captured delivery replayed within the tolerance is answered
    with the first record instead of creating another; the sender's own retry, signed at a new
    instant, is a new delivery, as it always was without an id."""
    signed = headers.get(SIGNATURE_HEADER, "").strip().removeprefix("sha256=")
    return f"webhook:{spec.name}:delivery:{signed[:64]}"


def routes(web: "Web") -> list[Route]:
    """The webhook endpoint (one route; unknown names are 404)."""
    from web.api import MAX_JSON_BODY

    async def receive(request: Request) -> Response:
        system = web.system
        spec = system.bundle.all("webhook").get(request.path_params["name"])
        if spec is None:
            raise HTTPException(404, "no such webhook")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            raise HTTPException(415, "send the payload as JSON (Content-Type: application/json)")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_JSON_BODY:
                raise HTTPException(413, f"the payload is larger than {MAX_JSON_BODY:,} bytes")
        verify(spec, request.headers, bytes(body), system.runtime.clock.now().timestamp())
        import json

        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise HTTPException(400, "the payload is not valid JSON") from None
        if not isinstance(payload, dict):
            raise HTTPException(400, "the payload must be a JSON object")
        try:
            values, external = map_payload(spec, payload, system.forms.eval_context())
        except MappingFailed as exc:
            return JSONResponse({"error": "the payload could not be mapped", "fields": exc.errors}, 422)
        key = f"webhook:{spec.name}:{external}" if external else delivery_key(spec, request.headers)
        result = await offload.run(
            system.forms.submit, spec.form, values, actor=spec.actor, locale=web.locale_of(request),
            idempotency_key=key, channel=f"webhook:{spec.name}")
        return JSONResponse({"id": result.record_id, "form": result.form, "query_no": result.query_no,
                             "created": result.created}, status_code=201 if result.created else 200)

    return [Route("/api/v1/webhooks/{name}", receive, methods=["POST"])]


__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "delivery_key", "routes", "sign", "verify"]
