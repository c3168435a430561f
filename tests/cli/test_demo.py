"""``demo``: the story on a fake clock (what CI and ``make demo`` run), and the live site."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nextmonth_health.plugins.cinematic import TEMPLATES


def test_demo_fast_tells_the_whole_story(run_all: Callable[..., list], tmp_path: Path) -> None:
    (tmp_path / "blind.toml").write_text(
        "upload_min_failures = 100000\napi_error_min_count = 100000\n", encoding="utf-8"
    )
    result, blind = run_all(("demo", "--fast"), ("demo", "--fast", "--config", "blind.toml"))
    # It doubles as a smoke test: a story that cannot happen fails loudly.
    assert blind.returncode == 1
    assert "the failing uploads were never detected" in blind.stderr
    (tmp_path / "blind.toml").unlink()

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # detected -> notice shown and alert raised (together when critical at once) -> recovered,
    # for uploads and then the dashboard
    order = [out.index(marker) for marker in ("DETECTED", "USER NOTICE", "RESOLVED", "NOTICE GONE", "CLEARED")]
    assert order == sorted(order), out
    assert out.index("DETECTED") < out.index("ADMIN ALERT") < out.index("RESOLVED"), out
    for area in ("uploads", "dashboard"):
        assert f'USER NOTICE  at "{area}"' in out
        assert f'NOTICE GONE  people at "{area}"' in out
        assert any(title in out for title, _ in TEMPLATES[area].values()), area
    assert out.count("ADMIN ALERT") == 2 and "SAME ALERT" in out  # one problem, one alert
    assert out.count("⚡ Health Alert:") == 2 and "Impact detected for" in out
    assert "Dashboard load times on /dashboard have exceeded safe thresholds." in out
    assert "The quiet spell is over" in out and "0 incidents." in out
    assert "The story played out" in out
    stamps = re.findall(r"^(Mon|Tue) (\d\d:\d\d:\d\d)", out, re.MULTILINE)
    assert stamps == sorted(stamps), "the timeline runs forwards"
    # The embedded default store, SQLite, in a temporary directory of its own: not the
    # working directory, and gone at exit.
    store = re.search(r"Store: sqlite:///(\S+)", out)
    assert store is not None, out
    path = Path(store.group(1))
    assert path.name == "health.db" and tmp_path not in path.parents
    assert not path.exists(), "removed at exit"
    assert list(tmp_path.iterdir()) == []


def test_live_demo_serves_the_pages_and_stops_cleanly_on_ctrl_c(start: Callable[..., Any], tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    demo = start("demo", "--port", "0", "--store", f"sqlite:///{db}")
    user_page = demo.wait_for("User page:").split()[-1]
    admin_line = demo.wait_for("Admin view:")
    token = re.search(r"token ([0-9a-f]{32})", admin_line).group(1)
    base = user_page.rstrip("/")
    with urllib.request.urlopen(user_page, timeout=10) as response:
        assert response.status == 200 and b"Acme Studio" in response.read()
    with urllib.request.urlopen(f"{base}/health/notices?area=uploads", timeout=10) as response:
        assert json.loads(response.read()) == {"notices": []}
    request = urllib.request.Request(
        f"{base}/admin/system-health/api/incidents", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and "incidents" in json.loads(response.read())
    demo.wait_for("A quiet spell")
    code, out, err = demo.stop(signal.SIGINT)
    assert code == 0, out + err
    assert "Stopped cleanly after" in out
    assert "Traceback" not in err
    assert db.exists(), "an explicit store is kept"
