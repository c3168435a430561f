"""What every command shares: errors, the global options, the config file, logging, formatting.

The command line is the host application here, so it configures the ``nextmonth_health``
logger (the SDK itself never does): logs go to stderr, warnings and worse by default, so
that stdout carries only what a command means to print (a timeline, a table, JSON).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

import click
import structlog
from attrs import define, field, frozen

from .. import codec
from ..errors import ConfigError

__all__ = [
    "CliError",
    "Config",
    "Options",
    "build_monitor",
    "configure_logging",
    "echo_json",
    "global_options",
    "load_config",
    "when",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Exit statuses: 0 all well, 1 the command ran and found a problem, 2 bad input, 3 a bug.
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_BUG = 3


class CliError(click.ClickException):
    """A mistake the user can fix: printed as one line, ``error: <what to fix>``, exit 2."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # a ClassVar in click's stubs, per instance here

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


# The config file ------------------------------------------------------------------------


@frozen
class Config:
    """A ``--config`` TOML file: Monitor arguments, settings and per-site overrides.

    Top-level ``site``, ``store`` and ``plugins`` (module names) are Monitor arguments;
    ``[sites.<name>]`` tables are per-site overrides; every other key is a setting.
    """

    path: str | None = None
    site: str | None = None
    store: str | None = None
    plugins: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(factory=dict, converter=lambda m: MappingProxyType(dict(m)))
    sites: Mapping[str, Mapping[str, Any]] = field(factory=dict, converter=lambda m: MappingProxyType(dict(m)))


def load_config(path: str) -> Config:
    """Read and validate a config file; every mistake is a :class:`CliError` naming the file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise CliError(f"cannot read the config file {path!r}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"cannot read the config file {path!r}: it is a directory, not a TOML file") from None
    except OSError as exc:
        raise CliError(f"cannot read the config file {path!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not valid TOML (the file is not UTF-8 text)") from None

    def text(name: str) -> str | None:
        value = data.pop(name, None)
        if value is not None and (not isinstance(value, str) or not value):
            raise CliError(f"{path}: {name} must be a non-empty string, got {value!r}")
        return value

    site, store = text("site"), text("store")
    plugins = data.pop("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p for p in plugins):
        raise CliError(f'{path}: plugins must be a list of module names, e.g. plugins = ["acme_health"]')
    sites = data.pop("sites", {})
    if not isinstance(sites, dict) or not all(isinstance(v, dict) for v in sites.values()):
        raise CliError(f"{path}: per-site overrides go in [sites.<name>] tables, e.g. [sites.tiny-shop]")
    from ..settings import build_settings

    try:
        build_settings(data, sites)
    except ConfigError as exc:
        raise CliError(f"{path}: {exc}") from None
    return Config(path=path, site=site, store=store, plugins=tuple(plugins), settings=data, sites=sites)


# Global options -------------------------------------------------------------------------


@define
class Options:
    """The global options, given before or after the command name (the later one wins)."""

    store: str | None = None
    site: str | None = None
    config_path: str | None = None
    verbose: int = 0
    debug: bool = False
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path) if self.config_path else Config()
        return self._config

    def store_url(self, *, explicit_only: bool = False, default: str = "memory://") -> str:
        """``--store``; else the config file's ``store``, ``$NEXTMONTH_HEALTH_STORE``, the SDK default.

        ``explicit_only`` commands (selfcheck, replay, demo) never write into a store they
        were not pointed at on the command line: they use ``default`` instead.
        """
        if self.store:
            return self.store
        if explicit_only:
            return default
        if self.config.store:
            return self.config.store
        from ..store import default_store_url

        return default_store_url()

    def site_name(self, default: str = "default") -> str:
        return self.site or self.config.site or default

    def settings(
        self, defaults: Mapping[str, Any] | None = None, forced: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Monitor settings: a command's ``defaults``, the config file's on top, ``forced`` last."""
        return {**(defaults or {}), **self.config.settings, **(forced or {})}


