"""``replay``: an access log with a known outage in it, replayed through the checks."""

from __future__ import annotations

import gzip
import heapq
import json
import random
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nextmonth_health.cli._logs import Reason, Skip, parse

from .conftest import Run, one_line_error, run_cli, write
from .logs import NGINX_TIMED, NGINX_TIMED_FORMAT, START, LogInfo, Outage, long_query, write_log

WINDOW, COOLDOWN, TICK = 300, 300, 15
#: 09:10 to 09:20: seventy minutes into the log, after the hour that builds the baseline.
OUTAGE = Outage(START + 4200, START + 4800)
LINES, RATE = 34_000, 6.0  # about 95 minutes of log
MALFORMED_AT = (3, 17, 4_000, 20_000, 20_001)
#: What ``write_log`` writes at those lines (it picks a bad line by the line number).
DROPPED_BY_REASON = {"empty line": [3], "bad time": [17, 20_001], "unparseable": [4_000, 20_000]}


def seconds(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text).timestamp()


def as_json(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def dropped_by_reason(report: dict) -> dict[str, list[int]]:
    return {r["reason"]: r["lines"] for r in report["dropped_lines"]["reasons"]}


def found(report: dict) -> set[tuple[str, str]]:
    return {(i["check"], i["key"]) for i in report["incidents"]}


def assert_opened_during(report: dict, check: str, outage: Outage) -> None:
    """Found while it lasted: a robust line, whatever the detection statistics' exact timing."""
    opened = [seconds(i["opened_at"]) for i in report["incidents"] if i["check"] == check]
    assert opened and all(outage.start <= t <= outage.end for t in opened), report["incidents"]


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
    assert outage_report["durations"] == {"read": LINES - len(MALFORMED_AT), "missing": 0}
    assert outage_report["warnings"] == []


def test_dropped_lines_are_counted_by_reason_with_line_numbers(outage_report: dict, outage_text: str) -> None:
    dropped = outage_report["dropped_lines"]
    assert dropped["count"] == len(MALFORMED_AT) and dropped["failing"] == 0
    assert dropped_by_reason(outage_report) == DROPPED_BY_REASON
    assert [r["count"] for r in dropped["reasons"]] == [2, 2, 1]  # most first
    assert all(r["example"] for r in dropped["reasons"] if r["reason"] != "empty line")
    assert f"Dropped lines: {len(MALFORMED_AT)} of {LINES:,}, no failure (5xx) among them:" in outage_text
    assert "lines 17, 20001" in outage_text and "lines 4000, 20000" in outage_text and "line 3" in outage_text


def test_the_text_report(outage_text: str) -> None:
    assert "Incidents (2):" in outage_text
    assert "api_errors" in outage_text and "/media-upload" in outage_text and "upload_failures" in outage_text
    assert "Notices people would have seen" in outage_text and "Admin alerts (1):" in outage_text
    assert "⚡ Health Alert:" in outage_text
    assert "lines/s" in outage_text and "only built the" in outage_text


def test_only_the_first_five_lines_of_a_reason_are_listed(run: Run, tmp_path: Path) -> None:
    log = write_log(tmp_path / "noisy.log", lines=3_000, malformed_at=range(100, 2_600, 100))
    report = as_json(run("replay", "--json", str(log.path)))
    assert report["dropped_lines"]["count"] == 25
    assert dropped_by_reason(report) == {"unparseable": [100, 200, 300, 400, 500]}
    assert report["dropped_lines"]["reasons"][0]["count"] == 25


def test_long_query_strings_on_failing_requests_still_find_the_outage(run: Run, tmp_path: Path) -> None:
    """The middleware records paths without their query: so does replay, before any length check."""
    outage = Outage(START + 4200, START + 4680, route="/bookings/{n}", query=300)
    log = write_log(tmp_path / "queries.log", lines=LINES, rate=RATE, outage=outage)
    failing = [line for line in log.path.read_text(encoding="utf-8").splitlines() if '" 503 ' in line]
    assert len(failing) > 100 and all(len(line.split()[6]) > 300 for line in failing)  # each past max_key_length
    report = as_json(run("replay", "--json", str(log.path)))
    assert report["dropped_lines"] == {"count": 0, "failing": 0, "reasons": []} and report["dropped"] == {}
    assert ("api_errors", "/bookings") in found(report)
    assert_opened_during(report, "api_errors", outage)


def test_a_path_too_long_is_dropped_by_line_and_failing_ones_are_never_called_quiet(run: Run, tmp_path: Path) -> None:
    quiet = [{"time": START + t, "route": "/portal/home", "status": 200, "duration": 0.1} for t in range(0, 1200, 2)]
    long_path = "/bookings/" + "x" * 300
    failing = [
        {"time": START + 600 + t, "route": long_path + "?q=1", "status": 503, "duration": 1.0} for t in range(12)
    ]
    lines = [json.dumps(r) for r in sorted(quiet + failing, key=lambda r: r["time"])]
    path = write(tmp_path / "long.jsonl", "\n".join(lines) + "\n")
    numbers = [n for n, line in enumerate(lines, 1) if long_path in line]
    report = as_json(run("replay", "--json", "--warmup", "0", str(path)))
    assert report["requests"] == len(quiet) and report["incidents"] == []
    assert report["dropped_lines"]["count"] == report["dropped_lines"]["failing"] == 12
    (reason,) = report["dropped_lines"]["reasons"]
    assert (reason["reason"], reason["count"], reason["failing"], reason["lines"]) == (
        "path too long",
        12,
        12,
        numbers[:5],
    )
    assert "310 characters" in reason["example"]
    assert report["warnings"] == [
        "12 failing requests (5xx) could not be read (path too long: 12); an outage they were part of would not show here."
    ]
    text = run("replay", "--warmup", "0", str(path)).stdout
    assert "Nothing in this log would have troubled anyone" not in text
    assert "Incidents: none, but 12 failing requests (5xx) could not be read." in text
    assert "Warning: 12 failing requests (5xx) could not be read (path too long: 12)" in text
    assert "Dropped lines: 12 of 612, 12 failures (5xx) among them:" in text


@pytest.mark.parametrize(
    "tail",
    ['rt={took:.3f} uct="0.001" uht="0.002"', 'rt="{took:.3f}" uct="0.001"', '"-" "{took:.3f}"'],
    ids=["nginx-rt-uct", "quoted-rt", "bare-quoted"],
)
def test_request_times_after_quoted_fields_find_a_slow_dashboard(run: Run, tmp_path: Path, tail: str) -> None:
    slow = Outage(START + 4200, START + 4800, route="/dashboard", ratio=0.9, status=200, seconds=(4.0, 9.0))
    template = '{client} - {user} [{stamp}] "{method} {target} HTTP/1.1" {status} {size} "{referer}" "{agent}" ' + tail
    log = write_log(tmp_path / "slow.log", lines=LINES, rate=RATE, outage=slow, template=template)
    report = as_json(run("replay", "--json", str(log.path)))
    assert report["durations"] == {"read": LINES, "missing": 0} and report["warnings"] == []
    assert found(report) == {("dashboard_load", "/dashboard")}
    assert_opened_during(report, "dashboard_load", slow)


def test_log_format_reads_times_between_the_bytes_and_the_referer(run: Run, tmp_path: Path) -> None:
    """A real site's layout, given as its nginx.conf line: no converting the log by hand."""
    slow = Outage(START + 4200, START + 4800, route="/dashboard", ratio=0.9, status=200, seconds=(4.0, 9.0))
    log = write_log(tmp_path / "timed.log", lines=LINES, rate=RATE, outage=slow, template=NGINX_TIMED)
    result = run("replay", "--json", "--log-format", NGINX_TIMED_FORMAT, str(log.path))
    report = as_json(result)
    assert report["durations"] == {"read": LINES, "missing": 0} and report["warnings"] == []
    assert (
        report["log_format"]["dialect"] == "nginx" and report["log_format"]["reads"]["request time"] == "$request_time"
    )
    assert report["dropped_lines"]["count"] == 0
    assert found(report) == {("dashboard_load", "/dashboard")}
    assert_opened_during(report, "dashboard_load", slow)
    # Read as combined, the times sit where replay does not look: it says so rather than call them 0 s.
    plain = as_json(run("replay", "--json", str(log.path)))
    assert plain["durations"] == {"read": 0, "missing": LINES} and plain["incidents"] == []
    assert "Request durations could not be read" in plain["warnings"][0] and "--log-format" in plain["warnings"][0]


def test_an_apache_log_format_reads_microseconds_and_the_virtual_host_as_the_site(run: Run, tmp_path: Path) -> None:
    template = 'acme-studio.example:443 {client} - {user} [{stamp}] "{method} {target} HTTP/1.1" {status} {size} {us} "{referer}" "{agent}"'
    log = write_log(tmp_path / "vhost.log", lines=LINES, rate=RATE, outage=OUTAGE, template=template)
    fmt = 'LogFormat "%v:%p %h %l %u %t \\"%r\\" %>s %O %D \\"%{Referer}i\\" \\"%{User-Agent}i\\"" vhost_timed'
    result = run("replay", "--log-format", fmt, str(log.path))
    assert result.returncode == 0, result.stderr
    assert (
        "Read with --log-format (apache): time %t, virtual host %v, client %h, user %u, request %r, status %>s, request time %D."
        in result.stdout
    )
    report = as_json(run("replay", "--json", "--log-format", fmt, str(log.path)))
    assert report["durations"] == {"read": LINES, "missing": 0}
    assert found(report) == {
        ("api_errors", "/media-upload"),
        ("upload_failures", ""),
    }  # %D as seconds: a slow dashboard too
    assert {i["site"] for i in report["incidents"]} == {"acme-studio.example"}
    assert_opened_during(report, "api_errors", OUTAGE)


def test_a_bad_log_format_is_one_line_before_anything_is_read(run_all: Callable[..., list], tmp_path: Path) -> None:
    log = write(tmp_path / "access.log", '10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "GET / HTTP/1.1" 200 1\n')
    no_time, bad_directive, both, mismatch = run_all(
        ("replay", "--log-format", "$remote_addr $status", "missing.log"),
        ("replay", "--log-format", '%h %t "%r" %>s %Z', "missing.log"),
        ("replay", "--format", "json", "--log-format", NGINX_TIMED_FORMAT, str(log)),
        ("replay", "--log-format", NGINX_TIMED_FORMAT, str(log)),
    )
    one_line_error(no_time, "--log-format: the format has no time: add $time_local, $time_iso8601 or $msec")
    one_line_error(bad_directive, "--log-format: %Z is not an Apache LogFormat directive")
    one_line_error(both, "--format json and --log-format", "give one of them")
    one_line_error(mismatch, "no request found in 1 line", "line 1: unparseable", "do not match --log-format (nginx)")


def test_without_request_times_the_report_says_so(run: Run, tmp_path: Path) -> None:
    template = '{client} - {user} [{stamp}] "{method} {target} HTTP/1.1" {status} {size} "{referer}" "{agent}"'
    log = write_log(tmp_path / "untimed.log", lines=6_000, rate=6.0, template=template)
    report = as_json(run("replay", "--json", str(log.path)))
    assert report["durations"] == {"read": 0, "missing": 6_000}
    assert [w.split(":")[0] for w in report["warnings"]] == ["Request durations could not be read"]
    assert "the dashboard check was judged without them" in report["warnings"][0]
    text = run("replay", str(log.path)).stdout
    assert (
        "Warning: Request durations could not be read" in text and "request times read on 0 of 6,000 requests" in text
    )
    assert (
        "Nothing in this log would have troubled anyone" not in text
        and "Incidents: none (see the warning above)." in text
    )


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
    assert report["dropped_lines"] == outage_report["dropped_lines"]


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
    result = run(
        "replay", "--json", "--progress", "--warmup", "600", "--config", str(tmp_path / "lenient.toml"), str(log.path)
    )
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


STAMP = "[05/Jan/2026:09:00:01 +0000]"
AT = 1767603601


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://x/" "Mozilla/4.08"',
            (971211336, "GET", "/apache_pb.gif", 200, None, "frank", None),
        ),
        (
            f'10.0.0.1 - - {STAMP} "POST /media-upload HTTP/1.1" 503 12 "-" "curl/8" 0.213 0.210',
            (AT, "POST", "/media-upload", 503, 0.213, "10.0.0.1", None),
        ),
        (
            f'10.0.0.1 - - {STAMP} "GET http://acme.test/portal?x=1 HTTP/1.1" 200 1 "-" "a" rt=0.5',
            (AT, "GET", "/portal", 200, 0.5, "10.0.0.1", None),
        ),
        (
            f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 200 1 "-" "say \\"hi\\"" us=250000',
            (AT, "GET", "/a", 200, 0.25, "10.0.0.1", None),
        ),
        (f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 200 1', (AT, "GET", "/a", 200, None, "10.0.0.1", None)),
        (f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 200 1 0.5', (AT, "GET", "/a", 200, 0.5, "10.0.0.1", None)),
        (
            f'10.0.0.1 - u7 {STAMP} "GET /b?{long_query(1, 400)[1:]} HTTP/1.1" 502 1 "-" "a" rt=0.120 uct="0.001" uht="-"',
            (AT, "GET", "/b", 502, 0.12, "u7", None),
        ),
        (
            f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 200 1 "-" "a" rt="0.120" uct="0.001"',
            (AT, "GET", "/a", 200, 0.12, "10.0.0.1", None),
        ),
        (
            f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 200 1 "-" "a b" "-" "0.120"',
            (AT, "GET", "/a", 200, 0.12, "10.0.0.1", None),
        ),
        (
            f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 200 1 rt="0.5" uct="0.1"',
            (AT, "GET", "/a", 200, 0.5, "10.0.0.1", None),
        ),
        (
            f'10.0.0.1 - - {STAMP} "GET /a%20b/%C3%A9?x=%20 HTTP/1.1" 200 1 "-" "a" -',
            (AT, "GET", "/a b/é", 200, None, "10.0.0.1", None),
        ),
        (
            '{"time": "2026-01-05T09:00:00Z", "route": "/bookings/4?x=1", "status": 500, "duration": 0.2, "user": "u1", "site": "s"}',
            (1767603600.0, "GET", "/bookings/4", 500, 0.2, "u1", "s"),
        ),
        (
            '{"time": 1767603600, "route": "/x", "status": 200, "duration": -1}',
            (1767603600.0, "GET", "/x", 200, None, None, None),
        ),
    ],
)
def test_parsing_good_lines(line: str, expected: tuple) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "reason", "status"),
    [
        ("", Reason.EMPTY, None),
        ("garbage", Reason.UNPARSEABLE, None),
        ('10.0.0.1 - - 05/Jan/2026 "GET /a HTTP/1.1" 503 1', Reason.UNPARSEABLE, 503),
        ('10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "-" 400 0 "-" "-"', Reason.NO_REQUEST, 400),
        ('10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"', Reason.NO_REQUEST, 400),
        ('::1 - - [05/Jan/2026:09:00:01 +0000] "OPTIONS * HTTP/1.0" 200 126 "-" "Apache"', Reason.NOT_A_PATH, 200),
        ('10.0.0.1 - - [31/Feb/2026:09:00:01 +0000] "GET / HTTP/1.1" 200 1', Reason.BAD_TIME, 200),
        ('10.0.0.1 - - [05/Foo/2026:09:00:01 +0000] "GET / HTTP/1.1" 502 1', Reason.BAD_TIME, 502),
        ('10.0.0.1 - - [05/Jan/2026:25:00:01 +0000] "GET / HTTP/1.1" 200 1', Reason.BAD_TIME, 200),
        ('10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "GET / HTTP/1.1" 999 1', Reason.BAD_STATUS, None),
        ('10.0.0.1 - - [05/Jan/2026:09:00:01 +0000] "GET / HTTP/1.1" - 1', Reason.BAD_STATUS, None),
        ('{"time": 1767603600, "route": "/x"}', Reason.BAD_STATUS, None),
        ('{"time": "yesterday", "route": "/x", "status": 504}', Reason.BAD_TIME, 504),
        ('{"time": 1767603600, "route": "x", "status": 200}', Reason.NOT_A_PATH, 200),
        ('{"time": 1767603600, "route": "/x", "status": 200, "site": 7}', Reason.BAD_SITE, 200),
        ("[1, 2]", Reason.UNPARSEABLE, None),
        ('{not json, "status": 503', Reason.UNPARSEABLE, 503),
    ],
)
def test_parsing_bad_lines_says_why(line: str, reason: Reason, status: int | None) -> None:
    skip = parse(line)
    assert isinstance(skip, Skip)
    assert (skip.reason, skip.status) == (reason, status)
    assert skip.detail or reason is Reason.EMPTY


