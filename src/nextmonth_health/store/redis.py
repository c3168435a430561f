"""``redis://host:port/db`` — the distributed store: every process of every host shares one Redis.

Why it is built the way it is:

- **One slot per site.** Every key of a site carries the hash tag ``{site}``
  (``nmh:{acme}:b:request:…``), so on Redis Cluster a site lives in one slot and the Lua
  scripts below may touch all of a site's keys at once. Cross-site keys are few and have
  their own fixed tags (``nmh:{sites}``, ``nmh:{alert-sites}``, one per lease, and
  ``nmh:{maintenance}`` and ``nmh:{silences}``, a hash each holding every site's: a
  handful, read whole). Pass a ``redis.cluster.RedisCluster`` as ``client=`` to use a
  cluster.
- **Atomic writes, one round trip.** :meth:`RedisStore.write` sends one Lua call per site
  (per 200 buckets) in one pipeline. Each call adds the counts, the users and the
  five-minute and hourly roll-ups (summed in the script), and gives every key it makes
  its TTL in the same atomic step, so no key ever lives without a TTL and a reader never
  sees half a flush of a site. All of a site's series of one bucket share a hash (see
  :data:`_WRITE`): a flush and a read touch a few keys per site, however many routes.
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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import attrs

from ..errors import ConfigError, StaleLease
from ..logs import get_logger
from ..signals import SIGNALS, Bucket
from ..sketch import EXACT_LIMIT, DistinctCounter
from ..values import Alert, Incident, MaintenanceWindow, Silence, timestamp
from .base import FIVE_MINUTE_RETENTION, HOUR, LATE_WRITE_SECONDS, ROLLUP_WIDTHS, BatchId, Fence, Row, Store, StoredBucket, newest_first, site_lease

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster
    from redis.exceptions import AskError, NoScriptError, RedisError, TryAgainError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        "the redis:// store needs the redis package: pip install 'nextmonth-health[redis]'"
    ) from exc

__all__ = ["RedisStore", "StoredUsers"]

log = get_logger(__name__)

P = TypeVar("P", MaintenanceWindow, Silence)

#: The prefix of a site's lease name (:func:`~nextmonth_health.store.base.site_lease`).
_SITE_LEASE: Final = site_lease("")

#: A script call: the script's name, its keys, its other arguments.
Command = tuple[str, Sequence[Any], Sequence[Any]]

#: Calls of one script that a pass makes per site (leases, open incidents, windows) are
#: sent to a single Redis as one call of its batched form per this many sites: a script
#: call costs the client far more than the server, and a chunk this size keeps each
#: call short (a few milliseconds), so other clients are not held up.
_BATCH_CALLS: Final = 50

#: Runs a script once per call packed in ARGV: ARGV[1] calls, then per call its number of
#: keys, its number of arguments and the arguments; KEYS holds every call's keys in turn.
#: The script's body becomes a function whose parameters shadow KEYS and ARGV.
_BATCH_LOOP: Final = """
local out, k, a = {}, 0, 2
for i = 1, tonumber(ARGV[1]) do
  local nkeys, nargs = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local keys, args = {}, {}
  for j = 1, nkeys do keys[j] = KEYS[k + j] end
  for j = 1, nargs do args[j] = ARGV[a + 1 + j] end
  local result = call(keys, args)
  if result == nil then result = false end
  out[i] = result
  k = k + nkeys
  a = a + 2 + nargs
end
return out
"""


def _batched(source: str) -> str:
    """A script that runs ``source`` for several calls at once (single Redis only: on a
    cluster, the keys of different sites live in different slots)."""
    return "local function call(KEYS, ARGV)\n" + source + "\nend\n" + _BATCH_LOOP

DEFAULT_TIMEOUT: Final = 1.0
DEFAULT_HISTORY: Final = 7200
DEFAULT_TREND: Final = 30 * 86_400
DEFAULT_PREFIX: Final = "nmh"
#: Buckets per Lua call: bounds how long one call holds Redis (a few milliseconds).
_CHUNK: Final = 200
#: Sites per call marking them active after a write.
_TOUCH_CHUNK: Final = 1000
_HEALTH_CHECK_INTERVAL: Final = 30
# User hashes go to Redis as signed 64-bit ints, so small sets stay compact intsets.
_SIGNED: Final = 1 << 63
_UNSIGNED: Final = 1 << 64

# The keys of a series' users in one raw bucket (``nmh:{site}:<kind>:<signal>:<start>:<key>``):
# users set, users HyperLogLog, bad users set, bad users HyperLogLog.
_USER_KINDS: Final = ("bu", "bul", "bb", "bbl")

# One atomic write of a site's deltas, cheap on both ends. Packing arguments is most of a
# flush's cost in redis-py, so all of a call's buckets travel as one string. In Redis, each
# ``redis.call`` costs more than the command it runs, so the layout keeps all of a site's
# series of one bucket in one hash (``t:<start>``, and ``r300:<start>``, ``r3600:<start>``
# for the roll-ups, which are summed here from the raw deltas, not sent), a field per
# series (``<signal> TAB <key>``) holding its counts (details below). A flush then costs
# one HMGET and one HSET per bucket start rather than per series, and a read one HGETALL
# per start. Sums are Lua numbers, exact up to 2^53. Key names are built from
# the site's prefix: every key of a site shares its hash tag, so they all live in the slot
# KEYS[1] routes to.
# KEYS: the site's index and, for a named batch, its writer's mark. ARGV: the site's key
# prefix, raw ttl, exact limit, the mark ("<batch> <call>", or empty), W, then W roll-up
# (width, ttl) pairs, S, the S escaped signal names; last, the buckets: a line
# each, "signal TAB key TAB start total bad slot count slot count … TAB users TAB bad
# users NEWLINE", the signal as its number (from 1) in the list above, the key with '%',
# TAB and newline percent-escaped, users as signed decimal 64-bit hashes, space-separated.
_WRITE: Final = r"""
local call, find, gsub, gmatch = redis.call, string.find, string.gsub, string.gmatch
local match, fmt, min, max, concat = string.match, string.format, math.min, math.max, table.concat
local prefix, raw_ttl, limit, mark = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
-- A batch's call applies once: KEYS[2] holds the last "batch call" its writer applied.
if mark ~= '' then
  local done = call('GET', KEYS[2])
  if done then
    local batch, part = match(done, '^(%d+) (%d+)$')
    local new_batch, new_part = match(mark, '^(%d+) (%d+)$')
    batch, part, new_batch, new_part = tonumber(batch), tonumber(part), tonumber(new_batch), tonumber(new_part)
    if batch > new_batch or (batch == new_batch and part >= new_part) then return -1 end
  end
  call('SET', KEYS[2], mark, 'EX', raw_ttl)
end
local nwidths = tonumber(ARGV[5])
-- Per width (raw first): hash kind, index, ttl, width in seconds (0: raw).
local kinds = {{'t', 'ti', raw_ttl, 0}}
for w = 1, nwidths do
  local width = ARGV[4 + 2 * w]
  kinds[w + 1] = {'r' .. width, 'ri' .. width, ARGV[5 + 2 * w], tonumber(width)}
