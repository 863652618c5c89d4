"""``asyncendpoints api module:app``: serve the HTTP API with uvicorn.

Against Redis (``ASYNCENDPOINTS_REDIS_URL``) unless ``--allow-memory``: with the
in-memory store no worker outside this process could see the jobs. ``asyncendpoints
dev`` uses :func:`serve_app` with an embedded worker (``extras["serve_app"]``).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from api.app import Embedded, create_app
from asyncendpoints import load_app
from asyncendpoints.errors import ConfigurationError
from asyncendpoints.logs import configure_logging
from asyncendpoints.services import Service
from asyncendpoints.store import InMemoryJobStore

HELP = "serve the HTTP API against Redis"

NO_REDIS = (
    "`asyncendpoints api` needs a Redis job store: set ASYNCENDPOINTS_REDIS_URL "
    "(for example redis://localhost:6379/0) or ASYNCENDPOINTS_REDIS_URL_FILE. "
    "To serve from process memory anyway (jobs lost on restart, and no separate worker "
    "can see them), pass --allow-memory; for API and workers in one process on the "
    "in-memory store, use `asyncendpoints dev`."
)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="the AsyncEndpoints object, as module:attr")
    parser.add_argument("--host", default=None, help="listen address (ASYNCENDPOINTS_HOST)")
    parser.add_argument("--port", type=int, default=None, help="listen port (ASYNCENDPOINTS_PORT)")
    parser.add_argument(
        "--allow-memory",
        action="store_true",
        help="serve with the in-memory store when no Redis URL is set",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")


def run(args: argparse.Namespace) -> int:
    ae = load_app(args.app)
    if isinstance(ae.store, InMemoryJobStore) and not args.allow_memory:
        raise ConfigurationError(NO_REDIS)
    return serve_app(args.app, host=args.host, port=args.port, access_log=args.access_log)


def serve_app(
    reference: str,
    *,
    embedded: Sequence[Embedded] = (),
    host: str | None = None,
    port: int | None = None,
    access_log: bool = False,
) -> int:
    """Load ``module:attr`` and serve it with uvicorn until SIGINT/SIGTERM; the exit code.

    ``host`` and ``port`` default to the app's settings (``ASYNCENDPOINTS_HOST/PORT``).
    """
    ae = load_app(reference)
    settings = ae.settings
    configure_logging(settings)
    host = host or settings.host
    port = settings.port if port is None else port
    config = server_config(
        create_app(ae, embedded=embedded),
        host=host,
        port=port,
        access_log=access_log,
        grace_seconds=settings.shutdown_grace_seconds,
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    print(
        f"{ae.title}: http://{shown}:{port}  (docs: http://{shown}:{port}/docs, "
        f"store: {type(ae.store).__name__})",
        file=sys.stderr,
        flush=True,
    )
    return run_server(config)


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    access_log: bool = False,
    grace_seconds: float = 25.0,
) -> uvicorn.Config:
    """How the API is served: uvloop and httptools when installed, lifespan on, no
    access log unless asked, our log handler (``log_config=None``), a graceful stop."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if _installed("uvloop") else "auto",
        http="httptools" if _installed("httptools") else "auto",
        lifespan="on",
        access_log=access_log,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(grace_seconds)),
    )


def run_server(config: uvicorn.Config) -> int:
    """Serve until SIGINT/SIGTERM; the exit code.

    The objects alive now (modules, the app, its models and routes) are moved out of
    the garbage collector's generations first (``gc.freeze``): they live as long as the
    process, and every full collection would scan them again.
    """
    gc.collect()
    gc.freeze()
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


SERVICE = Service(
    help=HELP,
    add_arguments=add_arguments,
    run=run,
    extras={"create_app": create_app, "serve_app": serve_app},
)

__all__ = ["SERVICE", "add_arguments", "run", "run_server", "serve_app", "server_config"]
