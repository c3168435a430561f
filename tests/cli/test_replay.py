"""``replay``: an access log with a known outage in it, replayed through the checks."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from nextmonth_health.cli._logs import parse

from .conftest import Run, one_line_error, run_cli, write
from .logs import START, LogInfo, Outage, write_log

WINDOW, COOLDOWN, TICK = 300, 300, 15
#: 09:10 to 09:20: seventy minutes into the log, after the hour that builds the baseline.
OUTAGE = Outage(START + 4200, START + 4800)
LINES, RATE = 34_000, 6.0  # about 95 minutes of log
MALFORMED_AT = (3, 17, 4_000, 20_000, 20_001)


def seconds(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text).timestamp()


def as_json(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def assert_finds_exactly_the_outage(report: dict, outage: Outage) -> None:
    found = {(i["check"], i["key"]) for i in report["incidents"]}
    assert found == {("api_errors", "/media-upload"), ("upload_failures", "")}, report["incidents"]
    for incident in report["incidents"]:
        assert incident["area"] == "uploads" and incident["site"] == "default"
        assert outage.start <= seconds(incident["opened_at"]) <= outage.start + 4 * TICK
        assert outage.end <= seconds(incident["resolved_at"]) <= outage.end + WINDOW + COOLDOWN + 2 * TICK
        assert incident["peak_users"] > 10
    assert len(report["alerts"]) == 1  # one problem, one alert
    alert = report["alerts"][0]
    assert alert["message"].startswith("⚡ Health Alert:") and "/media-upload" in alert["message"]
    assert outage.start <= seconds(alert["raised_at"]) and alert["resolved_at"] is not None
    assert {n["area"] for n in report["notices"]} == {"uploads"}
    assert all(n["until"] is not None for n in report["notices"])


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def outage_log(logs: Path) -> LogInfo:
    return write_log(logs / "access.log", lines=LINES, rate=RATE, outage=OUTAGE, malformed_at=MALFORMED_AT)


@pytest.fixture(scope="module")
def outage_report(outage_log: LogInfo, logs: Path) -> dict:
    return as_json(run_cli("replay", "--json", str(outage_log.path), cwd=logs))


@pytest.fixture(scope="module")
def outage_text(outage_log: LogInfo, logs: Path) -> str:
    result = run_cli("replay", str(outage_log.path), cwd=logs)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_replay_finds_exactly_the_injected_outage(outage_report: dict) -> None:
    assert_finds_exactly_the_outage(outage_report, OUTAGE)
    assert outage_report["lines"] == LINES
    assert outage_report["requests"] == LINES - len(MALFORMED_AT)
    assert outage_report["uploads"] > 2000 and outage_report["logins"] > 800
    assert outage_report["out_of_order"] == 0 and outage_report["dropped"] == {}
    assert seconds(outage_report["start"]) >= START and outage_report["warmup_seconds"] == 3600


def test_malformed_lines_are_counted_and_reported_with_line_numbers(outage_report: dict, outage_text: str) -> None:
    malformed = outage_report["malformed"]
    assert malformed["count"] == len(MALFORMED_AT)
    assert [m["line"] for m in malformed["first"]] == list(MALFORMED_AT)
    assert all(m["reason"] for m in malformed["first"])
    assert f"Malformed lines: {len(MALFORMED_AT)} (skipped)" in outage_text
    assert "  line 17: " in outage_text and "  line 20001: " in outage_text


def test_the_text_report(outage_text: str) -> None:
    assert "Incidents (2):" in outage_text
    assert "api_errors" in outage_text and "/media-upload" in outage_text and "upload_failures" in outage_text
    assert "Notices people would have seen" in outage_text and "Admin alerts (1):" in outage_text
    assert "⚡ Health Alert:" in outage_text
    assert "lines/s" in outage_text and "only built the" in outage_text


def test_only_the_first_ten_malformed_lines_are_listed(run: Run, tmp_path: Path) -> None:
    log = write_log(tmp_path / "noisy.log", lines=3_000, malformed_at=range(100, 2_600, 100))
    report = as_json(run("replay", "--json", str(log.path)))
    assert report["malformed"]["count"] == 25
    assert [m["line"] for m in report["malformed"]["first"]] == list(range(100, 1_100, 100))


def test_json_lines_find_the_same_outage(run: Run, tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.jsonl", lines=LINES, rate=RATE, outage=OUTAGE, fmt="json")
    assert_finds_exactly_the_outage(as_json(run("replay", "--json", str(log.path))), OUTAGE)


def test_a_gzipped_log_replays_the_same(run: Run, outage_log: LogInfo, outage_report: dict, tmp_path: Path) -> None:
    packed = tmp_path / "access.log.gz"
    with open(outage_log.path, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    report = as_json(run("replay", "--json", str(packed)))

    def without_ids(incidents: list[dict]) -> list[dict]:
        return [{k: v for k, v in i.items() if k != "id"} for i in incidents]

    assert without_ids(report["incidents"]) == without_ids(outage_report["incidents"])
    assert report["malformed"] == outage_report["malformed"]


def test_stdin(run: Run, outage_log: LogInfo) -> None:
    head = "".join(outage_log.path.read_text(encoding="utf-8").splitlines(keepends=True)[:500])
    report = as_json(run("replay", "--json", "-", stdin=head))
    assert report["lines"] == 500 and report["requests"] == 500 - 2


def test_settings_from_the_config_are_the_ones_replayed(run: Run, tmp_path: Path) -> None:
    """A short log, judged after ten minutes: found with the defaults, not with lenient settings."""
    outage = Outage(START + 1200, START + 1500)
    log = write_log(tmp_path / "short.log", lines=15_000, rate=6.0, outage=outage)
    found = as_json(run("replay", "--json", "--warmup", "600", str(log.path)))
    assert {i["check"] for i in found["incidents"]} == {"api_errors", "upload_failures"}
    write(tmp_path / "lenient.toml", "api_error_min_count = 100000\nupload_min_failures = 100000\n")
    result = run("replay", "--json", "--progress", "--warmup", "600", "--config", str(tmp_path / "lenient.toml"), str(log.path))
    assert as_json(result)["incidents"] == []
    assert "Replaying short.log" in result.stderr  # the progress bar writes to stderr only


def test_a_quiet_log_has_no_incidents(run: Run, tmp_path: Path) -> None:
    log = write_log(tmp_path / "quiet.log", lines=15_000, rate=6.0)
    report = as_json(run("replay", "--json", "--warmup", "600", str(log.path)))
    assert report["incidents"] == [] and report["alerts"] == [] and report["notices"] == []
    assert report["evaluations"] > 100


def test_out_of_order_lines_are_counted_not_fatal(run: Run, tmp_path: Path) -> None:
    lines = [json.dumps({"time": START + t, "route": "/portal", "status": 200}) for t in (0, 30, 60, 5, 90, 120)]
    path = write(tmp_path / "shuffled.jsonl", "\n".join(lines) + "\n")
    report = as_json(run("replay", "--json", "--warmup", "0", str(path)))
    assert report["out_of_order"] == 1 and report["requests"] == 6


def test_bad_input_is_one_line(run: Run, tmp_path: Path) -> None:
    one_line_error(run("replay", "missing.log"), "missing.log", "no such file")
    one_line_error(run("replay", str(tmp_path)), "directory")
    garbage = write(tmp_path / "garbage.txt", "hello\nworld\n")
    one_line_error(run("replay", str(garbage)), "no request found", "line 1")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://x/" "Mozilla/4.08"',
            (971211336, "GET", "/apache_pb.gif", 200, 0.0, "frank", None),
        ),
        (
            '10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "POST /media-upload HTTP/1.1" 503 12 "-" "curl/8" 0.213 0.210',
            (1767603601, "POST", "/media-upload", 503, 0.213, "10.0.0.1", None),
        ),
        (
            '10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "GET http://acme.test/portal?x=1 HTTP/1.1" 200 1 "-" "a" rt=0.5',
            (1767603601, "GET", "/portal?x=1", 200, 0.5, "10.0.0.1", None),
        ),
        (
            '10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "GET /a HTTP/1.1" 200 1 "-" "say \\"hi\\"" us=250000',
            (1767603601, "GET", "/a", 200, 0.25, "10.0.0.1", None),
        ),
        ('10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "GET /a HTTP/1.1" 200 1', (1767603601, "GET", "/a", 200, 0.0, "10.0.0.1", None)),
        (
            '{"time": "2026-01-05T09:00:00Z", "route": "/bookings/4", "status": 500, "duration": 0.2, "user": "u1", "site": "s"}',
            (1767603600.0, "GET", "/bookings/4", 500, 0.2, "u1", "s"),
        ),
    ],
)
def test_parsing_good_lines(line: str, expected: tuple) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        '10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "-" 400 0 "-" "-"',
        '10.0.0.1 - - [31/Feb/2026:09:00:01 +0000] "GET / HTTP/1.1" 200 1',
        '10.0.0.1 - - [05/Foo/2026:09:00:01 +0000] "GET / HTTP/1.1" 200 1',
        '10.0.0.1 - - [05/Jan/2026:25:00:01 +0000] "GET / HTTP/1.1" 200 1',
        '{"time": 1767603600, "route": "/x"}',
        '{"time": "yesterday", "route": "/x", "status": 200}',
        '{"time": 1767603600, "route": "x", "status": 200}',
        "[1, 2]",
        "{not json",
    ],
)
def test_parsing_bad_lines_says_why(line: str) -> None:
    reason = parse(line)
    assert isinstance(reason, str) and reason
