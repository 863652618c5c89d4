"""The worker runtime: ``asyncendpoints worker module:app``.

A worker claims jobs of the names it serves in batches, runs their handlers with bounded
concurrency (async on the loop, sync in a thread pool), stores results through a
pipelining batcher, records failures (retry with backoff, or Failed), heartbeats its
leases, sweeps expired leases and dead workers' jobs, serves ``/healthz``, ``/readyz``
and ``/metrics``, and drains on SIGTERM.

Modules: :mod:`worker.runtime` (the :class:`Worker`: claim loop, lifecycle, shutdown),
:mod:`worker.jobs` (running one job and recording its outcome), :mod:`worker.claiming`
(the order of names to claim from), :mod:`worker.completions` (the batcher),
:mod:`worker.heartbeat` (leases, registration, recovery), :mod:`worker.progress`,
:mod:`worker.health`, :mod:`worker.metrics`, :mod:`worker.identity`,
:mod:`worker.signals`, :mod:`worker.tasks` (stopping background tasks),
:mod:`worker.service` (the command and the embedded worker of ``asyncendpoints dev``).
See ``docs/worker.md``.

It imports the core package ``asyncendpoints`` only.
"""

from worker.completions import CompletionBatcher
from worker.identity import resolve_worker_id
from worker.runtime import Worker
from worker.service import SERVICE, embedded

__all__ = ["SERVICE", "CompletionBatcher", "Worker", "embedded", "resolve_worker_id"]
