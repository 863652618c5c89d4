"""The ``asyncendpoints`` command.

``api``, ``worker`` and ``controller`` are services found through entry points (see
:mod:`asyncendpoints.services`); ``dev`` composes the api and an embedded worker in one
process on the in-memory store, the embedded default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from asyncendpoints.errors import AsyncEndpointsError
from asyncendpoints.services import available_services, load_service

DEV_HELP = "run the API and a worker in one process on the in-memory store (no Redis)"


def _add_dev_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="the AsyncEndpoints object, as module:attr")
    parser.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
    parser.add_argument("--concurrency", type=int, default=None, help="jobs run at once")
    parser.add_argument(
        "--redis-url", default=None, help="use this Redis instead of the in-memory store"
    )


def _run_dev(args: argparse.Namespace) -> int:
    if args.redis_url is None:
        os.environ.pop("ASYNCENDPOINTS_REDIS_URL", None)
    else:
        os.environ["ASYNCENDPOINTS_REDIS_URL"] = args.redis_url
    for option, variable in (
        ("host", "HOST"),
        ("port", "PORT"),
        ("concurrency", "CONCURRENCY"),
    ):
        value = getattr(args, option)
        if value is not None:
            os.environ[f"ASYNCENDPOINTS_{variable}"] = str(value)
    api = load_service("api")
    worker = load_service("worker")
    if not api.extras or not worker.extras:
        raise AsyncEndpointsError("the installed api or worker service cannot be embedded")
    return int(api.extras["serve_app"](args.app, embedded=[worker.extras["embedded"]]))


SERVICE_HELP = {
    "api": "serve the HTTP API against Redis",
    "worker": "run jobs from Redis",
    "controller": "run the Kubernetes operator for AsyncWorkerPool resources",
}
"""Help of the services in the command list, so listing them imports none."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncendpoints",
        description="Long HTTP requests as jobs: 202 Accepted, a status URL, workers.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dev = commands.add_parser("dev", help=DEV_HELP, description=DEV_HELP)
    _add_dev_arguments(dev)
    dev.set_defaults(run=_run_dev)
    chosen = _chosen_command(argv)
    for name in available_services():
        if name != chosen:  # load only the service that runs (kopf is slow to import)
            commands.add_parser(name, help=SERVICE_HELP.get(name, f"the {name} service"))
            continue
        service = load_service(name)
        sub = commands.add_parser(name, help=service.help, description=service.help)
        service.add_arguments(sub)
        sub.set_defaults(run=service.run)
    return parser


def _chosen_command(argv: Sequence[str] | None) -> str | None:
    args = list(sys.argv[1:] if argv is None else argv)
    return next((arg for arg in args if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    sys.path.insert(0, os.getcwd())  # `asyncendpoints dev examples.reports:app` from a checkout
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except AsyncEndpointsError as exc:
        print(f"asyncendpoints: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
