"""Job stores: the contract (:class:`JobStore`) and its two implementations.

``InMemoryJobStore`` is the embedded default (``asyncendpoints dev``, tests);
``RedisJobStore`` is for production. :func:`make_store` picks one from the settings.
"""

from __future__ import annotations

from asyncendpoints.settings import Settings
from asyncendpoints.store.base import JobStore
from asyncendpoints.store.keys import KeySpace
from asyncendpoints.store.memory import InMemoryJobStore


def make_store(settings: Settings) -> JobStore:
    """Redis when ``redis_url`` is set, else the in-memory store."""
    if settings.redis_url is None:
        return InMemoryJobStore(retention_seconds=settings.retention_seconds)
    from asyncendpoints.store.redis import RedisJobStore

    return RedisJobStore.from_settings(settings)


__all__ = ["InMemoryJobStore", "JobStore", "KeySpace", "make_store"]
