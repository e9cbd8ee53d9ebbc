"""An SMS provider is a plugin kind like the others (`registry.sms_providers`, docs/plugins.md "An
SMS provider"): it belongs to the registry that loaded it, so every registry of a process loads
the plugin, and the `provider:` of an sms channel is checked at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest

from engine.bundle import validate_bundle
from engine.channels import OutboundMessage
from engine.channels.sms import SmsProvider
from engine.registry import Registry, RegistryError
from web.system import build_registry

SOURCE = "acme-docket"
SENT: list[tuple[list[str], str]] = []


def aliyun(message: OutboundMessage, to: list[str], text: str, settings: Mapping[str, Any],
           allow: Sequence[Any]) -> None:
    """A provider adapter that records what it was asked to send."""
    SENT.append((to, text))


def register(registry: Registry) -> None:
    """The plugin's `register`."""
    registry.sms_providers.add(SmsProvider("aliyun", aliyun, "Aliyun SMS"), source=SOURCE)


def test_every_registry_of_a_process_loads_the_sms_provider_plugin() -> None:
    """The providers were a module-level table: the second registry refused the plugin as a
    duplicate, so a plugin test after the first (or a second boot) lost the whole plugin."""
    first, second = build_registry(plugins=False), build_registry(plugins=False)
    assert first.use(register, source="acme") and second.use(register, source="acme")
    assert second.problems == [] and second.sms_providers.source("aliyun") == SOURCE


def test_the_sms_channel_sends_through_its_registrys_provider() -> None:
    registry = build_registry(plugins=False)
    registry.use(register, source="acme")
    message = OutboundMessage(1, "m-1", "texts", ("+86 138-0013-8000",), "", "您的投诉已受理")
    SENT.clear()
    registry.channels.get("sms").send(message, {"provider": "aliyun"})
    assert SENT == [(["+8613800138000"], "您的投诉已受理")]


def test_a_provider_of_another_registry_is_not_seen() -> None:
    build_registry(plugins=False).use(register, source="acme")
    assert build_registry(plugins=False).sms_providers.get("aliyun") is None


def test_a_misspelt_provider_is_reported_by_validate_with_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "bundle.yaml").write_text(
        'bundle: texts\nversion: "1"\nlabel: Texts\n'
        "channels:\n  texts: {type: sms, provider: aliyn, key_env: ALIYUN_KEY}\n", "utf-8")
    registry = build_registry(plugins=False)
    registry.use(register, source="acme")
    _, diagnostics = validate_bundle(tmp_path, registry)
    (error,) = [d for d in diagnostics if d.severity == "error"]
    assert error.yaml_path == ("channels", "texts", "provider") and error.hint == "did you mean 'aliyun'?"


def test_a_provider_whose_send_cannot_take_the_channels_arguments_is_refused() -> None:
    with pytest.raises(RegistryError, match=r"send\(message, to\) cannot be called as "
                                             r"send\(message, to, text, settings, allow\)"):
        Registry().sms_providers.add(SmsProvider("short", lambda message, to: None), source=SOURCE)
