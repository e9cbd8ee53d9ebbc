"""The `webhook` channel: POST the message as JSON, signed with HMAC, same event id every try."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any, Mapping, Sequence

from engine.channels.base import DeliveryError, OutboundMessage
from engine.channels.http import Network, allowed_networks_from_env, post

__all__ = ["WebhookChannel", "answer_of", "signature"]

_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_RESERVED = {"host", "content-type", "content-length", "idempotency-key", "user-agent"}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>"): what receivers recompute."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel:
    """POST JSON to an HTTP(S) endpoint. 2xx is success; anything else is retried."""

    name = "webhook"
    aliases: tuple[str, ...] = ()
    description = ("POSTs each message as JSON to a URL. Headers Idempotency-Key and "
                   "X-Docket-Event-Id carry the message id, the same on every attempt; with "
                   "secret_env set, X-Docket-Signature is sha256=HMAC(secret, timestamp + '.' + "
                   "body) and X-Docket-Timestamp the Unix time. Internal addresses are refused.")
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "pattern": "^https?://", "description": "endpoint (http or https)"},
            "secret_env": {"type": "string", "description": "environment variable holding the HMAC secret"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60,
                        "description": "seconds to wait for the receiver (default 10)"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "extra request headers (not secrets)"},
        },
    }
    examples = ("channels:\n  erp_hook:\n    type: webhook\n    url: https://erp.example.com/docket/events\n"
                "    secret_env: DOCKET_ERP_HOOK_SECRET\n    timeout: 10\n",)

    def __init__(self, allow_networks: Sequence[Network] | None = None):
        # None: only what the operator allows in DOCKET_WEBHOOK_ALLOW_NETWORKS (normally nothing).
        self.allow_networks = tuple(allow_networks) if allow_networks is not None else None

    def allow(self) -> tuple[Network, ...]:
        return self.allow_networks if self.allow_networks is not None else allowed_networks_from_env()

    def send(self, message: OutboundMessage, settings: Mapping[str, Any]) -> Any:
        """POST the message; returns the receiver's answer when it is JSON, else None."""
        body = json.dumps({
            "id": message.message_id, "channel": message.channel, "to": list(message.to),
            "subject": message.subject, "body": message.body, "data": dict(message.data),
            "created_at": message.created_at.isoformat() if message.created_at else None,
            "attempt": message.attempts,
        }, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Idempotency-Key": message.message_id, "X-Docket-Event-Id": message.message_id}
        for name, value in (settings.get("headers") or {}).items():
            if not _HEADER_NAME.match(name) or name.lower() in _RESERVED or "\r" in value or "\n" in value:
                raise DeliveryError(f"invalid extra header '{name}' in channel {message.channel}")
            headers[name] = value
        secret = settings.get("secret")
        if secret:
            # The receiver's replay window needs real time, not the engine's (possibly manual) clock.
            stamp = str(int(time.time()))
            headers["X-Docket-Timestamp"] = stamp
            headers["X-Docket-Signature"] = signature(secret, stamp, body)
        response = post(settings["url"], body, headers, timeout=float(settings.get("timeout", 10)),
                        allow=self.allow())
        if not 200 <= response.status < 300:
            snippet = response.body[:200].decode("utf-8", "replace")
            raise DeliveryError(f"webhook answered HTTP {response.status}: {snippet}")
        return answer_of(response.body)


def answer_of(body: bytes) -> Any:
    """The receiver's answer as JSON data; None when it answered nothing or not JSON (a receiver
    owes no answer unless the message asks for one)."""
    if not body.strip():
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