end
local a = 6 + 2 * nwidths
local nsignals = tonumber(ARGV[a])
local escaped = {}
for s = 1, nsignals do escaped[s] = ARGV[a + s] end
-- The hashes this call changes, in order, with their series' deltas: total, bad, the
-- histogram by slot and, for raw buckets, the users and the bad users to add (lists of
-- space-separated hashes) and the tail of their keys' names.
local hashes, order = {}, {}
for k = 1, #kinds do hashes[k] = {} end
local function deltas(k, start, field)
  local hash = hashes[k][start]
  if not hash then
    hash = {kinds[k], start, {}, {}, prefix .. kinds[k][1] .. ':' .. start}
    hashes[k][start] = hash
    order[#order + 1] = hash
  end
  local d = hash[3][field]
  if not d then
    d = {0, 0, {}, false, false, false}
    hash[3][field] = d
    hash[4][#hash[4] + 1] = field
  end
  return d
end
local function unescape(hex) return string.char(tonumber(hex, 16)) end
local line = '(%d+)\t([^\t\n]*)\t(%-?%d+) (%-?%d+) (%-?%d+) ?([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\n'
local count, ats = 0, {}
for s, key, start, total, bad, hist, users, bad_users in gmatch(ARGV[#ARGV], line) do
  count = count + 1
  local signal = escaped[tonumber(s)]
  local field = signal .. '\t' .. key
  total, bad = tonumber(total), tonumber(bad)
  local counts, h = {}, 0
  for slot, n in gmatch(hist, '(%S+) (%S+)') do
    counts[h + 1], counts[h + 2] = slot, tonumber(n)
    h = h + 2
  end
  local starts = ats[start]
  if not starts then
    starts = {start}
    local first = tonumber(start)
    for k = 2, #kinds do starts[k] = fmt('%d', first - first % kinds[k][4]) end
    ats[start] = starts
  end
  for k = 1, #kinds do
    local d = deltas(k, starts[k], field)
    d[1], d[2] = d[1] + total, d[2] + bad
    local slots = d[3]
    for i = 1, h, 2 do
      local slot = counts[i]
      slots[slot] = (slots[slot] or 0) + counts[i + 1]
    end
  end
  if users ~= '' or bad_users ~= '' then
    local d = hashes[1][start][3][field]
    if not d[6] then
      if find(key, '%', 1, true) then key = gsub(key, '%%(%x%x)', unescape) end
      d[6] = ':' .. signal .. ':' .. start .. ':' .. key
    end
    if users ~= '' then
      d[4] = d[4] or {}
      d[4][#d[4] + 1] = users
    end
    if bad_users ~= '' then
      d[5] = d[5] or {}
      d[5][#d[5] + 1] = bad_users
    end
  end
end
-- Adds users to a series' exact set or, once that held more than the limit, to its
-- HyperLogLog (then the set is just the '!' marker), given how many it counted before
-- (from its field: more than the limit once the set overflowed); returns how many it
-- counts now. Most series never overflow and never need a HyperLogLog: it is made, from
-- the set's members, when the set overflows. The keys get their TTL when made.
local function add_users(set, hll, lists, before)
  local users, n = {}, 0
  for _, list in ipairs(lists) do
    for user in gmatch(list, '%S+') do
      n = n + 1
      users[n] = user
    end
  end
  local count, overflowed = before, before > limit
  for i = 1, n, 4000 do
    local j = min(i + 3999, n)
    if overflowed then
      call('PFADD', hll, unpack(users, i, j))
    else
      count = count + call('SADD', set, unpack(users, i, j))
      if count > limit then
        local members = call('SMEMBERS', set)
        for m = 1, #members, 4000 do call('PFADD', hll, unpack(members, m, min(m + 3999, #members))) end
        call('DEL', set)
        call('SADD', set, '!')
        call('EXPIRE', set, raw_ttl)
        call('EXPIRE', hll, raw_ttl)
        overflowed = true
      end
    end
  end
  if overflowed then return max(call('PFCOUNT', hll), limit + 1) end
  if before == 0 then call('EXPIRE', set, raw_ttl) end
  return count
end
-- One HMGET and one HSET per hash (per 4000 fields). A series' field holds "total bad
-- users bad_users"; in a raw bucket its histogram's (slot, count) pairs follow, in a
-- roll-up each slot has a field of its own (the series' field, TAB, the slot), so that a
-- write touches only the slots it adds to, however many an hour has gathered.
-- A hash gets its TTL and its index entry when made (when none of its series was there:
-- each is made in the same call as its TTL).
local indexes = {}
for _, hash in ipairs(order) do
  local kind, start, fields, names, name = unpack(hash)
  local inline = kind[4] == 0
  local wanted = {}
  for _, field in ipairs(names) do
    wanted[#wanted + 1] = field
    if not inline then
      local d, added = fields[field], {}
      for slot, n in pairs(d[3]) do
        wanted[#wanted + 1] = field .. '\t' .. slot
        added[#added + 1] = n
      end
      d[3] = added
    end
  end
  local stored = {}
  for i = 1, #wanted, 4000 do
    local j = min(i + 3999, #wanted)
    local got = call('HMGET', name, unpack(wanted, i, j))
    for m = i, j do stored[m] = got[m - i + 1] end
  end
  local values, made, w = {}, true, 0
  for _, field in ipairs(names) do
    local d = fields[field]
    local total, bad, users, bad_users, slots = d[1], d[2], 0, 0, d[3]
    w = w + 1
    if stored[w] then
      made = false
      local t, b, u, bu, rest = match(stored[w], '^(%S+) (%S+) (%S+) (%S+) ?(.*)$')
      total, bad, users, bad_users = total + t, bad + b, tonumber(u), tonumber(bu)
      if inline then
        for slot, n in gmatch(rest, '(%S+) (%S+)') do slots[slot] = (slots[slot] or 0) + tonumber(n) end
      end
    end
    if d[4] then users = add_users(prefix .. 'bu' .. d[6], prefix .. 'bul' .. d[6], d[4], users) end
    if d[5] then bad_users = add_users(prefix .. 'bb' .. d[6], prefix .. 'bbl' .. d[6], d[5], bad_users) end
    local value = fmt('%d %d %d %d', total, bad, users, bad_users)
    if inline then
      local parts = {value}
      for slot, n in pairs(slots) do
        parts[#parts + 1] = slot
        parts[#parts + 1] = fmt('%d', n)
      end
      value = concat(parts, ' ')
    end
    values[#values + 1] = field
    values[#values + 1] = value
    if not inline then
      for _, n in ipairs(slots) do
        w = w + 1
        values[#values + 1] = wanted[w]
        values[#values + 1] = fmt('%d', n + (stored[w] or 0))
      end
    end
  end
  for i = 1, #values, 4000 do call('HSET', name, unpack(values, i, min(i + 3999, #values))) end
  if made then
    call('EXPIRE', name, kind[3])
    local list = indexes[kind]
    if not list then
      list = {}
      indexes[kind] = list
    end
    list[#list + 1] = start
    list[#list + 1] = start
  end
end
for kind, list in pairs(indexes) do
  local index = prefix .. kind[2]
  for i = 1, #list, 4000 do call('ZADD', index, unpack(list, i, min(i + 3999, #list))) end
  call('EXPIRE', index, kind[3])
end
-- The site's newest bucket, and a count of late writes (LATE_WRITE_SECONDS, the ARGV
-- before the lines): a call whose oldest bucket is older than the newest by more than that.
local oldest, newest
for start in pairs(ats) do
  local t = tonumber(start)
  oldest, newest = min(oldest or t, t), max(newest or t, t)
end
if oldest then
  local marks = prefix .. 'w'
  local seen = tonumber(call('HGET', marks, 'newest') or '')
  if seen and oldest < seen - tonumber(ARGV[#ARGV - 1]) then call('HINCRBY', marks, 'late', 1) end
  if not seen or newest > seen then call('HSET', marks, 'newest', fmt('%d', newest)) end
  call('EXPIRE', marks, raw_ttl)
end
return count
"""

# Marks sites active, in the list :meth:`RedisStore.sites` answers from: one call per
# write (per 1,000 sites), not one per site. KEYS: the site list. ARGV: its ttl, then
# (score, member) pairs.
_TOUCH_SITES: Final = """
redis.call('ZADD', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Every bucket (or roll-up) of a site's signals starting in a range, as one string: a line
# per bucket, "start TAB signal TAB key TAB total bad users bad_users slot count…", keys
# with '%', TAB or newline percent-escaped (as they are stored). One string, not nested
# replies: it costs Redis one concatenation and redis-py one bulk string.
# KEYS: the site's index (for routing). ARGV: the site's key prefix, low score, high
# score, index kind, hash kind, then the (escaped) signals wanted.
_READ_MANY: Final = r"""
local prefix, low, high, index, kind = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local call, find, sub, concat = redis.call, string.find, string.sub, table.concat
local wanted = {}
for s = 6, #ARGV do wanted[ARGV[s]] = true end
local out, n = {}, 0
for _, start in ipairs(call('ZRANGEBYSCORE', prefix .. index, low, high)) do
  local fields = call('HGETALL', prefix .. kind .. ':' .. start)
  -- Per series: its counts, then its histogram's slots and counts.
  local series, names = {}, {}
  for i = 1, #fields, 2 do
    local field = fields[i]
    local tab = find(field, '\t', 1, true)
    if wanted[sub(field, 1, tab - 1)] then
      local slot = find(field, '\t', tab + 1, true)
      local name = field
      if slot then name = sub(field, 1, slot - 1) end
      local s = series[name]
      if not s then
        s = {false}
        series[name] = s
        names[#names + 1] = name
      end
      if slot then
        s[#s + 1] = sub(field, slot + 1)
        s[#s + 1] = fields[i + 1]
      else
        s[1] = fields[i + 1]
      end
    end
  end
  for _, name in ipairs(names) do
    local s = series[name]
    if s[1] then
      s[1] = start .. '\t' .. name .. '\t' .. s[1]
      out[n + 1] = concat(s, ' ')
      n = n + 1
    end
  end
end
if n == 0 then return '' end
return concat(out, '\n') .. '\n'
"""

# A raw bucket's series, as (signal, key) pairs: its hash's fields, keys unescaped as the
# names of their users' keys have them (a raw bucket keeps its histogram inline, so every
# field is a series).
_SERIES_OF: Final = r"""
local function series_of(hash)
  local find, sub = string.find, string.sub
  local found = {}
  for _, field in ipairs(redis.call('HKEYS', hash)) do
    local tab = find(field, '\t', 1, true)
    local key = sub(field, tab + 1)
    if find(key, '%', 1, true) then
      key = string.gsub(key, '%%(%x%x)', function(hex) return string.char(tonumber(hex, 16)) end)
    end
    found[#found + 1] = {sub(field, 1, tab - 1), key}
  end
  return found
end
"""

# Forget a site's buckets (with their users) and roll-ups older than the cutoffs, and its
# incidents (with their alerts) resolved before one. KEYS: the site's index. ARGV: the
# site's key prefix, "(<before>" for raw buckets and five-minute roll-ups, "(<before>" for
# hourly ones, the resolved cutoff in seconds. Returns the ids of the incidents forgotten.
_TRIM: Final = _SERIES_OF + r"""
local prefix, before, hourly_before, resolved_before = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local fine_before = ARGV[5]
local call = redis.call
local doomed = {}
local function forget(key)
  doomed[#doomed + 1] = key
  if #doomed >= 1000 then
    call('DEL', unpack(doomed))
    doomed = {}
  end
end
for _, t in ipairs({{'ti', 't', before}, {'ri300', 'r300', fine_before}, {'ri3600', 'r3600', hourly_before}}) do
  local index = prefix .. t[1]
  local old = call('ZRANGEBYSCORE', index, '-inf', t[3])
  for _, start in ipairs(old) do
    local hash = prefix .. t[2] .. ':' .. start
    if t[2] == 't' then
      for _, series in ipairs(series_of(hash)) do
        local tail = ':' .. series[1] .. ':' .. start .. ':' .. series[2]
        for _, users in ipairs({'bu', 'bul', 'bb', 'bbl'}) do forget(prefix .. users .. tail) end
      end
    end
    forget(hash)
  end
  for i = 1, #old, 1000 do call('ZREM', index, unpack(old, i, math.min(i + 999, #old))) end
end
if #doomed > 0 then call('DEL', unpack(doomed)) end
local incidents = prefix .. 'incidents'
local fields = redis.call('HGETALL', incidents)
local gone = {}
for i = 1, #fields, 2 do
  local ok, doc = pcall(cjson.decode, fields[i + 1])
  if ok and type(doc['resolved_at']) == 'number' and doc['resolved_at'] < resolved_before then
    gone[#gone + 1] = fields[i]
  end
end
local hashes = {incidents, prefix .. 'alerts'}
for _, part in ipairs({'created', 'ack', 'notified', 'reminders'}) do hashes[#hashes + 1] = prefix .. 'alerts:' .. part end
for i = 1, #gone, 500 do
  local j = math.min(i + 499, #gone)
  for _, hash in ipairs(hashes) do
    redis.call('HDEL', hash, unpack(gone, i, j))
  end
end
return gone
"""

# KEYS: incidents, open index. The open incidents of a site.
_OPEN_INCIDENTS: Final = """
local ids = redis.call('HVALS', KEYS[2])
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(ids))
"""

# Distinct users of cells, given as two lists of keys (exact sets, HyperLogLogs): the exact
# union while no set overflowed its limit, else a HyperLogLog union in the scratch key of
# the overflowed cells' HyperLogLogs and the other cells' users (those have no HyperLogLog).
_COUNT: Final = """
local call, min = redis.call, math.min
local function count(sets, hlls, scratch)
  local n = #sets
  if n == 0 then return 0 end
  local overflowed = {}
  for i = 1, n do overflowed[i] = call('SISMEMBER', sets[i], '!') == 1 end
  local any = false
  for i = 1, n do any = any or overflowed[i] end
  if not any then
    if n == 1 then return call('SCARD', sets[1]) end
    local seen, c = {}, 0
    for i = 1, n do
      for _, m in ipairs(call('SMEMBERS', sets[i])) do
        if not seen[m] then
          seen[m] = true
          c = c + 1
        end
      end
    end
    return c
  end
  call('DEL', scratch)
  call('PFADD', scratch)
  call('PEXPIRE', scratch, 60000)
  local merge = {}
  for i = 1, n do
    if overflowed[i] then
      merge[#merge + 1] = hlls[i]
      if #merge == 1000 then
        call('PFMERGE', scratch, unpack(merge))
        merge = {}
      end
    else
      local members = call('SMEMBERS', sets[i])
      for m = 1, #members, 4000 do call('PFADD', scratch, unpack(members, m, min(m + 3999, #members))) end
    end
  end
  if #merge > 0 then call('PFMERGE', scratch, unpack(merge)) end
  local c = call('PFCOUNT', scratch)
  call('DEL', scratch)
  return c
end
"""

# KEYS: a scratch key of the site, then (exact set, HyperLogLog) per cell.
_COUNT_USERS: Final = _COUNT + """
local sets, hlls = {}, {}
for i = 2, #KEYS, 2 do
  sets[#sets + 1] = KEYS[i]
  hlls[#hlls + 1] = KEYS[i + 1]
end
return count(sets, hlls, KEYS[1])
"""

# The users behind a site's buckets starting in a range, over parts (signal, bad only,
# keys): the buckets' series found with the index and their hashes' fields, the users
# counted in place.
# KEYS: the site's scratch key. ARGV: the site's key prefix, low score, high score, the
# number of parts, then per part: signal, '1' for bad users only, the number of keys (0:
# all: -1), the keys.
_WINDOW_USERS: Final = _COUNT + _SERIES_OF + r"""
local prefix, low, high = ARGV[1], ARGV[2], ARGV[3]
-- Each bucket in the range: its start and its series.
local buckets = {}
for _, start in ipairs(call('ZRANGEBYSCORE', prefix .. 'ti', low, high)) do
  buckets[#buckets + 1] = {start, series_of(prefix .. 't:' .. start)}
end
local sets, hlls, a = {}, {}, 5
for _ = 1, tonumber(ARGV[4]) do
  local signal, bad, nkeys = ARGV[a], ARGV[a + 1] == '1', tonumber(ARGV[a + 2])
  local wanted = nil
  if nkeys >= 0 then
    wanted = {}
    for k = a + 3, a + 2 + nkeys do wanted[ARGV[k]] = true end
  end
  a = a + 3 + math.max(nkeys, 0)
  local set, hll = 'bu', 'bul'
  if bad then set, hll = 'bb', 'bbl' end
  for _, bucket in ipairs(buckets) do
    for _, series in ipairs(bucket[2]) do
      if series[1] == signal and (wanted == nil or wanted[series[2]]) then
        local tail = ':' .. signal .. ':' .. bucket[1] .. ':' .. series[2]
        sets[#sets + 1] = prefix .. set .. tail
        hlls[#hlls + 1] = prefix .. hll .. tail
      end
    end
  end
end
return count(sets, hlls, KEYS[1])
"""

# KEYS: incidents, open index, the site lease's token. ARGV: id, json, open field, '1' when
# open, ttl, fencing token or ''. Returns the JSON of the incident stored under the same
# (check, key) afterwards, or 'stale' (not JSON; nothing written) when the token is not the
# lease's.
_SAVE_INCIDENT: Final = """
local id, doc, field, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
if ARGV[6] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[6] then return 'stale' end
local stored = redis.call('HGET', KEYS[1], id)
if ARGV[4] == '1' then
  if stored and cjson.decode(stored)['status'] ~= 'open' then return stored end
  local holder = redis.call('HGET', KEYS[2], field)
  if holder and holder ~= id then
    local other = redis.call('HGET', KEYS[1], holder)
    if other and cjson.decode(other)['status'] == 'open' then return other end
  end
  redis.call('HSET', KEYS[2], field, id)
elseif redis.call('HGET', KEYS[2], field) == id then
  redis.call('HDEL', KEYS[2], field)
end
redis.call('HSET', KEYS[1], id, doc)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return doc
"""

# An alert's JSON lives in the site's ``alerts`` hash; what must not go back when a pass
# rewrites it lives beside it, a hash each (see RedisStore._alert_keys), and wins on read:
# the first creation, the acknowledgement, when the push sinks were last told and how many
# reminders they got. Times stay the strings Python sent: Lua only compares them.

# KEYS: the alert hashes. ARGV: incident id, json, created_at, acknowledged_at or '',
# notified_at or '', reminders, ttl.
_SAVE_ALERT: Final = """
local id = ARGV[1]
redis.call('HSET', KEYS[1], id, ARGV[2])
local created = redis.call('HGET', KEYS[2], id)
if not created or tonumber(ARGV[3]) < tonumber(created) then redis.call('HSET', KEYS[2], id, ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], id, ARGV[4]) end
if ARGV[5] ~= '' then
  local notified = redis.call('HGET', KEYS[4], id)
  if not notified or tonumber(ARGV[5]) > tonumber(notified) then redis.call('HSET', KEYS[4], id, ARGV[5]) end
end
if tonumber(ARGV[6]) > tonumber(redis.call('HGET', KEYS[5], id) or '0') then redis.call('HSET', KEYS[5], id, ARGV[6]) end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
return 1
"""

# KEYS: the alert hashes. ARGV: incident id, acknowledged_at, ttl. First wins.
_ACKNOWLEDGE: Final = """
local id = ARGV[1]
local doc = redis.call('HGET', KEYS[1], id)
if not doc then return false end
if redis.call('HSETNX', KEYS[3], id, ARGV[2]) == 1 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
local found = {doc}
for i = 2, #KEYS do found[i] = redis.call('HGET', KEYS[i], id) end
return found
"""

# KEYS: the alert hashes. ARGV: incident id, the notified_at expected ('' for none), the
# new one, '1' to count a reminder, ttl. Compare and set: the alert as stored afterwards
# when this call set it, else nothing.
_MARK_NOTIFIED: Final = """
local id = ARGV[1]
local doc = redis.call('HGET', KEYS[1], id)
if not doc then return false end
local notified = redis.call('HGET', KEYS[4], id)
if ARGV[2] == '' then
  if notified then return false end
elseif not notified or tonumber(notified) ~= tonumber(ARGV[2]) then
  return false
end
redis.call('HSET', KEYS[4], id, ARGV[3])
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[5], id, 1) end
for i = 4, 5 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
local found = {doc}
for i = 2, #KEYS do found[i] = redis.call('HGET', KEYS[i], id) end
return found
"""

# Maintenance windows and silences: one hash per kind, id -> JSON.

# KEYS: the hash. ARGV: id, json, ttl. The TTL is never shortened: it covers the
# latest-ending entry, however long ago it was saved.
_SAVE_PLANNED: Final = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
"""

# KEYS: the hash. ARGV: id, the json expected, the new json. Compare and set: replaces the
# entry only if it is still the one expected; returns the entry stored afterwards.
_REPLACE_PLANNED: Final = """
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return ARGV[3]
end
return stored
"""

# KEYS: the hash. ARGV: the cutoff in seconds. Forgets the entries that ended before it.
_TRIM_PLANNED: Final = """
local fields, cutoff, gone = redis.call('HGETALL', KEYS[1]), tonumber(ARGV[1]), {}
for i = 1, #fields, 2 do
  local ok, doc = pcall(cjson.decode, fields[i + 1])
  if ok and type(doc['ends_at']) == 'number' and doc['ends_at'] < cutoff then gone[#gone + 1] = fields[i] end
end
for i = 1, #gone, 500 do redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + 499, #gone))) end
return #gone
"""

# KEYS: the lease, its fencing token. ARGV: owner, ttl in ms, now, now + ttl, the token's
# TTL. Value: "<expires> <owner>". Returns the token (one more for each new holder; the
# token outlives the lease), or 0 while another owner holds the lease.
_ACQUIRE: Final = """
local held = redis.call('GET', KEYS[1])
local renew = false
if held then
  local sep = string.find(held, ' ', 1, true)
  local expires, holder = tonumber(string.sub(held, 1, sep - 1)), string.sub(held, sep + 1)
  if holder ~= ARGV[1] and expires > tonumber(ARGV[3]) then return 0 end
  renew = holder == ARGV[1]
end
local token = redis.call('GET', KEYS[2])
if not renew or not token then token = redis.call('INCR', KEYS[2]) end
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[1], ARGV[4] .. ' ' .. ARGV[1], 'PX', ARGV[2])
return tonumber(token)
"""

_RELEASE: Final = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, string.find(held, ' ', 1, true) + 1) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: a hash or sorted set. ARGV: 'hset' or 'zadd', field or score, value or member, ttl.
_SET_WITH_TTL: Final = """
if ARGV[1] == 'hset' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


class StoredUsers(DistinctCounter):
    """The distinct users of a bucket read from Redis: their count, and where they live.

    The users themselves stay in Redis; :meth:`RedisStore.count_users` unions them there.
    Merging one into a local counter raises, rather than silently counting nobody.
    """

    __slots__ = ("_count", "keys")

    def __init__(self, count: int, keys: tuple[bytes, bytes]) -> None:
        self._count = count
        self.keys = keys

    @property
    def _exact(self) -> None:  # type: ignore[override]
        return None

    @property
    def _regs(self) -> bytearray:  # type: ignore[override]
        raise TypeError("the users of a Redis bucket stay in Redis: count them with RedisStore.count_users")

    def exact_items(self) -> None:
        return None

    @property
    def is_exact(self) -> bool:
        return self._count <= EXACT_LIMIT

    def estimate(self) -> float:
        return float(self._count)

    def add(self, h: int) -> None:
        raise TypeError("the users of a Redis bucket are read-only")

    update = add  # type: ignore[assignment]

    def merge(self, other: DistinctCounter) -> None:
        raise TypeError("the users of a Redis bucket stay in Redis: count them with RedisStore.count_users")

    def copy(self) -> StoredUsers:
        return self

    def compact(self) -> StoredUsers:
        return self

    def to_bytes(self) -> bytes:
        raise TypeError("the users of a Redis bucket stay in Redis")

    def __repr__(self) -> str:
        return f"<StoredUsers {self._count}>"


#: The hashes beside a site's ``alerts`` (``alerts:<part>``), each keeping, per incident id,
#: what a rewrite of the alert must not undo, in the order :func:`_alert` takes them.
_ALERT_PARTS: Final = ("created", "ack", "notified", "reminders")

#: The scripts a pass calls once per site, which :meth:`RedisStore._run` may batch.
_BATCHABLE: Final = {"acquire": _ACQUIRE, "open_incidents": _OPEN_INCIDENTS, "read_many": _READ_MANY}


def _config_value(reply: Any, name: str) -> str | None:
    """One setting from a ``CONFIG GET`` reply (str or bytes), or None if it is not there."""
    if not isinstance(reply, dict):
        return None
    for key, value in reply.items():
        if (key.decode() if isinstance(key, bytes) else key) == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class RedisStore(Store):
    """Buckets, roll-ups, incidents, alerts and leases in Redis (see the module doc).

    :param url: ``redis://[:password@]host:port/db``, ``rediss://…`` or ``unix:///path``,
        with optional query options of this store: ``timeout`` (seconds, default 1) for
        connecting and for every reply, ``history`` (seconds raw buckets live, default
        7200: at least the monitor's ``history_seconds``), ``trend`` (seconds roll-ups,
        incidents and alerts live, default 30 days) and ``prefix`` (default ``nmh``).
        Other query options go to ``redis.Redis.from_url``.
    :param client: a ready client (``redis.Redis`` or ``redis.cluster.RedisCluster``)
        to use instead of connecting to ``url``; give it short timeouts and no retries.
        The store does not close a client it was given.
    """

    blocking = True
    fencing = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        client: Any = None,
        timeout: float | None = None,
        history_seconds: int | None = None,
        trend_seconds: int | None = None,
        prefix: str | None = None,
    ) -> None:
        connect_url, options = _split_options(url)
        self.timeout = _positive("timeout", timeout, options.get("timeout"), DEFAULT_TIMEOUT)
        history = _positive("history", history_seconds, options.get("history"), DEFAULT_HISTORY)
        self.history_seconds = int(history)
        self.trend_seconds = int(_positive("trend", trend_seconds, options.get("trend"), DEFAULT_TREND))
        self.prefix = prefix or options.get("prefix") or DEFAULT_PREFIX
        if "{" in self.prefix or "}" in self.prefix:
            raise ConfigError(f"the redis:// store prefix must not contain braces, got {self.prefix!r}")
        self.url = _redacted(url)
        self._connect_url = connect_url
        self._own_client = client is None
        self._client = client if client is not None else self._connect()
        self._scripts = {
            name: (source, _sha1(source))
            for name, source in (
                ("write", _WRITE),
                ("touch_sites", _TOUCH_SITES),
                ("count_users", _COUNT_USERS),
                ("read_many", _READ_MANY),
                ("window_users", _WINDOW_USERS),
                ("open_incidents", _OPEN_INCIDENTS),
                ("trim", _TRIM),
                ("save_incident", _SAVE_INCIDENT),
                ("save_alert", _SAVE_ALERT),
                ("acknowledge", _ACKNOWLEDGE),
                ("mark_notified", _MARK_NOTIFIED),
                ("save_planned", _SAVE_PLANNED),
                ("replace_planned", _REPLACE_PLANNED),
                ("trim_planned", _TRIM_PLANNED),
                ("acquire", _ACQUIRE),
                ("release", _RELEASE),
                ("set_with_ttl", _SET_WITH_TTL),
                *((f"batched:{name}", _batched(source)) for name, source in _BATCHABLE.items()),
            )
        }
        #: Bucket deltas whose users came as an estimate rather than exact hashes (only
        #: possible when something other than the recorder writes): counted, not unioned.
        self.inexact_user_sketches = 0
        self._parents: list[Any] = []
        _STORES.add(self)

    def _connect(self) -> Any:
        try:
            return redis.Redis.from_url(
                self._connect_url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                health_check_interval=_HEALTH_CHECK_INTERVAL,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise ConfigError(f"bad redis:// store URL {self.url!r}: {exc}") from exc

    def _after_fork_in_child(self) -> None:
        """Give the child its own pool; the parent's (sockets, locks) stays untouched."""
        if self._own_client:
            self._parents.append(self._client)  # never closed here: its sockets are the parent's
            self._client = self._connect()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    def time(self) -> float:
        seconds, micros = self._client.time()
        return seconds + micros / 1e6

    def caveats(self) -> tuple[str, ...]:
        """A Redis that keeps nothing on disk (no append-only file, no save points).

        A managed Redis that refuses ``CONFIG`` (or one that is down) cannot tell, and
        says nothing.
        """
        try:
            aof = _config_value(self._client.config_get("appendonly"), "appendonly")
            save = _config_value(self._client.config_get("save"), "save")
        except Exception:
            return ()
        if aof == "no" and save == "":
            return (
                f"Redis at {self.url} keeps nothing on disk (appendonly no, no save points):"
                " a restart forgets open incidents and alerts, and the next pass opens and"
                " alerts them again; set appendonly yes",
            )
        return ()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    # Keys.

    def _key(self, site: str, *parts: str) -> bytes:
        return ":".join((self.prefix, "{" + _escape(site) + "}", *parts)).encode("utf-8", "surrogatepass")

    def _user_keys(self, site: str, signal: str, start: int, key: str) -> list[bytes]:
        """The keys of a series' users in one raw bucket: see :data:`_USER_KINDS`."""
        sig = _escape(signal)
        return [self._key(site, kind, sig, f"{start}:{key}") for kind in _USER_KINDS]

    @property
    def _sites_key(self) -> bytes:
        return f"{self.prefix}:{{sites}}".encode()

    @property
    def _evaluated_key(self) -> bytes:
        return f"{self.prefix}:{{evaluated}}".encode()

    @property
    def _alert_sites_key(self) -> bytes:
        return f"{self.prefix}:{{alert-sites}}".encode()

    @property
    def _maintenance_key(self) -> bytes:
        return f"{self.prefix}:{{maintenance}}".encode()

    @property
    def _silences_key(self) -> bytes:
        return f"{self.prefix}:{{silences}}".encode()

    # Scripts: EVALSHA, loading the script when the server does not know it yet.

    def _run(self, commands: Sequence[Command], *, batch: bool = False) -> list[Any]:
        """Run script calls ``(name, keys, args)`` in one pipelined round trip; return results.

        With ``batch`` (calls of one script, per site, that only read or renew a lease),
        a single Redis gets them :data:`_BATCH_CALLS` at a time, each batch as one call.
        A server that lost its script cache (a restart, a failover) answers NOSCRIPT: the
        scripts are loaded and only those calls run again.
        """
        if batch and len(commands) > 1 and not isinstance(self._client, RedisCluster):
            return self._run_batched(commands)
        results = self._pipeline_scripts(commands)
        retry = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if retry:
            for name in {commands[i][0] for i in retry}:
                self._client.script_load(self._scripts[name][0])
            again = self._pipeline_scripts([commands[i] for i in retry])
            for i, result in zip(retry, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _run_batched(self, commands: Sequence[Command]) -> list[Any]:
        packed: list[Command] = []
        for i in range(0, len(commands), _BATCH_CALLS):
            chunk = commands[i : i + _BATCH_CALLS]
            name = chunk[0][0]
            keys: list[Any] = []
            args: list[Any] = [len(chunk)]
            for script, call_keys, call_args in chunk:
                if script != name:
                    raise ValueError(f"one batch runs one script, got {name!r} and {script!r}")
                keys += call_keys
                args += (len(call_keys), len(call_args), *call_args)
            packed.append((f"batched:{name}", keys, args))
        return [result for replies in self._run(packed) for result in replies]

    def _pipeline_scripts(self, commands: Sequence[Command]) -> list[Any]:
        if not isinstance(self._client, RedisCluster):
            return self._pipeline_on(self._client, commands)
        # A cluster pipeline refuses scripts: pipeline them to each key's node directly, one
        # round trip per node. A slot that moved meanwhile is retried through the cluster
        # client, which follows the redirection and refreshes its slot map.
        by_node: dict[str, list[int]] = defaultdict(list)
        nodes = {}
        for i, (_, keys, _) in enumerate(commands):
            node = self._client.get_node_from_key(keys[0])
            nodes[node.name] = node
            by_node[node.name].append(i)
        results: list[Any] = [None] * len(commands)
        for name, indexes in by_node.items():
            connection = self._client.get_redis_connection(nodes[name])
            replies = self._pipeline_on(connection, [commands[i] for i in indexes])
            for i, result in zip(indexes, replies, strict=True):
                if isinstance(result, AskError | TryAgainError):  # MovedError is an AskError
                    script, keys, args = commands[i]
                    try:
                        result = self._client.evalsha(self._scripts[script][1], len(keys), *keys, *args)
                    except RedisError as exc:
                        result = exc
                results[i] = result
        return results

    def _pipeline_on(self, client: Any, commands: Sequence[Command]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for name, keys, args in commands:
            pipe.evalsha(self._scripts[name][1], len(keys), *keys, *args)
        return list(pipe.execute(raise_on_error=False))

    # Buckets.

    def write(self, buckets: Sequence[Bucket], *, batch: BatchId | None = None) -> None:
        """One script call per site (per 200 buckets) and one for the site list, pipelined.

        A named ``batch`` applies once: each call leaves its writer a mark (per site, as
        long as raw buckets live), and a call the mark shows applied is skipped, so a
        batch sent again after a lost reply is not counted twice.
        """
        by_site: dict[str, list[Bucket]] = defaultdict(list)
        for bucket in buckets:
            by_site[bucket.site].append(bucket)
        if not by_site:
            return
        now = repr(time.time())
        widths = [part for width in ROLLUP_WIDTHS for part in (width, self._rollup_ttl(width))]
        mark = b"" if batch is None else b"applied:" + _encode(_escape(batch[0]))
        commands: list[Command] = []
        for site, site_buckets in by_site.items():
            prefix = self._key(site) + b":"
            keys = [prefix + b"ti"] if batch is None else [prefix + b"ti", prefix + mark]
            for call, i in enumerate(range(0, len(site_buckets), _CHUNK)):
                chunk = site_buckets[i : i + _CHUNK]
                head = [
                    self.history_seconds,
                    EXACT_LIMIT,
                    "" if batch is None else f"{batch[1]} {call}",
                    len(ROLLUP_WIDTHS),
                    *widths,
                ]
                commands.append(("write", keys, self._write_args(prefix, head, chunk)))
        sites = [_encode(site) for site in by_site]
        for i in range(0, len(sites), _TOUCH_CHUNK):
            touched = [part for site in sites[i : i + _TOUCH_CHUNK] for part in (now, site)]
            commands.append(("touch_sites", [self._sites_key], [self.trend_seconds, *touched]))
        self._run(commands)

    def _write_args(self, prefix: bytes, head: list[Any], buckets: Sequence[Bucket]) -> list[Any]:
        """The write script's arguments for some buckets of one site (see :data:`_WRITE`)."""
        signals = sorted({b.signal for b in buckets})
        number = {signal: str(i) for i, signal in enumerate(signals, 1)}
        lines = []
        for bucket in buckets:
            users = []
            for counter in (bucket.users, bucket.bad_users):
                items = counter.exact_items()
                if items is None:
                    self._inexact(bucket)
                    items = ()
                users.append(" ".join([str(h - _UNSIGNED if h >= _SIGNED else h) for h in items]))
            lines.append(
                f"{number[bucket.signal]}\t{_escape_field(bucket.key)}\t{_numbers(bucket)}\t{users[0]}\t{users[1]}\n"
            )
        return [
            prefix,
            *head,
            len(signals),
            *(_encode(_escape(signal)) for signal in signals),
            LATE_WRITE_SECONDS,
            _encode("".join(lines)),
        ]

    def _rollup_ttl(self, width: int) -> int:
        if width >= HOUR:
            return self.trend_seconds
        return max(self.history_seconds, FIVE_MINUTE_RETENTION)

    def _inexact(self, bucket: Bucket) -> None:
        self.inexact_user_sketches += 1
        if self.inexact_user_sketches == 1:
            log.warning(
                "nextmonth_health.redis_inexact_users",
                site=bucket.site,
                signal=bucket.signal,
                reason="a bucket delta carried estimated users, not exact hashes: its counts are "
                "kept, its users are not added to the distinct-user counts",
            )

    def read(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        buckets = []
        for bucket, counts in self._read_series(site, signal, None, start, end):
            users = self._user_keys(site, signal, int(bucket.start), bucket.key)
            _, _, n_users, n_bad_users = counts.split(b" ", 4)[:4]
            bucket.users = StoredUsers(int(n_users), (users[0], users[1]))
            bucket.bad_users = StoredUsers(int(n_bad_users), (users[2], users[3]))
            buckets.append(bucket)
        return buckets

    def read_rollup(self, site: str, signal: str, width: int, start: float, end: float) -> list[Bucket]:
        if width not in ROLLUP_WIDTHS:
            raise ValueError(f"no roll-ups {width} seconds wide are kept; widths: {ROLLUP_WIDTHS}")
        return [bucket for bucket, _ in self._read_series(site, signal, width, start, end)]

    def _read_series(
        self, site: str, signal: str, width: int | None, start: float, end: float
    ) -> Iterator[tuple[Bucket, bytes]]:
        """One signal's buckets (or roll-ups) starting in ``[start, end)``, by start, then
        key, each with its counts field as stored (see :data:`_WRITE`)."""
        index, kind = _kinds(width)
        prefix = self._key(site) + b":"
        starts = self._client.zrangebyscore(prefix + index, start, f"({end}")
        if not starts:
            return
        pipe = self._client.pipeline(transaction=False)
        for first in starts:
            pipe.hgetall(prefix + kind + b":" + first)
        head = _encode(_escape(signal)) + b"\t"
        for first, fields in zip(starts, pipe.execute(), strict=True):
            found: dict[bytes, tuple[Bucket, bytes]] = {}
            # Sorted, a series' counts field comes before its slots' (it is their prefix).
            for field, value in sorted(fields.items()):
                if not field.startswith(head):
                    continue
                key, _, slot = field[len(head) :].partition(b"\t")
                if not slot:
                    bucket = Bucket(site, signal, _unescape_field(key), int(first))
                    total, bad, _, _, *pairs = value.split(b" ", 4)
                    bucket.total, bucket.bad = int(total), int(bad)
                    if pairs:
                        bucket.hist.update(_CountsBucket.decode_hist(pairs[0]))
                    found[key] = (bucket, value)
                elif key in found:
                    found[key][0].hist[int(slot)] = int(value)
            yield from found.values()

    def read_many(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, dict[str, list[Bucket]]]:
        """One script call per site, all in one round trip; users are left out (see the base class)."""
        return _CountsBucket.grouped(sites, self.read_rows(sites, start, end, width=width, signals=signals))

    def read_rows(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> list[Row]:
        if width is not None and width not in ROLLUP_WIDTHS:
            raise ValueError(f"no roll-ups {width} seconds wide are kept; widths: {ROLLUP_WIDTHS}")
        index, kind = _kinds(width)
        escaped = [_encode(_escape(signal)) for signal in signals]
        names = {signal: _decode(signal) for signal in escaped}
        low, high = repr(float(start)), f"({float(end)!r}"
        sites = list(dict.fromkeys(sites))
        commands: list[Command] = []
        for site in sites:
            prefix = self._key(site) + b":"
            commands.append(("read_many", [prefix + b"ti"], [prefix, low, high, index, kind, *escaped]))
        rows: list[Row] = []
        # Keys and starts repeat across buckets and sites: each is decoded once.
        keys: dict[bytes, str] = {}
        starts: dict[bytes, int] = {}
        for site, reply in zip(sites, self._run(commands, batch=True), strict=True):
            if not reply:
                continue
            for line in reply[:-1].split(b"\n"):
                first, signal, key, value = line.split(b"\t")
                parts = value.split(b" ", 4)
                name = keys.get(key)
                if name is None:
                    name = keys[key] = _unescape_field(key)
                at = starts.get(first)
                if at is None:
                    at = starts[first] = int(first)
                hist = parts[4] if len(parts) == 5 else b""
                rows.append((site, names[signal], name, at, int(parts[0]), int(parts[1]), hist))
        return rows

    def decode_hist(self, hist: Any) -> Counter[int]:
        return _CountsBucket.decode_hist(hist)

    def count_users(self, cells: Sequence[tuple[Bucket, bool]]) -> int:
        """Distinct users over the cells, counted in Redis in one call (all of one site).

        Exact while every cell's set is intact (at most 512 users each), a HyperLogLog
        union beyond. Cells not read from this store are looked up by their coordinates.
        """
        if not cells:
            return 0
        keys: list[bytes] = [self._key(cells[0][0].site, "scratch")]
        for bucket, bad in cells:
            counter = bucket.bad_users if bad else bucket.users
            if isinstance(counter, StoredUsers):
                keys += counter.keys
            else:
                users = self._user_keys(bucket.site, bucket.signal, int(bucket.start), bucket.key)
                keys += users[2:] if bad else users[:2]
        [count] = self._run([("count_users", keys, [])])
        return int(count)

    def window_users(
        self, site: str, parts: Sequence[tuple[str, Sequence[str] | None, bool]], start: float, end: float
    ) -> int:
        """Counted in Redis in one call, without reading the buckets back."""
        args: list[Any] = [self._key(site) + b":", repr(float(start)), f"({float(end)!r}", len(parts)]
        for signal, keys, bad in parts:
            args += (_encode(_escape(signal)), "1" if bad else "0", -1 if keys is None else len(keys))
            args += [_encode(key) for key in keys or ()]
        [count] = self._run([("window_users", [self._key(site, "scratch")], args)])
        return int(count)

    def sites(self) -> set[str]:
        return {_decode(s) for s in self._client.zrange(self._sites_key, 0, -1)}

    def note_evaluations(self, sites: Sequence[str], at: float) -> None:
        if sites:
            pipe = self._client.pipeline(transaction=True)
            pipe.zadd(self._evaluated_key, {_encode(site): at for site in sites})
            pipe.expire(self._evaluated_key, int(self.trend_seconds))
            pipe.execute()

    def last_evaluations(self) -> dict[str, datetime]:
        return {
            _decode(site): timestamp(at)
            for site, at in self._client.zrange(self._evaluated_key, 0, -1, withscores=True)
        }

    # Incidents and alerts.

    def save_incident(self, incident: Incident, *, fence: Fence | None = None) -> Incident:
        """Store an incident; return the one stored for its (site, check, key) afterwards.

        Opening is idempotent: an open incident whose (check, key) already has a
        *different* open incident is not stored, and the existing one is returned; a
        resolved incident is never reopened. The caller compares ids to learn that its
        transition lost the race and must not be announced.
        """
        site = incident.site
        doc = _dumps(incident)
        if fence is not None and fence[0] != site_lease(site):
            raise ValueError(f"an incident of {site!r} is fenced by its site's lease, not {fence[0]!r}")
        stored = self._run(
            [
                (
                    "save_incident",
                    [self._key(site, "incidents"), self._key(site, "open"), self._lease_key(site_lease(site)) + b":token"],
                    [
                        _encode(incident.id),
                        doc,
                        _encode(f"{incident.check}\x00{incident.key}"),
                        "1" if incident.is_open else "0",
                        self.trend_seconds,
                        "" if fence is None else str(fence[1]),
                    ],
                ),
                self._touch_site(site),
            ]
        )[0]
        if stored == b"stale":
            raise StaleLease(f"the lease {fence[0]!r} has a newer holder than token {fence[1]}")  # type: ignore[index]
        return incident if stored == doc else _loads(Incident, stored)

    def open_incident(self, incident: Incident) -> bool:
        """Store a newly opened incident unless its (site, check, key) already has an open one.

        True when this incident is now the open one; False when another process opened
        the same problem first (nothing was written).
        """
        return self.save_incident(incident).id == incident.id

    def incidents(
        self, site: str | None = None, *, open_only: bool = False, resolved_since: datetime | None = None
    ) -> list[Incident]:
        sites = [site] if site is not None else sorted(self.sites())
        pipe = self._client.pipeline(transaction=False)
        for name in sites:
            pipe.hvals(self._key(name, "incidents"))
        found = []
        for docs in pipe.execute():
            for doc in docs:
                incident = _loads(Incident, doc)
                if incident.is_open or (
                    not open_only
                    and (
                        resolved_since is None
                        or (incident.resolved_at is not None and incident.resolved_at >= resolved_since)
                    )
                ):
                    found.append(incident)
        return newest_first(found)

    def open_incidents(self, sites: Sequence[str]) -> dict[str, list[Incident]]:
        replies = self._run(
            [("open_incidents", [self._key(site, "incidents"), self._key(site, "open")], []) for site in sites],
            batch=True,
        )
        found: dict[str, list[Incident]] = {}
        for site, docs in zip(sites, replies, strict=True):
            incidents = [_loads(Incident, doc) for doc in docs if doc]
            found[site] = newest_first(i for i in incidents if i.is_open)
        return found

    def save_alert(self, alert: Alert) -> None:
        site = alert.site
        self._run(
            [
                (
                    "save_alert",
                    self._alert_keys(site),
                    [
                        _encode(alert.incident_id),
                        _dumps(alert),
                        repr(alert.created_at.timestamp()),
                        "" if alert.acknowledged_at is None else repr(alert.acknowledged_at.timestamp()),
                        "" if alert.notified_at is None else repr(alert.notified_at.timestamp()),
                        int(alert.reminders),
                        self.trend_seconds,
                    ],
                ),
                (
                    "set_with_ttl",
                    [self._alert_sites_key],
                    ["hset", _encode(alert.incident_id), _encode(site), self.trend_seconds],
                ),
                self._touch_site(site),
            ]
        )

    def _touch_site(self, site: str, now: float | None = None) -> Command:
        """Mark a site as active now, in the list :meth:`sites` answers from."""
        when = time.time() if now is None else now
        return ("set_with_ttl", [self._sites_key], ["zadd", repr(when), _encode(site), self.trend_seconds])

    def _alert_keys(self, site: str) -> list[bytes]:
        """The site's alerts' JSON, then a hash per part kept apart (:data:`_ALERT_PARTS`)."""
        return [self._key(site, "alerts"), *(self._key(site, "alerts", part) for part in _ALERT_PARTS)]

    def alerts(self, site: str | None = None) -> list[Alert]:
        sites = [site] if site is not None else sorted(self.sites())
        pipe = self._client.pipeline(transaction=False)
        for name in sites:
            for key in self._alert_keys(name):
                pipe.hgetall(key)
        replies = pipe.execute()
        found = []
        step = 1 + len(_ALERT_PARTS)
        for i in range(0, len(replies), step):
            docs, *parts = replies[i : i + step]
            for incident_id, doc in docs.items():
                found.append(_alert(doc, *(part.get(incident_id) for part in parts)))
        return sorted(found, key=lambda a: (a.created_at, a.incident_id), reverse=True)

    def acknowledge_alert(self, incident_id: str, at: datetime) -> Alert | None:
        site = self._client.hget(self._alert_sites_key, _encode(incident_id))
        if site is None:
            return None
        args = [_encode(incident_id), repr(at.timestamp()), self.trend_seconds]
        [reply] = self._run([("acknowledge", self._alert_keys(_decode(site)), args)])
        return None if reply is None else _alert(*reply)

    def mark_alert_notified(
        self, incident_id: str, *, expected: datetime | None, at: datetime, reminder: bool = False
    ) -> Alert | None:
        """A compare and set in one script, on the alert's own hash of notification times."""
        site = self._client.hget(self._alert_sites_key, _encode(incident_id))
        if site is None:
            return None
        args = [
            _encode(incident_id),
            "" if expected is None else repr(expected.timestamp()),
            repr(at.timestamp()),
            "1" if reminder else "0",
            self.trend_seconds,
        ]
        [reply] = self._run([("mark_notified", self._alert_keys(_decode(site)), args)])
        return None if reply is None else _alert(*reply)

    # Maintenance windows and silences: a handful in all, each kind in one hash read whole.

    def save_maintenance(self, window: MaintenanceWindow) -> None:
        self._save_planned(self._maintenance_key, window)

    def maintenance_windows(self, site: str | None = None) -> list[MaintenanceWindow]:
        return self._planned(self._maintenance_key, MaintenanceWindow, site)

    def end_maintenance(self, window_id: str, at: datetime) -> MaintenanceWindow | None:
        return self._end_planned(self._maintenance_key, MaintenanceWindow, window_id, at)

    def save_silence(self, silence: Silence) -> None:
        self._save_planned(self._silences_key, silence)

    def silences(self, site: str | None = None) -> list[Silence]:
        return self._planned(self._silences_key, Silence, site)

    def end_silence(self, silence_id: str, at: datetime) -> Silence | None:
        return self._end_planned(self._silences_key, Silence, silence_id, at)

    def _save_planned(self, key: bytes, value: MaintenanceWindow | Silence) -> None:
        """The hash lives ``trend`` seconds past the end of this entry, or longer (see
        :data:`_SAVE_PLANNED`), so a window planned weeks ahead is still there when it starts."""
        ttl = self.trend_seconds + max(0, math.ceil(value.ends_at.timestamp() - time.time()))
        self._run([("save_planned", [key], [_encode(value.id), _dumps(value), ttl])])

    def _planned(self, key: bytes, kind: type[P], site: str | None) -> list[P]:
        found = [_loads(kind, doc) for doc in self._client.hvals(key)]
        return sorted((p for p in found if site is None or p.site == site), key=lambda p: (p.starts_at, p.id))

    def _end_planned(self, key: bytes, kind: type[P], planned_id: str, at: datetime) -> P | None:
        """Read, then replace only if unchanged (:data:`_REPLACE_PLANNED`), again on what
        another process saved meanwhile: an end never undoes a change it did not see. (Lua
        cannot rewrite the JSON itself: cjson keeps 14 digits, and times need 16.)"""
        field = _encode(planned_id)
        doc = self._client.hget(key, field)
        while doc is not None:
            found: P = _loads(kind, doc)
            if found.ends_at <= at:
                return found
            ended = attrs.evolve(found, ends_at=max(at, found.starts_at))
            new = _dumps(ended)
            [doc] = self._run([("replace_planned", [key], [field, doc, new])])
            if doc == new:
                return ended
        return None

    # Leases.

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> int:
        """Take or renew ``name`` until the earlier of ``now + ttl`` (the caller's clock)
        and ``ttl`` real seconds from now (Redis's own expiry); return its fencing token."""
        return self.acquire_leases([name], owner, ttl, now)[0]

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float, now: float) -> list[int]:
        ms = max(1, round(ttl * 1000))
        args = [_encode(owner), ms, repr(float(now)), repr(float(now + ttl)), self.trend_seconds]
        calls = [("acquire", [key, key + b":token"], args) for key in map(self._lease_key, names)]
        return [int(token) for token in self._run(calls, batch=True)] if calls else []

    def write_marks(self, sites: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Kept by the write script (see :data:`_WRITE`), one HMGET per site in one pipeline."""
        if not sites:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for site in sites:
            pipe.hmget(self._key(site, "w"), "newest", "late")
        return {
            site: (int(newest), int(late or 0))
            for site, (newest, late) in zip(sites, pipe.execute(), strict=True)
            if newest is not None
        }

    def visitor_key(self, day: int) -> bytes:
        """Set once by the first process to ask (``SET NX``), gone two days later (its TTL)."""
        key = f"{self.prefix}:{{visitors}}:key:{day}".encode()
        pipe = self._client.pipeline(transaction=False)
        pipe.set(key, secrets.token_bytes(32), nx=True, ex=2 * 86_400)
        pipe.get(key)
        return bytes(pipe.execute()[1])

    def session_generation(self, name: str, *, bump: bool = False) -> int:
        """``INCR`` to bump, ``GET`` to read; no TTL (a handful of keys, one per admin token)."""
        key = f"{self.prefix}:{{admin}}:session:{_escape(name)}".encode("utf-8", "surrogatepass")
        if bump:
            return int(self._client.incr(key))
        return int(self._client.get(key) or 0)

    def release_lease(self, name: str, owner: str) -> None:
        self._run([("release", [self._lease_key(name)], [_encode(owner)])])

    def _lease_key(self, name: str) -> bytes:
        """A site's lease lives in the site's slot, so a fenced incident write checks its
        token in the same script; other leases have a slot of their own."""
        if name.startswith(_SITE_LEASE):
            return self._key(name[len(_SITE_LEASE) :], "lease")
        return f"{self.prefix}:{{lease:{_escape(name)}}}".encode("utf-8", "surrogatepass")

    # Retention.

    def trim(
        self,
        *,
        buckets_before: float,
        hourly_before: float,
        resolved_before: datetime,
        five_minute_before: float | None = None,
    ) -> None:
        """Delete raw buckets, roll-ups and resolved incidents older than the cutoffs, and
        maintenance windows and silences that ended before the incidents' cutoff.

        TTLs already bound what Redis holds; this applies the evaluator's own clock, and
        drops sites nothing has touched for ``trend`` seconds from the site list. One
        script call per site and one per kind of planned quiet, all in one round trip;
        then the forgotten incidents leave the cross-site alert index.
        """
        client = self._client
        client.zremrangebyscore(self._sites_key, "-inf", f"({time.time() - self.trend_seconds}")
        sites = sorted(self.sites())
        fine = buckets_before if five_minute_before is None else five_minute_before
        args = [
            f"({float(buckets_before)!r}",
            f"({float(hourly_before)!r}",
            repr(resolved_before.timestamp()),
            f"({float(fine)!r}",
        ]
        commands: list[Command] = [
            ("trim", [self._key(site, "ti")], [self._key(site) + b":", *args]) for site in sites
        ]
        commands += [("trim_planned", [key], [args[2]]) for key in (self._maintenance_key, self._silences_key)]
        gone = self._run(commands)[: len(sites)]
        ids = [incident_id for found in gone for incident_id in found]
        for i in range(0, len(ids), 500):
            client.hdel(self._alert_sites_key, *ids[i : i + 500])


_STORES: weakref.WeakSet[RedisStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _escape(text: str) -> str:
    """A name safe inside a key part and a hash tag: no ``:``, ``{`` or ``}`` left."""
    if "%" in text or ":" in text or "{" in text or "}" in text:
        return text.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")
    return text


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _sha1(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()


def _dumps(value: Incident | Alert | MaintenanceWindow | Silence) -> bytes:
    doc: dict[str, Any] = {}
    for f in attrs.fields(type(value)):
        v = getattr(value, f.name)
        if isinstance(v, datetime):
            v = v.timestamp()
        elif isinstance(v, tuple):
            v = list(v)
        doc[f.name] = v
    return json.dumps(doc, separators=(",", ":")).encode()


def _loads(cls: type[Any], data: bytes) -> Any:
    doc = json.loads(data)
    values = {}
    for f in attrs.fields(cls):
        if f.name not in doc:
            continue
        v = doc[f.name]
        if v is not None and "datetime" in str(f.type):
            v = timestamp(v)
        values[f.name] = v
    return cls(**values)


def _kinds(width: int | None) -> tuple[bytes, bytes]:
    """The index and the hash kind of raw buckets (``width`` None) or of roll-ups."""
    return (b"ti", b"t") if width is None else (b"ri%d" % width, b"r%d" % width)


def _escape_field(key: str) -> str:
    """A key as its hash field holds it: no TAB or newline, which the scripts' lines use."""
    if "%" in key or "\t" in key or "\n" in key:
        return key.replace("%", "%25").replace("\t", "%09").replace("\n", "%0A")
    return key


def _unescape_field(key: bytes) -> str:
    text = _decode(key)
    return unquote(text) if "%" in text else text


def _numbers(bucket: Bucket) -> str:
    """A bucket's numbers as the write script takes them: start, total, bad, then (slot,
    count) pairs."""
    parts = [int(bucket.start), int(bucket.total), int(bucket.bad)]
    for slot, n in bucket.hist.items():
        parts += (int(slot), int(n))
    return " ".join(map(str, parts))


class _CountsBucket(StoredBucket):
    """A bucket from :meth:`RedisStore.read_many`: counts, and its histogram as the script sent it."""

    __slots__ = ()

    @staticmethod
    def decode_hist(text: bytes | None) -> Counter[int]:
        hist: Counter[int] = Counter()
        if text:
            parts = [int(part) for part in text.split()]
            dict.update(hist, zip(parts[::2], parts[1::2], strict=True))
        return hist


def _alert(
    doc: bytes,
    created: bytes | None,
    acknowledged: bytes | None,
    notified: bytes | None,
    reminders: bytes | None,
) -> Alert:
    """An alert's JSON with the parts kept apart (:data:`_ALERT_PARTS`) laid over it; an
    alert saved before a part existed has none, and keeps the JSON's (or the default)."""
    alert = _loads(Alert, doc)
    changes: dict[str, Any] = {}
    if created is not None:
        changes["created_at"] = timestamp(float(created))
    if acknowledged is not None:
        changes["acknowledged_at"] = timestamp(float(acknowledged))
    if notified is not None:
        changes["notified_at"] = timestamp(float(notified))
    if reminders is not None:
        changes["reminders"] = int(reminders)
    return attrs.evolve(alert, **changes) if changes else alert


_OPTIONS: Final = ("timeout", "history", "trend", "prefix")


def _split_options(url: str) -> tuple[str, dict[str, str]]:
    """The URL for redis-py, and this store's own query options taken out of it."""
    if not isinstance(url, str) or url.partition("://")[0] not in ("redis", "rediss", "unix"):
        raise ConfigError(f"not a Redis store URL: {url!r}; use redis://host:6379/0")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in _OPTIONS}
    rest = [(k, v) for k, v in query if k not in _OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(rest))), options


def _positive(name: str, given: float | None, text: str | None, default: float) -> float:
    if given is None and text is None:
        return default
    try:
        value = float(given if given is not None else text)  # type: ignore[arg-type]
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(
            f"the redis:// store option {name} must be a positive number of seconds, got {given or text!r}"
        )
    return value


def _redacted(url: str) -> str:
    """The URL without its password, for logs, ``repr`` and the admin view."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
