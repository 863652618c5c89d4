"""Worker metrics, kept as plain numbers and turned into Prometheus families on scrape.

Every job touches a counter and a histogram; ``prometheus_client``'s own metric objects
take a lock per update, which at thousands of jobs a second is a visible cost. Here an
update is a dict increment and a bisect on the event loop's thread, and
:class:`WorkerCollector` renders the numbers only when ``/metrics`` is read.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from asyncendpoints.types import JobName

DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
CLAIM_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
)  # fmt: skip

COMPLETED = "completed"
"""The result was stored."""
RETRIED = "retried"
"""The handler raised; the job is Scheduled for another attempt."""
FAILED = "failed"
"""The handler raised and the job is Failed (permanent error or retries exhausted)."""
LOST = "lost"
"""The lease stopped being current (canceled, recovered elsewhere): result dropped."""
RELEASED = "released"
"""Cut short by shutdown and put back at the front of its queue."""
OUTCOMES = (COMPLETED, RETRIED, FAILED, LOST, RELEASED)


class Histogram:
    """Bucket counts (not cumulative), their sum and the observation count."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, as Prometheus wants them."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == math.inf else repr(bound), float(running)))
        return out


class WorkerMetrics:
    """The numbers of one worker; cheap to update from the hot path."""

    def __init__(self, names: Iterable[JobName]) -> None:
        self.jobs: dict[tuple[JobName, str], int] = {}
        self.durations: dict[JobName, Histogram] = {n: Histogram(DURATION_BUCKETS) for n in names}
        self.claim_latency = Histogram(CLAIM_BUCKETS)
        self.claimed = 0
        self.store_errors = 0

    def count(self, name: JobName, outcome: str, n: int = 1) -> None:
        key = (name, outcome)
        self.jobs[key] = self.jobs.get(key, 0) + n

    def outcome(self, outcome: str, name: JobName | None = None) -> int:
        """How many jobs ended with ``outcome`` (of one name, or of all)."""
        return sum(v for (n, o), v in self.jobs.items() if o == outcome and name in (None, n))

    def observe_duration(self, name: JobName, seconds: float) -> None:
        hist = self.durations.get(name)
        if hist is None:
            hist = self.durations[name] = Histogram(DURATION_BUCKETS)
        hist.observe(seconds)

    def observe_claim(self, seconds: float, claimed: int) -> None:
        self.claim_latency.observe(seconds)
        self.claimed += claimed


class WorkerCollector(Collector):
    """Renders a :class:`WorkerMetrics` (and live gauges) at scrape time."""

    def __init__(
        self,
        metrics: WorkerMetrics,
        *,
        in_flight: Callable[[], int],
        concurrency: int,
        draining: Callable[[], bool],
    ) -> None:
        self.metrics = metrics
        self.in_flight = in_flight
        self.concurrency = concurrency
        self.draining = draining

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        jobs = CounterMetricFamily(
            "asyncendpoints_worker_jobs",
            "Jobs this worker finished, by job name and outcome.",
            labels=["name", "outcome"],
        )
        for (name, outcome), value in sorted(m.jobs.items()):
            jobs.add_metric([name, outcome], value)
        yield jobs
        durations = HistogramMetricFamily(
            "asyncendpoints_worker_job_duration_seconds",
            "Time spent in the handler per attempt, by job name.",
            labels=["name"],
        )
        for name, hist in sorted(m.durations.items()):
            durations.add_metric([name], hist.buckets(), hist.total)
        yield durations
        claim = HistogramMetricFamily(
            "asyncendpoints_worker_claim_latency_seconds",
            "Round trip of one batch claim to the store.",
        )
        claim.add_metric([], m.claim_latency.buckets(), m.claim_latency.total)
        yield claim
        yield CounterMetricFamily(
            "asyncendpoints_worker_claimed_jobs", "Jobs claimed from the store.", value=m.claimed
        )
        yield CounterMetricFamily(
            "asyncendpoints_worker_store_errors",
            "Store calls that failed (connection lost, timeout).",
            value=m.store_errors,
        )
        yield GaugeMetricFamily(
            "asyncendpoints_worker_jobs_in_flight", "Jobs running now.", value=self.in_flight()
        )
        yield GaugeMetricFamily(
            "asyncendpoints_worker_concurrency", "Jobs this worker runs at once at most.",
            value=self.concurrency,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "asyncendpoints_worker_draining", "1 once shutdown began.", value=int(self.draining())
        )


def build_registry(collector: WorkerCollector, *, process: bool = True) -> CollectorRegistry:
    """A registry of its own (several workers may share a test process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process:
        from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

        for default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(default)
    return registry


__all__ = [
    "COMPLETED",
    "FAILED",
    "LOST",
    "OUTCOMES",
    "RELEASED",
    "RETRIED",
    "Histogram",
    "WorkerCollector",
    "WorkerMetrics",
    "build_registry",
]
