"""Group robots of WeCom (企业微信) and DingTalk (钉钉): Markdown messages, user text neutralised.

The robot's URL carries its key, so it is a secret: `url_env` names the environment variable.
Subjects and bodies are treated as untrusted text and neutralised (RELIABILITY 16: no links,
no @all, no formatting from a customer's answer). The one link a message carries is Docket's
own: the record's or the dashboard's page at the public address (`data.link`, engine/site.py),
after the body. A WeCom robot also posts a message's PNG attachments (a scheduled dashboard's
charts) as images after the text; DingTalk robots take no uploaded images. A
caller that renders analyst-written Markdown with every inserted value passed through the
channel's `escape` sends `data: {body_format: markdown}` and the body goes out as written.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from engine.channels.base import DeliveryError, OutboundMessage
from engine.channels.http import Network, allowed_networks_from_env, post
from engine.channels.text import neutralise_markdown

__all__ = ["DingTalkRobot", "WeComRobot"]

_LINK = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d+)?/(records/[a-z][a-z0-9_]*/\d+|dashboards/[a-z][a-z0-9_]*)")
"""The only links a robot message carries: a record's page (engine.site.record_url) or a
dashboard's (engine.site.dashboard_url)."""
_LINK_TEXT = {"records": "打开处理 Open", "dashboards": "打开看板 Open the dashboard"}
MAX_IMAGE_BYTES = 2 * 1024 * 1024
"""WeCom's limit for an image a group robot posts (before base64)."""
_TIMEOUT = {"type": "number", "exclusiveMinimum": 0, "maximum": 60,
            "description": "seconds to wait for the robot API (default 10)"}


class _Robot:
    name = ""
    aliases: tuple[str, ...] = ()
    max_bytes = 4000

    def __init__(self, allow_networks: Sequence[Network] | None = None):
        self.allow_networks = tuple(allow_networks) if allow_networks is not None else None

    def escape(self, value: str) -> str:
        """Make a value inert inside this robot's Markdown (for templates that insert values)."""
        return neutralise_markdown(value)

    def _content(self, message: OutboundMessage) -> tuple[str, str]:
        title = neutralise_markdown(message.subject)
        if message.data.get("body_format") == "markdown":
            body = message.body
        else:
            body = neutralise_markdown(message.body)
        text = f"**{title}**\n{body}" if title else body
        link = message.data.get("link")
        found = _LINK.fullmatch(link) if isinstance(link, str) else None
        if found:
            # Docket's own address for the record (engine/site.py), never text from a record: the
            # one link a message may carry, so people open the task from the group and act on it.
            tail = f"\n\n[{_LINK_TEXT[found.group(2).split('/')[0]]}]({link})"
            return title, _clip_bytes(text, self.max_bytes - len(tail.encode())) + tail
        return title, _clip_bytes(text, self.max_bytes)

    def _post(self, url: str, payload: dict[str, Any], settings: Mapping[str, Any]) -> None:
        allow = self.allow_networks if self.allow_networks is not None else allowed_networks_from_env()
        response = post(url, json.dumps(payload, ensure_ascii=False).encode(),
                        {"Content-Type": "application/json; charset=utf-8"},
                        timeout=float(settings.get("timeout", 10)), allow=allow)
        if response.status != 200:
            raise DeliveryError(f"{self.name} robot answered HTTP {response.status}")
        try:
            answer = json.loads(response.body or b"{}")
        except ValueError:
            raise DeliveryError(f"{self.name} robot answered something that is not JSON") from None
        code = answer.get("errcode", 0)
        if code != 0:
            raise DeliveryError(f"{self.name} robot refused the message: errcode {code}: "
                                f"{str(answer.get('errmsg', ''))[:200]}")


class WeComRobot(_Robot):
    """WeCom group robot (企业微信群机器人): `msgtype: markdown`."""

    name = "wecom"
    aliases = ("wechat_work",)
    description = ("Posts to a WeCom (企业微信) group robot as Markdown, then a scheduled "
                   "report's PNG charts as images. url_env names the environment variable holding "
                   "the robot URL with its key. Text from records is neutralised: no links, "
                   "mentions or formatting.")
    options_schema: dict[str, Any] = {
        "type": "object", "required": ["url_env"], "additionalProperties": False,
        "properties": {"url_env": {"type": "string", "description": "variable holding https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."},
                       "timeout": _TIMEOUT},
    }
    examples = ("channels:\n  ops_wecom:\n    type: wecom\n    url_env: DOCKET_WECOM_ROBOT_URL\n",)

    def send(self, message: OutboundMessage, settings: Mapping[str, Any]) -> None:
        _title, text = self._content(message)
        self._post(settings["url"], {"msgtype": "markdown", "markdown": {"content": text}}, settings)
        for image in _png_attachments(message):
            self._post(settings["url"], {"msgtype": "image", "image": {
                "base64": base64.b64encode(image).decode("ascii"), "md5": hashlib.md5(image, usedforsecurity=False).hexdigest()}},
                settings)


class DingTalkRobot(_Robot):
    """DingTalk group robot (钉钉群机器人): `msgtype: markdown`, optional signing secret."""

    name = "dingtalk"
    aliases = ()
    description = ("Posts to a DingTalk (钉钉) group robot as Markdown, signed when secret_env is "
                   "set (the robot's 加签 setting). Never mentions everyone; text from records is "
                   "neutralised.")
    options_schema: dict[str, Any] = {
        "type": "object", "required": ["url_env"], "additionalProperties": False,
        "properties": {"url_env": {"type": "string", "description": "variable holding https://oapi.dingtalk.com/robot/send?access_token=..."},
                       "secret_env": {"type": "string", "description": "variable holding the signing secret (SEC...)"},
                       "timeout": _TIMEOUT},
    }
    examples = ("channels:\n  ops_dingtalk:\n    type: dingtalk\n    url_env: DOCKET_DINGTALK_ROBOT_URL\n"
                "    secret_env: DOCKET_DINGTALK_ROBOT_SECRET\n",)

    def send(self, message: OutboundMessage, settings: Mapping[str, Any]) -> None:
        title, text = self._content(message)
        url = settings["url"]
        secret = settings.get("secret")
        if secret:
            # DingTalk checks the timestamp against its own clock (within an hour): real time.
            stamp = str(int(time.time() * 1000))
            digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
            sign = quote(base64.b64encode(digest).decode(), safe="")
            url += ("&" if "?" in url else "?") + f"timestamp={stamp}&sign={sign}"
        payload = {"msgtype": "markdown", "markdown": {"title": title or "Docket", "text": text},
                   "at": {"isAtAll": False}}
        self._post(url, payload, settings)


def _png_attachments(message: OutboundMessage) -> list[bytes]:
    """The message's PNG attachments a robot may post (within WeCom's size limit)."""
    out = []
    for item in message.data.get("attachments") or ():
        if not isinstance(item, Mapping) or item.get("content_type") != "image/png":
            continue
        try:
            data = base64.b64decode(str(item.get("base64") or ""), validate=True)
        except ValueError:
            continue
        if data.startswith(b"\x89PNG") and len(data) <= MAX_IMAGE_BYTES:
            out.append(data)
    return out


def _clip_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"
