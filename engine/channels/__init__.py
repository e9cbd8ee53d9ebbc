"""Notification channel types (registry.channels): log, email, SMS, webhook, WeCom and DingTalk
robots.

A bundle names its channels in bundle.yaml `channels:` (engine/bundle_meta.py); the outbox
(engine/outbox.py) sends each queued message through the named channel's type with the channel's
settings, secrets read from environment variables at send time. docs/reference/channels.md
describes every type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.channels.base import (
    ChannelConfig, ChannelType, DeliveryError, OutboundMessage, PermanentDeliveryError,
    resolve_settings,
)

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["ChannelConfig", "ChannelType", "DeliveryError", "OutboundMessage",
           "PermanentDeliveryError", "register", "resolve_settings"]


def register(registry: "Registry") -> None:
    """Register the built-in channel types and SMS provider."""
    from engine.channels.log import LogChannel
    from engine.channels.mail import EmailChannel
    from engine.channels.robots import DingTalkRobot, WeComRobot
    from engine.channels.sms import HTTP_PROVIDER, SmsChannel
    from engine.channels.webhook import WebhookChannel

    registry.sms_providers.add(HTTP_PROVIDER)
    for channel in (LogChannel(), EmailChannel(), SmsChannel(providers=registry.sms_providers),
                    WebhookChannel(), WeComRobot(), DingTalkRobot()):
        registry.channels.add(channel)
