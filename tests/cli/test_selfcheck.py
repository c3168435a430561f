"""``selfcheck``: the Stage 5 confirmation, computed from what happened — and shown to be."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from nextmonth_health.cli.selfcheck import notice_problems
from nextmonth_health.plugins.cinematic import DEFAULT, TEMPLATES

from .conftest import Run, write

KEYS = (
    "proactive_health_monitoring_operational",
    "user_preemptive_messaging_operational",
    "admin_alerts_operational",
)
DONE = {"status": "Support System Stage 5 Completed", **dict.fromkeys(KEYS, "true")}


def test_selfcheck_prints_exactly_the_confirmation(run_all: Callable[..., list]) -> None:
    as_json, as_text = run_all(("selfcheck", "--json"), ("selfcheck",))
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == DONE
    assert list(json.loads(as_json.stdout)) == ["status", *KEYS]  # the seed's order
    assert as_json.stderr == ""
    # Without --json it first says what it saw at each stage.
    assert as_text.returncode == 0, as_text.stderr
    out = as_text.stdout
    assert out.count("✓") == 3 and "✗" not in out
    assert "Impact detected for 12 users" in out
    assert "kept for the admin view" in out
    assert json.loads(out[out.index("{") :]) == DONE


def test_selfcheck_against_an_sqlite_store(run: Run, tmp_path: Path) -> None:
    db = tmp_path / "deploy" / "health.db"
    db.parent.mkdir()
    result = run("selfcheck", "--json", "--store", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == DONE
    with sqlite3.connect(db) as conn:
        sites = {row[0] for row in conn.execute("SELECT DISTINCT site FROM incidents")}
        alerts = conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
    assert len(sites) == 1 and next(iter(sites)).startswith("selfcheck-")  # a site of its own
    assert alerts == 1


def test_each_value_is_computed_from_what_happened(run_all: Callable[..., list], tmp_path: Path) -> None:
    """Break one stage at a time through settings: exactly the broken stages read "false"."""
    write(tmp_path / "blind.toml", "api_error_min_count = 100000\nupload_min_failures = 100000\n")
    write(
        tmp_path / "words.toml",
        '[notice_overrides.uploads]\ntitle = "Server error 503"\nmessage = "Your upload failed because of a bug."\n',
    )
    write(
        tmp_path / "calm.toml",
        "api_error_critical_ratio = 0.99\nupload_critical_ratio = 0.99\nescalate_after = 100000.0\n",
    )
    blind, words, calm = run_all(
        *(("selfcheck", "--json", "--config", f"{name}.toml") for name in ("blind", "words", "calm"))
    )

    # Detection cannot happen: nothing downstream can either.
    assert blind.returncode == 1
    assert json.loads(blind.stdout) == {
        "status": "Support System Stage 5 Not Completed",
        **dict.fromkeys(KEYS, "false"),
    }
    assert "no bundled check opened an incident" in blind.stderr
    assert 'no notice was shown at "uploads"' in blind.stderr
    assert "no ⚡ Health Alert was raised" in blind.stderr
    assert "Traceback" not in blind.stderr

    # Words that break the rules: only messaging fails.
    assert words.returncode == 1
    assert json.loads(words.stdout) == {
        "status": "Support System Stage 5 Not Completed",
        "proactive_health_monitoring_operational": "true",
        "user_preemptive_messaging_operational": "false",
        "admin_alerts_operational": "true",
    }
    assert "wording rules" in words.stderr and "number" in words.stderr

    # No critical line is ever crossed: only admin alerts fail.
    assert calm.returncode == 1
    assert json.loads(calm.stdout) == {
        "status": "Support System Stage 5 Not Completed",
        "proactive_health_monitoring_operational": "true",
        "user_preemptive_messaging_operational": "true",
        "admin_alerts_operational": "false",
    }
    assert "no ⚡ Health Alert was raised" in calm.stderr


@pytest.mark.parametrize(("title", "message"), [texts[s] for texts in (*TEMPLATES.values(), DEFAULT) for s in texts])
def test_the_bundled_words_pass_the_selfchecks_rules(title: str, message: str) -> None:
    assert notice_problems(title, message) == []


def test_the_rules_catch_what_the_notice_tests_catch() -> None:
    assert notice_problems("Uploads failed", "Please retry.")
    assert notice_problems("Uploads", "Error 503 on /media-upload.")
    assert notice_problems("Uploads", "It was your fault.")
    assert notice_problems("UPLOADS", "Please retry shortly")
