"""Per-client rate limits: the beacon's token buckets, and the admin view's failure throttle.

Both key on the client's address as the adaptors resolved it (``Request.client``, behind
``trusted_proxies``), remember a bounded number of clients, and run on the monitor's clock,
so that tests drive them with a ``FakeClock``.
"""

from __future__ import annotations

import math
import threading

__all__ = ["FailureThrottle", "TokenBuckets"]


class TokenBuckets:
    """A token bucket per client: ``burst`` at once, refilled at ``rate`` per second.

    At most ``max_clients`` buckets are kept; the least recently seen is forgotten first
    (a forgotten client starts again with a full bucket, which costs nothing but memory).
    """

    def __init__(self, burst: int, rate: float, max_clients: int) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float) -> float:
        """Take one token; returns 0 if allowed, else the seconds until one is available."""
        return self._use(client, now, take=True)

    def peek(self, client: str, now: float) -> float:
        """Like :meth:`take`, without taking: 0 while a token is there, else the wait."""
        return self._use(client, now, take=False)

    def _use(self, client: str, now: float, *, take: bool) -> float:
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
            if tokens >= 1.0:
                tokens -= 1.0 if take else 0.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                del self._buckets[next(iter(self._buckets))]
            return wait


class FailureThrottle:
    """Wrong admin tokens, from the sign-in form or a bearer header, per client.

    A client may get ``burst`` wrong before it is told to wait (429 with ``Retry-After``),
    then one more every ``60 / per_minute`` seconds. Only failures count: a script that
    signs in right is never slowed down, and a throttled client is refused before its
    token is even compared, so guessing does not go faster by ignoring the 429s.
    """

    def __init__(self, burst: int = 10, per_minute: float = 10.0, max_clients: int = 10_000) -> None:
        self._buckets = TokenBuckets(burst, per_minute / 60.0, max_clients)

    def retry_after(self, client: str | None, now: float) -> int:
        """Whole seconds this client must wait before trying again; 0 when it may try now."""
        wait = self._buckets.peek(client or "unknown", now)
        return math.ceil(wait) if wait else 0

    def failed(self, client: str | None, now: float) -> None:
        """Count one wrong token against ``client``."""
        self._buckets.take(client or "unknown", now)
