"""``--log-format``: nginx ``log_format`` and Apache ``LogFormat`` strings, compiled and read."""

from __future__ import annotations

import pytest

from nextmonth_health.cli._log_format import LogFormatError, compile_log_format
from nextmonth_health.cli._logs import Reason, Skip

from .logs import NGINX_TIMED_FORMAT

STAMP = "[05/Jan/2026:09:00:01 +0000]"
AT = 1767603601
AGENT = '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"'
APACHE_COMBINED_D = '%h %l %u %t "%r" %>s %b %D "%{Referer}i" "%{User-agent}i"'
NGINX_JSON = (
    'log_format j escape=json \'{"time":"$time_iso8601","uri":"$request_uri","method":"$request_method",\'\n'
    '    \'"status":$status,"rt":$request_time,"host":"$host","ua":"$http_user_agent"}\';'
)


@pytest.mark.parametrize(
    ("fmt", "line", "expected"),
    [
        pytest.param(
            NGINX_TIMED_FORMAT,
            f'10.0.0.1 - - {STAMP} "GET /bookings/4?from=2026 HTTP/1.1" 503 12 0.213 0.010, 0.200 "-" {AGENT}',
            (AT, "GET", "/bookings/4", 503, 0.213, "10.0.0.1", None),
            id="nginx-line-times-before-referer",
        ),
        pytest.param(
            "'$remote_addr - $remote_user [$time_local] \"$request\" '\n     '$status $body_bytes_sent rt=$request_time uct=\"$upstream_connect_time\"'",
            f'10.0.0.1 - bob {STAMP} "POST /media-upload HTTP/1.1" 201 12 rt=0.500 uct="0.001"',
            (AT, "POST", "/media-upload", 201, 0.5, "bob", None),
            id="nginx-quoted-strings-only",
        ),
        pytest.param(
            '$remote_addr [$time_local] "$request" $status ${request_time}s $ssl_protocol $request_id',
            f'10.0.0.1 {STAMP} "GET /portal HTTP/2.0" 200 1.250s TLSv1.3 7f3a',
            (AT, "GET", "/portal", 200, 1.25, "10.0.0.1", None),
            id="nginx-bare-braces-and-unknown-variables",
        ),
        pytest.param(
            '$msec $status "$request_method $uri" $upstream_response_time $server_name',
            '1767603601.123 502 "GET /dashboard" 0.500, 1.250 : 0.250 Acme.Example:8443',
            (1767603601.123, "GET", "/dashboard", 502, 2.0, None, "acme.example"),
            id="nginx-msec-uri-upstream-sum-site",
        ),
        pytest.param(
            "$time_local $status $request $remote_user",
            "05/Jan/2026:09:00:01 +0000 404 GET /missing HTTP/1.1 -",
            (AT, "GET", "/missing", 404, None, None, None),
            id="nginx-unbracketed-time-unquoted-request",
        ),
        pytest.param(
            NGINX_JSON,
            '{"time":"2026-01-05T10:00:01+01:00","uri":"/login?next=%2F","method":"POST","status":401,"rt":0.031,'
            '"host":"shop.example","ua":"say \\"hi\\""}',
            (AT, "POST", "/login", 401, 0.031, None, "shop.example"),
            id="nginx-escape-json",
        ),
        pytest.param(
            '$http_x_forwarded_for - $remote_addr [$time_local] "$request" $status',
            f'203.0.113.9, 10.0.0.2 - 10.0.0.1 {STAMP} "GET /a HTTP/1.1" 200',
            (AT, "GET", "/a", 200, None, "203.0.113.9", None),
            id="nginx-forwarded-for-before-peer",
        ),
        pytest.param(
            APACHE_COMBINED_D,
            f'10.0.0.1 - - {STAMP} "GET /dashboard?tab=2 HTTP/1.1" 200 5120 3250000 "-" {AGENT}',
            (AT, "GET", "/dashboard", 200, 3.25, "10.0.0.1", None),
            id="apache-combined-microseconds",
        ),
        pytest.param(
            'LogFormat "%v:%p %h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\" %{ms}T" vhost_combined',
            f'acme.example:443 10.0.0.1 - ann {STAMP} "GET /a\\"b HTTP/1.1" 200 5 "-" "x \\"y\\"" 1200',
            (AT, "GET", '/a\\"b', 200, 1.2, "ann", "acme.example"),
            id="apache-logformat-line-vhost-ms",
        ),
        pytest.param(
            '%h %l %u %t \\"%r\\" %s %>s %b %T',
            f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 302 503 0 2',
            (AT, "GET", "/a", 503, 2.0, "10.0.0.1", None),
            id="apache-escaped-quotes-final-status-seconds",
        ),
        pytest.param(
            "%{%Y-%m-%d %H:%M:%S}t %>s %m %U %{us}T",
            "2026-01-05 09:00:01 500 PUT /media-upload 250000",
            (AT, "PUT", "/media-upload", 500, 0.25, None, None),
            id="apache-strftime-method-path",
        ),
        pytest.param(
            '%{msec}t %{X-Forwarded-For}i %a %>s %%done "%r" %D',
            '1767603601500 198.51.100.7 10.0.0.1 204 %done "DELETE /bookings/9 HTTP/1.1" 1500',
            (1767603601.5, "DELETE", "/bookings/9", 204, 0.0015, "198.51.100.7", None),
            id="apache-epoch-ms-forwarded-literal-percent",
        ),
    ],
)
def test_a_format_reads_its_lines(fmt: str, line: str, expected: tuple) -> None:
    assert compile_log_format(fmt).parse(line) == expected