# A real log ------------------------------------------------------------------------------

#: A real Apache combined log (Rootly-AI-Lab/logs-dataset, Apache-2.0; see tests/data/README.md).
REAL_LOG = Path(__file__).resolve().parents[1] / "data" / "rootly_apache_access.log.gz"
REAL_LINES, REAL_REQUESTS = 4_775, 4_558
#: What the real log holds that no application ever saw: Apache's own "OPTIONS *" pings
#: and HTTP/2 prefaces ("PRI *"), which name no path, and bytes that were no HTTP request
#: (TLS handshakes on the HTTP port, timeouts, probes).
REAL_DROPPED = {"not a path": 189, "no request line": 28}
APACHE_COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"'


def real_lines() -> list[str]:
    with gzip.open(REAL_LOG, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def clf_seconds(line: str) -> float:
    return datetime.strptime(line[line.index("[") + 1 : line.index("]")], "%d/%b/%Y:%H:%M:%S %z").timestamp()


def test_every_line_of_the_real_log_is_read_or_genuinely_unusable() -> None:
    """Line by line: the only lines dropped are ones the application behind Apache never saw."""
    lines = real_lines()
    assert len(lines) == REAL_LINES
    skipped: dict[Reason, list[str]] = {}
    for line in lines:
        event = parse(line)
        if isinstance(event, Skip):
            skipped.setdefault(event.reason, []).append(line.split('"')[1])
        else:
            assert event[2].startswith("/") and "?" not in event[2] and event[4] is None
    assert {str(reason): len(requests) for reason, requests in skipped.items()} == REAL_DROPPED
    assert set(skipped[Reason.NOT_A_PATH]) == {"OPTIONS * HTTP/1.0", "PRI * HTTP/2.0"}
    assert not any(r.count(" ") == 2 and r.split(" ")[2].startswith("HTTP/") for r in skipped[Reason.NO_REQUEST])


@pytest.mark.parametrize("how", [(), ("--log-format", APACHE_COMBINED)], ids=["combined", "log-format"])
def test_the_real_log_replays_as_is_and_opens_nothing(run: Run, how: tuple[str, ...]) -> None:
    report = as_json(run("replay", "--json", *how, str(REAL_LOG)))
    print({r["reason"]: (r["count"], r["lines"]) for r in report["dropped_lines"]["reasons"]})
    assert (report["lines"], report["requests"]) == (REAL_LINES, REAL_REQUESTS)
    assert {r["reason"]: r["count"] for r in report["dropped_lines"]["reasons"]} == REAL_DROPPED
    assert dropped_by_reason(report) == {
        "not a path": [25, 26, 28, 35, 36],
        "no request line": [137, 138, 145, 226, 292],
    }
    assert report["dropped_lines"]["failing"] == 0 and report["dropped"] == {} and report["out_of_order"] == 0
    assert report["incidents"] == [] and report["alerts"] == [] and report["notices"] == []
    assert report["durations"] == {"read": 0, "missing": REAL_REQUESTS}  # combined format has no request time
    assert len(report["warnings"]) == 1 and report["warnings"][0].startswith("Request durations could not be read")


def test_an_outage_injected_into_a_copy_of_the_real_log_is_found(run: Run, tmp_path: Path) -> None:
    """Two hours of /bookings traffic (1.5 requests a second) woven into the real log, by
    its own clients and agents, with ten minutes of 60 % 503s whose requests carry long
    query strings. The real log alone is too quiet (one request in twelve seconds) for any
    check to be sure of anything, so the route it fails on has to be added to it."""
    lines = real_lines()
    start = datetime.fromisoformat("2025-01-29T03:00:00+00:00").timestamp()
    outage = Outage(start + 4200, start + 4800, route="/bookings", ratio=0.6, query=250)
    rng = random.Random(7)
    clients = sorted({line.split(" ")[0] for line in lines})
    agents = sorted({line.rsplit('"', 2)[1] for line in lines if line.endswith('"')})
    added, t = [], start
    while t < start + 7200:
        t += rng.expovariate(1.5)
        target, status = f"/bookings/{rng.randint(1, 400)}", 200
        if outage.start <= t < outage.end and rng.random() < outage.ratio:
            target, status = target + long_query(len(added), outage.query), 503
        stamp = datetime.fromtimestamp(int(t), UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        added.append(
            f'{rng.choice(clients)} - - [{stamp}] "GET {target} HTTP/1.1" {status} 2048 "-" "{rng.choice(agents)}"'
        )
    copy = tmp_path / "with-outage.log.gz"
    with gzip.open(copy, "wt", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in heapq.merge(lines, added, key=clf_seconds))
    assert sum(" 503 " in line and len(line.split(" ")[6]) > 250 for line in added) > 200
    report = as_json(run("replay", "--json", str(copy)))
    assert (report["lines"], report["requests"]) == (REAL_LINES + len(added), REAL_REQUESTS + len(added))
    assert {r["reason"]: r["count"] for r in report["dropped_lines"]["reasons"]} == REAL_DROPPED
    assert report["dropped_lines"]["failing"] == 0
    assert ("api_errors", "/bookings") in found(report)
    assert {i["area"] for i in report["incidents"]} == {"bookings"}
    assert_opened_during(report, "api_errors", outage)
