"""The ``nextmonth-health`` command line (``python -m nextmonth_health`` too).

Commands, one module each: ``demo``, ``serve``, ``selfcheck``, ``replay``, ``plugins``,
``status``, ``maintenance``, ``silence`` and ``ack``. The click group and the global options (``--store``, ``--site``,
``--config``) live in :mod:`.group`; this module only imports it when the command runs,
so a missing ``cli`` extra is one line saying what to install, not a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["cli", "main"]


def main(args: Sequence[str] | None = None) -> None:
    """Run the command line; exits with the command's status."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # a terminal without UTF-8 still gets the words
    try:
        from .group import cli
    except ModuleNotFoundError as exc:
        if exc.name != "click":
            raise
        sys.stderr.write("error: the nextmonth-health command needs click: pip install 'nextmonth-health[cli]'\n")
        raise SystemExit(2) from None
    cli.main(args=list(args) if args is not None else None, prog_name="nextmonth-health")


def __getattr__(name: str) -> Any:
    if name == "cli":
        from .group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