def test_a_format_says_which_fields_it_reads() -> None:
    layout = compile_log_format(NGINX_TIMED_FORMAT)
    assert layout.dialect == "nginx"
    assert layout.reads == {
        "time": "$time_local",
        "client": "$remote_addr",
        "user": "$remote_user",
        "request": "$request",
        "status": "$status",
        "request time": "$request_time",
    }
    assert compile_log_format(APACHE_COMBINED_D).reads["request time"] == "%D"


def test_without_a_request_time_field_durations_are_unknown() -> None:
    layout = compile_log_format('%h %l %u %t "%r" %>s %b')
    assert layout.parse(f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 200 1') == (
        AT,
        "GET",
        "/a",
        200,
        None,
        "10.0.0.1",
        None,
    )


@pytest.mark.parametrize(
    ("line", "reason", "status"),
    [
        ("", Reason.EMPTY, None),
        (f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 503 1 0.2 - "-" {AGENT} extra', Reason.UNPARSEABLE, 503),
        (f'10.0.0.1 - - [05/Jan/2026 09:00:01] "GET /a HTTP/1.1" 504 1 0.2 - "-" {AGENT}', Reason.BAD_TIME, 504),
        (f'10.0.0.1 - - {STAMP} "GET /a HTTP/1.1" 000 1 0.2 - "-" {AGENT}', Reason.BAD_STATUS, None),
        (f'10.0.0.1 - - {STAMP} "\\x16\\x03\\x01" 400 1 0.000 - "-" "-"', Reason.NO_REQUEST, 400),
        (f'10.0.0.1 - - {STAMP} "CONNECT example.com:443 HTTP/1.1" 502 1 0.2 - "-" "-"', Reason.NOT_A_PATH, 502),
    ],
)
def test_a_line_the_format_cannot_read_says_why(line: str, reason: Reason, status: int | None) -> None:
    skip = compile_log_format(NGINX_TIMED_FORMAT).parse(line)
    assert isinstance(skip, Skip)
    assert (skip.reason, skip.status) == (reason, status)


def test_an_unreadable_virtual_host_drops_the_line() -> None:
    skip = compile_log_format('$host [$time_local] "$request" $status').parse(
        f'{"h" * 120} {STAMP} "GET / HTTP/1.1" 500'
    )
    assert isinstance(skip, Skip) and (skip.reason, skip.status) == (Reason.BAD_SITE, 500)


@pytest.mark.parametrize(
    ("fmt", "says"),
    [
        ("", "the format is empty"),
        ("   ", "the format is empty"),
        ("hello world", "no fields in 'hello world'"),
        ("$remote_addr [$time_local] $status", 'add "$request" (or $request_uri)'),
        ('$remote_addr "$request" $status', "add $time_local, $time_iso8601 or $msec"),
        ('%h %t "%r"', "add %>s"),
        ('%h "%r" %>s', "add %t"),
        ('[$time_local] "$request" $status$body_bytes_sent', "$status and $body_bytes_sent touch"),
        ('%t "%r" %>s %Z', "%Z is not an Apache LogFormat directive"),
        ('%t "%r" %>s %{Referer', "'%{' at character 13 is never closed"),
        ('%t "%r" %>s "%{Referer}"', "%{Referer} at character 14 needs a directive letter after it, e.g. %{Referer}i"),
        ('%t "%r" %>s 100%', "not an Apache directive (write %% for a percent sign)"),
        ('%t "%r" %>s %{fortnights}T', "the unit of %T must be s, ms or us"),
        ('%{week}t "%r" %>s', "a time layout needs strftime fields"),
        ('[$time_local] "$request" $status $', "'$' at character 34 is not followed by a variable name"),
        ('%t "%r" %>s $request_time', "mixes nginx $variables and Apache %directives"),
        ('log_format main \'[$time_local] "$request" $status', "a quote opened at character 17 is never closed"),
        ("log_format main;", "the log_format line has no format string"),
        ("log_format main '[$time_local] \"$request\" $status'; access_log off;", "unexpected text after ';'"),
        ("LogFormat combined", "the LogFormat line has no quoted format string"),
    ],
)
def test_a_format_replay_cannot_use_says_what_to_fix(fmt: str, says: str) -> None:
    with pytest.raises(LogFormatError) as error:
        compile_log_format(fmt)
    message = str(error.value)
    assert says in message and "\n" not in message
