"""The connection-level pieces of the Redis store: error translation, script pipelines,
and blocking reads on a connection of their own.

Kept apart from :mod:`asyncendpoints.store.redis` (the transitions) so each reads alone.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript

from asyncendpoints.errors import ConfigurationError, StoreUnavailableError
from asyncendpoints.types import REDIS_URL, SENTINEL_SCHEMES

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


def make_client(url: str, timeout: float, max_connections: int) -> aioredis.Redis:
    """A client with a socket timeout on every command, over a blocking pool: past
    ``max_connections`` a caller waits (up to ``timeout``) for a connection instead of
    failing, as redis-py's default pool does. One retry on a connection error only (a
    pooled connection that a Redis restart closed); never on a timeout: the command may
    have run already. A ``redis+sentinel://`` URL gets :func:`sentinel_client`."""
    if url.partition("://")[0] in SENTINEL_SCHEMES:
        return sentinel_client(url, timeout, max_connections)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, **_options(timeout)
    )
    return aioredis.Redis.from_pool(pool)


def _options(timeout: float) -> dict[str, Any]:
    backoff = ExponentialWithJitterBackoff(cap=0.5, base=0.05)
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(backoff, 1, (rex.ConnectionError,)),
        "retry_on_error": [rex.ConnectionError],  # pipelines retry only with this
        "decode_responses": False,
    }


