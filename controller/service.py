"""``asyncendpoints controller``: the operator, one active replica at a time.

The process first takes the leader Lease (see :mod:`controller.leader`), waiting as a
standby while another replica holds it; the leader then runs kopf (standalone: the Lease
already makes it the only active one) with the handlers of :mod:`controller.handlers`.
Losing the Lease stops kopf and exits with status 1, so that Kubernetes restarts the
process as a standby; SIGTERM stops kopf, hands the Lease back and exits with 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from pathlib import Path

import kopf

from asyncendpoints.logs import configure_logging
from asyncendpoints.services import Service
from asyncendpoints.settings import Settings
from controller import crd, metrics
from controller.handlers import REGISTRY, WORKER_POD_LABELS
from controller.kube import Kube
from controller.leader import LeaderElector, LeaseConfig
from controller.reconcile import Controller
from controller.stores import StoreCache, redis_factory

log = logging.getLogger("asyncendpoints.controller")

HELP = "run the operator: AsyncWorkerPool -> worker Deployment, autoscaling, job recovery"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_LEASE_NAME = "asyncendpoints-controller"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace",
        default=None,
        help="watch only this namespace (default: ASYNCENDPOINTS_CONTROLLER_NAMESPACE, "
        "else all namespaces)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port (default: ASYNCENDPOINTS_CONTROLLER_METRICS_PORT; 0 disables)",
    )
    election = parser.add_argument_group("leader election (a coordination.k8s.io Lease)")
    election.add_argument(
        "--no-leader-election",
        dest="leader_election",
        action="store_false",
        help="act at once, without a Lease (only when exactly one controller runs)",
    )
    election.add_argument("--lease-name", default=DEFAULT_LEASE_NAME, help="the Lease's name")
    election.add_argument(
        "--lease-namespace",
        default=None,
        help="the Lease's namespace (default: POD_NAMESPACE, the pod's own namespace, "
        "the watched namespace, else default)",
    )
    election.add_argument(
        "--lease-duration", type=int, default=15, help="seconds a standby waits (default 15)"
    )
    election.add_argument(
        "--renew-deadline", type=float, default=10.0, help="seconds to renew in (default 10)"
    )
    election.add_argument(
        "--retry-period", type=float, default=2.0, help="seconds between tries (default 2)"
    )
    election.add_argument(
        "--identity", default=None, help="this candidate's name (default: POD_NAME, else host)"
    )


def _lease_namespace(args: argparse.Namespace, watched: str | None) -> str:
    if args.lease_namespace:
        return str(args.lease_namespace)
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if SA_NAMESPACE_FILE.is_file():
        return SA_NAMESPACE_FILE.read_text().strip()
    return watched or "default"


def _identity(args: argparse.Namespace) -> str:
    if args.identity:
        return str(args.identity)
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def operator_settings(identity: str) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = crd.FINALIZER
    settings.posting.reporting_component = crd.MANAGER  # the "From" of its Events
    settings.posting.reporting_instance = identity
    # Least privilege: no cluster-wide list/watch of namespaces and CRDs; the CRD is
    # installed before the controller starts (the Helm chart installs it first).
    settings.scanning.disabled = True
    settings.posting.level = logging.INFO
    # only the pools' worker pods, filtered by the API server (not every pod of the cluster)
    settings.watching.label_selectors["v1", "pods"] = ",".join(
        f"{k}={v}" for k, v in WORKER_POD_LABELS.items()
    )
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    return settings


async def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Wait for the Lease, run kopf while holding it; the process' exit status."""
    namespace = args.namespace or settings.controller_namespace
    port = settings.controller_metrics_port if args.metrics_port is None else args.metrics_port
    metrics.serve(port)
    kube = Kube.from_environment()
    stores = StoreCache(kube, redis_factory(settings))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    identity = _identity(args)
    elector: LeaderElector | None = None
    holding: asyncio.Task[None] | None = None
    relay: asyncio.Task[None] | None = None
    try:
        if args.leader_election:
            elector = LeaderElector(
                kube,
                LeaseConfig(
                    name=args.lease_name,
                    namespace=_lease_namespace(args, namespace),
                    identity=identity,
                    lease_duration=args.lease_duration,
                    renew_deadline=args.renew_deadline,
                    retry_period=args.retry_period,
                ),
            )
            if not await elector.acquire(stop):
                return 0
            # created before kopf starts, so that kopf does not count it as one of its tasks
            holding = asyncio.create_task(elector.hold(), name="leader lease renewal")
        metrics.LEADER.set(1)
        log.info(
            "starting the operator",
            extra={"namespace": namespace or "(all)", "leader": elector is not None},
        )
        operator = asyncio.create_task(
            kopf.operator(
                registry=REGISTRY,
                settings=operator_settings(identity),
                standalone=True,
                clusterwide=namespace is None,
                namespaces=[namespace] if namespace else (),
                memo=kopf.Memo(controller=Controller(kube, stores)),
            ),
            name="kopf operator",
        )
        # kopf installs its own signal handlers once it runs; a signal before that is ours
        relay = asyncio.create_task(_cancel_on(stop, operator), name="signal relay")
        watched: set[asyncio.Task[None]] = {operator} if holding is None else {operator, holding}
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        lost = holding is not None and holding in done
        if lost:
            operator.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await operator
        if lost:
            log.error("lost the leader Lease: exiting, to come back as a standby")
            return 1
        return 0
    finally:
        metrics.LEADER.set(0)
        if relay is not None:
            relay.cancel()
        if holding is not None and not holding.done():
            holding.cancel()
        if elector is not None:
            await elector.release()
        await stores.close()
        kube.close()


async def _cancel_on(event: asyncio.Event, task: asyncio.Task[None]) -> None:
    await event.wait()
    task.cancel()


def _tidy(record: logging.LogRecord) -> bool:
    """Drop what kopf attaches to its records that is no use in a log line."""
    record.__dict__.pop("settings", None)
    record.__dict__.pop("k8s_skip", None)
    return True


def configure_logs(settings: Settings) -> None:
    configure_logging(settings)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_tidy)
    if settings.log_level != "DEBUG":  # kopf logs every handled event at INFO
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    configure_logs(settings)
    return asyncio.run(serve(args, settings))


SERVICE = Service(help=HELP, add_arguments=add_arguments, run=run)
