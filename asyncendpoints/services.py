"""How the ``asyncendpoints`` command finds its services without importing them.

Each service package (``api``, ``worker``, ``controller``) exposes a ``SERVICE`` object
and registers it in the ``asyncendpoints.services`` entry-point group of
``pyproject.toml``. The command line (:mod:`asyncendpoints.cli`) looks them up by name,
so dependencies keep pointing one way: the services import the core, never the reverse.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from asyncendpoints.errors import ConfigurationError

GROUP = "asyncendpoints.services"


@dataclass(frozen=True, slots=True)
class Service:
    """A subcommand of ``asyncendpoints``: its help, its arguments, and how it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    extras: dict[str, Any] | None = None
    """Named building blocks other compositions may use (``dev`` uses the api's app
    factory and the worker's runner through these)."""


def load_service(name: str) -> Service:
    """The service registered under ``name``; ConfigurationError when absent."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            service = ep.load()
            if not isinstance(service, Service):
                raise ConfigurationError(f"entry point {ep.value} is not a Service")
            return service
    raise ConfigurationError(
        f"the {name!r} service is not installed (entry point group {GROUP!r}); "
        "reinstall the package: pip install -e ."
    )


def available_services() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))
