"""Access logs with a known story, for the ``replay`` tests and for measuring it.

``write_log`` writes nginx combined-format lines (with ``$request_time`` at the end) for a
site's ordinary day, with one injected outage: a share of ``/media-upload`` POSTs answer
503 between two known moments. Malformed lines can be sprinkled in at known line numbers.

    python tests/cli/logs.py /tmp/access.log --lines 1000000     # for measuring replay
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
            if outage is not None and outage.start <= t < outage.end and route == outage.route and rng.random() < outage.ratio:
                status, took = 503, rng.uniform(0.5, 3.0)
            user = named.get(client, "-")
            if fmt == "json":
                record = {"time": t, "route": target, "status": status, "duration": round(took, 3), "method": method}
                if user != "-":
                    record["user"] = user
                out.write(json.dumps(record) + "\n")
            else:
                out.write(
                    f'{client} - {user} [{stamp}] "{method} {target} HTTP/1.1" {status} {size} '
                    f'"https://acme-studio.example/" "{rng.choice(AGENTS)}" {took:.3f}\n'
                )
    return LogInfo(path, written, float(start), t, outage, tuple(sorted(n for n in bad if n <= lines)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=12.0, help="lines per second of log time")
    args = parser.parse_args()
    span = args.lines / args.rate
    info = write_log(
        args.path,
        lines=args.lines,
        rate=args.rate,
        outage=Outage(START + span * 0.6, START + span * 0.6 + 900),
        malformed_at=range(1000, args.lines, 100_000),
    )
    print(f"{info.lines:,} lines, {(info.end - info.start) / 3600:.1f} h, outage {info.outage}")
