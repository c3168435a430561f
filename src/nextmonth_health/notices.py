"""User-facing notices: the renderer interface and how an area's notice is chosen."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, runtime_checkable

from .values import Incident, Notice

__all__ = ["MessageRenderer"]


@runtime_checkable
class MessageRenderer(Protocol):
    """Turns an open incident into the notice users see at its area.

    Registered through ``register_message_renderers``. ``areas`` limits which areas the
    renderer speaks for (``None``: all). ``render`` may return ``None`` to let the next
    renderer answer. Write for people: no codes, numbers, internal names or blame.
    """

    name: str
    areas: Collection[str] | None

    def render(self, incident: Incident) -> Notice | None: ...
