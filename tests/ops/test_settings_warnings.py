"""`docket serve` and `docket worker` warn at start of each setting that would not do what the
operator wrote: the warning must fire exactly when the code that reads the setting would not
take it as meant, so a server never runs quietly on a setting it ignores."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cli import settings_problems, webhook_problems

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
READ = ("DOCKET_PUBLIC_URL", "DOCKET_DEMO", "DOCKET_SECURE_COOKIES", "DOCKET_OUTBOX_DRY_RUN",
        "DOCKET_SESSION_IDLE_MINUTES", "DOCKET_SESSION_HOURS", "DOCKET_API_SUBMITS_PER_MINUTE",
        "DOCKET_TRUSTED_PROXIES", "DOCKET_WEBHOOK_ALLOW_NETWORKS", "DOCKET_MAX_PENDING_UPLOADS_MB",
        "DOCKET_EMBED_ORIGINS", "DOCKET_SECRET_KEY")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without any of the settings `settings_problems` reads."""
    for name in READ:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("written", ["True", "YES", " 1", "1 ", "on"])
def test_secure_cookies_written_in_capitals_or_with_spaces_is_on_without_a_warning(
        settings: pytest.MonkeyPatch, written: str) -> None:
    # It was read only as written: `True` sent cookies without Secure, with no word said.
    from web.auth import is_secure
    from web.security import served_over_https

    settings.setenv("DOCKET_SECURE_COOKIES", written)
    assert served_over_https({"type": "http", "scheme": "http"})
    assert is_secure({"type": "http", "scheme": "http"})
    assert settings_problems() == []


def test_the_outbox_dry_run_reads_its_switch_like_every_other(settings: pytest.MonkeyPatch) -> None:
    from engine.switches import switched_on

    assert switched_on("DOCKET_OUTBOX_DRY_RUN", {"DOCKET_OUTBOX_DRY_RUN": " Yes "})
    assert not switched_on("DOCKET_OUTBOX_DRY_RUN", {"DOCKET_OUTBOX_DRY_RUN": "maybe"})


def test_secure_cookies_as_the_guide_writes_it_is_no_warning(settings: pytest.MonkeyPatch) -> None:
    settings.setenv("DOCKET_SECURE_COOKIES", "1")
    assert settings_problems() == []


def test_demo_in_capitals_is_no_warning_since_its_reader_takes_it(settings: pytest.MonkeyPatch) -> None:
    from web.auth import demo_mode

    settings.setenv("DOCKET_DEMO", " OFF")
    assert demo_mode(None, "sqlite:///var/docket.db", True) is False
    assert settings_problems() == []


def test_an_embedding_site_without_its_scheme_is_warned_to_be_ignored(settings: pytest.MonkeyPatch) -> None:
    from web.settings import embed_origins

    settings.setenv("DOCKET_EMBED_ORIGINS", "https://www.example-post.cn, oa.example-post.cn")
    assert embed_origins() == ("https://www.example-post.cn",)
    assert settings_problems() == ["DOCKET_EMBED_ORIGINS: 'oa.example-post.cn' is not a site's address (write "
                                   "it like https://www.example-post.cn): it is ignored, so that site cannot "
                                   "show the public forms"]


def test_a_short_secret_key_is_warned_to_be_guessable(settings: pytest.MonkeyPatch) -> None:
    settings.setenv("DOCKET_SECRET_KEY", "changeme")
    (warning,) = settings_problems()
    assert warning.startswith("DOCKET_SECRET_KEY has only 8 characters: whoever guesses it can sign in as anyone")


def test_a_secret_key_made_as_the_guide_says_is_no_warning(settings: pytest.MonkeyPatch) -> None:
    import secrets

    settings.setenv("DOCKET_SECRET_KEY", secrets.token_urlsafe(48))
    assert settings_problems() == []


def test_an_inbound_webhook_without_its_secret_is_warned_to_refuse_every_delivery(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.bundle import validate_bundle
    from web.system import build_registry

    bundle, _ = validate_bundle(POSTAL, build_registry(plugins=False))
    monkeypatch.delenv("DOCKET_HOTLINE_SECRET", raising=False)
    assert webhook_problems(bundle) == ["DOCKET_HOTLINE_SECRET is not set: the webhook 'hotline' (POST "
                                        "/api/v1/webhooks/hotline) refuses every delivery until it is"]
    monkeypatch.setenv("DOCKET_HOTLINE_SECRET", "shared with the hotline system")
    assert webhook_problems(bundle) == []


def test_a_one_off_command_does_not_warn_of_channels_it_never_sends_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Every `docket users ...`, `tokens create` and the nightly `files sweep` printed one line per
    # channel variable not set (five on the postal bundle), which cron mailed every night.
    from cli import main

    monkeypatch.delenv("DOCKET_SMS_GATEWAY_URL", raising=False)
    with caplog.at_level(logging.WARNING):
        assert main(["users", "list", "--bundle", str(POSTAL), "--db", f"sqlite:///{tmp_path / 'd.db'}"]) == 0
    assert not [r for r in caplog.records if "DOCKET_SMS_GATEWAY_URL" in r.getMessage()]


def test_a_server_still_warns_of_a_channel_without_its_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from web.system import boot

    monkeypatch.delenv("DOCKET_SMS_GATEWAY_URL", raising=False)
    monkeypatch.delenv("DOCKET_OUTBOX_DRY_RUN", raising=False)
    with caplog.at_level(logging.WARNING):
        boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'd.db'}").db.dispose()
    assert ("channel sms: environment variable DOCKET_SMS_GATEWAY_URL is not set; its messages will fail "
            "until it is") in [r.getMessage() for r in caplog.records]
