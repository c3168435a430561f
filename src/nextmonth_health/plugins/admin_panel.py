"""The admin-panel sink: keeps each critical incident's one alert where the admin view reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from ..plugin import Store, Transition, hookimpl

if TYPE_CHECKING:
    from ..plugin import Monitor


class AdminPanelSink:
    name = "admin_panel"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def send(self, transition: Transition) -> None:
        if transition.alert is None:
            return
        if self.store.blocking:
            await anyio.to_thread.run_sync(self.store.save_alert, transition.alert)
        else:
            self.store.save_alert(transition.alert)


@hookimpl
def register_alert_sinks(register, monitor: Monitor) -> None:  # type: ignore[no-untyped-def]
    register(AdminPanelSink(monitor.store))
