"""The ``email`` entry of ``plugin_settings``: validated once, when the monitor is built.

Everything that can be wrong is found here, so that a mistake fails start-up with a
message that says what to fix rather than surfacing hours later as a dropped alert:
the URL (and credentials in it, refused), the addresses, the CA file (loaded into the
TLS context now), and the credentials' environment variables (read now, both or none).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from email.headerregistry import Address
from email.utils import getaddresses
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import nextmonth_health as nmh
from attrs import field, frozen
from nextmonth_health.plugin import check_option_names, number_option, option_error, plugin_configs, whole_option

__all__ = [
    "PASSWORD_ENV",
    "SETTINGS_KEY",
    "USERNAME_ENV",
    "Credentials",
    "EmailConfig",
    "configs_of",
    "parse_config",
]

#: The key of this plugin's options in ``plugin_settings`` (also its entry-point name).
SETTINGS_KEY = "email"

#: Where the SMTP user name and password are read from, unless ``username_env`` /
#: ``password_env`` name other variables.
USERNAME_ENV = "NEXTMONTH_HEALTH_SMTP_USERNAME"
PASSWORD_ENV = "NEXTMONTH_HEALTH_SMTP_PASSWORD"

_PORTS = {"smtp": 25, "smtps": 465}

_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "url": None,
        "from": None,
        "to": None,
        "admin_url": None,
        "require_starttls": False,
        "ca_file": None,
        "username_env": USERNAME_ENV,
        "password_env": PASSWORD_ENV,
        "send_resolved": True,
        "timeout": 10.0,
        "queue_size": 100,
        "max_attempts": 10,
        "backoff": 2.0,
        "max_backoff": 300.0,
    }
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@frozen
class Credentials:
    """SMTP AUTH's user name and password, read from the environment; the password never shows."""

    username: str
    password: str = field(repr=False)


@frozen
class EmailConfig:
    """Where and to whom one site's alert emails go.

    ``url`` never holds credentials (they are refused in it), so it is safe in logs,
    errors and stats. ``sender`` and ``to`` are header forms (``Rob <rob@example.com>``);
    ``sender_address`` and ``to_addresses`` the bare addresses the SMTP envelope takes.
    """

    url: str
    host: str
    port: int
    implicit_tls: bool
    require_starttls: bool
    sender: str
    sender_address: str
    to: tuple[str, ...]
    to_addresses: tuple[str, ...]
    admin_url: str | None
    ca_file: str | None
    credentials: Credentials | None
    send_resolved: bool
    timeout: float
    queue_size: int
    max_attempts: int
    backoff: float
    max_backoff: float
    tls: ssl.SSLContext = field(eq=False, repr=False)

    @property
    def needs_tls(self) -> bool:
        """Whether a plain ``smtp://`` connection must be upgraded with STARTTLS or fail.

        Credentials never cross the network in the clear, so having them requires it too.
        """
        return self.require_starttls or self.credentials is not None


