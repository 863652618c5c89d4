"""Fixtures for the whole suite: a real redis-server per session, stores that clean up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session; fails (never skips) when it is missing."""
    try:
        server = RedisServer()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a chaos test may have stopped it
    return redis_server.url


@pytest.fixture
def key_prefix() -> str:
    """A prefix of its own per test, so tests sharing the session's Redis never meet."""
    return f"t{uuid.uuid4().hex[:10]}"
