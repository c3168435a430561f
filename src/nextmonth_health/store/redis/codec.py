"""What Redis holds, to and from Python: names escaped for keys and hash fields, values
(incidents, alerts, maintenance windows, silences) as compact JSON, bucket counts as the
scripts' text lines, and a bucket's users as keys that stay in Redis.

Why text, not nested replies: a flush's cost in redis-py is mostly packing arguments and
parsing replies, so a call's buckets travel as one string each way (see ``write.lua`` and
``read_many.lua``), and these helpers are the only place that knows its shape.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final
from urllib.parse import unquote

import attrs

from ...codec import from_dict, to_dict
from ...signals import Bucket
from ...sketch import EXACT_LIMIT, DistinctCounter
from ...values import Alert, Incident, MaintenanceWindow, Silence, timestamp
from ..base import Row, StoredBucket

#: User hashes go to Redis as signed 64-bit ints, so small sets stay compact intsets.
SIGNED: Final = 1 << 63
UNSIGNED: Final = 1 << 64

#: The keys of a series' users in one raw bucket (``nmh:{site}:<kind>:<signal>:<start>:<key>``):
#: users set, users HyperLogLog, bad users set, bad users HyperLogLog.
USER_KINDS: Final = ("bu", "bul", "bb", "bbl")

#: The hashes beside a site's ``alerts`` (``alerts:<part>``), each keeping, per incident id,
#: what a rewrite of the alert must not undo, in the order :func:`load_alert` takes them.
ALERT_PARTS: Final = ("created", "ack", "notified", "reminders")


def escape(text: str) -> str:
    """A name safe inside a key part and a hash tag: no ``:``, ``{`` or ``}`` left."""
    if "%" in text or ":" in text or "{" in text or "}" in text:
        return text.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")
    return text


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def dumps(value: Incident | Alert | MaintenanceWindow | Silence) -> bytes:
    """The SDK's one JSON shape (:mod:`nextmonth_health.codec`), times as Unix seconds:
    the trim scripts compare them."""
    return json.dumps(to_dict(value, epoch=True), separators=(",", ":")).encode()


def loads(cls: type[Any], data: bytes) -> Any:
    return from_dict(cls, json.loads(data))


def kinds(width: int | None) -> tuple[bytes, bytes]:
    """The index and the hash kind of raw buckets (``width`` None) or of roll-ups."""
    return (b"ti", b"t") if width is None else (b"ri%d" % width, b"r%d" % width)


def escape_field(key: str) -> str:
    """A key as its hash field holds it: no TAB or newline, which the scripts' lines use."""
    if "%" in key or "\t" in key or "\n" in key:
        return key.replace("%", "%25").replace("\t", "%09").replace("\n", "%0A")
    return key


def unescape_field(key: bytes) -> str:
    text = decode(key)
    return unquote(text) if "%" in text else text


def write_lines(signals: Sequence[str], buckets: Sequence[Bucket], inexact: Callable[[Bucket], None]) -> bytes:
    """The buckets of one write script call, a line each (see ``write.lua``), each signal as
    its number (from 1) in ``signals``; ``inexact`` hears of a bucket whose users came as an
    estimate, not exact hashes (its users are sent as none)."""
    number = {signal: str(i) for i, signal in enumerate(signals, 1)}
    lines = []
    for bucket in buckets:
        users = []
        for counter in (bucket.users, bucket.bad_users):
            items = counter.exact_items()
            if items is None:
                inexact(bucket)
                users.append("")
                continue
            users.append(" ".join([str(h - UNSIGNED if h >= SIGNED else h) for h in items]))
        lines.append(
            f"{number[bucket.signal]}\t{escape_field(bucket.key)}\t{_numbers(bucket)}\t{users[0]}\t{users[1]}\n"
        )
    return encode("".join(lines))


def _numbers(bucket: Bucket) -> str:
    """A bucket's numbers as the write script takes them: start, total, bad, then (slot,
    count) pairs."""
    parts = [int(bucket.start), int(bucket.total), int(bucket.bad)]
    for slot, n in bucket.hist.items():
        parts += (int(slot), int(n))
    return " ".join(map(str, parts))


def bucket_series(site: str, signal: str, first: int, fields: dict[bytes, bytes]) -> Iterable[tuple[Bucket, bytes]]:
    """One signal's series in the hash of the bucket (or roll-up) starting at ``first``, by
    key, each with its counts field as stored (see ``write.lua``)."""
    head = encode(escape(signal)) + b"\t"
    found: dict[bytes, tuple[Bucket, bytes]] = {}
    # Sorted, a series' counts field comes before its slots' (it is their prefix).
    for field, value in sorted(fields.items()):
        if not field.startswith(head):
            continue
        key, _, slot = field[len(head) :].partition(b"\t")
        if not slot:
            bucket = Bucket(site, signal, unescape_field(key), first)
            total, bad, _, _, *pairs = value.split(b" ", 4)
            bucket.total, bucket.bad = int(total), int(bad)
            if pairs:
                bucket.hist.update(CountsBucket.decode_hist(pairs[0]))
            found[key] = (bucket, value)
        elif key in found:
            found[key][0].hist[int(slot)] = int(value)
    return found.values()


class RowReader:
    """Rows from ``read_many.lua`` replies. Keys and starts repeat across buckets and sites:
    each is decoded once, per reader."""

    def __init__(self, names: dict[bytes, str]) -> None:
        self._names = names
        self._keys: dict[bytes, str] = {}
        self._starts: dict[bytes, int] = {}

    def rows(self, site: str, reply: bytes) -> Iterator[Row]:
        if not reply:
            return
        keys, starts = self._keys, self._starts
        for line in reply[:-1].split(b"\n"):
            first, signal, key, value = line.split(b"\t")
            parts = value.split(b" ", 4)
            name = keys.get(key)
            if name is None:
                name = keys[key] = unescape_field(key)
            at = starts.get(first)
            if at is None:
                at = starts[first] = int(first)
            hist = parts[4] if len(parts) == 5 else b""
            yield (site, self._names[signal], name, at, int(parts[0]), int(parts[1]), hist)


class CountsBucket(StoredBucket):
    """A bucket from :meth:`RedisStore.read_many`: counts, and its histogram as the script sent it."""

    __slots__ = ()

    @staticmethod
    def decode_hist(text: bytes | None) -> Counter[int]:
        hist: Counter[int] = Counter()
        if text:
            parts = [int(part) for part in text.split()]
            dict.update(hist, zip(parts[::2], parts[1::2], strict=True))
        return hist


def load_alert(
    doc: bytes,
    created: bytes | None,
    acknowledged: bytes | None,
    notified: bytes | None,
    reminders: bytes | None,
) -> Alert:
    """An alert's JSON with the parts kept apart (:data:`ALERT_PARTS`) laid over it; an
    alert saved before a part existed has none, and keeps the JSON's (or the default)."""
    alert = loads(Alert, doc)
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
