"""In-process fake receivers for channel tests: an HTTP endpoint and an SMTP server on 127.0.0.1.

Both run in a daemon thread for the length of one test and record what they received. Webhook
channels refuse loopback addresses, so tests build them with `allow_networks=LOOPBACK`
(an explicit, test-only setting; the default allows nothing internal).
"""

from __future__ import annotations

import base64
import http.server
import ipaddress
import json
import socketserver
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


def loopback_registry() -> Any:
    """The built-in channel types, with webhook and robots allowed to reach 127.0.0.1."""
    from engine.channels.log import LogChannel
    from engine.channels.mail import EmailChannel
    from engine.channels.robots import DingTalkRobot, WeComRobot
    from engine.channels.sms import SmsChannel
    from engine.channels.webhook import WebhookChannel
    from engine.registry import Registry

    registry = Registry()
    for channel in (LogChannel(), EmailChannel(), SmsChannel(LOOPBACK), WebhookChannel(LOOPBACK),
                    WeComRobot(LOOPBACK), DingTalkRobot(LOOPBACK)):
        registry.channels.add(channel)
    return registry


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers each POST with the next scripted reply; the last one repeats.

    A reply is an int status, ("json", status, obj), ("raw", status, bytes), ("redirect", code,
    location) or "hang"
    (hold the request until `release` is set, so the client times out).
    """

    replies: list[Any] = field(default_factory=lambda: [200])
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ids(self) -> list[str]:
        return [r.headers.get("Idempotency-Key", "") for r in self.requests]


@contextmanager
def http_receiver(*replies: Any) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(list(replies) or [200])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(Request(self.path, dict(self.headers.items()), body))
            index = min(len(receiver.requests), len(receiver.replies)) - 1
            reply = receiver.replies[index]
            if reply == "hang":
                receiver.release.wait(10)
                return
            if isinstance(reply, tuple) and reply[0] == "redirect":
                self.send_response(reply[1])
                self.send_header("Location", reply[2])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if isinstance(reply, tuple) and reply[0] == "raw":
                status, payload = reply[1], reply[2]
            else:
                status, payload = (reply[1], json.dumps(reply[2]).encode()) if isinstance(reply, tuple) else (reply, b"{}")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class SmtpServer:
    """A minimal SMTP server: EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    username: str = "docket"
    password: str = "right"
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0


@contextmanager
def smtp_server(username: str = "docket", password: str = "right") -> Iterator[SmtpServer]:
    state = SmtpServer(username, password)

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")
            self.wfile.flush()

        def check(self, user: str, password: str) -> None:
            state.logins.append((user, password))
            if (user, password) == (state.username, state.password):
                self.reply("235 2.7.0 Authentication successful")
            else:
                self.reply("535 5.7.8 Authentication credentials invalid")

        def handle(self) -> None:
            self.reply("220 fake.smtp ESMTP")
            sender, recipients = "", []
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.wfile.write(b"250-fake.smtp\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                    self.wfile.flush()
                elif verb == "AUTH":
                    parts = line.split()
                    if parts[1].upper() == "PLAIN":
                        token = parts[2] if len(parts) > 2 else self._ask("")
                        _, user, password = base64.b64decode(token).decode().split("\0")
                        self.check(user, password)
                    else:  # LOGIN
                        user = base64.b64decode(parts[2]).decode() if len(parts) > 2 else \
                            base64.b64decode(self._ask("VXNlcm5hbWU6")).decode()
                        password = base64.b64decode(self._ask("UGFzc3dvcmQ6")).decode()
                        self.check(user, password)
                elif verb == "MAIL":
                    sender, recipients = line.split(":", 1)[1].strip().strip("<>").split(">")[0], []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 End data with <CR><LF>.<CR><LF>")
                    data = b""
                    while True:
                        chunk = self.rfile.readline()
                        if chunk in (b".\r\n", b""):
                            break
                        data += chunk
                    state.mails.append(Mail(sender, recipients, data))
                    self.reply("250 OK queued")
                elif verb == "QUIT":
                    self.reply("221 Bye")
                    return
                else:  # RSET, NOOP
                    self.reply("250 OK")

        def _ask(self, prompt: str) -> str:
            self.reply(f"334 {prompt}")
            return self.rfile.readline().decode().strip()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
