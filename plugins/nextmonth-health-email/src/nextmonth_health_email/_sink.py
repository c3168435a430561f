"""The email sink: ``send`` decides and enqueues; the outbox's thread talks SMTP.

Why a thread of its own, and ``smtplib`` rather than an async SMTP client: the monitor
awaits every sink's ``send`` on its evaluation pass, so delivery must leave that pass at
once; the monitor may run on asyncio or trio, or in a blocking portal's thread, and a
task on its loop would need a task group no hook-registered object owns. A daemon
thread is independent of all of that, and with a thread the standard library's SMTP
client is all that is needed — no dependency to keep up to date, and it speaks
STARTTLS, SMTPS and AUTH. (aiosmtplib, the well-kept async client, runs on asyncio only,
so on trio it would need its own loop in a thread anyway.)
"""

from __future__ import annotations

import os
import random
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType

import nextmonth_health as nmh
from attrs import field, frozen
from nextmonth_health.plugin import get_logger

from ._config import EmailConfig
from ._message import RESOLVED, compose, mail_kind, outbox_key, subjects_of
from ._outbox import Outbox, RetryPolicy
from ._smtp import Connection

__all__ = ["EmailSink", "EmailStats"]

log = get_logger(__name__)

#: Active alerts whose names are remembered: far more than one process has open at once.
_REMEMBER = 10_000


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(counts))


@frozen
class EmailStats:
    """What the sink has done since it was built (``monitor.status().plugin_stats["email"]``).

    ``sent`` counts emails the server accepted; ``skipped`` transitions that make no
    email (degraded incidents, impact updates, incidents joining an alert already
    sent); ``duplicates`` the same email handed over again. ``dropped`` counts emails
    given up, by reason: ``queue_full`` (``queue_size`` emails already waiting),
    ``refused`` (the server still answered 5xx at the last attempt, or offered no
    STARTTLS where it is required), ``gave_up`` (``max_attempts`` used on timeouts,
    refused connections, 4xx replies, TLS errors), ``shutdown`` (still queued when the
    sink closed), ``error`` (a bug, logged with its traceback). ``last_error`` is the
    latest failed attempt's reason (``timeout``, ``connection_refused``, ``mail 550``…),
    ``next_retry_at`` when the next retry falls due (Unix seconds on the monitor's clock).
    ``recipients_refused`` counts addresses the server refused while accepting the
    email for the others.
    """

    queued: int
    sent: int
    attempts: int
    retries: int
    duplicates: int
    skipped: int
    recipients_refused: int
    dropped: Mapping[str, int] = field(converter=_frozen_counts)
    last_error: str | None = None
    next_retry_at: float | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class EmailSink:
    """Emails each site's critical alerts and their resolutions.

    :param configs: the validated options per site, ``None`` holding the monitor-wide
        ones; transitions of a site with none are skipped.
    :param clock: retry delays are measured on it (the monitor's); with a ``FakeClock`` a
        retry waits until the clock is advanced.
    :param rng: the jitter's random source.
    """

    name = "email"

    def __init__(
        self,
        configs: Mapping[str | None, EmailConfig | None],
        *,
        clock: nmh.Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._configs = dict(configs)
        present = [c for c in self._configs.values() if c is not None]
        default = self._configs.get(None)
        capacity = default.queue_size if default is not None else max(c.queue_size for c in present)
        self._connection = Connection()
        self._outbox = Outbox(
            "nextmonth-health-email", capacity, self._deliver, clock=clock, rng=rng, interrupt=self._abort
        )
        self._lock = threading.Lock()
        self._skipped = 0
        self._recipients_refused = 0
        #: What each active alert's message named last: its resolution names the same.
        self._named: OrderedDict[str, str] = OrderedDict()
        _LIVE.add(self)

    def _after_fork_in_child(self) -> None:
        """Locks a parent's thread held at the fork are not ours (the outbox resets itself)."""
        self._lock = threading.Lock()
        self._connection = Connection()

    def _abort(self) -> None:
        self._connection.abort()

    def config_for(self, site: str) -> EmailConfig | None:
        return self._configs.get(site, self._configs.get(None))

    # The monitor's side: a decision and an append, never the network.

    def send(self, transition: nmh.Transition) -> None:
        config = self.config_for(transition.incident.site)
        kind = None if config is None else mail_kind(transition, config)
        named = self._remember(transition)
        if config is None or kind is None or transition.alert is None:
            with self._lock:
                self._skipped += 1
            return
        alert_id = transition.alert.incident_id
        self._outbox.put(
            key=outbox_key(transition.alert, kind),
            group=alert_id,
            payload=(transition, kind, config, named if kind == RESOLVED else None),
            policy=RetryPolicy(config.max_attempts, config.backoff, config.max_backoff),
            context={"email": kind, "alert_id": alert_id, "site": transition.incident.site, "server": config.url},
        )

    def _remember(self, transition: nmh.Transition) -> str | None:
        """Note what an active alert names; for a resolved one, what it named last (or None)."""
        alert = transition.alert
        if alert is None:
            return None
        with self._lock:
            if alert.resolved_at is not None:
                return self._named.pop(alert.incident_id, None)
            self._named[alert.incident_id] = subjects_of(transition)
            self._named.move_to_end(alert.incident_id)
            if len(self._named) > _REMEMBER:
                self._named.popitem(last=False)
        return None

    @property
    def stats(self) -> EmailStats:
        counts = self._outbox.counts()
        with self._lock:
            skipped, refused = self._skipped, self._recipients_refused
        return EmailStats(
            queued=counts.queued,
            sent=counts.delivered,
            attempts=counts.attempts,
            retries=counts.retries,
            duplicates=counts.duplicates,
            skipped=skipped,
            recipients_refused=refused,
            dropped=counts.dropped,
            last_error=counts.last_error,
            next_retry_at=counts.next_retry_at,
        )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every email is sent or dropped; False if ``timeout`` ran out first."""
        return self._outbox.wait_idle(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Give queued emails up to ``timeout`` seconds, then stop (idempotent; the monitor calls it on stop).

        What is still queued is counted as dropped (``shutdown``); a conversation blocked
        on a silent server is cut short.
        """
        self._outbox.close(timeout)

    # The worker's side.

    def _deliver(self, payload: tuple[nmh.Transition, str, EmailConfig, str | None]) -> None:
        transition, kind, config, named = payload
        refused = self._connection.send(config, compose(transition, kind, config, named))
        if refused:
            with self._lock:
                self._recipients_refused += len(refused)
            log.warning(
                "nextmonth_health_email.recipients_refused",
                refused=sorted(refused),
                server=config.url,
                alert_id=transition.alert.incident_id if transition.alert else None,
            )


_LIVE: weakref.WeakSet[EmailSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_LIVE):
        sink._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
