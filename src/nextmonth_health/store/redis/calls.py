"""The Lua scripts of the Redis store, read from the ``scripts/`` files of this package.

Why files: Lua in Python strings is read by no Lua tool and reviewed as a wall of text. A
script is one file, or a few shared functions (``_*.lua``) and its own file, joined in the
order :data:`SCRIPT_FILES` gives; the files ship in the wheel as package data and are read
with :mod:`importlib.resources`, so a zipped install works too.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any, ClassVar, Final, NamedTuple

import attrs
from attrs import frozen

#: A script call as the pipeline sends it: the script's name, its keys, its other arguments.
Command = tuple[str, Sequence[Any], Sequence[Any]]

#: Each script the store runs, by name: the files it is made of, shared functions first.
SCRIPT_FILES: Final[dict[str, tuple[str, ...]]] = {
    "write": ("write",),
    "touch_sites": ("touch_sites",),
    "count_users": ("_count", "count_users"),
    "read_many": ("read_many",),
    "window_users": ("_count", "_series_of", "window_users"),
    "open_incidents": ("open_incidents",),
    "trim": ("_series_of", "trim"),
    "save_incident": ("save_incident",),
    "save_alert": ("save_alert",),
    "acknowledge": ("acknowledge",),
    "mark_notified": ("mark_notified",),
    "save_planned": ("save_planned",),
    "replace_planned": ("replace_planned",),
    "trim_planned": ("trim_planned",),
    "acquire": ("acquire",),
    "release": ("release",),
    "set_with_ttl": ("set_with_ttl",),
}

#: The scripts a pass calls once per site, which the pipeline may batch: each also has a
#: form ``batched:<name>`` that runs several calls in one (``_batch_loop.lua``).
BATCHABLE: Final = ("acquire", "open_incidents", "read_many")

#: The file that turns a script into its batched form.
BATCH_LOOP: Final = "_batch_loop"


def lua(name: str) -> str:
    """The text of ``scripts/<name>.lua``."""
    return (files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


def script_sources() -> dict[str, str]:
    """Every script's source by name, and the batched forms as ``batched:<name>``.

    A batched form makes the script's body a function whose parameters shadow KEYS and
    ARGV (single Redis only: on a cluster, the keys of different sites live in different
    slots).
    """
    sources = {name: "".join(map(lua, parts)) for name, parts in SCRIPT_FILES.items()}
    loop = lua(BATCH_LOOP)
    for name in BATCHABLE:
        sources[f"batched:{name}"] = "local function call(KEYS, ARGV)\n" + sources[name] + "end\n" + loop
    return sources


def _part(part: str, shape: str = "one") -> Any:
    return attrs.field(metadata={"part": part, "shape": shape})


def key() -> Any:
    """A field sent as one KEYS entry (left out when None)."""
    return _part("KEYS")


def keys() -> Any:
    """A field whose items are sent as KEYS entries, in turn (a tuple item as its members)."""
    return _part("KEYS", "each")


def arg() -> Any:
    """A field sent as one ARGV entry (None as ``''``, a bool as ``'1'`` or ``'0'``)."""
    return _part("ARGV")


def args() -> Any:
    """A field whose items are sent as ARGV entries, in turn (a tuple item as its members)."""
    return _part("ARGV", "each")


def counted() -> Any:
    """A field sent as ARGV: its number of items, then the items (as :func:`args`)."""
    return _part("ARGV", "counted")


def _scalar(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return value


class ScriptCall:
    """One call of a script: its fields, in order, are its KEYS and its ARGV.

    Why: a script takes its keys and arguments by position (``KEYS[2]``,
    ``ARGV[#ARGV - 1]``), which no type checker sees and prose keeps in step only by
    hand. A subclass names the positions once, as fields marked :func:`key`,
    :func:`keys`, :func:`arg`, :func:`args` or :func:`counted`; the header of its
    ``.lua`` file names the same fields (``#name`` counted, ``name...`` the items), and a
    test holds the two in step.
    """

    script: ClassVar[str]

    def command(self) -> Command:
        """The call as the pipeline sends it: the script's name, its KEYS, its ARGV."""
        sent: dict[str, list[Any]] = {"KEYS": [], "ARGV": []}
        for name, part, shape in _plan(type(self)):
            out, value = sent[part], getattr(self, name)
            if shape == "one":
                if value is not None or part == "ARGV":
                    out.append(_scalar(value))
                continue
            if shape == "counted":
                out.append(len(value))
            for item in value:
                if isinstance(item, tuple):
                    out += map(_scalar, item)
                else:
                    out.append(_scalar(item))
        return (self.script, sent["KEYS"], sent["ARGV"])

    @classmethod
    def layout(cls) -> dict[str, list[str]]:
        """The KEYS and the ARGV by field name, as the script's header names them."""
        named: dict[str, list[str]] = {"KEYS": [], "ARGV": []}
        for name, part, shape in _plan(cls):
            named[part].append(_NOTATION[shape].format(name))
        return named


#: How a script's header writes a field of each shape.
_NOTATION: Final = {"one": "{}", "each": "{}...", "counted": "#{}"}


#: Each call class's fields, worked out once (see :func:`_plan`).
_PLANS: dict[type[ScriptCall], tuple[tuple[str, str, str], ...]] = {}


def _plan(cls: type[ScriptCall]) -> tuple[tuple[str, str, str], ...]:
    """Each field of a call class: its name, KEYS or ARGV, and its shape."""
    plan = _PLANS.get(cls)
    if plan is None:
        fields = attrs.fields(cls)  # type: ignore[arg-type]
        plan = _PLANS[cls] = tuple((f.name, f.metadata["part"], f.metadata["shape"]) for f in fields)
    return plan


@frozen
class Write(ScriptCall):
    script = "write"
    index: bytes = key()
    mark_key: bytes | None = key()
    prefix: bytes = arg()
    raw_ttl: int = arg()
    exact_limit: int = arg()
    mark: str | None = arg()
    rollups: Sequence[tuple[int, int]] = counted()
    signals: Sequence[bytes] = counted()
    late_write_seconds: float = arg()
    lines: bytes = arg()


@frozen
class TouchSites(ScriptCall):
    script = "touch_sites"
    sites: bytes = key()
    ttl: int = arg()
    members: Sequence[tuple[str, bytes]] = args()


@frozen
class ReadMany(ScriptCall):
    script = "read_many"
    index: bytes = key()
    prefix: bytes = arg()
    low: str = arg()
    high: str = arg()
    index_kind: bytes = arg()
    hash_kind: bytes = arg()
    signals: Sequence[bytes] = args()


@frozen
class CountUsers(ScriptCall):
    script = "count_users"
    scratch: bytes = key()
    cells: Sequence[tuple[bytes, bytes]] = keys()


@frozen
class WindowUsers(ScriptCall):
    script = "window_users"
    scratch: bytes = key()
    prefix: bytes = arg()
    low: str = arg()
    high: str = arg()
    parts: Sequence[tuple[Any, ...]] = counted()

    @staticmethod
    def part(signal: bytes, bad: bool, keys: Sequence[bytes] | None) -> tuple[Any, ...]:
        """One part: signal, bad users only, the number of keys (-1: all), the keys."""
        return (signal, bad, -1 if keys is None else len(keys), *(keys or ()))


@frozen
class OpenIncidents(ScriptCall):
    script = "open_incidents"
    incidents: bytes = key()
    open: bytes = key()


@frozen
class Trim(ScriptCall):
    script = "trim"
    index: bytes = key()
    prefix: bytes = arg()
    before: str = arg()
    hourly_before: str = arg()
    resolved_before: str = arg()
    five_minute_before: str = arg()


@frozen
class SaveIncident(ScriptCall):
    script = "save_incident"
    incidents: bytes = key()
    open: bytes = key()
    token: bytes = key()
    id: bytes = arg()
    doc: bytes = arg()
    field: bytes = arg()
    is_open: bool = arg()
    ttl: int = arg()
    fence: str | None = arg()


class AlertHashes(NamedTuple):
    """A site's alerts' JSON, then a hash per part kept apart (:data:`.codec.ALERT_PARTS`)."""

    alerts: bytes
    created: bytes
    ack: bytes
    notified: bytes
    reminders: bytes


@frozen
class SaveAlert(ScriptCall):
    script = "save_alert"
    hashes: AlertHashes = keys()  # noqa: RUF009 (an attrs field, like the others)
    id: bytes = arg()
    doc: bytes = arg()
    created_at: str = arg()
    acknowledged_at: str | None = arg()
    notified_at: str | None = arg()
    reminders: int = arg()
    ttl: int = arg()


@frozen
class Acknowledge(ScriptCall):
    script = "acknowledge"
    hashes: AlertHashes = keys()  # noqa: RUF009 (an attrs field, like the others)
    id: bytes = arg()
    at: str = arg()
    ttl: int = arg()


@frozen
class MarkNotified(ScriptCall):
    script = "mark_notified"
    hashes: AlertHashes = keys()  # noqa: RUF009 (an attrs field, like the others)
    id: bytes = arg()
    expected: str | None = arg()
    at: str = arg()
    reminder: bool = arg()
    ttl: int = arg()


@frozen
class SavePlanned(ScriptCall):
    script = "save_planned"
    hash: bytes = key()
    id: bytes = arg()
    doc: bytes = arg()
    ttl: int = arg()


@frozen
class ReplacePlanned(ScriptCall):
    script = "replace_planned"
    hash: bytes = key()
    id: bytes = arg()
    expected: bytes = arg()
    doc: bytes = arg()


@frozen
class TrimPlanned(ScriptCall):
    script = "trim_planned"
    hash: bytes = key()
    cutoff: str = arg()


@frozen
class Acquire(ScriptCall):
    script = "acquire"
    lease: bytes = key()
    token: bytes = key()
    owner: bytes = arg()
    ttl_ms: int = arg()
    now: str = arg()
    expires: str = arg()
    token_ttl: int = arg()


@frozen
class Release(ScriptCall):
    script = "release"
    lease: bytes = key()
    owner: bytes = arg()


@frozen
class SetWithTtl(ScriptCall):
    script = "set_with_ttl"
    target: bytes = key()
    op: str = arg()
    field: str | bytes = arg()
    value: bytes = arg()
    ttl: int = arg()


#: Every call class, by the script it calls.
CALLS: Final[dict[str, type[ScriptCall]]] = {
    cls.script: cls
    for cls in (
        Write,
        TouchSites,
        ReadMany,
        CountUsers,
        WindowUsers,
        OpenIncidents,
        Trim,
        SaveIncident,
        SaveAlert,
        Acknowledge,
        MarkNotified,
        SavePlanned,
        ReplacePlanned,
        TrimPlanned,
        Acquire,
        Release,
        SetWithTtl,
    )
}
