"""`make demo` is the smoke test: the scripted incident plays out, start to finish."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nextmonth_health.plugins.cinematic import TEMPLATES

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "scripted_incident.py"


def test_scripted_incident_tells_the_whole_story() -> None:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        check=False,
        cwd=EXAMPLE.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    titles = [title for title, _ in TEMPLATES["uploads"].values()]
    assert any(title in out for title in titles), f"no uploads notice title in:\n{out}"
    assert "⚡ Health Alert:" in out
    assert "Impact detected for" in out
    assert "✓ Resolved:" in out
    assert "CLEARED" in out
    order = [out.index(marker) for marker in ("DETECTED", "USER NOTICE", "ADMIN ALERT", "RESOLVED", "CLEARED")]
    assert order == sorted(order), f"the timeline is out of order:\n{out}"
    assert "SMOKE TEST FAILED" not in out + result.stderr
