"""An evaluating process for the fault tests, run as ``python tests/faults/evaluator.py STORE DIR``.

It runs a monitor on the real clock with short ticks (0.25 s), lease (1.5 s) and
cool-down (2 s), a probe
check whose verdict is the content of ``DIR/status`` (``ok``, ``degraded``, ``critical``),
read *after* a 0.5 s pause — so a pass is always in flight, and a process stopped with
SIGSTOP wakes with a stale pass to finish (``DIR/probing-PID`` is there during the pause)
— and a sink that appends one JSON line per
transition it hears to ``DIR/heard``. It prints ``running`` once its loop runs and stops
cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio

import nextmonth_health as nmh

TICK = 0.25
LEASE = 1.5
PAUSE = 0.5
COOLDOWN = 2.0


class Probe:
    name = "probe"
    interval = None
    timeout = 30.0

    def __init__(self, folder: Path) -> None:
        self.status = folder / "status"
        #: There while this process's probe pauses: a test stops it then, mid-pass for sure.
        self.probing = folder / f"probing-{os.getpid()}"

    async def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
        self.probing.touch()
        await anyio.sleep(PAUSE)
        status = self.status.read_text().strip() if self.status.exists() else "ok"
        self.probing.unlink(missing_ok=True)
        return [
            nmh.Reading(
                check=self.name,
                site=view.site,
                key="",
                area="portal",
                status=status,
                subject="Probe",
                affected_users=5,
            )
        ]


class Heard:
    name = "heard"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "heard"

    def send(self, transition: nmh.Transition) -> None:
        line = json.dumps(
            {
                "pid": os.getpid(),
                "kind": str(transition.kind),
                "severity": str(transition.incident.severity),
                "alert": transition.alert is not None,
            }
        )
        with self.path.open("a") as f:
            f.write(line + "\n")


class Plugin:
    def __init__(self, folder: Path) -> None:
        self.probe, self.sink = Probe(folder), Heard(folder)

    @nmh.hookimpl
    def register_health_checks(self, register: Any) -> None:
        register(self.probe)

    @nmh.hookimpl
    def register_alert_sinks(self, register: Any) -> None:
        register(self.sink)


async def main(store: str, folder: Path) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    monitor = nmh.Monitor(
        "acme",
        store=store,
        plugins=[Plugin(folder)],
        load_entrypoints=False,
        tick_seconds=TICK,
        lease_seconds=LEASE,
        cooldown_seconds=COOLDOWN,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        print("running", flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                tg.cancel_scope.cancel()
                break


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], Path(sys.argv[2]))
