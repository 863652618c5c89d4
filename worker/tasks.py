"""Stopping the worker's background tasks (heartbeat, recovery) for good."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

log = logging.getLogger("asyncendpoints.worker")


async def cancel_and_wait(tasks: Sequence[asyncio.Task[None]], timeout: float) -> None:
    """Cancel ``tasks`` and wait until they are done, cancelling again while any runs on.

    One cancellation is not always enough: a library's I/O can swallow it (seen with
    redis-py 8's pipelines on Python 3.11: the heartbeat and recovery loops went on to
    their next sleep), and a shutdown must not wait for such a task forever. Gives up
    after ``timeout`` seconds and says so in the log.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {task for task in tasks if not task.done()}
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a failure was logged where it happened
    if pending:
        log.warning("background tasks still running after shutdown", extra={"tasks": len(pending)})


__all__ = ["cancel_and_wait"]
