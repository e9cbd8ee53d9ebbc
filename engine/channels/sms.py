"""The `sms` channel: text messages through a provider adapter.

SMS providers differ (signatures, pre-approved templates, JSON or form bodies), so the channel
validates and normalises what every provider needs (phone numbers, plain text within a length
cap) and hands the rest to an adapter chosen by `provider:`. The built-in `http` adapter posts
to an SMS gateway of the company's own (JSON, HMAC-signed, same message id on every attempt);
plugins add adapters for commercial providers with `register_sms_provider`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Callable, Mapping, Sequence

from engine.channels.base import DeliveryError, OutboundMessage, PermanentDeliveryError
from engine.channels.http import Network, allowed_networks_from_env, post
from engine.types import clip
from engine.channels.webhook import signature

__all__ = ["SmsChannel", "register_sms_provider", "SMS_PROVIDERS"]

SmsProvider = Callable[[OutboundMessage, list[str], str, Mapping[str, Any], Sequence[Network]], None]
SMS_PROVIDERS: dict[str, SmsProvider] = {}

_PHONE = re.compile(r"^\+?[0-9]{5,15}$")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]+")
MAX_CHARS = 500  # about 7 concatenated segments of Chinese text


def register_sms_provider(name: str, adapter: SmsProvider) -> None:
    """Make `provider: <name>` available to sms channels (plugins call this from `register`)."""
    if name in SMS_PROVIDERS:
        raise ValueError(f"SMS provider '{name}' is already registered")
    SMS_PROVIDERS[name] = adapter


def phone_number(value: str) -> str:
    """A phone number without spaces, dashes or brackets; refused if it is not one."""
    compact = re.sub(r"[\s\-()]", "", value)
    if not _PHONE.match(compact):
        raise PermanentDeliveryError(f"recipient {value!r} is not a phone number")
    return compact


def sms_text(subject: str, body: str) -> str:
    """The text sent: the body (or the subject if there is none), control characters removed,
    cut to MAX_CHARS."""
    text = _CONTROL.sub(" ", (body or subject).replace("\r\n", "\n").replace("\r", "\n")).strip()
    return clip(text, MAX_CHARS)


def _http_gateway(message: OutboundMessage, to: list[str], text: str, settings: Mapping[str, Any],
                  allow: Sequence[Network]) -> None:
    body = json.dumps({"id": message.message_id, "to": to, "text": text,
                       "sender": settings.get("sender")}, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": message.message_id}
    if settings.get("secret"):
        stamp = str(int(time.time()))  # the gateway's replay window needs real time
        headers["X-Docket-Timestamp"] = stamp
        headers["X-Docket-Signature"] = signature(settings["secret"], stamp, body)
    response = post(settings["url"], body, headers, timeout=float(settings.get("timeout", 10)), allow=allow)
    if not 200 <= response.status < 300:
        raise DeliveryError(f"SMS gateway answered HTTP {response.status}: "
                            f"{response.body[:200].decode('utf-8', 'replace')}")


SMS_PROVIDERS["http"] = _http_gateway


class SmsChannel:
    """Sends the body as a text message to each phone number in `to`."""

    name = "sms"
    aliases: tuple[str, ...] = ()
    description = ("Sends text messages through a provider adapter. provider: http posts JSON "
                   "{id, to, text, sender} to the company's SMS gateway (url_env), HMAC-signed "
                   "with secret_env like webhooks; plugins add providers. Phone numbers are "
                   "checked, text is plain and cut at 500 characters.")
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["provider"],
        "additionalProperties": False,
        "properties": {
            "provider": {"type": "string", "description": "adapter: http (built in) or a plugin's"},
            "url_env": {"type": "string", "description": "variable holding the gateway URL"},
            "secret_env": {"type": "string", "description": "variable holding the signing secret"},
            "key_env": {"type": "string", "description": "variable holding a provider access key"},
            "sender": {"type": "string", "description": "sender name or signature (短信签名)"},
            "template": {"type": "string", "description": "provider template code, if it needs one"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
        },
    }
    examples = ("channels:\n  sms:\n    type: sms\n    provider: http\n    url_env: DOCKET_SMS_GATEWAY_URL\n"
                "    secret_env: DOCKET_SMS_GATEWAY_SECRET\n    sender: 中国邮政\n",)

    def __init__(self, allow_networks: Sequence[Network] | None = None):
        self.allow_networks = tuple(allow_networks) if allow_networks is not None else None

    def send(self, message: OutboundMessage, settings: Mapping[str, Any]) -> None:
        adapter = SMS_PROVIDERS.get(str(settings.get("provider")))
        if adapter is None:
            raise PermanentDeliveryError(f"unknown SMS provider '{settings.get('provider')}' "
                                         f"(installed: {', '.join(sorted(SMS_PROVIDERS))})")
        if settings.get("provider") == "http" and not settings.get("url"):
            raise PermanentDeliveryError("an http SMS provider needs url_env")
        to = [phone_number(t) for t in message.to]
        if not to:
            raise PermanentDeliveryError("a text message needs at least one phone number")
        allow = self.allow_networks if self.allow_networks is not None else allowed_networks_from_env()
        adapter(message, to, sms_text(message.subject, message.body), settings, allow)
