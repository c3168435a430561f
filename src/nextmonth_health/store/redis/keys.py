"""The names of the Redis store's keys.

Why one place: every key of a site carries the hash tag ``{site}``, so on Redis Cluster a
site lives in one slot and a script may touch all of its keys; the few cross-site keys have
fixed tags of their own. A key named anywhere else could miss its slot.
"""

from __future__ import annotations

from typing import Final

from attrs import frozen

from ..base import site_lease
from .calls import AlertHashes
from .codec import ALERT_PARTS, USER_KINDS, escape

#: The prefix of a site's lease name (:func:`~nextmonth_health.store.base.site_lease`).
_SITE_LEASE: Final = site_lease("")


def _tagged(prefix: str, tag: str) -> bytes:
    return f"{prefix}:{{{tag}}}".encode()


@frozen
class Keys:
    """The keys of one store, under its ``prefix``."""

    prefix: str

    def site(self, site: str, *parts: str) -> bytes:
        """A key of ``site``: ``<prefix>:{<site>}:<part>:…``."""
        return ":".join((self.prefix, "{" + escape(site) + "}", *parts)).encode("utf-8", "surrogatepass")

    def users(self, site: str, signal: str, start: int, key: str) -> list[bytes]:
        """The keys of a series' users in one raw bucket: see :data:`.codec.USER_KINDS`."""
        sig = escape(signal)
        return [self.site(site, kind, sig, f"{start}:{key}") for kind in USER_KINDS]

    def alert_hashes(self, site: str) -> AlertHashes:
        """The site's alerts' JSON, then a hash per part kept apart (:data:`.codec.ALERT_PARTS`)."""
        return AlertHashes(self.site(site, "alerts"), *(self.site(site, "alerts", part) for part in ALERT_PARTS))

    def lease(self, name: str) -> bytes:
        """A site's lease lives in the site's slot, so a fenced incident write checks its
        token in the same script; other leases have a slot of their own."""
        if name.startswith(_SITE_LEASE):
            return self.site(name[len(_SITE_LEASE) :], "lease")
        return f"{self.prefix}:{{lease:{escape(name)}}}".encode("utf-8", "surrogatepass")

    @property
    def sites(self) -> bytes:
        return _tagged(self.prefix, "sites")

    @property
    def evaluated(self) -> bytes:
        return _tagged(self.prefix, "evaluated")

    @property
    def alert_sites(self) -> bytes:
        return _tagged(self.prefix, "alert-sites")

    @property
    def maintenance(self) -> bytes:
        return _tagged(self.prefix, "maintenance")

    @property
    def silences(self) -> bytes:
        return _tagged(self.prefix, "silences")

    def visitor(self, day: int) -> bytes:
        return f"{self.prefix}:{{visitors}}:key:{day}".encode()

    def session(self, name: str) -> bytes:
        return f"{self.prefix}:{{admin}}:session:{escape(name)}".encode("utf-8", "surrogatepass")
