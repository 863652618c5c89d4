"""The systems under test, one module each (``SYSTEM`` is its :class:`~.base.System`)."""

from __future__ import annotations

import importlib

from benchmarks.systems.base import System

ALL = ("ours", "arq", "rq", "celery", "saq", "taskiq", "dramatiq")
PEERS = tuple(name for name in ALL if name != "ours")


def load(name: str, url: str) -> System:
    if name not in ALL:
        raise ValueError(f"unknown system {name!r}; choose from {', '.join(ALL)}")
    module = importlib.import_module(f"benchmarks.systems.{name}")
    return module.SYSTEM(url)  # type: ignore[no-any-return]
