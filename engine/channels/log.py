"""The `log` channel: writes each message to the `docket.notify` logger (development, audits)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from engine.channels.base import OutboundMessage

log = logging.getLogger("docket.notify")


class LogChannel:
    """Never fails: the message goes to the application log at INFO (or `level`)."""

    name = "log"
    aliases: tuple[str, ...] = ()
    description = ("Writes the message to the server log (logger docket.notify). Always "
                   "available, also when bundle.yaml configures no channels.")
    options_schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"level": {"enum": ["debug", "info", "warning"],
                                 "description": "log level of the messages (default info)"}},
    }
    examples = ("channels:\n  log:\n    type: log\n    level: info\n",)

    def send(self, message: OutboundMessage, settings: Mapping[str, Any]) -> None:
        level = getattr(logging, str(settings.get("level", "info")).upper(), logging.INFO)
        log.log(level, "message %s via %s to %s: %s\n%s", message.message_id, message.channel,
                ", ".join(message.to) or "-", message.subject, message.body)
