"""The `sms` channel: text messages through a provider adapter.

SMS providers differ (signatures, pre-approved templates, JSON or form bodies), so the channel
validates and normalises what every provider needs (phone numbers, plain text within a length
cap) and hands the rest to an adapter chosen by `provider:`. The built-in `http` adapter posts
to an SMS gateway of the company's own (JSON, HMAC-signed, same message id on every attempt);
plugins add adapters for commercial providers to `registry.sms_providers` (an `SmsProvider`
each), like every other plugin kind: a module-level table would be shared by every registry of
the process, so the second registry built in one process refused the plugin as a duplicate.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from engine.channels.base import DeliveryError, OutboundMessage, PermanentDeliveryError
from engine.channels.http import Network, allowed_networks_from_env, post
from engine.types import clip
from engine.channels.webhook import signature

if TYPE_CHECKING:
    from engine.registry import Kind

__all__ = ["HTTP_PROVIDER", "SmsChannel", "SmsProvider", "SmsSend"]

SmsSend = Callable[[OutboundMessage, list[str], str, Mapping[str, Any], Sequence[Network]], None]
"""`send(message, to, text, settings, allow)`: deliver `text` to the normalised phone numbers
`to`; `settings` are the channel's (secrets resolved), `allow` the networks it may reach."""

_PHONE = re.compile(r"^\+?[0-9]{5,15}$")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]+")
MAX_CHARS = 500  # about 7 concatenated segments of Chinese text


@dataclass(frozen=True)
class SmsProvider:
    """An adapter for `provider: <name>` of an sms channel; a plugin registers one with
    `registry.sms_providers.add(SmsProvider("aliyun", send), source=...)`.

    `send` raises `DeliveryError` to be retried and `PermanentDeliveryError` to give up.
    """

    name: str
    send: SmsSend
    description: str = ""
    aliases: tuple[str, ...] = ()
    options_schema: dict[str, Any] = field(default_factory=dict)


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


HTTP_PROVIDER = SmsProvider("http", _http_gateway,
                            "Posts JSON {id, to, text, sender} to the company's own SMS gateway (url_env).")


def _built_in_providers() -> "Kind[SmsProvider]":
    """The providers of an SmsChannel made without a registry (tests): http only."""
    from engine.registry import Kind

    providers: Kind[SmsProvider] = Kind("SMS provider")
    providers.add(HTTP_PROVIDER)
    return providers


class SmsChannel:
    """Sends the body as a text message to each phone number in `to`."""

    name = "sms"
    aliases: tuple[str, ...] = ()
    description = ("Sends text messages through a provider adapter. provider: http posts JSON "
                   "{id, to, text, sender} to the company's SMS gateway (url_env), HMAC-signed "
                   "with secret_env like webhooks; plugins add providers. Phone numbers are "
                   "checked, text is plain and cut at 500 characters.")
    _options_schema: dict[str, Any] = {
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

    def __init__(self, allow_networks: Sequence[Network] | None = None, *,
                 providers: "Kind[SmsProvider] | None" = None):
        self.allow_networks = tuple(allow_networks) if allow_networks is not None else None
        self.providers = providers if providers is not None else _built_in_providers()
        """The registry's `sms_providers`: what `provider:` may name."""

    @property
    def options_schema(self) -> dict[str, Any]:
        """The settings' schema, `provider` limited to the installed providers, so a misspelt
        one is reported by `docket validate` (with a did-you-mean), not by a dead letter."""
        provider = {**self._options_schema["properties"]["provider"], "enum": self.providers.words()}
        return {**self._options_schema,
                "properties": {**self._options_schema["properties"], "provider": provider}}

    def send(self, message: OutboundMessage, settings: Mapping[str, Any]) -> None:
        provider = self.providers.get(str(settings.get("provider")))
        if provider is None:
            raise PermanentDeliveryError(f"unknown SMS provider '{settings.get('provider')}' "
                                         f"(installed: {', '.join(self.providers.names())})")
        if settings.get("provider") == "http" and not settings.get("url"):
            raise PermanentDeliveryError("an http SMS provider needs url_env")
        to = [phone_number(t) for t in message.to]
        if not to:
            raise PermanentDeliveryError("a text message needs at least one phone number")
        allow = self.allow_networks if self.allow_networks is not None else allowed_networks_from_env()
        provider.send(message, to, sms_text(message.subject, message.body), settings, allow)
