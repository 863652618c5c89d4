"""Type aliases shared by the core and the services (as Starlette's ``types.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeAlias

from pydantic import TypeAdapter, UrlConstraints
from pydantic_core import MultiHostUrl

JobId: TypeAlias = str
"""A job's id: ``<tag>-<22 random url-safe chars>``; the tag is the job name's hash slot tag."""

JobName: TypeAlias = str
"""The name of a job handler, as declared with ``@app.post(..., name=...)``."""

WorkerId: TypeAlias = str
"""A worker's id: the pod name on Kubernetes, else ``host-pid``."""

Timestamp: TypeAlias = float
"""Seconds since the epoch (UTC), with sub-millisecond precision."""

JSONBytes: TypeAlias = bytes
"""A JSON document, already encoded (payloads and results are stored as they are)."""

Headers: TypeAlias = Mapping[str, str]
JSONValue: TypeAlias = Any
Handler: TypeAlias = Callable[..., Any]
AsyncHandler: TypeAlias = Callable[..., Awaitable[Any]]

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
"""DSN schemes that name a Sentinel-monitored primary instead of one Redis."""

RedisUrl: TypeAlias = Annotated[
    MultiHostUrl,
    UrlConstraints(allowed_schemes=["redis", "rediss", "unix", *SENTINEL_SCHEMES]),
]
"""A Redis DSN: ``redis://[:password@]host:port/db``, ``rediss://`` (TLS), ``unix:///path``,
or ``redis+sentinel://[:password@]host:port[,host:port...]/<primary name>[/db]`` (the
Sentinels to ask, and the name they monitor the primary by; the password is the primary's)."""

REDIS_URL: TypeAdapter[MultiHostUrl] = TypeAdapter(RedisUrl)
"""Validates a string as a :data:`RedisUrl` (``REDIS_URL.validate_python(text)``)."""
