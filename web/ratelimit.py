"""Rate limits for public endpoints: a sliding window per (client, bucket), in memory.

In memory means per process: with several workers each enforces its own window, so the
effective limit is `limit x workers`, which is documented in the deployment notes. The client is
the socket peer; `X-Forwarded-For` is honoured only from configured proxy addresses, so a forged
header cannot reset a counter (RELIABILITY 46). An IPv6 client is counted by its /64
(`network_of`): any address of it is the same client.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

from starlette.requests import Request


@dataclass(frozen=True)
class Limit:
    """At most `count` requests per `seconds` for one client in one bucket."""

    count: int
    seconds: float


class RateLimiter:
    """Sliding-window counters; `clock` returns seconds (monotonic in production)."""

    def __init__(self, clock: Callable[[], float], *, max_keys: int = 100_000):
        self._clock = clock
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    @property
    def clock(self) -> Callable[[], float]:
        """The clock the windows are kept in (for other counters that must agree with it)."""
        return self._clock

    def hit(self, bucket: str, client: str, limit: Limit) -> float | None:
        """Count one request; None when allowed, else the seconds until the next one is."""
        now = self._clock()
        key = (bucket, network_of(client))
        with self._lock:
            window = self._hits.get(key)
            if window is None:
                if len(self._hits) >= self._max_keys:
                    self._evict(now)
                window = self._hits[key] = deque()
            while window and window[0] <= now - limit.seconds:
                window.popleft()
            if len(window) >= limit.count:
                return max(0.0, window[0] + limit.seconds - now)
            window.append(now)
            return None

    def _evict(self, now: float) -> None:
        # Keep memory bounded under a flood of distinct clients: drop idle windows first.
        for key in [k for k, w in self._hits.items() if not w or w[-1] < now - 3600]:
            del self._hits[key]
        if len(self._hits) >= self._max_keys:
            self._hits.clear()


IPV6_CLIENT_PREFIX = 64
"""An IPv6 client is counted by its /64: one home or phone line, or one cloud machine, gets a
whole /64 and may use any of its 2^64 addresses, so counting each address let one client take a
fresh budget per request."""


def network_of(client: str) -> str:
    """What a client is counted as: an IPv4 address as it is, an IPv6 address as its /64 (an
    IPv4-mapped one as the IPv4 address), anything else (a test client's name) as given."""
    if ":" not in client:
        return client  # IPv4, or not an address: the common case, without parsing
    try:
        ip = ipaddress.IPv6Address(client.split("%", 1)[0])
    except ValueError:
        return client
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, IPV6_CLIENT_PREFIX), strict=False))


def client_address(request: Request, trusted_proxies: Iterable[str] = ()) -> str:
    """The client's address: the peer, or the last untrusted hop of X-Forwarded-For when the
    peer is a trusted proxy."""
    client = request.scope.get("client")  # what request.client wraps, without the wrapper
    peer = client[0] if client else "unknown"
    if not trusted_proxies:
        return peer
    trusted = trusted_proxies if isinstance(trusted_proxies, (set, frozenset)) else set(trusted_proxies)
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return peer


def retry_after(seconds: float) -> str:
    """The Retry-After header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(seconds)))
