"""The connection-level pieces of the Redis store: error translation, script pipelines,
and blocking reads on a connection of their own.

Kept apart from :mod:`asyncendpoints.store.redis` (the transitions) so each reads alone.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.commands.core import AsyncScript

from asyncendpoints.errors import StoreUnavailableError

P = ParamSpec("P")
R = TypeVar("R")
Call = tuple[AsyncScript, list[str], list[Any]]
"""One script call: the script, its KEYS, its ARGV."""

UNAVAILABLE: tuple[type[Exception], ...] = (
    rex.ConnectionError,  # also BusyLoadingError (LOADING), MaxConnectionsError
    rex.TimeoutError,
    rex.ReadOnlyError,  # a failover demoted our primary
    rex.ClusterDownError,  # also MasterDownError
    rex.TryAgainError,
    rex.OutOfMemoryError,
    OSError,
)


def guard(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Turn redis-py's errors of reachability into :class:`StoreUnavailableError`."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(f"Redis is unavailable: {exc}") from exc
        except rex.ResponseError as exc:
            if str(exc).startswith("BUSY"):  # another client's script runs too long
                raise StoreUnavailableError(f"Redis is busy: {exc}") from exc
            raise

    return wrapper


def ms(seconds: float) -> int:
    """Seconds as whole milliseconds, at least 1."""
    return max(1, int(seconds * 1000))


async def run_scripts(client: aioredis.Redis, calls: list[Call]) -> list[Any]:
    """Script calls in one round trip (EVALSHA; on NOSCRIPT the script is loaded)."""
    if len(calls) <= 1:
        return [await script(keys=keys, args=args) for script, keys, args in calls]
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    for i, reply in enumerate(replies):
        if isinstance(reply, rex.NoScriptError):
            script, keys, args = calls[i]
            replies[i] = await script(keys=keys, args=args)
        elif isinstance(reply, Exception):
            raise reply
    return replies


async def blocking_replies(
    client: aioredis.Redis,
    commands: Sequence[tuple[Any, ...]],
    *,
    block: float,
    timeout: float,
) -> list[Any]:
    """Send ``commands`` in one round trip on a pooled connection of their own; the first
    may block up to ``block`` seconds (BLPOP), the rest run as soon as it returns.

    A connection whose replies were not all read is disconnected, never reused.
    """
    pool = client.connection_pool
    conn = await pool.get_connection()
    try:
        await conn.send_packed_command(conn.pack_commands(commands))
        replies = [await conn.read_response(timeout=block + timeout)]
        replies += [await conn.read_response(timeout=timeout) for _ in commands[1:]]
    except BaseException:
        await conn.disconnect()  # replies may still come: never reuse it
        raise
    finally:
        await pool.release(conn)
    return replies
