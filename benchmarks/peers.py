"""The libraries a user would otherwise reach for, set up to do the same job as ours.

"The same job" for one finished request: count it by route and status, and record its
duration by route. Neither peer can count *distinct users* (a label per user would be
unbounded cardinality), so they do strictly less work than ``record_request(...,
user=...)``; the comparison favours them.

Each peer gets its own registry / provider so that nothing global is touched, and no
exporter runs during timing (Prometheus is pull-based; the OpenTelemetry reader is an
in-memory one that is never collected while timing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Peer", "opentelemetry", "prometheus"]


@dataclass
class Peer:
    name: str
    version: str
    stmt: list[str]  # what a user writes per request, over (route, status, duration, user)
    env: dict[str, Any]
    note: str


def prometheus() -> Peer | None:
    try:
        import prometheus_client
        from prometheus_client import CollectorRegistry, Counter, Histogram
    except ImportError:
        return None
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests by route and status", ("route", "status"), registry=registry)
    latency = Histogram("http_request_duration_seconds", "Request duration by route", ("route",), registry=registry)
    return Peer(
        name="prometheus_client",
        version=getattr(prometheus_client, "__version__", None) or _dist_version("prometheus_client"),
        stmt=[
            "requests.labels(route, status).inc()",
            "latency.labels(route).observe(duration)",
        ],
        env={"requests": requests, "latency": latency},
        note="Counter{route,status}.inc() + Histogram{route}.observe(); no distinct users",
    )


def opentelemetry() -> Peer | None:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    except ImportError:
        return None
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("bench")
    requests = meter.create_counter("http.server.requests")
    latency = meter.create_histogram("http.server.duration", unit="s")
    return Peer(
        name="opentelemetry-sdk",
        version=_dist_version("opentelemetry-sdk"),
        stmt=[
            'requests.add(1, {"route": route, "status": status})',
            'latency.record(duration, {"route": route})',
        ],
        env={"requests": requests, "latency": latency, "_provider": provider, "_reader": reader},
        note="Counter.add(1, {route,status}) + Histogram.record({route}); no distinct users",
    )


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
