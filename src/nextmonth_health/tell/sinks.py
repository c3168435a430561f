"""Alert sinks: the interface, and delivery that isolates and retries each sink.

Sinks are called one by one, each in its own guard and under a timeout, so a raising or
hanging sink never stops another or the runner. A failed delivery is retried on later
passes with exponential backoff (measured on the monitor's clock, never by sleeping in
the pass) until ``max_attempts``; what is finally given up is counted and logged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Sequence
from typing import Protocol, runtime_checkable

import anyio
import attrs
from attrs import define

from ..errors import ErrorReporter
from ..logs import get_logger
from ..values import Transition

__all__ = ["AlertSink", "Delivery"]

log = get_logger(__name__)


@runtime_checkable
class AlertSink(Protocol):
    """Receives every incident transition; ``transition.alert`` is set for critical ones."""

    name: str

    def send(self, transition: Transition) -> None | Awaitable[None]: ...


@define
class _Pending:
    sink: AlertSink
    transition: Transition
    attempts: int
    due: float


@define
class Delivery:
    """Hands transitions to sinks, isolating failures and retrying with backoff."""

    errors: ErrorReporter
    timeout: float = 10.0
    max_attempts: int = 5
    backoff: float = 5.0
    max_backoff: float = 300.0
    max_queue: int = 10_000
    dropped: int = 0
    delivered: int = 0
    _retry: list[_Pending] = attrs.field(factory=list)

    @property
    def pending(self) -> int:
        return len(self._retry)

    async def deliver(self, sinks: Sequence[AlertSink], transitions: Sequence[Transition], now: float) -> None:
        due = [p for p in self._retry if p.due <= now]
        self._retry = [p for p in self._retry if p.due > now]
        work = [_Pending(sink, t, 0, now) for t in transitions for sink in sinks] + due
        for item in work:
            await self._attempt(item, now)

    async def _attempt(self, item: _Pending, now: float) -> None:
        item.attempts += 1
        try:
            with anyio.fail_after(self.timeout):
                result = item.sink.send(item.transition)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            self.errors.report(f"sink.{getattr(item.sink, 'name', type(item.sink).__name__)}", exc)
            if item.attempts >= self.max_attempts or len(self._retry) >= self.max_queue:
                self.dropped += 1
                log.warning(
                    "nextmonth_health.sink_gave_up",
                    sink=getattr(item.sink, "name", "?"),
                    incident_id=item.transition.incident.id,
                    attempts=item.attempts,
                )
                return
            item.due = now + min(self.max_backoff, self.backoff * 2 ** (item.attempts - 1))
            self._retry.append(item)
        else:
            self.delivered += 1