def sentinel_client(url: str, timeout: float, max_connections: int) -> aioredis.Redis:
    """A client of the primary that the Sentinels of ``url`` name.

    ``redis+sentinel://[[user]:password@]host:port[,host:port...]/<primary name>[/<db>]``
    (``rediss+sentinel`` for TLS to the primary). Every new connection asks the Sentinels
    where the primary is; after a failover, a connection to the demoted primary fails its
    request (READONLY, or the connection drops) and is replaced by one to the new primary.
    The password is the primary's; the Sentinels are asked without one.
    """
    parsed = REDIS_URL.validate_python(url)
    hosts = parsed.hosts()
    name, _, db = (parsed.path or "").strip("/").partition("/")
    if not name or not hosts:
        raise ConfigurationError(
            "a Sentinel URL names its Sentinels and the primary: "
            "redis+sentinel://host:26379[,host:26379...]/<primary name>[/<db>]"
        )
    if db and not db.isdigit():
        raise ConfigurationError(f"the database of a Sentinel URL is a number, not {db!r}")
    sentinel = Sentinel(
        [(h["host"] or "localhost", h["port"] or 26379) for h in hosts],
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    client: aioredis.Redis = sentinel.master_for(
        name,
        db=int(db or 0),
        username=hosts[0]["username"],
        password=hosts[0]["password"],
        ssl=parsed.scheme.startswith("rediss"),
        max_connections=max_connections,
        **_options(timeout),
    )
    return client


async def close_client(client: aioredis.Redis) -> None:
    """Close ``client``: the connections :func:`checkin` keeps, its pool, and the
    Sentinel clients behind a :func:`sentinel_client`."""
    pool = client.connection_pool
    await return_idle(pool)
    await client.aclose()
    manager = getattr(pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


def ms(seconds: float) -> int:
    """Seconds as whole milliseconds, at least 1."""
    return max(1, int(seconds * 1000))


IDLE_KEPT = 4
"""Idle connections kept per pool, out of redis-py's pool, by :func:`checkin`."""
_idle: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


async def checkout(pool: Any) -> Any:
    """A connection for one request: one that :func:`checkin` kept (no lock, no await),
    else the pool's.

    redis-py's ``BlockingConnectionPool`` takes a condition, a lock and a timeout, records
    its metrics and probes the socket for stray data on every ``get_connection``, and
    does much of it again on ``release``: about 0.1 ms on an idle 2-CPU VM, on the path
    of every submit and of every wake-up of an idle worker. Every request here reads all
    of its replies or disconnects, so a kept connection has no stray data; one that the
    server closed meanwhile fails its request with ``ConnectionError``, which the retry
    policy answers by reconnecting, as for a connection that breaks in use.
    """
    idle = _idle.get(pool)
    if idle:
        return idle.pop()
    return await pool.get_connection()


async def checkin(pool: Any, conn: Any) -> None:
    """Give back a connection of :func:`checkout`: kept for the next request when it is
    connected and fewer than :data:`IDLE_KEPT` are kept, else returned to the pool."""
    idle = _idle.get(pool)
    if idle is None:
        idle = _idle[pool] = []
    if conn.is_connected and len(idle) < IDLE_KEPT:
        idle.append(conn)
        return
    await pool.release(conn)


async def return_idle(pool: Any) -> None:
    """Hand the kept connections back to the pool (before it is closed)."""
    for conn in _idle.pop(pool, []):
        await pool.release(conn)


def blpop_timeout(seconds: float) -> str:
    """BLPOP's timeout argument: ``seconds`` rounded up to whole milliseconds, at least
    one (a timeout that formats as ``0.000`` would block forever)."""
    return f"{max(1, math.ceil(seconds * 1000)) / 1000:.3f}"


SMALL = 16 * 1024
"""A command at most this long is written without redis-py's write timeout (:func:`send`)."""


def pack(args: Sequence[Any]) -> bytes | None:
    """One command in RESP, as redis-py packs it, when every argument is bytes, str (UTF-8),
    int or float (else None: let redis-py pack it). A fraction of redis-py's cost."""
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode()
        elif kind is int:
            data = b"%d" % arg
        elif kind is float:
            data = repr(arg).encode()
        else:
            return None
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(parts)


async def send(conn: Any, packed: bytes) -> None:
    """``conn.send_packed_command(packed)``, without the write timeout for a short command.

    With a socket timeout, redis-py runs each write under ``asyncio.wait_for``, which on
    Python 3.11 costs a task and an event-loop iteration before the bytes leave (about
    0.1 ms on an idle 2-CPU VM, on the path of every submit). A short command on a pooled
    connection (one request at a time, every earlier reply read) goes straight into the
    socket's buffer: nothing can make the write wait, so it needs no timeout; the read
    that follows has its timeout as always.
    """
    timeout = conn.socket_timeout
    if timeout is None or len(packed) > SMALL:
        await conn.send_packed_command(packed)
        return
    conn.socket_timeout = None
    try:
        await conn.send_packed_command(packed)
    finally:
        conn.socket_timeout = timeout


async def call_script(
    client: aioredis.Redis, script: AsyncScript, keys: list[str], args: list[Any]
) -> Any:
    """One script call (EVALSHA; on NOSCRIPT the script is loaded), as ``script(keys, args)``
    does, without redis-py's per-command machinery (its packing, observability hooks and
    a task per write: about 0.1 ms less on an idle machine): a pooled connection, the
    connection's retry policy (one retry after a connection error), the reply as read."""
    packed = pack(("EVALSHA", script.sha, len(keys), *keys, *args))
    if packed is None:
        return await script(keys=keys, args=args)
    pool = client.connection_pool
    conn = await checkout(pool)
    try:
        return await conn.retry.call_with_retry(
            lambda: _round_trip(conn, packed), lambda _: conn.disconnect()
        )
    except rex.NoScriptError:
        pass  # a restarted Redis: redis-py's Script loads it and calls it again
    except rex.ResponseError:
        raise  # an error reply, read whole: the connection is fine
    except BaseException:
        await conn.disconnect()  # a reply may still come (timeout, cancel): never reuse it
        raise
    finally:
        await checkin(pool, conn)
    return await script(keys=keys, args=args)


async def _round_trip(conn: Any, packed: bytes) -> Any:
    await send(conn, packed)
    return await conn.read_response()


async def run_scripts(client: aioredis.Redis, calls: list[Call]) -> list[Any]:
    """Script calls in one round trip (EVALSHA; on NOSCRIPT the script is loaded)."""
    if len(calls) <= 1:
        return [await call_script(client, script, keys, args) for script, keys, args in calls]
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
    conn = await checkout(pool)
    try:
        packed = [pack(command) for command in commands]
        if all(packed):
            await send(conn, b"".join(packed))  # type: ignore[arg-type]
        else:
            await conn.send_packed_command(conn.pack_commands(commands))
        replies = [await conn.read_response(timeout=block + timeout)]
        replies += [await conn.read_response(timeout=timeout) for _ in commands[1:]]
    except BaseException:
        await conn.disconnect()  # replies may still come: never reuse it
        raise
    finally:
        await checkin(pool, conn)
    return replies
