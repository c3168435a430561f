"""The ``nextmonth-health`` click group: global options, lazy commands, errors as one line.

Each command lives in its own module and is imported only when it runs (``serve`` pulls
in uvicorn, ``replay`` its parsers), so ``--help`` and small commands stay quick.
Mistakes a user can fix — an unknown store scheme, an unreadable file, a bad setting —
end as one ``error: …`` line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from ..errors import ConfigError, is_store_error
from ._common import EXIT_BUG, CliError, Options, global_options, store_trouble

__all__ = ["cli"]

#: Command name -> module, in the order ``--help`` lists them.
COMMANDS = {
    "demo": "demo",
    "selfcheck": "selfcheck",
    "serve": "serve",
    "status": "status",
    "maintenance": "maintenance",
    "silence": "silence",
    "ack": "ack",
    "replay": "replay",
    "plugins": "plugins",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(f"{__package__}.{module}").command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        except BrokenPipeError:
            # Output piped into `head` and the like: stop quietly, as other tools do.
            sys.stderr.close()
            raise SystemExit(1) from None
        except OSError as exc:
            where = f" {exc.filename!r}" if exc.filename else ""
            raise CliError(f"cannot use{where}: {exc.strerror or exc}") from None
        except Exception as exc:
            if ctx.ensure_object(Options).debug:
                raise
            if is_store_error(exc):
                raise CliError(store_trouble(ctx.ensure_object(Options).store or "in use", exc)) from None
            raise CliError(
                f"unexpected {type(exc).__name__}: {exc} (a bug in nextmonth-health; --debug shows the traceback)",
                exit_code=EXIT_BUG,
            ) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@global_options
@click.version_option(package_name="nextmonth-health", prog_name="nextmonth-health")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Health monitoring for NextMonth Blueprint sites.

    \b
    Start with:  nextmonth-health demo --fast
    Exit status: 0 all well, 1 a problem was found, 2 bad input, 3 a bug
    (status: 0 calm, 1 degraded, 2 critical, 3 unknown; see status --help).
    Colours only on a terminal, and never when NO_COLOR is set.
    """
    if os.environ.get("NO_COLOR"):  # https://no-color.org: set and not empty
        ctx.color = False
