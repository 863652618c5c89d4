"""The controller's Prometheus metrics (served on ``controller_metrics_port``; 0 disables)."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("asyncendpoints.controller")

_POOL = ("namespace", "pool")

LEADER = Gauge(
    "asyncendpoints_controller_leader", "1 while this controller process holds the leader Lease."
)
DESIRED_REPLICAS = Gauge(
    "asyncendpoints_controller_desired_replicas", "Replicas the controller wants for a pool.", _POOL
)
CURRENT_REPLICAS = Gauge(
    "asyncendpoints_controller_current_replicas", "spec.replicas of a pool's Deployment.", _POOL
)
READY_REPLICAS = Gauge(
    "asyncendpoints_controller_ready_replicas", "Ready worker pods of a pool.", _POOL
)
QUEUED = Gauge("asyncendpoints_controller_queued_jobs", "Queued jobs of a pool's names.", _POOL)
IN_PROGRESS = Gauge(
    "asyncendpoints_controller_in_progress_jobs", "In-progress jobs of a pool's names.", _POOL
)
SCHEDULED = Gauge(
    "asyncendpoints_controller_scheduled_jobs",
    "Scheduled (retrying) jobs of a pool's names.",
    _POOL,
)
STORE_UP = Gauge(
    "asyncendpoints_controller_store_up", "1 when the pool's job store answered last time.", _POOL
)
SCALINGS = Counter(
    "asyncendpoints_controller_scalings",
    "Replica changes made, by direction.",
    (*_POOL, "direction"),
)
RECOVERED = Counter(
    "asyncendpoints_controller_recovered_jobs",
    "Jobs put back in the queue (or failed) after their worker was lost, by cause.",
    (*_POOL, "cause"),
)
RECONCILE_SECONDS = Histogram(
    "asyncendpoints_controller_reconcile_seconds",
    "Time of one reconciliation of a pool (stats, scaling, recovery, status).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter(
    "asyncendpoints_controller_errors", "Reconciliation errors, by kind.", (*_POOL, "kind")
)

_GAUGES = (
    DESIRED_REPLICAS,
    CURRENT_REPLICAS,
    READY_REPLICAS,
    QUEUED,
    IN_PROGRESS,
    SCHEDULED,
    STORE_UP,
)


def forget_pool(namespace: str, pool: str) -> None:
    """Drop a deleted pool's gauges (counters stay: they are cumulative)."""
    for gauge in _GAUGES:
        try:
            gauge.remove(namespace, pool)
        except KeyError:
            pass


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``port`` in a background thread (0: do nothing)."""
    if port:
        start_http_server(port, addr=address)
        log.info("metrics on :%d/metrics", port, extra={"port": port})
