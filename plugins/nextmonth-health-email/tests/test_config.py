"""nextmonth-health-email, installed: discovery, the options, and mistakes found at start-up."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import nextmonth_health as nmh
import pytest
from nextmonth_health.testing import FakeClock

import nextmonth_health_email
from nextmonth_health_email import EmailSink, configs_of, parse_config

from .conftest import options


@pytest.fixture
def only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTMONTH_HEALTH_LOAD_PLUGINS", "email")
    monkeypatch.delenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", raising=False)


def build(clock: FakeClock, **settings: Any) -> nmh.Monitor:
    return nmh.Monitor("acme", store="memory://", clock=clock, **settings)


def email_sink(monitor: nmh.Monitor) -> EmailSink:
    [sink] = [s for s in monitor.sinks if s.name == "email"]
    assert isinstance(sink, EmailSink)
    return sink


def test_the_distribution_declares_its_entry_point():
    [ep] = [ep for ep in importlib.metadata.entry_points(group="nextmonth_health") if ep.name == "email"]
    assert ep.value == "nextmonth_health_email"
    assert ep.dist is not None and ep.dist.name == "nextmonth-health-email"


@pytest.mark.usefixtures("only_this_plugin")
def test_an_installed_monitor_discovers_the_sink(fake_clock: FakeClock):
    monitor = build(fake_clock, plugin_settings={"email": options("smtp://mail.acme.example")})
    assert monitor.plugin_failures == ()
    assert monitor.plugin_manager.get_plugin("email") is nextmonth_health_email
    assert [s.name for s in monitor.sinks] == ["log", "email"]
    stats = monitor.status().plugin_stats["email"]
    assert (stats["sent"], stats["queued"], stats["dropped"]) == (0, 0, {})
    email_sink(monitor).close()


@pytest.mark.usefixtures("only_this_plugin")
def test_with_no_settings_the_plugin_registers_nothing(fake_clock: FakeClock):
    monitor = build(fake_clock)
    assert [s.name for s in monitor.sinks] == ["log"]
    assert monitor.plugin_failures == ()


def test_the_defaults():
    config = parse_config(options("smtp://mail.acme.example"))
    assert config is not None
    assert (config.url, config.host, config.port, config.implicit_tls) == (
        "smtp://mail.acme.example:25",
        "mail.acme.example",
        25,
        False,
    )
    assert (config.sender, config.sender_address) == ("Health <health@acme.example>", "health@acme.example")
    assert (config.to, config.to_addresses) == (("rob@acme.example",), ("rob@acme.example",))
    assert (config.admin_url, config.ca_file, config.credentials, config.require_starttls) == (None, None, None, False)
    assert (config.timeout, config.queue_size, config.max_attempts, config.backoff, config.max_backoff) == (
        10.0,
        100,
        10,
        2.0,
        300.0,
    )
    assert config.send_resolved is True
    smtps = parse_config(options("smtps://mail.acme.example", to=["Rob <rob@acme.example>", "ops@acme.example"]))
    assert smtps is not None and (smtps.port, smtps.implicit_tls) == (465, True)
    assert smtps.to == ("Rob <rob@acme.example>", "ops@acme.example")
    assert smtps.to_addresses == ("rob@acme.example", "ops@acme.example")
    assert parse_config(options("smtp://[::1]:2525/")).url == "smtp://[::1]:2525"


def test_credentials_come_from_the_environment_and_never_show(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEXTMONTH_HEALTH_SMTP_USERNAME", "health@acme.example")
    monkeypatch.setenv("NEXTMONTH_HEALTH_SMTP_PASSWORD", "hunter2")
    config = parse_config(options("smtp://mail.acme.example:587"))
    assert config is not None and config.credentials is not None
    assert (config.credentials.username, config.credentials.password) == ("health@acme.example", "hunter2")
    assert config.needs_tls  # a password never goes out in the clear
    assert "hunter2" not in repr(config)
    monkeypatch.setenv("ACME_SMTP_USER", "acme")
    monkeypatch.setenv("ACME_SMTP_PASS", "s3cret")
    other = parse_config(
        options("smtp://mail.acme.example", username_env="ACME_SMTP_USER", password_env="ACME_SMTP_PASS")
    )
    assert other is not None and other.credentials is not None and other.credentials.username == "acme"


@pytest.mark.usefixtures("only_this_plugin")
@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (options("ftp://mail.acme.example"), r"url must be smtp://host:port .* or smtps://host:port .*, got ftp://…"),
        (
            options("smtp://health:s3cret@mail.acme.example:587"),
            (
                r"url must not carry credentials \(got smtp://\*\*\*@mail.acme.example:587\): put the user name in "
                r"\$NEXTMONTH_HEALTH_SMTP_USERNAME and the password in \$NEXTMONTH_HEALTH_SMTP_PASSWORD"
            ),
        ),
        (options("smtp://mail.acme.example:99999"), "is not a number from 1 to 65535"),
        (options("smtp://mail.acme.example/inbox"), "with no path or query"),
        ({"url": "smtp://mail.acme.example", "to": "rob@acme.example"}, "from is required"),
        (options("smtp://mail.acme.example", to="rob"), "to must be an email address such as"),
        (options("smtp://mail.acme.example", to="rob@acme.example, ops@acme.example"), "one address per entry"),
        (options("smtp://mail.acme.example", to=[]), "to must be an email address or a non-empty list"),
        (options("smtp://mail.acme.example", to="rob@acme.example\r\nBcc: x@evil.example"), "to must be an email"),
        (options("smtp://mail.acme.example", recipients=["rob@acme.example"]), "unknown option 'recipients'"),
        (
            options("smtp://mail.acme.example", max_attempt=3),
            "unknown option 'max_attempt'; did you mean 'max_attempts'",
        ),
        (options("smtp://mail.acme.example", admin_url="admin.acme.example"), "admin_url must be the admin view's"),
        (options("smtp://mail.acme.example", ca_file="/nonexistent/ca.pem"), "ca_file: cannot load CA certificates"),
        (options("smtps://mail.acme.example", require_starttls=True), "require_starttls applies to smtp://"),
        (options("smtp://mail.acme.example", timeout=0), "timeout must be a positive number"),
        (options("smtp://mail.acme.example", backoff=10, max_backoff=5), r"backoff \(10.0\) cannot exceed"),
        (options("smtp://mail.acme.example", username_env="ACME_NOT_SET"), "neither is set: set both for SMTP AUTH"),
        (options("smtp://mail.acme.example", password_env="not a name"), "password_env must name an environment"),
    ],
)
def test_mistakes_fail_at_start_up_saying_what_to_fix(fake_clock: FakeClock, opts: dict[str, Any], message: str):
    monitor = build(fake_clock, plugin_settings={"email": opts})
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution) == (
        "email",
        "register_alert_sinks",
        "nextmonth-health-email",
    )
    assert "s3cret" not in failure.error
    assert [s.name for s in monitor.sinks] == ["log"]
    with pytest.raises(nmh.ConfigError, match=message) as raised:
        build(fake_clock, strict_plugins=True, plugin_settings={"email": opts})
    assert str(raised.value).startswith("plugin_settings['email']: ")


def test_half_the_credentials_is_a_mistake(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEXTMONTH_HEALTH_SMTP_USERNAME", "health@acme.example")
    with pytest.raises(
        nmh.ConfigError, match=r"\$NEXTMONTH_HEALTH_SMTP_USERNAME is set but \$NEXTMONTH_HEALTH_SMTP_PASSWORD is not"
    ):
        parse_config(options("smtp://mail.acme.example"))


def test_each_site_gets_its_recipients_on_top_of_the_monitor_wide_options(fake_clock: FakeClock):
    monitor = nmh.Monitor(
        "acme",
        store="memory://",
        clock=fake_clock,
        load_entrypoints=False,
        plugin_settings={
            "email": options("smtp://mail.nextmonth.example", admin_url="https://admin.nextmonth.example")
        },
        sites={
            "beta": {"plugin_settings": {"email": {"to": ["owner@beta.example", "rob@acme.example"]}}},
            "gamma": {"plugin_settings": {"cdn": {"urls": []}}},  # its own plugin_settings, no email entry
            "delta": {"api_error_min_count": 10},  # no plugin_settings of its own: the monitor-wide ones
        },
    )
    configs = configs_of(monitor)
    base, beta = configs[None], configs["beta"]
    assert base is not None and beta is not None
    assert beta.to == ("owner@beta.example", "rob@acme.example")
    assert (beta.url, beta.sender, beta.admin_url) == (base.url, base.sender, base.admin_url)
    assert configs["gamma"] is None
    assert "delta" not in configs
    sink = EmailSink(configs)
    assert sink.config_for("delta") is base and sink.config_for("gamma") is None and sink.config_for("beta") is beta
    with pytest.raises(nmh.ConfigError, match=r"^sites\['beta'\]: plugin_settings\['email'\]: to must be"):
        configs_of(
            nmh.Monitor(
                "acme",
                store="memory://",
                load_entrypoints=False,
                plugin_settings={"email": options("smtp://mail.nextmonth.example")},
                sites={"beta": {"plugin_settings": {"email": {"to": "owner"}}}},
            )
        )


# The command line: `nextmonth-health plugins` lists the installed plugin and what it registers.


def plugins_command(tmp_path: Path, email: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "health.toml"
    lines = ["[plugin_settings.email]"] + [f"{name} = {json.dumps(value)}" for name, value in email.items()]
    config.write_text("\n".join(lines) + "\n")
    command = Path(sys.executable).with_name("nextmonth-health")
    return subprocess.run(
        [str(command), "plugins", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "NEXTMONTH_HEALTH_LOAD_PLUGINS": "email"},
        check=False,
    )


def test_the_plugins_command_lists_it(tmp_path: Path):
    result = plugins_command(tmp_path, options("smtp://mail.acme.example:587"))
    assert result.returncode == 0, result.stderr
    [email] = [p for p in json.loads(result.stdout)["plugins"] if p["name"] == "email"]
    assert (email["kind"], email["distribution"], email["version"], email["entry_point"], email["status"]) == (
        "installed",
        "nextmonth-health-email",
        nextmonth_health_email.__version__,
        "nextmonth_health_email",
        "ok",
    )
    assert email["hooks"] == ["register_alert_sinks"]
    assert email["registers"] == {"sinks": [{"name": "email", "in_effect": True}]}


def test_the_plugins_command_shows_a_mistake_and_exits_1(tmp_path: Path):
    result = plugins_command(tmp_path, options("smtp://rob:s3cret@mail.acme.example:587"))
    assert result.returncode == 1
    [email] = [p for p in json.loads(result.stdout)["plugins"] if p["name"] == "email"]
    assert email["status"] == "broken"
    assert "url must not carry credentials" in email["errors"][0]
    assert "s3cret" not in result.stdout + result.stderr


# The README: its options table is the code's, and its Python examples run.

README = Path(__file__).resolve().parents[1] / "README.md"


def _shown(value: Any) -> str:
    if value is None:
        return "`None`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value!r}`"


def test_the_readme_lists_every_option_with_its_default():
    from nextmonth_health_email._config import _DEFAULTS

    section = README.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.MULTILINE)
    options_table = {name: default.strip() for name, default in rows}
    assert list(options_table) == list(_DEFAULTS)
    for name, default in _DEFAULTS.items():
        expected = "— (required)" if name in {"url", "from", "to"} else _shown(default)
        assert options_table[name] == expected, name


def test_the_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # the examples' monitors use the default SQLite file
    monkeypatch.setenv("NEXTMONTH_HEALTH_LOAD_PLUGINS", "email")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        scope: dict[str, Any] = {}
        exec(compile(block, str(README), "exec"), scope)  # noqa: S102 - the README's own example
        monitor = scope["monitor"]
        assert monitor.plugin_failures == ()
        email_sink(monitor).close()
    configs = configs_of(monitor)
    assert configs["beta-studio"].to == ("owner@beta.example", "rob@example.com")
    assert configs["gamma-studio"] is None
    toml = re.findall(r"```toml\n(.*?)```", README.read_text(), re.DOTALL)
    [settings] = [tomllib.loads(block)["plugin_settings"]["email"] for block in toml]
    assert parse_config(settings).implicit_tls
