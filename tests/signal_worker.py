"""A worker process recording a plugin's own signal, driven by ``tests/test_plugin_signals.py``.

Run as ``python tests/signal_worker.py STORE_URL``. It builds a Monitor for site ``acme``
whose one plugin declares ``acme.queue_wait`` (and registers no check: judging is
another process's job), then obeys one command per stdin line and answers each with one
JSON line:

``record N VALUE SECONDS``
    moves its fake clock to ``START + SECONDS`` and records N waits of VALUE seconds on
    the ``confirmations`` queue, from six users, then flushes: how many events the flush
    took, and the monitor's drops and internal errors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from nextmonth_health import Monitor, hookimpl
from nextmonth_health.testing import START, FakeClock

QUEUE = "acme.queue_wait"


class Queues:
    @hookimpl
    def register_signals(self, register: Callable[[str], None]) -> None:
        register(QUEUE)


def main(url: str) -> None:
    clock = FakeClock()
    monitor = Monitor("acme", store=url, clock=clock, plugins=[Queues()], load_entrypoints=False)
    for line in sys.stdin:
        command, *args = line.split()
        assert command == "record", command
        n, value, seconds = int(args[0]), float(args[1]), float(args[2])
        clock.set(START + seconds)
        for i in range(n):
            monitor.record(QUEUE, "confirmations", value=value, user=f"w{seconds:g}-{i % 6}")
        flushed = monitor.flush()
        status = monitor.status()
        print(
            json.dumps(
                {"flushed": flushed, "drops": dict(status.drops), "internal_errors": dict(status.internal_errors)}
            ),
            flush=True,
        )
    monitor.store.close()


if __name__ == "__main__":
    main(sys.argv[1])
