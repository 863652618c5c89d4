"""``asyncendpoints worker module:app``: the worker service, and the embedded worker.

* :data:`SERVICE` is the ``worker`` subcommand (entry point ``worker.service:SERVICE``):
  it runs one :class:`~worker.runtime.Worker` against Redis until SIGTERM / SIGINT.
* :func:`embedded` is what ``asyncendpoints dev`` runs inside the API's event loop (on
  the in-memory store), found through ``SERVICE.extras["embedded"]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from asyncendpoints.app import AsyncEndpoints, load_app
from asyncendpoints.errors import ConfigurationError, StoreUnavailableError
from asyncendpoints.logs import configure_logging
from asyncendpoints.services import Service
from asyncendpoints.store.memory import InMemoryJobStore
from worker.runtime import Worker
from worker.signals import install_shutdown_handlers

log = logging.getLogger("asyncendpoints.worker")

HELP = "run jobs from Redis"
EMBEDDED_GRACE_SECONDS = 5.0
"""Cap on the embedded worker's grace period (the dev store dies with the process)."""

T = TypeVar("T")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number (0 turns it off)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="the AsyncEndpoints object, as module:attr")
    parser.add_argument(
        "--names",
        default=None,
        help="comma-separated job names to serve (default: ASYNCENDPOINTS_WORKER_NAMES, "
        "else every endpoint of the app)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        help="jobs run at once (default: 50 per CPU, at most 200)",
    )
    parser.add_argument(
        "--batch-size", type=_positive, default=None, help="jobs claimed per round trip"
    )
    parser.add_argument(
        "--redis-url", default=None, help="the job store (default: ASYNCENDPOINTS_REDIS_URL)"
    )
    parser.add_argument(
        "--health-port",
        type=_port,
        default=None,
        help="port of /healthz, /readyz, /metrics (default 8081; 0 turns it off)",
    )
    parser.add_argument(
        "--worker-id", default=None, help="the worker's id (default: POD_NAME, else host-pid)"
    )


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    return names or None


def build_worker(app: AsyncEndpoints, args: argparse.Namespace) -> Worker:
    return Worker(
        app,
        names=_names(args.names),
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        worker_id=args.worker_id,
        health_port=args.health_port,
    )


async def serve(app: AsyncEndpoints, worker: Worker) -> int:
    """Run ``worker`` until SIGTERM / SIGINT (twice: at once); 0 after a clean drain."""
    loop = asyncio.get_running_loop()
    restore = install_shutdown_handlers(loop, graceful=worker.stop, immediate=worker.force_stop)
    try:
        await worker.run()
    finally:
        restore()
        await app.shutdown()
    return 1 if worker.fatal is not None else 0


def _loop_runner(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed (it is, with uvicorn[standard])."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def run(args: argparse.Namespace) -> int:
    if args.redis_url:
        os.environ["ASYNCENDPOINTS_REDIS_URL"] = args.redis_url
    app = load_app(args.app)
    configure_logging(app.settings)
    if app.settings.redis_url is None and isinstance(app.store, InMemoryJobStore):
        raise ConfigurationError(
            "the worker needs Redis: set ASYNCENDPOINTS_REDIS_URL or pass --redis-url "
            "(`asyncendpoints dev` runs a worker on the in-memory store)"
        )
    worker = build_worker(app, args)
    try:
        code = _loop_runner(serve(app, worker))
    except ConfigurationError:
        raise
    except StoreUnavailableError as exc:
        log.error("the job store is unreachable: %s", exc)
        code = 1
    except Exception:
        log.exception("the worker failed")
        code = 1
    stuck = worker.stuck_threads()
    if stuck:
        # Python cannot stop a thread: exit without joining the sync handlers still
        # running (their jobs were released and will run again elsewhere).
        log.warning("exiting with sync handlers still running", extra={"threads": stuck})
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


@asynccontextmanager
async def _embedded(ae: AsyncEndpoints) -> AsyncIterator[None]:
    worker = Worker(
        ae,
        health_port=0,
        grace_seconds=min(ae.settings.shutdown_grace_seconds, EMBEDDED_GRACE_SECONDS),
        process_metrics=False,
    )
    try:
        await worker.start()
        yield
    finally:
        await worker.drain()


def embedded(ae: AsyncEndpoints) -> AbstractAsyncContextManager[None]:
    """A worker inside the running loop on ``ae``'s store; drained on exit."""
    return _embedded(ae)


SERVICE = Service(help=HELP, add_arguments=add_arguments, run=run, extras={"embedded": embedded})

__all__ = ["HELP", "SERVICE", "add_arguments", "build_worker", "embedded", "run", "serve"]
