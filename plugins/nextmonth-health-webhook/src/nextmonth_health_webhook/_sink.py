"""The webhook sink: ``send`` enqueues, a worker thread of its own posts and retries.

Why a thread and not the monitor's retries or a task on its loop: the monitor awaits
every ``send`` on the evaluation pass, under ``sink_timeout``, and retries a raising sink
only on later passes, on a fixed schedule — it could neither honour a ``Retry-After`` nor
add jitter, and an inline post with retries would hold the pass. A task on the monitor's
loop would need a task group the sink does not own (hooks only register objects) and
would tie delivery to whichever loop, backend or blocking portal the host runs the monitor
in. A daemon thread with its own ``httpx.Client`` is independent of all of that: ``send``
takes a lock, appends to a bounded queue and returns in microseconds, on any backend.

Delivery is at least once per transition for as long as the process lives: a post is
retried until a 2xx acknowledges it — exponential backoff with jitter on 5xx, 408,
timeouts and connection errors, ``Retry-After`` honoured on 429 — up to ``max_attempts``.
Other 4xx are not retried. One queue, posted in order: an alert's resolution never
overtakes the alert. What cannot be delivered (queue full, rejected, given up, shut down)
is counted in :attr:`WebhookSink.stats` and logged with the URL's host only — a chat
webhook's secret lives in its path.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import threading
import time
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from types import MappingProxyType

import httpx
import nextmonth_health as nmh
from attrs import field, frozen
from nextmonth_health.plugin import get_logger

from ._config import WebhookConfig
from ._payload import dedup_key, payload, wanted

__all__ = ["WebhookSink", "WebhookStats", "retry_after_seconds"]

log = get_logger(__name__)

USER_AGENT = "nextmonth-health-webhook/0.1"

#: Dedup keys remembered; far more than the transitions one process sees between restarts.
_REMEMBER = 10_000


@frozen
class WebhookStats:
    """What the sink has done since it was built.

    ``dropped`` counts by reason: ``queue_full`` (the endpoint fell ``queue_size``
    behind), ``rejected`` (a 4xx other than 408/429), ``gave_up`` (``max_attempts``
    used), ``shutdown`` (still queued when the sink closed).
    """

    queued: int
    posted: int
    attempts: int
    retries: int
    duplicates: int
    skipped: int
    dropped: Mapping[str, int] = field(converter=lambda d: MappingProxyType(dict(d)))
    last_status: int | None = None
    last_error: str | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


@frozen
class _Job:
    key: str
    incident_id: str
    config: WebhookConfig
    body: bytes


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class WebhookSink:
    """Posts incident transitions and alerts as JSON to each site's configured URL.

    :param configs: the validated options per site, ``None`` holding the monitor-wide
        ones; transitions of a site with none are skipped.
    :param sleep: waits between attempts; the default waits on the stop event, so
        :meth:`close` interrupts a backoff. Tests pass one that records and returns.
    :param rng: the jitter's random source.
    """

    name = "webhook"

    def __init__(
        self,
        configs: Mapping[str | None, WebhookConfig | None],
        *,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._configs = dict(configs)
        present = [c for c in self._configs.values() if c is not None]
        default = self._configs.get(None)
        self.capacity = default.queue_size if default is not None else max(c.queue_size for c in present)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        """Fresh threading state: at construction, and in a forked child (the parent's is not ours)."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[_Job] = deque()
        self._in_flight = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._posted = self._attempts = self._retries = self._duplicates = self._skipped = 0
        self._dropped: Counter[str] = Counter()
        self._last_status: int | None = None
        self._last_error: str | None = None

    def config_for(self, site: str) -> WebhookConfig | None:
        return self._configs.get(site, self._configs.get(None))

    # The monitor's side: quick, never blocking on the network.

    def send(self, transition: nmh.Transition) -> None:
        config = self.config_for(transition.incident.site)
        if config is None or not wanted(transition, config):
            with self._lock:
                self._skipped += 1
            return
        key = dedup_key(transition)
        body = json.dumps(payload(transition, config), ensure_ascii=False).encode()
        job = _Job(key=key, incident_id=transition.incident.id, config=config, body=body)
        with self._lock:
            if key in self._seen:
                self._duplicates += 1
                return
            if self._closed:
                self._dropped["shutdown"] += 1
                return
            if len(self._queue) >= self.capacity:
                self._dropped["queue_full"] += 1
                full = True
            else:
                full = False
                self._seen[key] = None
                if len(self._seen) > _REMEMBER:
                    self._seen.popitem(last=False)
                self._queue.append(job)
                self._changed.notify_all()
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="nextmonth-health-webhook", daemon=True)
                    self._thread.start()
        if full:
            log.warning(
                "nextmonth_health_webhook.dropped", reason="queue_full", host=config.host, incident_id=job.incident_id
            )

    @property
    def stats(self) -> WebhookStats:
        with self._lock:
            return WebhookStats(
                queued=len(self._queue) + self._in_flight,
                posted=self._posted,
                attempts=self._attempts,
                retries=self._retries,
                duplicates=self._duplicates,
                skipped=self._skipped,
                dropped=self._dropped,
                last_status=self._last_status,
                last_error=self._last_error,
            )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until everything queued is posted or dropped; False if ``timeout`` ran out."""
        with self._lock:
            return self._changed.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Give queued posts up to ``timeout`` seconds, then stop the worker (idempotent).

        Whatever is still queued is counted as dropped (``shutdown``), as is anything sent
        afterwards.
        """
        self.wait_idle(timeout)
        with self._lock:
            self._closed = True
            self._stop.set()
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # The worker's side.

    def _run(self) -> None:
        with httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False) as client:
            while True:
                with self._lock:
                    self._changed.wait_for(lambda: self._queue or self._stop.is_set())
                    if self._stop.is_set():
                        self._dropped["shutdown"] += len(self._queue)
                        self._queue.clear()
                        self._changed.notify_all()
                        return
                    job = self._queue.popleft()
                    self._in_flight = 1
                try:
                    self._deliver(client, job)
                except Exception as exc:  # noqa: BLE001 - the worker outlives anything one post does
                    self._drop("gave_up", job, f"{type(exc).__name__}: {exc}")
                finally:
                    with self._lock:
                        self._in_flight = 0
                        self._changed.notify_all()

    def _deliver(self, client: httpx.Client, job: _Job) -> None:
        config = job.config
        headers = {
            **config.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": job.key,  # lets the receiver drop a retry whose 2xx we never saw
        }
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self._attempts += 1
            try:
                response = client.post(config.url, content=job.body, headers=headers, timeout=config.timeout)
            except httpx.TimeoutException:
                reason, delay = "timeout", self._backoff(attempt, config)
            except httpx.TransportError as exc:
                reason, delay = type(exc).__name__, self._backoff(attempt, config)
            else:
                status = response.status_code
                reason = str(status)
                with self._lock:
                    self._last_status = status
                if 200 <= status < 300:
                    with self._lock:
                        self._posted += 1
                    return
                if status == 429:
                    asked = retry_after_seconds(response.headers.get("Retry-After"))
                    delay = self._backoff(attempt, config) if asked is None else min(asked, config.max_retry_after)
                elif status >= 500 or status == 408:
                    delay = self._backoff(attempt, config)
                else:
                    self._drop("rejected", job, reason)
                    return
            with self._lock:
                self._last_error = reason
            if attempt >= config.max_attempts:
                self._drop("gave_up", job, reason)
                return
            with self._lock:
                self._retries += 1
            if not self._pause(delay):
                self._drop("shutdown", job, reason)
                return

    def _backoff(self, attempt: int, config: WebhookConfig) -> float:
        """Exponential, capped, with "equal jitter": between half and all of the step."""
        step = min(config.max_backoff, config.backoff * 2 ** (attempt - 1))
        return step * self._rng.uniform(0.5, 1.0)

    def _pause(self, seconds: float) -> bool:
        """Wait before the next attempt; False when the sink is closing."""
        if self._sleep is not None:
            self._sleep(seconds)
            return not self._stop.is_set()
        return not self._stop.wait(seconds)

    def _drop(self, reason: str, job: _Job, detail: str) -> None:
        with self._lock:
            self._dropped[reason] += 1
        log.warning(
            "nextmonth_health_webhook.dropped",
            reason=reason,
            detail=detail,
            host=job.config.host,
            incident_id=job.incident_id,
        )


_LIVE: weakref.WeakSet[WebhookSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_LIVE):
        sink._reset()


def _drain_at_exit() -> None:
    for sink in list(_LIVE):
        if sink._thread is not None and sink._thread.is_alive():
            sink.close(timeout=2.0)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_drain_at_exit)
