"""SIGTERM and SIGINT: the first drains the worker, the second stops it at once."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

log = logging.getLogger("asyncendpoints.worker")

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_shutdown_handlers(
    loop: asyncio.AbstractEventLoop,
    *,
    graceful: Callable[[], None],
    immediate: Callable[[], None],
) -> Callable[[], None]:
    """Call ``graceful`` on the first SIGTERM/SIGINT and ``immediate`` on the next one.

    Returns a function that puts the default handlers back.
    """
    received = 0

    def on_signal(signum: int) -> None:
        nonlocal received
        received += 1
        name = signal.Signals(signum).name
        if received == 1:
            log.info("%s received: draining (send it again to stop at once)", name)
            graceful()
        else:
            log.warning("%s received again: releasing in-flight jobs and exiting", name)
            immediate()

    for sig in SHUTDOWN_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)

    def restore() -> None:
        for sig in SHUTDOWN_SIGNALS:
            loop.remove_signal_handler(sig)

    return restore


__all__ = ["SHUTDOWN_SIGNALS", "install_shutdown_handlers"]
