"""Counting the people a host did not name, the way privacy-first web analytics count visitors.

"Impact detected for 12 users" needs to tell people apart, and most requests of a site
carry no signed-in user. For those, the middlewares pass the client's address and user
agent, and the recorder turns them, off the request path, into a keyed hash: BLAKE2b of
address and user agent under a random key of the UTC day. The key comes from the store,
so every worker and host sharing it agrees on it (one person counts once, whichever
worker served them), and the store forgets it after two days. Neither the address nor
the user agent is kept anywhere; only the 64-bit hash of the hash lands in the distinct-
user sketches, and once the day's key is gone nobody can tell whose it was, nor link one
day's visitor to the next day's.

What it costs in accuracy, as for any such count: people sharing an address and a browser
(an office behind one NAT) count as one; one person changing network or browser counts
twice; a visitor around midnight UTC counts once each day. Pass real user ids (the
middlewares' ``user=``) where the host has them.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..errors import ErrorReporter
    from ..store.base import Store

__all__ = ["DAY", "Visitor", "VisitorKeys"]

DAY = 86_400

#: What a middleware records as the user of an anonymous request: (client address, user
#: agent as the request carried it: bytes from ASGI headers, text from a WSGI environ).
Visitor = tuple[str, "bytes | str"]

#: Longest user agent taken into the hash; the rest adds nothing that tells people apart.
_AGENT_LIMIT = 512


class VisitorKeys:
    """The day's key for each visitor hash, asked of the store once a day per process.

    A store that cannot answer (Redis down) is reported and a key of this process's own
    is used for the day: the count goes on, at the price of one person counting once per
    process until the next day.
    """

    def __init__(self, store: Store, errors: ErrorReporter) -> None:
        self._store = store
        self._errors = errors
        self._keys: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def key(self, day: int) -> bytes:
        key = self._keys.get(day)
        if key is None:
            with self._lock:
                key = self._keys.get(day)
                if key is None:
                    try:
                        key = self._store.visitor_key(day)
                    except Exception as exc:
                        self._errors.report("store.visitor_key", exc)
                        key = secrets.token_bytes(32)
                    self._keys = {d: k for d, k in self._keys.items() if d >= day - 1}
                    self._keys[day] = key
        return key

    def identity(self, visitor: object, t: float) -> str | None:
        """The visitor's id for the day of ``t`` (``v:`` and 32 hex digits); None if malformed."""
        if type(visitor) is not tuple or len(visitor) != 2:
            return None
        address, agent = visitor
        if type(address) is not str or not address:
            return None
        if type(agent) is str:
            agent = agent.encode("utf-8", "surrogateescape")
        elif type(agent) is not bytes:
            return None
        digest = hashlib.blake2b(
            address.encode("utf-8", "surrogateescape") + b"\0" + agent[:_AGENT_LIMIT],
            key=self.key(int(t // DAY)),
            digest_size=16,
        )
        return "v:" + digest.hexdigest()

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's may have been held by a thread the child lacks)."""
        self._lock = threading.Lock()
