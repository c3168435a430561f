"""One JSON shape for the value types, both ways.

Incidents, alerts, transitions, maintenance windows and silences leave the process as
plain JSON-able dicts — in the SQLite and Redis stores, the admin view's API, the command
line's ``--json`` and the webhook's body — and some come back. Each did its own turning into JSON
before; they drifted (a field one had and another lacked, a datetime found by looking for
``"datetime"`` in a type's name). Here it is done once, from the attrs fields: datetimes
as ISO 8601 in UTC (``2026-01-05T09:00:00+00:00``), enums as their values, tuples as
lists, nested value types as dicts.
Reading back ignores keys it does not know and fills missing ones from the defaults, so
data written by an older or newer version still reads.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

import attrs

from .values import Alert, Incident, MaintenanceWindow, Notice, Reading, Silence, Transition

__all__ = ["VALUE_TYPES", "from_dict", "iso", "to_dict"]

T = TypeVar("T")

#: The value types this codec knows.
VALUE_TYPES: tuple[type, ...] = (Alert, Incident, MaintenanceWindow, Notice, Reading, Silence, Transition)


def to_dict(value: Any, *, epoch: bool = False) -> dict[str, Any]:
    """A value type as a JSON-able dict (``json.dumps`` takes it as is). ``epoch``: times
    as Unix seconds instead, for a store whose scripts compare them (Redis)."""
    return {field.name: _out(getattr(value, field.name), epoch) for field in attrs.fields(type(value))}


def _out(value: Any, epoch: bool) -> Any:
    if value is None or isinstance(value, bool | int | float | str) and not isinstance(value, enum.Enum):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.timestamp() if epoch else iso(value)
    if attrs.has(type(value)):
        return to_dict(value, epoch=epoch)
    if isinstance(value, Mapping):
        return {str(k): _out(v, epoch) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_out(v, epoch) for v in value]
    raise TypeError(f"cannot turn {type(value).__name__} into JSON: {value!r}")


def iso(moment: datetime | None) -> str | None:
    """A moment as the JSON shape writes it: ISO 8601 in UTC, as Python writes it
    (``+00:00``, which every ISO reader takes, as it takes ``Z``)."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """The ``cls`` value :func:`to_dict` gave ``data`` for (times as ISO text or Unix
    seconds). Unknown keys are ignored and
    missing ones take their defaults; a missing required one raises :class:`ValueError`."""
    kwargs = {}
    kind_of: type = cls  # what _fields' cache keys on; mypy cannot see that type[T] is hashable
    for name, kind in _fields(kind_of):
        if name in data:
            kwargs[name] = _in(kind, data[name])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{cls.__name__} from {sorted(data)}: {exc}") from None


@cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((field.name, hints[field.name]) for field in attrs.fields(cls))


def _in(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _in(options[0], value) if len(options) == 1 else value
    if kind is datetime:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else datetime.fromtimestamp(value, UTC)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if isinstance(kind, type) and attrs.has(kind):
        return from_dict(kind, value)
    if origin is tuple:
        return tuple(value)
    return value  # str, numbers, enums (the classes' converters take their values), mappings
