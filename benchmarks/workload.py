"""The inputs every benchmark replays: pre-built, seeded, identical for every subject.

Traffic looks like a small NextMonth site: five routes (three of them the critical ones
the API error check watches), a thousand signed-in users, about 5 % of requests 5xx,
log-normal durations around 50 ms. Lists are built once, before any timing, so the timed
loops only read them.
"""

from __future__ import annotations

import math
import random

__all__ = [
    "ROUTES",
    "login_events",
    "mixed_events",
    "page_load_events",
    "request_events",
    "upload_events",
    "users",
]

ROUTES = ("/media-upload", "/bookings", "/portal", "/dashboard", "/login")
PAGES = ("/dashboard", "/portal", "/bookings")
SEED = 20240601


def users(n: int = 1000, prefix: str = "u-") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _status(rng: random.Random, error_rate: float) -> int:
    if rng.random() < error_rate:
        return rng.choice((500, 502, 503, 504))
    return rng.choices((200, 201, 204, 302, 304, 404), weights=(70, 5, 5, 8, 7, 5))[0]


def request_events(
    n: int = 10_000, *, n_users: int = 1000, error_rate: float = 0.05, seed: int = SEED
) -> list[tuple[str, int, float, str]]:
    """``(route, status, duration_seconds, user)`` tuples."""
    rng = random.Random(seed)
    people = users(n_users)
    return [
        (
            rng.choice(ROUTES),
            _status(rng, error_rate),
            rng.lognormvariate(math.log(0.05), 0.8),
            rng.choice(people),
        )
        for _ in range(n)
    ]


def login_events(n: int = 10_000, *, n_users: int = 1000, seed: int = SEED) -> list[tuple[bool, str]]:
    """``(ok, user)``: about 4 % failed sign-ins."""
    rng = random.Random(seed + 1)
    people = users(n_users)
    return [(rng.random() >= 0.04, rng.choice(people)) for _ in range(n)]


def upload_events(n: int = 10_000, *, n_users: int = 1000, seed: int = SEED) -> list[tuple[bool, str, int]]:
    """``(ok, user, size_bytes)``: about 3 % failed uploads of 10 kB..50 MB."""
    rng = random.Random(seed + 2)
    people = users(n_users)
    return [
        (
            rng.random() >= 0.03,
            rng.choice(people),
            int(rng.lognormvariate(math.log(2_000_000), 1.2)),
        )
        for _ in range(n)
    ]


def page_load_events(n: int = 10_000, *, n_users: int = 1000, seed: int = SEED) -> list[tuple[str, float, str]]:
    """``(page, seconds, user)``: log-normal load times around 1.2 s."""
    rng = random.Random(seed + 3)
    people = users(n_users)
    return [(rng.choice(PAGES), rng.lognormvariate(math.log(1.2), 0.5), rng.choice(people)) for _ in range(n)]


def mixed_events(n: int = 10_000, *, n_users: int = 1000, seed: int = SEED) -> list[tuple[int, tuple]]:
    """``(kind, args)`` with kind 0=request (85 %), 1=page load, 2=login, 3=upload (5 % each)."""
    rng = random.Random(seed + 4)
    requests = request_events(n, n_users=n_users, seed=seed)
    pages = page_load_events(n, n_users=n_users, seed=seed)
    logins = login_events(n, n_users=n_users, seed=seed)
    uploads = upload_events(n, n_users=n_users, seed=seed)
    events: list[tuple[int, tuple]] = []
    for i in range(n):
        r = rng.random()
        if r < 0.85:
            events.append((0, requests[i]))
        elif r < 0.90:
            events.append((1, pages[i]))
        elif r < 0.95:
            events.append((2, logins[i]))
        else:
            events.append((3, uploads[i]))
    return events
