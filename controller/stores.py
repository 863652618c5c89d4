"""Job stores of the pools: one ``RedisJobStore`` per (Redis URL, key prefix), shared.

A pool names its Redis through a Secret (``spec.redis.secretRef``); the URL is read from
the Secret on each use (a rotated Secret takes effect at the next tick) and the store for
that URL and the pool's key prefix is reused across ticks and across pools.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pydantic import ValidationError

from asyncendpoints.errors import ConfigurationError, StoreUnavailableError
from asyncendpoints.settings import Settings
from asyncendpoints.store import JobStore, make_store
from asyncendpoints.types import REDIS_URL
from controller.kube import Kube
from controller.spec import RedisRef

log = logging.getLogger("asyncendpoints.controller")

StoreKey = tuple[str, str]
StoreFactory = Callable[[str, str], JobStore]


class StoreConfigError(ConfigurationError):
    """The pool's Secret is missing, lacks the key, or holds no Redis URL."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def redis_factory(settings: Settings) -> StoreFactory:
    """Stores built by the core's :func:`make_store` with the pool's URL and prefix."""

    def make(url: str, prefix: str) -> JobStore:
        return make_store(
            settings.model_copy(
                update={"redis_url": REDIS_URL.validate_python(url), "key_prefix": prefix}
            )
        )

    return make


class StoreCache:
    def __init__(self, kube: Kube, factory: StoreFactory) -> None:
        self.kube = kube
        self.factory = factory
        self._stores: dict[StoreKey, JobStore] = {}
        self._users: dict[str, StoreKey] = {}
        self._lock = asyncio.Lock()

    async def for_pool(self, uid: str, namespace: str, redis: RedisRef) -> JobStore:
        """The open store of a pool; StoreConfigError or StoreUnavailableError otherwise."""
        url = await self.kube.secret_value(namespace, redis.secret_name, redis.secret_key)
        if url is None:
            raise StoreConfigError(
                "SecretNotFound",
                f"Secret {namespace}/{redis.secret_name} with key {redis.secret_key!r} not found",
            )
        key = (url, redis.key_prefix)
        previous = self._users.get(uid)
        self._users[uid] = key
        if previous is not None and previous != key:
            await self._close_unused()
        return await self._get(key)

    async def _get(self, key: StoreKey) -> JobStore:
        async with self._lock:
            store = self._stores.get(key)
            if store is None:
                try:
                    store = self.factory(*key)
                except (ValidationError, ValueError):
                    # never echo the value: it may carry a password
                    raise StoreConfigError(
                        "InvalidRedisURL",
                        "the Secret does not hold a valid Redis URL (redis://, rediss://, unix://)",
                    ) from None
                self._stores[key] = store
        try:
            await store.open()  # idempotent
        except StoreUnavailableError:
            raise
        except Exception as exc:  # whatever the client raises while connecting
            raise StoreUnavailableError(f"cannot open the job store: {exc}") from exc
        return store

    async def release(self, uid: str) -> None:
        """A pool is gone: close its store unless another pool uses it too."""
        if self._users.pop(uid, None) is not None:
            await self._close_unused()

    async def _close_unused(self) -> None:
        used = set(self._users.values())
        async with self._lock:
            for key in [k for k in self._stores if k not in used]:
                store = self._stores.pop(key)
                try:
                    await store.close()
                except Exception:  # closing a broken connection must not stop anything
                    log.warning("closing a job store failed", exc_info=True)

    async def close(self) -> None:
        self._users.clear()
        await self._close_unused()
