"""Prometheus metrics of the API, in a registry of their own per app.

* ``asyncendpoints_http_submissions_total{name, outcome}``: requests to submit routes;
  outcome is ``accepted``, ``replayed`` (idempotency key seen), ``answered`` (by a
  precheck) or ``rejected``.
* ``asyncendpoints_http_rejections_total{reason}``: problems answered on the async
  routes, by reason (``validation``, ``too-large``, ``queue-full``, ``unauthorized``, ...).
* ``asyncendpoints_http_request_duration_seconds{method, route, status}``: latency of
  every request, by route template.
* the process, platform and GC collectors.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asyncendpoints.http.observer import Outcome

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods labelled as they are; any other is ``other`` (a label set stays bounded)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The API's metrics; also the :class:`~asyncendpoints.http.HttpObserver` of its routes."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.submissions = Counter(
            "asyncendpoints_http_submissions",
            "Requests to submit routes, by job name and outcome.",
            ["name", "outcome"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "asyncendpoints_http_rejections",
            "Problems answered on the async routes, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "asyncendpoints_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        # labelled children by label values: ``labels()`` validates and locks on each call
        self._submissions: dict[tuple[str, str], Any] = {}
        self._rejections: dict[str, Any] = {}
        self._latencies: dict[tuple[str, str, int], Any] = {}

    def submitted(self, name: str, outcome: Outcome) -> None:
        child = self._submissions.get((name, outcome))
        if child is None:
            child = self._submissions[(name, outcome)] = self.submissions.labels(name, outcome)
        child.inc()

    def rejected(self, reason: str) -> None:
        child = self._rejections.get(reason)
        if child is None:
            child = self._rejections[reason] = self.rejections.labels(reason)
        child.inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._latencies.get(key)
        if child is None:
            child = self._latencies[key] = self.latency.labels(method, route, str(status))
        child.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times every HTTP request (pure ASGI: nothing is buffered)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe(method, route, status, time.perf_counter() - start)


__all__ = ["LATENCY_BUCKETS", "METHODS", "Metrics", "MetricsMiddleware"]
