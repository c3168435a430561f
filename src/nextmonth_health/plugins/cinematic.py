"""The bundled voice users hear: short, cinematic, reassuring notices for every area.

Never blame the user, never show codes, numbers, internal names or alarm words, and never
promise what the monitor cannot know (that files, accounts or work are safe, that nothing
was lost, that a fix is done); a test holds every template here to that. A site can replace the words for any area with the
``notice_overrides`` setting, or register its own renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..plugin import Incident, MessageRenderer, Notice, Settings, Severity, hookimpl

if TYPE_CHECKING:
    from ..plugin import Monitor

Texts = Mapping[Severity, tuple[str, str]]

DEFAULT: Texts = {
    Severity.DEGRADED: (
        "A quick refresh in progress",
        (
            "We're refreshing part of the system to ensure optimal performance. "
            "Please retry shortly — everything's under active care."
        ),
    ),
    Severity.CRITICAL: (
        "We're on it",
        (
            "Part of the system is getting our full attention right now. "
            "Please give it a little while and try again — everything's under active care."
        ),
    ),
}

TEMPLATES: Mapping[str, Texts] = MappingProxyType(
    {
        "uploads": {
            Severity.DEGRADED: (
                "Uploads are catching their breath",
                (
                    "We're refreshing part of the system to keep your uploads smooth. "
                    "Please retry shortly — everything's under active care."
                ),
            ),
            Severity.CRITICAL: (
                "Uploads are in careful hands",
                (
                    "We're giving uploads our full attention right now. "
                    "Please try again in a little while — everything's under active care."
                ),
            ),
        },
        "bookings": {
            Severity.DEGRADED: (
                "Bookings are catching their breath",
                (
                    "We're refreshing part of the system to keep bookings flowing. "
                    "Please retry shortly — everything's under active care."
                ),
            ),
            Severity.CRITICAL: (
                "Bookings are in careful hands",
                (
                    "We're giving bookings our full attention right now. "
                    "Please try again in a little while — everything's under active care."
                ),
            ),
        },
        "portal": {
            Severity.DEGRADED: (
                "The portal is taking a moment",
                (
                    "We're refreshing part of the portal to ensure optimal performance. "
                    "Please retry shortly — everything's under active care."
                ),
            ),
            Severity.CRITICAL: (
                "The portal is in careful hands",
                (
                    "We're giving the portal our full attention right now. "
                    "Please come back in a little while — everything's under active care."
                ),
            ),
        },
        "login": {
            Severity.DEGRADED: (
                "Signing in is taking a moment",
                (
                    "We're refreshing the way you sign in to keep it smooth. "
                    "If you were signed out, please sign in again shortly — everything's under active care."
                ),
            ),
            Severity.CRITICAL: (
                "Signing in is in careful hands",
                (
                    "We're giving sign-in our full attention right now. "
                    "Please try again in a little while — everything's under active care."
                ),
            ),
        },
        "dashboard": {
            Severity.DEGRADED: (
                "Your dashboard is warming up",
                (
                    "We're refreshing part of the system to ensure optimal performance. "
                    "Pages may take a moment longer — everything's under active care."
                ),
            ),
            Severity.CRITICAL: (
                "Your dashboard is in careful hands",
                (
                    "We're giving the dashboard our full attention to bring back its usual pace. "
                    "Thank you for your patience — everything's under active care."
                ),
            ),
        },
    }
)


class CinematicRenderer:
    """Speaks for every area: the site's overrides first, then the bundled words."""

    name = "cinematic"
    areas: Collection[str] | None = None

    def __init__(self, settings_for: Callable[[str], Settings] | None = None) -> None:
        self._settings_for = settings_for

    def render(self, incident: Incident) -> Notice:
        title, message = TEMPLATES.get(incident.area, DEFAULT)[incident.severity]
        if self._settings_for is not None:
            override = self._settings_for(incident.site).notice_overrides.get(incident.area, {})
            title, message = override.get("title", title), override.get("message", message)
        return Notice(area=incident.area, site=incident.site, title=title, message=message, severity=incident.severity)


@hookimpl
def register_message_renderers(register: Callable[[MessageRenderer], None], monitor: Monitor) -> None:
    register(CinematicRenderer(monitor.settings_for))
