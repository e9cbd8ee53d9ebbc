"""Outbound HTTP for webhook channels: POST JSON with a timeout, never to an internal address.

A webhook URL is written by an analyst and may be redirected by the receiver, so it must not
reach the server's own network (RELIABILITY 39: server-side request forgery). Every hop is
checked before connecting: the host name is resolved once, every address it resolves to must be
public (not loopback, private, link-local such as the 169.254.169.254 metadata service, shared
address space such as Alibaba Cloud's 100.100.100.200, multicast, reserved or unspecified), and
the connection goes to the address that was checked, so a DNS answer that changes between check
and connect (DNS rebinding) cannot slip through. TLS still verifies the certificate against the
host name. Redirects are followed only for 307/308 (which keep the POST), at most 3, each
checked the same way.

An operator (never a bundle) can allow internal networks with the environment variable
DOCKET_WEBHOOK_ALLOW_NETWORKS, e.g. "10.20.0.0/16,192.168.5.7/32"; tests pass `allow_networks`.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence
from urllib.parse import urljoin, urlsplit

from engine.channels.base import DeliveryError, PermanentDeliveryError

__all__ = ["HttpResponse", "allowed_networks_from_env", "check_host", "post"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_ENV = "DOCKET_WEBHOOK_ALLOW_NETWORKS"
MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Docket-Webhook/1"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    url: str


def allowed_networks_from_env(environ: Mapping[str, str] | None = None) -> tuple[Network, ...]:
    """Networks an operator allows webhooks to reach despite being internal (usually none)."""
    raw = (os.environ if environ is None else environ).get(ALLOW_ENV, "")
    return parse_networks(part for part in raw.split(",") if part.strip())


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)
    except ValueError as exc:
        raise ValueError(f"invalid network in webhook allow-list: {exc}") from None


_IPV4_IN_LOW_BITS = tuple(ipaddress.IPv6Network(n) for n in (
    "64:ff9b::/96",      # NAT64 (RFC 6052): a gateway forwards it to the IPv4 address inside
    "::/96",             # IPv4-compatible (deprecated, still routed by some stacks)
    "::ffff:0:0:0/96",   # IPv4-translated (SIIT, RFC 2765)
))
"""IPv6 prefixes whose last 32 bits name an IPv4 address that the packet may end up at."""
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
"""Local-use NAT64 (RFC 8215): a translator into the site's own network, internal by design."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to a translator or relay (mapped, NAT64,
    compatible, translated, 6to4, Teredo's server), or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[0]
    if any(ip in net for net in _IPV4_IN_LOW_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _public(ip: IPAddress) -> bool:
    """True for an address on the public internet. An IPv6 address that carries an IPv4 one
    (64:ff9b::a9fe:a9fe is 169.254.169.254 to a NAT64 gateway) is judged by that IPv4 address
    too: Python calls several such prefixes global. Deprecated site-local fec0::/10 is internal."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not (inner.is_global and not inner.is_multicast):
            return False
        if ip.ipv4_mapped is not None:
            return True  # judged as the IPv4 address it is
        if ip.is_site_local or ip in _LOCAL_NAT64:
            return False
    return ip.is_global and not ip.is_multicast


def check_host(host: str, port: int, allow: Sequence[Network] = ()) -> list[str]:
    """Resolve `host` and return its addresses if every one may be reached; else refuse.

    Refusal is a PermanentDeliveryError naming the host and the address: retrying cannot help.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve webhook host '{host}': {exc}") from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        ip = ipaddress.ip_address(text)
        if not (_public(ip) or any(ip in net for net in allow)):
            raise PermanentDeliveryError(
                f"refused to send to {host}: it resolves to {ip}, an internal address "
                "(loopback, private, link-local or reserved); webhooks may only reach public "
                f"addresses unless an operator allows the network in {ALLOW_ENV}")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise DeliveryError(f"webhook host '{host}' has no address")
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to an already checked address, with the URL's Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is verified against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 10.0,
         allow: Sequence[Network] = ()) -> HttpResponse:
    """POST `body` to `url` (checked per hop); the final response, whatever its status.

    Network failures and timeouts are DeliveryError (retried); refused targets, bad URLs and
    redirects that would turn the POST into a GET are PermanentDeliveryError.
    """
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentDeliveryError(f"webhook URL must be http(s)://host/..., got '{_shown(url)}'")
        if parts.username or parts.password:
            raise PermanentDeliveryError("webhook URLs must not carry a user name or password")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise PermanentDeliveryError(f"webhook URL has an invalid port: '{_shown(url)}'") from None
        host = parts.hostname
        address = check_host(host, port, allow)[0]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn_type = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
        conn = conn_type(host, port, address, timeout)
        try:
            conn.request("POST", target, body=body,
                         headers={"User-Agent": USER_AGENT, **headers})
            response = conn.getresponse()
            data = response.read(MAX_RESPONSE_BYTES)
            location = response.getheader("Location")
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            kind = "timed out" if isinstance(exc, TimeoutError) else f"failed ({type(exc).__name__}: {exc})"
            raise DeliveryError(f"POST to {host} {kind}") from None
        finally:
            conn.close()
        if status in (307, 308) and location:
            url = urljoin(url, location)
            continue
        if status in (301, 302, 303):
            raise PermanentDeliveryError(
                f"{host} answered {status} redirecting to '{_shown(urljoin(url, location or ''))}'; "
                "configure the final URL (a POST is not re-sent through this redirect)")
        return HttpResponse(status, data, url)
    raise PermanentDeliveryError(f"more than {MAX_REDIRECTS} redirects from {_shown(url)}")


def _shown(url: str) -> str:
    """A URL for error messages without its query (robot URLs carry keys there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")
