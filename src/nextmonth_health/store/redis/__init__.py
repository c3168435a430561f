"""``redis://host:port/db`` — the distributed store: every process of every host shares one Redis.

Why it is built the way it is:

- **One slot per site.** Every key of a site carries the hash tag ``{site}``
  (``nmh:{acme}:b:request:…``), so on Redis Cluster a site lives in one slot and the Lua
  scripts (``scripts/*.lua``) may touch all of a site's keys at once. Cross-site keys are few and have
  their own fixed tags (``nmh:{sites}``, ``nmh:{alert-sites}``, one per lease, and
  ``nmh:{maintenance}`` and ``nmh:{silences}``, a hash each holding every site's: a
  handful, read whole). Pass a ``redis.cluster.RedisCluster`` as ``client=`` to use a
  cluster.
- **Atomic writes, one round trip.** :meth:`RedisStore.write` sends one Lua call per site
  (per 200 buckets) in one pipeline. Each call adds the counts, the users and the
  five-minute and hourly roll-ups (summed in the script), and gives every key it makes
  its TTL in the same atomic step, so no key ever lives without a TTL and a reader never
  sees half a flush of a site. All of a site's series of one bucket share a hash (see
  ``scripts/write.lua``): a flush and a read touch a few keys per site, however many routes.
- **Each flush counts once.** A connection that dies after Redis applied a flush but
  before its reply arrived makes the recorder send the same batch again; each script call
  leaves its writer a mark, so the calls already applied are skipped.
- **Distinct users, exact while small.** Each series keeps a bucket's users in an exact
  set (an intset, 8 bytes a user) up to 512 users; past that they move to a HyperLogLog
  (~0.8 % error at any size). :meth:`RedisStore.count_users` answers with the exact union
  while every set is intact and with a HyperLogLog union otherwise. Redis's HyperLogLog
  alone miscounts about one 50-user window in ten; "12 users affected" should mean 12.
- **Idempotent opening.** :meth:`RedisStore.save_incident` refuses to open a second
  incident for a (site, check, key) that already has an open one, and never reopens a
  resolved one; it returns the incident that is stored, so a tracker that lost a rare
  double evaluation can drop its transition.
- **Leases** are ``SET … PX`` under a compare-and-set script; renewals and releases
  compare the owner. A lease ends at the earlier of its holder's clock (the ``now`` the
  evaluator passes, so fake clocks work the same as on the other stores) and Redis's own
  ``PX`` expiry in real time (so a dead leader's lease goes away even if no clock moves).
- **Failures raise, quickly.** Short socket timeouts and no retries: a dead or hung Redis
  costs the background flusher one timeout per call, never the request path, which does
  no I/O. The recorder keeps what it could not write and counts what it had to drop.
- **Fork-safe.** A store created before a pre-fork server forks (gunicorn ``--preload``)
  builds a fresh connection pool in each child, so no socket or lock crosses ``fork()``.

Time: bucket keys use the recorder's wall-clock epochs; TTLs are real seconds from the
write that made the key (``history`` for raw buckets and five-minute roll-ups, ``trend``
for hourly ones, incidents and alerts; for maintenance windows and silences, ``trend``
past the latest end their hash holds), and
:meth:`RedisStore.trim` deletes by the evaluator's clock. A Redis without persistence
forgets open incidents when it restarts; run it with AOF if they must survive that.

The package: :mod:`.store` is the store; :mod:`.calls` reads the Lua scripts (from
``scripts/``) and lays out each call's KEYS and ARGV, :mod:`.pipeline` sends the calls,
:mod:`.codec` turns values and buckets into what Redis holds and back, :mod:`.keys` names
the keys, :mod:`.options` parses the URL and the store's options, :mod:`.connection`
connects (again in a forked child), and :mod:`.planned` keeps maintenance windows and
silences.
"""

from __future__ import annotations

from ...errors import ConfigError

try:
    import redis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError("the redis:// store needs the redis package: pip install 'nextmonth-health[redis]'") from exc

from .codec import StoredUsers
from .options import DEFAULT_HISTORY, DEFAULT_PREFIX, DEFAULT_TIMEOUT, DEFAULT_TREND
from .store import RedisStore

__all__ = [
    "DEFAULT_HISTORY",
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TREND",
    "RedisStore",
    "StoredUsers",
]
