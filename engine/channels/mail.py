"""The `email` channel: SMTP through smtplib, with headers that user text cannot extend."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import parseaddr
from typing import Any, Mapping

from engine.channels.base import DeliveryError, OutboundMessage, PermanentDeliveryError
from engine.channels.text import header_text

__all__ = ["EmailChannel"]

log = logging.getLogger(__name__)


def _address(value: str, what: str) -> str:
    """A bare address from `value`, refusing anything that could smuggle a header."""
    if any(ch in value for ch in "\r\n\x00"):
        raise PermanentDeliveryError(f"{what} {value!r} contains a line break; refused")
    _name, addr = parseaddr(value)
    if not addr or "@" not in addr or any(ch.isspace() for ch in addr):
        raise PermanentDeliveryError(f"{what} {value!r} is not an e-mail address")
    return addr


class EmailChannel:
    """Sends plain-text mail (plus an HTML alternative from `data.html`) over SMTP."""

    name = "email"
    aliases = ("smtp",)
    description = ("Sends e-mail over SMTP (STARTTLS by default). The subject is one header "
                   "line: line breaks in it are replaced by spaces (logged), recipients with line "
                   "breaks are refused. Message-ID and X-Docket-Message-Id carry the message id, "
                   "the same on every attempt. An HTML version can be passed as data.html.")
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["host", "from"],
        "additionalProperties": False,
        "properties": {
            "host": {"type": "string", "description": "SMTP server"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                     "description": "default 587 (starttls), 465 (ssl) or 25 (none)"},
            "security": {"enum": ["starttls", "ssl", "none"], "description": "default starttls"},
            "username_env": {"type": "string", "description": "variable holding the SMTP user name"},
            "password_env": {"type": "string", "description": "variable holding the SMTP password"},
            "from": {"type": "string", "description": "sender, e.g. 投诉中心 <complaints@example.com>"},
            "reply_to": {"type": "string"},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 120,
                        "description": "seconds (default 20)"},
        },
    }
    examples = ("channels:\n  email:\n    type: email\n    host: smtp.example.com\n    port: 587\n"
                "    security: starttls\n    username_env: DOCKET_SMTP_USER\n"
                "    password_env: DOCKET_SMTP_PASSWORD\n    from: 投诉中心 <complaints@example.com>\n",)

    def build(self, message: OutboundMessage, settings: Mapping[str, Any]) -> EmailMessage:
        """The MIME message as it would be sent (no network)."""
        sender = _address(str(settings["from"]), "sender")
        recipients = [_address(r, "recipient") for r in message.to]
        if not recipients:
            raise PermanentDeliveryError("an e-mail needs at least one recipient")
        subject = header_text(message.subject)
        if subject != message.subject.strip():
            log.warning("e-mail %s: line breaks removed from the subject %r", message.message_id,
                        message.subject[:200])
        msg = EmailMessage(policy=SMTP)
        display, _ = parseaddr(str(settings["from"]))
        domain = sender.rsplit("@", 1)[1]
        msg["From"] = Address(header_text(display), addr_spec=sender) if display else sender
        msg["To"] = ", ".join(recipients)
        if settings.get("reply_to"):
            msg["Reply-To"] = _address(str(settings["reply_to"]), "reply_to")
        msg["Subject"] = subject
        msg["Message-ID"] = f"<{message.message_id}@{domain}>"
        msg["X-Docket-Message-Id"] = message.message_id
        msg.set_content(message.body)
        html = message.data.get("html")
        if isinstance(html, str) and html:
            msg.add_alternative(html, subtype="html")
        return msg

    def send(self, message: OutboundMessage, settings: Mapping[str, Any]) -> None:
        msg = self.build(message, settings)
        security = settings.get("security", "starttls")
        port = int(settings.get("port") or {"ssl": 465, "none": 25}.get(security, 587))
        timeout = float(settings.get("timeout", 20))
        host = str(settings["host"])
        try:
            if security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                                        context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(host, port, timeout=timeout)
            with client:
                client.ehlo()
                if security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                if settings.get("username"):
                    client.login(str(settings["username"]), str(settings.get("password", "")))
                refused = client.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP server {host} rejected the credentials: {exc.smtp_code} "
                                f"{_decode(exc.smtp_error)}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(f"SMTP server {host} refused every recipient: "
                                         f"{', '.join(exc.recipients)}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"sending mail through {host}:{port} failed: "
                                f"{type(exc).__name__}: {exc}") from None
        if refused:
            log.warning("e-mail %s: SMTP server refused some recipients: %s", message.message_id,
                        ", ".join(refused))


def _decode(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
