"""Maintenance windows and silences in Redis: a handful in all, each kind one hash
(id -> JSON) read whole, under a fixed cross-site tag."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Generic, TypeVar

import attrs
from attrs import frozen

from ...values import MaintenanceWindow, Silence
from .calls import ReplacePlanned, SavePlanned
from .codec import dumps, encode, loads
from .pipeline import ScriptRunner

P = TypeVar("P", MaintenanceWindow, Silence)


@frozen
class PlannedHash(Generic[P]):
    """The hash at ``key`` holding every site's planned quiet of one ``kind``."""

    scripts: ScriptRunner
    key: bytes
    kind: type[P]
    trend_seconds: int

    def save(self, value: P) -> None:
        """The hash lives ``trend`` seconds past the end of this entry, or longer (see
        ``save_planned.lua``), so a window planned weeks ahead is still there when it starts."""
        ttl = self.trend_seconds + max(0, math.ceil(value.ends_at.timestamp() - time.time()))
        self.scripts.run([SavePlanned(self.key, encode(value.id), dumps(value), ttl)])

    def read(self, site: str | None) -> list[P]:
        found = [loads(self.kind, doc) for doc in self.scripts.client.hvals(self.key)]
        return sorted((p for p in found if site is None or p.site == site), key=lambda p: (p.starts_at, p.id))

    def end(self, planned_id: str, at: datetime) -> P | None:
        """Read, then replace only if unchanged (``replace_planned.lua``), again on what
        another process saved meanwhile: an end never undoes a change it did not see. (Lua
        cannot rewrite the JSON itself: cjson keeps 14 digits, and times need 16.)"""
        field = encode(planned_id)
        doc = self.scripts.client.hget(self.key, field)
        while doc is not None:
            found: P = loads(self.kind, doc)
            if found.ends_at <= at:
                return found
            ended = attrs.evolve(found, ends_at=max(at, found.starts_at))
            new = dumps(ended)
            [doc] = self.scripts.run([ReplacePlanned(self.key, field, doc, new)])
            if doc == new:
                return ended
        return None
