"""Access logs with a known story, for the ``replay`` tests and for measuring it.

``write_log`` writes nginx combined-format lines (with ``$request_time`` at the end) for a
site's ordinary day, with one injected outage: a share of ``/media-upload`` POSTs answer
503 between two known moments (or another route, status and slowness: a slow dashboard is
an outage of 200s that take seconds). Malformed lines can be sprinkled in at known line
numbers, and ``template`` writes the same story in another layout.

    python tests/cli/logs.py /tmp/access.log --lines 1000000     # for measuring replay
    python tests/cli/logs.py /tmp/timed.log --layout nginx-timed # replay it with --log-format "$(...)"
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterable
from pathlib import Path

from attrs import frozen

#: 2026-01-05 08:00:00 UTC, a Monday morning.
START = 1_767_600_000

ROUTES = (
    # method, path (``{n}`` gets a number), weight, bytes
    ("GET", "/portal/home", 30, 5120),
    ("GET", "/bookings/{n}", 22, 2048),
    ("GET", "/dashboard", 13, 8192),
    ("POST", "/media-upload", 10, 64),
    ("GET", "/static/app.{n}.js", 18, 40960),
    ("POST", "/login", 4, 128),
    ("GET", "/account", 3, 1024),
)
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
)
BAD_LINES = (
    "this is not a log line",
    '10.1.2.3 - - [05/Jan/2026:99:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "-"',
    '10.1.2.3 - - [05/Jan/2026:10:00:00 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"',
    "",
)


@frozen
class Outage:
    start: float
    end: float
    route: str = "/media-upload"
    ratio: float = 0.6
    status: int = 503
    seconds: tuple[float, float] = (0.5, 3.0)
    #: The length of a query string added to the requests the outage hits (0: none).
    query: int = 0


#: The layout ``write_log`` writes by default: nginx combined, then ``$request_time``.
COMBINED = '{client} - {user} [{stamp}] "{method} {target} HTTP/1.1" {status} {size} "{referer}" "{agent}" {took:.3f}'
#: A real site's nginx layout: the request and upstream times between the bytes and the referer.
NGINX_TIMED = '{client} - {user} [{stamp}] "{method} {target} HTTP/1.1" {status} {size} {took:.3f} {upstream} "{referer}" "{agent}"'
NGINX_TIMED_FORMAT = (
    'log_format timed \'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '$request_time $upstream_response_time "$http_referer" "$http_user_agent"\';'
)


@frozen
class LogInfo:
    path: Path
    lines: int
    start: float
    end: float
    outage: Outage | None
    malformed_lines: tuple[int, ...]


def _stamp(t: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))


def long_query(n: int, length: int) -> str:
    """A query string of ``length`` characters, different for each ``n``, as search forms and trackers write."""
    head = f"?from=2026-01-05&to=2026-01-12&ref={n:08x}&utm_source=newsletter&token="
    return head + ("f3a9c1e07b" * (length // 10 + 1))[: max(0, length - len(head))]


def _upstream(n: int, took: float) -> str:
    """``$upstream_response_time``: one time, or two when a first upstream failed over."""
    return f"{took * 0.4:.3f}, {took * 0.5:.3f}" if n % 50 == 0 else f"{took * 0.9:.3f}"


def write_log(
    path: Path,
    *,
    lines: int = 50_000,
    rate: float = 10.0,
    start: int = START,
    outage: Outage | None = None,
    malformed_at: Iterable[int] = (),
    users: int = 300,
    login_failures: float = 0.02,
    fmt: str = "combined",
    template: str = COMBINED,
    seed: int = 1,
) -> LogInfo:
    """Write ``lines`` lines at about ``rate`` per second from ``start``; returns what is in it."""
    rng = random.Random(seed)
    bad = set(malformed_at)
    weights = [w for _, _, w, _ in ROUTES]
    people = [f"10.{n // 250}.{n % 250}.{(n * 7) % 250 + 1}" for n in range(users)]
    named = {p: f"member-{n:04d}" for n, p in enumerate(people) if n % 3 == 0}  # some signed in
    written = 0
    t = float(start)
    with open(path, "w", encoding="utf-8") as out:
        while written < lines:
            t += rng.expovariate(rate)
            second = int(t)
            stamp = _stamp(second)
            written += 1
            if written in bad:
                out.write(BAD_LINES[written % len(BAD_LINES)] + "\n")
                continue
            method, route, _, size = rng.choices(ROUTES, weights)[0]
            target = route.replace("{n}", str(rng.randint(1, 500)))
            client = rng.choice(people)
            status = 201 if method == "POST" and route == "/media-upload" else 200
            took = rng.uniform(0.005, 0.25)
            if route == "/login":
                status = 401 if rng.random() < login_failures else 200
            if (
                outage is not None
                and outage.start <= t < outage.end
                and route == outage.route
                and rng.random() < outage.ratio
            ):
                status, took = outage.status, rng.uniform(*outage.seconds)
                if outage.query:
                    target += long_query(written, outage.query)
            user = named.get(client, "-")
            if fmt == "json":
                record = {"time": t, "route": target, "status": status, "duration": round(took, 3), "method": method}
                if user != "-":
                    record["user"] = user
                out.write(json.dumps(record) + "\n")
            else:
                agent = rng.choice(AGENTS)
                fields = {
                    "client": client,
                    "user": user,
                    "stamp": stamp,
                    "method": method,
                    "target": target,
                    "status": status,
                }
                fields |= {"size": size, "referer": "https://acme-studio.example/", "agent": agent, "took": took}
                out.write(template.format(**fields, us=round(took * 1e6), upstream=_upstream(written, took)) + "\n")
    return LogInfo(path, written, float(start), t, outage, tuple(sorted(n for n in bad if n <= lines)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=12.0, help="lines per second of log time")
    parser.add_argument(
        "--layout", choices=["combined", "nginx-timed"], default="combined", help="nginx-timed: see NGINX_TIMED_FORMAT"
    )
    args = parser.parse_args()
    span = args.lines / args.rate
    info = write_log(
        args.path,
        lines=args.lines,
        rate=args.rate,
        outage=Outage(START + span * 0.6, START + span * 0.6 + 900),
        malformed_at=range(1000, args.lines, 100_000),
        template={"combined": COMBINED, "nginx-timed": NGINX_TIMED}[args.layout],
    )
    print(f"{info.lines:,} lines, {(info.end - info.start) / 3600:.1f} h, outage {info.outage}")
