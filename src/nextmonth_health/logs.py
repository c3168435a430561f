"""The SDK logs like a library: structlog's API, the standard ``logging`` module underneath.

Every module logs through ``log = get_logger(__name__)``: a structlog logger wrapped around
``logging.getLogger(__name__)``, with its own processors, so that the SDK never calls
``structlog.configure()`` (the host's choice) and never depends on what the host chose.
Events are ``logging`` records of the ``nextmonth_health.*`` loggers, so whatever
configures ``logging`` (``basicConfig``, Django's ``LOGGING``, ``dictConfig``) routes,
formats, filters and silences them like any other library's. With nothing configured,
Python's last-resort handler prints warnings and worse on stderr, and nothing reaches
stdout.

Event names follow one scheme, ``nextmonth_health.<what_happened>`` (snake case after the
prefix), and the fields go with the event. A record's ``msg`` is the event as a dict
whose ``str()`` reads ``nextmonth_health.incident_opened site='acme' check='uploads' …``,
so a plain ``%(message)s`` formatter prints one readable line; it also carries the
``_logger`` and ``_name`` attributes structlog's ``ProcessorFormatter`` looks for, so a
host that renders its logs with structlog gets the event's fields as fields.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["Event", "get_logger"]

#: Keys of an event that are not its own fields: where and when, and the traceback.
_META = frozenset({"event", "level", "logger", "timestamp", "exc_info", "stack_info"})


class Event(dict[str, Any]):
    """An event's fields, as a ``logging`` record's ``msg``: reads as one line of text."""

    __slots__ = ()

    def __str__(self) -> str:
        fields = " ".join(f"{key}={value!r}" for key, value in self.items() if key not in _META)
        event = str(self.get("event", ""))
        return f"{event} {fields}" if fields else event


def _to_record(logger: logging.Logger, method: str, event: MutableMapping[str, Any]) -> Any:
    """The last processor: the positional and keyword arguments of the ``logging`` call.

    ``level``, ``logger`` and ``timestamp`` are the keys structlog's ``add_log_level``,
    ``add_logger_name`` and ``TimeStamper(fmt="iso")`` would add, for hosts that render
    the dict. A traceback goes to ``logging`` as ``exc_info`` (for plain formatters) and
    stays in the dict (for structlog renderers, which see the record's cleared).
    """
    level = "warning" if method == "warn" else method
    event.setdefault("level", level)
    event.setdefault("logger", logger.name)
    event.setdefault("timestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    kwargs: dict[str, Any] = {"extra": {"_logger": logger, "_name": level}}
    exc_info = event.get("exc_info")
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (Event(event),), kwargs


_PROCESSORS = [structlog.stdlib.filter_by_level, _to_record]


def get_logger(name: str) -> Any:
    """A structlog logger writing to ``logging.getLogger(name)``, whatever structlog's configuration."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=True,
    )