def _flag(where: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise option_error(where, f"{name} must be true or false, got {value!r}")
    return value


def _address(where: str, name: str, value: Any) -> tuple[str, str]:
    """One address, as (header form, bare address); ``Name <a@b>`` or ``a@b``."""
    example = "'rob@example.com' or 'Rob <rob@example.com>'"
    if not isinstance(value, str) or not value.strip() or "\r" in value or "\n" in value:
        raise option_error(where, f"{name} must be an email address such as {example}, got {value!r}")
    found = getaddresses([value])
    if len(found) != 1:
        raise option_error(where, f"{name}: one address per entry (give a list for several), got {value!r}")
    display, bare = found[0]
    try:
        address = Address(display_name=display, addr_spec=bare)
    except (ValueError, IndexError) as exc:  # email's header errors are ValueErrors
        raise option_error(where, f"{name} must be an email address such as {example}, got {value!r}") from exc
    if not address.username or not address.domain or bare not in value:
        raise option_error(where, f"{name} must be an email address such as {example}, got {value!r}")
    return str(address), address.addr_spec


def _url(where: str, value: Any, username_env: str, password_env: str) -> tuple[str, str, int, bool]:
    """``smtp://host[:port]`` or ``smtps://host[:port]`` as (shown URL, host, port, implicit TLS)."""
    usage = "url must be smtp://host:port (STARTTLS when offered) or smtps://host:port (implicit TLS)"
    if not isinstance(value, str):
        raise option_error(where, f"{usage}, got {type(value).__name__ if value is not None else None}")
    parts = urlsplit(value)
    if parts.scheme not in _PORTS:
        shown = f"{parts.scheme}://…" if parts.scheme else repr(value.split("@")[-1])
        raise option_error(where, f"{usage}, got {shown}")
    if "@" in parts.netloc:
        host_part = parts.netloc.rpartition("@")[2]
        raise option_error(
            where,
            f"url must not carry credentials (got {parts.scheme}://***@{host_part}): put the user name in "
            f"${username_env} and the password in ${password_env} (or name other variables with "
            "username_env / password_env)",
        )
    try:
        port = parts.port
    except ValueError:
        raise option_error(where, f"{usage}; the port of {value!r} is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise option_error(where, f"{usage}; {value!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise option_error(where, f"{usage}, with no path or query; got {value!r}")
    port = port or _PORTS[parts.scheme]
    host = parts.hostname
    shown_host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown_host}:{port}", host, port, parts.scheme == "smtps"


def _credentials(where: str, username_env: Any, password_env: Any, explicit: bool) -> Credentials | None:
    for name, value in (("username_env", username_env), ("password_env", password_env)):
        if not isinstance(value, str) or not _ENV_NAME.match(value):
            raise option_error(where, f"{name} must name an environment variable, got {value!r}")
    username, password = os.environ.get(username_env), os.environ.get(password_env)
    if username is None and password is None:
        if explicit:
            raise option_error(
                where,
                f"username_env / password_env name ${username_env} and ${password_env}, but neither is set: "
                "set both for SMTP AUTH, or leave the options out to send without it",
            )
        return None
    if not username or not password:
        have, lack = (username_env, password_env) if username else (password_env, username_env)
        raise option_error(
            where, f"${have} is set but ${lack} is not: set both for SMTP AUTH, or neither to send without it"
        )
    return Credentials(username, password)


def parse_config(raw: Any, where: str = f"plugin_settings[{SETTINGS_KEY!r}]") -> EmailConfig | None:
    """Validate the plugin's options; ``None`` (nothing configured) gives ``None``."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise option_error(
            where, f"must be a mapping of options such as {{'url': ..., 'from': ..., 'to': ...}}, got {raw!r}"
        )
    check_option_names(where, raw, _DEFAULTS)
    opts = {**_DEFAULTS, **raw}
    url, host, port, implicit_tls = _url(where, opts["url"], str(opts["username_env"]), str(opts["password_env"]))
    if opts["from"] is None:
        raise option_error(
            where, "from is required: the sender address your SMTP server accepts, e.g. 'health@example.com'"
        )
    sender, sender_address = _address(where, "from", opts["from"])
    to = opts["to"]
    if isinstance(to, str):
        to = [to]
    if to is None or not isinstance(to, list | tuple) or not to:
        raise option_error(where, f"to must be an email address or a non-empty list of them, got {opts['to']!r}")
    recipients = [_address(where, "to", one) for one in to]
    admin_url = opts["admin_url"]
    if admin_url is not None:
        parts = urlsplit(admin_url) if isinstance(admin_url, str) else None
        if (
            parts is None
            or parts.scheme not in {"http", "https"}
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            raise option_error(
                where,
                "admin_url must be the admin view's http(s) address, e.g. "
                f"'https://admin.example.com/admin/system-health', got {admin_url!r}",
            )
        admin_url = admin_url.rstrip("/")
    ca_file = opts["ca_file"]
    if ca_file is not None:
        if not isinstance(ca_file, str | os.PathLike) or not str(ca_file):
            raise option_error(where, f"ca_file must be the path of a PEM file of CA certificates, got {ca_file!r}")
        ca_file = os.fspath(ca_file)
    try:
        tls = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise option_error(where, f"ca_file: cannot load CA certificates from {ca_file!r} ({exc})") from None
    explicit = "username_env" in raw or "password_env" in raw
    config = EmailConfig(
        url=url,
        host=host,
        port=port,
        implicit_tls=implicit_tls,
        require_starttls=_flag(where, "require_starttls", opts["require_starttls"]),
        sender=sender,
        sender_address=sender_address,
        to=tuple(header for header, _ in recipients),
        to_addresses=tuple(dict.fromkeys(bare for _, bare in recipients)),
        admin_url=admin_url,
        ca_file=ca_file,
        credentials=_credentials(where, opts["username_env"], opts["password_env"], explicit),
        send_resolved=_flag(where, "send_resolved", opts["send_resolved"]),
        timeout=number_option(where, "timeout", opts["timeout"]),
        queue_size=whole_option(where, "queue_size", opts["queue_size"]),
        max_attempts=whole_option(where, "max_attempts", opts["max_attempts"]),
        backoff=number_option(where, "backoff", opts["backoff"]),
        max_backoff=number_option(where, "max_backoff", opts["max_backoff"]),
        tls=tls,
    )
    if config.backoff > config.max_backoff:
        raise option_error(where, f"backoff ({config.backoff}) cannot exceed max_backoff ({config.max_backoff})")
    if config.implicit_tls and config.require_starttls:
        raise option_error(where, "require_starttls applies to smtp:// URLs; smtps:// is TLS from the first byte")
    return config


def configs_of(monitor: nmh.Monitor) -> dict[str | None, EmailConfig | None]:
    """Every site's validated options (``None``: the monitor-wide ones), or raise ConfigError.

    A site's own ``plugin_settings["email"]`` is laid over the monitor-wide options, so
    ``{"to": "owner@acme.example"}`` is enough to give a site its own recipients; a site
    whose ``plugin_settings`` has no ``"email"`` entry sends no email.
    """
    return plugin_configs(monitor, SETTINGS_KEY, parse_config, layered=True)
