"""What a channel type is: the message it sends, its settings, and how it reports failure."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Protocol, runtime_checkable

from engine.errors import DocketError

__all__ = ["ChannelConfig", "ChannelType", "DeliveryError", "OutboundMessage",
           "PermanentDeliveryError", "resolve_settings", "ENV_SUFFIX", "ENV_NAME_PATTERN"]

ENV_SUFFIX = "_env"
ENV_NAME_PATTERN = "^[A-Z_][A-Z0-9_]*$"


class DeliveryError(DocketError):
    """A message could not be delivered this time; the outbox retries it with backoff."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (refused target, header injection, unknown channel): dead-letter now."""


@dataclass(frozen=True)
class OutboundMessage:
    """One outbox row as a channel sees it. `message_id` is the same on every attempt, so
    receivers can drop duplicates (at-least-once delivery)."""

    id: int
    message_id: str
    channel: str
    to: tuple[str, ...]
    subject: str
    body: str
    data: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 1
    created_at: datetime | None = None
    reply: Mapping[str, Any] | None = None
    """What to do with the receiver's answer (`Outbox.on_reply`); never sent to the receiver."""


@dataclass(frozen=True)
class ChannelConfig:
    """A channel named in bundle.yaml `channels:`: its type and its settings as written.

    Secrets are never written in YAML: a setting `password_env: DOCKET_SMTP_PASSWORD` names the
    environment variable that holds the password, read when a message is sent.
    """

    name: str
    type: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    label: Any = None
    """What people call it (a bilingual label); the name when none is written."""


@runtime_checkable
class ChannelType(Protocol):
    """A registered channel type (`registry.channels`)."""

    name: str
    aliases: tuple[str, ...]
    options_schema: dict[str, Any]
    description: str
    examples: tuple[str, ...]

    def send(self, message: OutboundMessage, settings: Mapping[str, Any]) -> Any:
        """Deliver the message or raise (DeliveryError to retry, PermanentDeliveryError not to).

        Returns what the receiver answered, as JSON data, when it answers with any (the
        `webhook` channel: its JSON body), else None; the outbox hands it to the message's
        reply handler (`Outbox.on_reply`)."""


def resolve_settings(config: ChannelConfig, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings with every `<name>_env: VAR` replaced by `<name>: <value of $VAR>`.

    A variable that is not set is a DeliveryError naming it (retried: an operator may set it).
    """
    environ = os.environ if environ is None else environ
    resolved: dict[str, Any] = {}
    for key, value in config.settings.items():
        if key.endswith(ENV_SUFFIX) and isinstance(value, str):
            name = key[: -len(ENV_SUFFIX)]
            if value not in environ:
                raise DeliveryError(f"environment variable {value} (channels.{config.name}.{key}) "
                                    "is not set")
            resolved[name] = environ[value]
        else:
            resolved[key] = value
    return resolved


def missing_environment(config: ChannelConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """Environment variables the channel's settings name that are not set (checked at boot)."""
    environ = os.environ if environ is None else environ
    return [value for key, value in config.settings.items()
            if key.endswith(ENV_SUFFIX) and isinstance(value, str) and value not in environ]
