"""Type aliases shared by the core and the services (as Starlette's ``types.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

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