def _remember(attr: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        options = ctx.ensure_object(Options)
        if attr == "verbose":
            options.verbose = max(options.verbose, value or 0)
        elif attr == "debug":
            options.debug = options.debug or bool(value)
        elif value is not None:
            setattr(options, attr, value)
            if attr == "config_path":
                # Read at once, so a bad file is the first thing said, whatever the command.
                options._config = load_config(value)
        return value

    return callback


def global_options(f: F) -> F:
    """``--store``, ``--site``, ``--config``, ``-v`` and ``--debug``, on the group and every command."""
    decorators = [
        click.option(
            "--store",
            metavar="URL",
            expose_value=False,
            callback=_remember("store"),
            help="Store URL: sqlite:///path.db, redis://host:port/db or memory:// "
            "(default: the config file's, $NEXTMONTH_HEALTH_STORE, else sqlite:///nextmonth-health.db).",
        ),
        click.option("--site", metavar="NAME", expose_value=False, callback=_remember("site"), help="Site name."),
        click.option(
            "--config",
            "config_path",
            metavar="FILE",
            expose_value=False,
            callback=_remember("config_path"),
            help="TOML file with settings and [sites.<name>] overrides.",
        ),
        click.option(
            "-v",
            "--verbose",
            count=True,
            expose_value=False,
            callback=_remember("verbose"),
            help="Show the SDK's log on stderr (-vv: debug).",
        ),
        click.option("--debug", is_flag=True, expose_value=False, callback=_remember("debug"), hidden=True),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def options() -> Options:
    return click.get_current_context().ensure_object(Options)


# Monitors -------------------------------------------------------------------------------


def build_monitor(**kwargs: Any) -> Any:
    """A :class:`~nextmonth_health.Monitor`, with start-up mistakes as one-line errors."""
    from ..monitor import Monitor

    try:
        return Monitor(**kwargs)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def open_existing_store(url: str) -> Any:
    """Open a store that should already hold data; an SQLite file that is not there is an error.

    Opening ``sqlite:///missing.db`` would create an empty database, which is never what
    ``status`` meant.
    """
    from ..store import open_store

    if url.startswith("sqlite://"):
        from ..store.sqlite import _path_of

        try:
            path = _path_of(url)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        if not os.path.exists(path):
            raise CliError(
                f"no store at {path}: nothing has been recorded there; pass --store with the URL your app uses"
            )
    try:
        return open_store(url)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def probe_store(store: Any) -> None:
    """Make sure a store answers before a command relies on it (a Redis that is down, a
    locked or corrupt SQLite file): one line saying so, rather than a failure halfway."""
    try:
        store.sites()
    except Exception as exc:
        raise CliError(store_trouble(store.url, exc)) from None


def store_trouble(url: str, exc: BaseException) -> str:
    return f"cannot use the store {url}: {type(exc).__name__}: {str(exc).rstrip('.')}; check that it is running, reachable and writable"


# Logging --------------------------------------------------------------------------------


def configure_logging(
    verbosity: int,
    *,
    drop: bool = False,
    seen: list[MutableMapping[str, Any]] | None = None,
    stamp: Callable[[], str] | None = None,
) -> None:
    """Send the SDK's and its plugins' log events (``logging`` records of
    ``nextmonth_health.*`` and ``nextmonth_health_*``) to stderr.

    ``verbosity`` 0 shows warnings (an exception as one line), 1 info, 2 debug with
    tracebacks. ``drop`` keeps even warnings off a timeline unless ``-v`` was given;
    ``seen`` collects every event; ``stamp`` dates events on a fake clock. Other
    libraries' warnings are written as their message, as Python does with no handler.
    """
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    sdk = logging.getLogger("nextmonth_health")
    for logger in (root, sdk):
        for handler in [h for h in logger.handlers if isinstance(h, _Console)]:
            logger.removeHandler(handler)
    root.addHandler(_Console(verbosity, level, drop=drop, seen=seen, stamp=stamp))
    root.setLevel(min(level, logging.INFO) if seen is not None else level)
    sdk.setLevel(logging.NOTSET)
    sdk.propagate = True


def _ours(name: str) -> bool:
    """Whether a logger is the SDK's or a plugin distribution's (``nextmonth_health_cdn``...)."""
    return name == "nextmonth_health" or name.startswith(("nextmonth_health.", "nextmonth_health_"))


class _Console(logging.Handler):
    """The command line's stderr: the SDK's events as ``key=value`` lines."""

    def __init__(
        self,
        verbosity: int,
        level: int,
        *,
        drop: bool,
        seen: list[MutableMapping[str, Any]] | None,
        stamp: Callable[[], str] | None,
    ) -> None:
        super().__init__()
        self.verbosity = verbosity
        self.shown = level
        self.drop = drop
        self.seen = seen
        self.stamp = stamp
        self.render = structlog.dev.ConsoleRenderer(colors=False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not _ours(record.name):
                if record.levelno >= logging.WARNING:
                    sys.stderr.write(record.getMessage() + "\n")
                return
            event = dict(record.msg) if isinstance(record.msg, dict) else {"event": record.getMessage()}
            if self.seen is not None:
                self.seen.append(dict(event))
            if (self.drop and self.verbosity <= 0) or record.levelno < self.shown:
                return
            for key in ("timestamp", "logger"):
                event.pop(key, None)
            event["level"] = record.levelname.lower()
            if self.stamp is not None:
                event["at"] = self.stamp()
            if self.verbosity < 2:
                error = event.pop("exc_info", None)
                if isinstance(error, BaseException):
                    event["error"] = f"{type(error).__name__}: {error}"
            sys.stderr.write(self.render(None, event["level"], event) + "\n")
        except Exception:
            self.handleError(record)


# Output ---------------------------------------------------------------------------------


def when(moment: datetime | float | None, *, date: bool = True) -> str:
    """A moment in UTC, for people: ``2026-01-05 09:00:00`` (or just the time)."""
    if moment is None:
        return "-"
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


iso = codec.iso


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {many or word + 's'}"
