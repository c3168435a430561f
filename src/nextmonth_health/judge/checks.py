"""The check interface: how a plugin turns a site's signals (or a probe) into readings."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from ..values import Reading
from .windows import SiteView

__all__ = ["Check"]


@runtime_checkable
class Check(Protocol):
    """A health check, registered through the ``register_health_checks`` hook.

    ``evaluate`` is called once per site per due pass, with that site's view. Passive
    checks read windows and return readings synchronously, and must be quick: a plain
    function cannot be interrupted. Active probes (a fetch, a query) are ``async`` and run
    concurrently under ``timeout`` (or the monitor's ``check_timeout``). A call that
    raises or times out reads as ``unknown`` for that check, so it can neither open nor
    resolve anything, and its siblings carry on. ``interval`` and ``timeout`` may be
    left out (``None``).

    Return one reading per key the check watches, including healthy ones: an open
    incident whose key gets no reading is treated as recovering.

    ``routes`` (optional) maps the routes the check reads to their areas, e.g.
    ``{"POST /payments/webhook": "payments"}``: they are added to every site's routes, so
    their requests keep keys of their own rather than counting under ``other``.
    """

    #: Unique name, e.g. ``"api_errors"``; also the incident's ``check``.
    name: str
    #: Seconds between runs; ``None`` runs on every evaluation pass.
    interval: float | None
    #: Seconds one run may take; ``None`` uses the monitor's ``check_timeout``.
    timeout: float | None
    #: Routes the check reads, and their areas; ``None`` declares none.
    routes: Mapping[str, str] | None

    def evaluate(self, view: SiteView) -> Iterable[Reading] | Awaitable[Iterable[Reading]]: ...
