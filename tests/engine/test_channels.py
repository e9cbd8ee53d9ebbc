"""Channel types (engine/channels): webhook targets refused (RELIABILITY 39), robot Markdown
neutralised (16), e-mail headers kept to one line (15), and bundle.yaml `channels:` checked."""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from engine.bundle import validate_bundle
from engine.channels.base import (
    ChannelConfig, DeliveryError, OutboundMessage, PermanentDeliveryError, resolve_settings,
)
from engine.channels.http import allowed_networks_from_env
from engine.channels.mail import EmailChannel
from engine.channels.robots import DingTalkRobot, WeComRobot
from engine.channels.text import header_text, neutralise_markdown
from engine.channels.webhook import WebhookChannel, signature
from tests.engine.fake_receivers import LOOPBACK, http_receiver
from tests.engine.timers_kit import START, kit_registry, write_bundle

EVIL = "[点此领取赔偿](http://evil.example) @all **x**"


def message(**kwargs: Any) -> OutboundMessage:
    values: dict[str, Any] = {"id": 1, "message_id": "3f2a9c", "channel": "hook",
                              "to": ("ops@example.com",), "subject": "Complaint TS-0001",
                              "body": "Body", "data": {}, "attempts": 1, "created_at": START}
    values.update(kwargs)
    return OutboundMessage(**values)


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fails loudly if anything opens a TCP connection."""
    attempts: list[Any] = []

    def refuse(address: Any, *args: Any, **kwargs: Any) -> None:
        attempts.append(address)
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


# -- webhook targets (RELIABILITY 39) ---------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x",
    "http://[::1]/x", "http://localhost:8000/x", "http://192.168.1.20/x", "http://172.16.0.5/x",
    "http://100.100.100.200/latest/meta-data", "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x",
    "http://[fd00:ec2::254]/x", "http://2130706433/x",
])
def test_webhooks_to_internal_addresses_are_refused_before_connecting(url: str, no_connections: list[Any]) -> None:
    with pytest.raises(PermanentDeliveryError, match="an internal address"):
        WebhookChannel().send(message(), {"url": url})
    assert no_connections == []


@pytest.mark.parametrize("url", [
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64: 169.254.169.254 behind the gateway
    "http://[64:ff9b::a00:1]/x", "http://[64:ff9b:1::a00:1]/x",
    "http://[::7f00:1]/x", "http://[::ffff:0:a9fe:a9fe]/x",  # IPv4-compatible, IPv4-translated
    "http://[2002:a9fe:a9fe::1]/x",  # 6to4 of 169.254.169.254
    "http://[fec0::1]/x",  # deprecated site-local
])
def test_an_internal_ipv4_address_wrapped_in_ipv6_is_refused_before_connecting(url: str,
                                                                              no_connections: list[Any]) -> None:
    # Python calls these prefixes global; a NAT64 gateway or a relay delivers to the address inside.
    with pytest.raises(PermanentDeliveryError, match="an internal address"):
        WebhookChannel().send(message(), {"url": url})
    assert no_connections == []


def test_a_public_ipv4_address_behind_nat64_may_be_reached() -> None:
    from engine.channels.http import check_host

    assert check_host("64:ff9b::808:808", 443) == ["64:ff9b::808:808"]


def test_a_redirect_to_an_internal_address_is_refused_before_following_it() -> None:
    with http_receiver(("redirect", 307, "http://169.254.169.254/latest/meta-data/")) as receiver:
        with pytest.raises(PermanentDeliveryError, match="169.254.169.254, an internal address"):
            WebhookChannel(LOOPBACK).send(message(), {"url": f"{receiver.url}/hook"})
    assert len(receiver.requests) == 1


def test_a_redirect_that_would_drop_the_post_is_refused() -> None:
    with http_receiver(("redirect", 302, "/elsewhere")) as receiver:
        with pytest.raises(PermanentDeliveryError, match="answered 302"):
            WebhookChannel(LOOPBACK).send(message(), {"url": f"{receiver.url}/hook"})


def test_a_307_redirect_to_an_allowed_place_keeps_the_post() -> None:
    with http_receiver(("redirect", 307, "/final"), 200) as receiver:
        WebhookChannel(LOOPBACK).send(message(), {"url": f"{receiver.url}/hook"})
    assert [r.path for r in receiver.requests] == ["/hook", "/final"]


def test_only_an_operator_can_allow_internal_networks() -> None:
    assert allowed_networks_from_env({}) == ()
    assert [str(n) for n in allowed_networks_from_env(
        {"DOCKET_WEBHOOK_ALLOW_NETWORKS": "10.20.0.0/16, 192.168.5.7"})] == ["10.20.0.0/16", "192.168.5.7/32"]


@pytest.mark.parametrize("url, error", [
    ("ftp://example.com/x", "must be http"), ("http://user:pw@example.com/x", "user name or password"),
])
def test_malformed_webhook_urls_are_refused(url: str, error: str, no_connections: list[Any]) -> None:
    with pytest.raises(PermanentDeliveryError, match=error):
        WebhookChannel().send(message(), {"url": url})


# -- webhook payload -------------------------------------------------------------------------------

def test_a_webhook_posts_json_with_the_event_id_and_an_hmac_signature() -> None:
    with http_receiver(200) as receiver:
        WebhookChannel(LOOPBACK).send(message(data={"query_number": "TS-0001"}),
                                      {"url": f"{receiver.url}/hook", "secret": "s3cret",
                                       "headers": {"X-Tenant": "postal"}})
    [req] = receiver.requests
    assert req.headers["Idempotency-Key"] == req.headers["X-Docket-Event-Id"] == "3f2a9c"
    assert req.headers["X-Tenant"] == "postal"
    assert req.json()["data"] == {"query_number": "TS-0001"} and req.json()["subject"] == "Complaint TS-0001"
    expected = "sha256=" + hmac.new(b"s3cret", req.headers["X-Docket-Timestamp"].encode() + b"." + req.body,
                                    hashlib.sha256).hexdigest()
    assert req.headers["X-Docket-Signature"] == expected == signature("s3cret", req.headers["X-Docket-Timestamp"], req.body)


def test_a_webhook_answering_an_error_status_is_a_retryable_failure() -> None:
    with http_receiver(503) as receiver:
        with pytest.raises(DeliveryError, match="HTTP 503") as info:
            WebhookChannel(LOOPBACK).send(message(), {"url": f"{receiver.url}/hook"})
    assert not isinstance(info.value, PermanentDeliveryError)


def test_extra_headers_cannot_inject_lines() -> None:
    with pytest.raises(DeliveryError, match="invalid extra header"):
        WebhookChannel(LOOPBACK).send(message(), {"url": "http://127.0.0.1:9/x", "headers": {"X-A": "1\r\nB: 2"}})


# -- robots (RELIABILITY 16) -------------------------------------------------------------------------

def test_markdown_from_records_is_neutralised() -> None:
    text = neutralise_markdown(EVIL + "\n<font color=red>x</font> ![img](http://e/x.png) www.evil.example")
    for dangerous in ("](", "[", "@all", "**", "http://", "<font", "![", "www."):
        assert dangerous not in text
    assert "点此领取赔偿" in text and "\n" in text


def test_a_wecom_robot_message_has_no_link_mention_or_formatting_from_the_record() -> None:
    with http_receiver(("json", 200, {"errcode": 0, "errmsg": "ok"})) as receiver:
        WeComRobot(LOOPBACK).send(message(subject="新投诉 @all", body=f"客户留言：{EVIL}"),
                                  {"url": f"{receiver.url}/cgi-bin/webhook/send?key=abc"})
    [req] = receiver.requests
    payload = req.json()
    assert payload["msgtype"] == "markdown"
    content = payload["markdown"]["content"]
    assert "](" not in content and "@all" not in content and "http://" not in content
    assert content.startswith("**新投诉 ＠all**\n客户留言：")  # only Docket's own bold title is Markdown


def test_a_dingtalk_robot_never_mentions_everyone_and_signs_when_asked() -> None:
    with http_receiver(("json", 200, {"errcode": 0})) as receiver:
        DingTalkRobot(LOOPBACK).send(message(body=EVIL),
                                     {"url": f"{receiver.url}/robot/send?access_token=t", "secret": "SECx"})
    [req] = receiver.requests
    payload = req.json()
    assert payload["at"] == {"isAtAll": False}
    assert "](" not in payload["markdown"]["text"] and "@all" not in payload["markdown"]["text"]
    query = parse_qs(urlsplit(req.path).query)
    stamp, sign = query["timestamp"][0], query["sign"][0]
    digest = hmac.new(b"SECx", f"{stamp}\nSECx".encode(), hashlib.sha256).digest()
    assert sign == base64.b64encode(digest).decode()


def test_analyst_markdown_with_escaped_values_goes_out_as_written() -> None:
    robot = WeComRobot(LOOPBACK)
    body = f"## 投诉升级\n> 客户：{robot.escape(EVIL)}"
    with http_receiver(("json", 200, {"errcode": 0})) as receiver:
        robot.send(message(subject="", body=body, data={"body_format": "markdown"}), {"url": f"{receiver.url}/s"})
    content = receiver.requests[0].json()["markdown"]["content"]
    assert content.startswith("## 投诉升级\n> 客户：") and "](" not in content


def test_a_robot_refusal_is_a_delivery_error_with_its_code() -> None:
    with http_receiver(("json", 200, {"errcode": 93000, "errmsg": "invalid webhook url"})) as receiver:
        with pytest.raises(DeliveryError, match="errcode 93000: invalid webhook url"):
            WeComRobot(LOOPBACK).send(message(), {"url": f"{receiver.url}/s"})


# -- e-mail (RELIABILITY 15) ----------------------------------------------------------------------

SMTP_SETTINGS = {"host": "smtp.example.com", "from": "投诉中心 <complaints@example.com>"}


def test_an_e_mail_subject_is_one_header_line() -> None:
    built = EmailChannel().build(message(subject="x\r\nBcc: victim@example.com", to=("c@example.com",)), SMTP_SETTINGS)
    parsed = email.message_from_bytes(built.as_bytes())
    assert parsed["Bcc"] is None and parsed["Subject"] == "x Bcc: victim@example.com"
    assert header_text("a\rb\nc\x00d\u2028e") == "a b c d e"


@pytest.mark.parametrize("recipient", ["c@example.com\r\nBcc: victim@example.com", "not an address", ""])
def test_a_recipient_that_is_not_one_address_is_refused(recipient: str) -> None:
    with pytest.raises(PermanentDeliveryError):
        EmailChannel().build(message(to=(recipient,) if recipient else ()), SMTP_SETTINGS)


def test_an_e_mail_carries_the_message_id_on_every_attempt_and_an_html_alternative() -> None:
    built = EmailChannel().build(message(data={"html": "<p>Hello</p>"}), SMTP_SETTINGS)
    assert built["Message-ID"] == "<3f2a9c@example.com>" and built["X-Docket-Message-Id"] == "3f2a9c"
    assert built["From"] == "投诉中心 <complaints@example.com>"
    assert [p.get_content_type() for p in built.iter_parts()] == ["text/plain", "text/html"]


# -- settings and bundle.yaml ------------------------------------------------------------------------

def test_secrets_are_read_from_the_environment_when_sending() -> None:
    config = ChannelConfig("mail", "email", {"host": "h", "password_env": "DOCKET_SMTP_PASSWORD"})
    assert resolve_settings(config, {"DOCKET_SMTP_PASSWORD": "pw"}) == {"host": "h", "password": "pw"}
    with pytest.raises(DeliveryError, match="DOCKET_SMTP_PASSWORD .channels.mail.password_env. is not set"):
        resolve_settings(config, {})


def test_every_built_in_channel_type_is_registered() -> None:
    assert kit_registry().channels.names() == ["dingtalk", "email", "log", "sms", "webhook", "wecom"]


def problems(tmp_path: Path, channels: str) -> list[tuple[int, str]]:
    root = write_bundle(tmp_path / "b", channels)
    _bundle, diags = validate_bundle(root, kit_registry())
    return [(d.span.line if d.span else 0, d.message) for d in diags if d.severity == "error"]


def test_bundle_channels_are_loaded_with_their_type_and_settings(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", """\
        channels:
          ops_wecom:
            type: wechat_work
            url_env: DOCKET_WECOM_ROBOT_URL
        """)
    bundle, diags = validate_bundle(root, kit_registry())
    assert bundle is not None, diags
    assert bundle.meta.channels["ops_wecom"] == ChannelConfig("ops_wecom", "wecom",
                                                              {"url_env": "DOCKET_WECOM_ROBOT_URL"})


def test_an_unknown_channel_type_is_reported_where_it_is_written(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "channels:\n  mail:\n    type: emial\n")
    _bundle, diags = validate_bundle(root, kit_registry())
    [diag] = [d for d in diags if d.severity == "error"]
    assert (diag.span.line, diag.message, diag.hint) == (6, "unknown channel type 'emial'", "did you mean 'email'?")


def test_a_literal_password_is_refused_with_a_hint(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "channels:\n  mail:\n    type: email\n    host: h\n"
                                        "    from: a@example.com\n    password: hunter2\n")
    _bundle, diags = validate_bundle(root, kit_registry())
    [diag] = [d for d in diags if d.severity == "error"]
    assert diag.span.line == 9 and "'password' is a secret" in diag.message
    assert diag.hint == "name an environment variable instead: password_env: DOCKET_MAIL_PASSWORD"


def test_channel_settings_are_checked_against_the_types_schema(tmp_path: Path) -> None:
    found = problems(tmp_path, "channels:\n  hook:\n    type: webhook\n    url: ftp://x\n    retries: 3\n"
                               "  ops:\n    type: wecom\n    url_env: lower-case\n")
    lines = [line for line, _ in found]
    assert 7 in lines and 8 in lines  # url pattern; unknown setting
    assert (11, "channel 'ops': url_env must name an environment variable (capital letters, "
                "digits and _)") in found


def test_every_built_in_channel_type_is_documented_and_in_the_loaded_example() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "reference"
    table = (docs / "channels.md").read_text("utf-8")
    example = (docs / "bundle.md").read_text("utf-8")
    for name in kit_registry().channels.names():
        assert f"| `{name}` " in table, f"channels.md lacks a row for {name}"
        assert f"type: {name}" in example, f"the bundle.md example configures no {name} channel"


# -- sms ---------------------------------------------------------------------------------------------

def test_an_sms_goes_to_the_gateway_as_plain_text_with_normalised_numbers() -> None:
    from engine.channels.sms import SmsChannel

    with http_receiver(200) as receiver:
        SmsChannel(LOOPBACK).send(
            message(to=("+86 138-0013-8000",), subject="", body="您的投诉 TS-0001 已受理。\r\n\x07谢谢"),
            {"provider": "http", "url": f"{receiver.url}/sms", "sender": "中国邮政", "secret": "k"})
    [req] = receiver.requests
    assert req.json() == {"id": "3f2a9c", "to": ["+8613800138000"], "text": "您的投诉 TS-0001 已受理。\n 谢谢",
                          "sender": "中国邮政"}
    assert req.headers["Idempotency-Key"] == "3f2a9c" and req.headers["X-Docket-Signature"].startswith("sha256=")


@pytest.mark.parametrize("to, error", [(("13800138000\r\nx",), "not a phone number"),
                                       (("customer@example.com",), "not a phone number"),
                                       ((), "at least one phone number")])
def test_an_sms_to_something_that_is_not_a_phone_number_is_refused(to: tuple[str, ...], error: str) -> None:
    from engine.channels.sms import SmsChannel

    with pytest.raises(PermanentDeliveryError, match=error):
        SmsChannel(LOOPBACK).send(message(to=to), {"provider": "http", "url": "http://127.0.0.1:9/"})


def test_an_unknown_sms_provider_is_named() -> None:
    from engine.channels.sms import SmsChannel

    with pytest.raises(PermanentDeliveryError, match="unknown SMS provider 'aliyun' .installed: http"):
        SmsChannel().send(message(to=("13800138000",)), {"provider": "aliyun"})


def test_long_sms_text_is_cut() -> None:
    from engine.channels.sms import MAX_CHARS, sms_text

    assert len(sms_text("", "投" * 1000)) == MAX_CHARS and sms_text("", "投" * 1000).endswith("…")
    assert sms_text("subject only", "") == "subject only"


# -- the record link of staff group messages -------------------------------------------------------

RECORD = "https://ts.example-post.cn/records/complaint/12"


def test_a_robot_message_ends_with_a_link_to_its_record() -> None:
    with http_receiver(("json", 200, {"errcode": 0})) as receiver:
        WeComRobot(LOOPBACK).send(message(body=f"客户留言：{EVIL}", data={"link": RECORD}),
                                  {"url": f"{receiver.url}/s"})
    content = receiver.requests[0].json()["markdown"]["content"]
    assert content.endswith(f"\n\n[打开处理 Open]({RECORD})")
    assert content.count("](") == 1 and "@all" not in content  # the record's text stays inert


def test_a_robot_message_of_a_report_ends_with_a_link_to_its_dashboard() -> None:
    board = "https://ts.example-post.cn/dashboards/operations"
    with http_receiver(("json", 200, {"errcode": 0})) as receiver:
        DingTalkRobot(LOOPBACK).send(message(body="积压 12", data={"link": board}), {"url": f"{receiver.url}/s"})
    assert receiver.requests[0].json()["markdown"]["text"].endswith(f"\n\n[打开看板 Open the dashboard]({board})")


PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 10


def test_a_wecom_robot_posts_a_reports_png_charts_as_images_after_the_text() -> None:
    attachments = [{"name": "a.png", "content_type": "image/png", "base64": base64.b64encode(PNG).decode()},
                   {"name": "b.svg", "content_type": "image/svg+xml", "base64": base64.b64encode(b"<svg/>").decode()},
                   {"name": "c.png", "content_type": "image/png", "base64": base64.b64encode(b"not a png").decode()}]
    with http_receiver(*[("json", 200, {"errcode": 0})] * 2) as receiver:
        WeComRobot(LOOPBACK).send(message(body="积压 12", data={"attachments": attachments}), {"url": f"{receiver.url}/s"})
    text, image = [r.json() for r in receiver.requests]
    assert text["msgtype"] == "markdown" and image["msgtype"] == "image"
    assert base64.b64decode(image["image"]["base64"]) == PNG
    assert image["image"]["md5"] == hashlib.md5(PNG).hexdigest()


def test_a_wecom_robot_skips_an_image_above_its_2_mb_limit() -> None:
    big = PNG + b"\0" * (2 * 1024 * 1024)
    attachments = [{"name": "big.png", "content_type": "image/png", "base64": base64.b64encode(big).decode()}]
    with http_receiver(("json", 200, {"errcode": 0})) as receiver:
        WeComRobot(LOOPBACK).send(message(body="x", data={"attachments": attachments}), {"url": f"{receiver.url}/s"})
    assert [r.json()["msgtype"] for r in receiver.requests] == ["markdown"]


@pytest.mark.parametrize("link", ["https://evil.example/phish", "javascript:alert(1)",
                                  "https://ts.example-post.cn/records/complaint/12) [x](https://evil.example",
                                  "https://ts.example-post.cn/files/3"])
def test_a_robot_shows_no_link_but_a_records_page(link: str) -> None:
    with http_receiver(("json", 200, {"errcode": 0})) as receiver:
        DingTalkRobot(LOOPBACK).send(message(body="x", data={"link": link}), {"url": f"{receiver.url}/s"})
    assert "](" not in receiver.requests[0].json()["markdown"]["text"]


@pytest.mark.parametrize("value, expected", [
    ("https://ts.example-post.cn/", "https://ts.example-post.cn"), ("http://10.1.2.3:8000", "http://10.1.2.3:8000"),
    ("ts.example-post.cn", None), ("https://ts.example-post.cn/a b", None), ("", None),
])
def test_the_public_address_is_used_only_when_it_is_a_plain_web_address(
        monkeypatch: pytest.MonkeyPatch, value: str, expected: str | None) -> None:
    from engine.site import configured_public_url

    monkeypatch.setenv("DOCKET_PUBLIC_URL", value)
    assert configured_public_url() == expected
