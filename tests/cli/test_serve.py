"""``serve``: the standalone service evaluates what web workers record into a shared store."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import nextmonth_health as nmh

from .conftest import Run, one_line_error, write

TOKEN = "test-admin-token-0123456789"


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_serve_refuses_a_memory_store(run: Run) -> None:
    one_line_error(run("serve", "--store", "memory://"), "memory://", "sqlite:///")


def test_serve_refuses_a_short_admin_token(run: Run, tmp_path: Path) -> None:
    one_line_error(run("serve", "--store", f"sqlite:///{tmp_path / 'h.db'}", "--admin-token", "short"), "16 characters")


def test_serve_refuses_a_busy_port(run: Run, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(
            run("serve", "--store", f"sqlite:///{tmp_path / 'h.db'}", "--port", str(port)), f":{port}", "--port"
        )


def test_serve_evaluates_what_a_worker_records(start, tmp_path: Path) -> None:
    db = tmp_path / "health.db"
    store = f"sqlite:///{db}"
    write(tmp_path / "fast.toml", "tick_seconds = 1\n")
    service = start("serve", "--store", store, "--config", "fast.toml", "--port", "0", "--admin-token", TOKEN)
    base = service.wait_for("Listening on").split()[2].rstrip(";")
    assert get(f"{base}/")[0] == 200
    assert get(f"{base}/admin/system-health/api/incidents")[0] == 401  # an authoriser, and no token

    # A web worker somewhere: records into the same file, never evaluates.
    worker = nmh.Monitor("acme-studio", store=store, load_entrypoints=False)
    for n in range(15):
        worker.record_request("/media-upload", status=503, duration=0.2, user=f"u-{n}")
        worker.record_upload(ok=False, user=f"u-{n}")
    worker.flush()
    worker.store.close()

    deadline = time.monotonic() + 15
    incidents: list[dict] = []
    while time.monotonic() < deadline and not incidents:
        status, body = get(f"{base}/admin/system-health/api/incidents", TOKEN)
        assert status == 200, body
        incidents = [i for i in body["incidents"] if i["site"] == "acme-studio" and i["status"] == "open"]
        time.sleep(0.3)
    assert {i["check"] for i in incidents} >= {"upload_failures"}, incidents
    notices = {}
    while time.monotonic() < deadline and not notices.get("notices"):
        notices = get(f"{base}/health/notices?area=uploads&site=acme-studio")[1]
        time.sleep(0.3)
    assert notices["notices"] and notices["notices"][0]["area"] == "uploads"

    code, out, err = service.stop(signal.SIGTERM)
    assert code == 0, out + err
    assert "Stopped." in out and "Traceback" not in err


def test_serve_without_a_token_keeps_the_admin_view_closed(start, tmp_path: Path) -> None:
    service = start("serve", "--store", f"sqlite:///{tmp_path / 'h.db'}", "--port", "0")
    closed = service.wait_for("Admin view:")
    assert "closed (403)" in closed and "--admin-token" in closed
    base = service.wait_for("Listening on").split()[2].rstrip(";")
    status, body = get(f"{base}/admin/system-health/api/alerts")
    assert status == 403 and "closed" in body["error"]
    code, out, _ = service.stop(signal.SIGINT)
    assert code == 0 and "Stopped." in out


def test_serve_takes_the_token_from_the_environment(start, tmp_path: Path) -> None:
    service = start(
        "serve", "--store", f"sqlite:///{tmp_path / 'h.db'}", "--port", "0", env={"NEXTMONTH_HEALTH_ADMIN_TOKEN": TOKEN}
    )
    assert "Bearer token" in service.wait_for("Admin view:")
    base = service.wait_for("Listening on").split()[2].rstrip(";")
    assert get(f"{base}/admin/system-health/api/alerts", TOKEN)[0] == 200
    assert service.stop(signal.SIGINT)[0] == 0
