"""What a submitted job keeps of its HTTP request: headers, route and query parameters.

Sensitive headers never reach the store: the configured ``sensitive_headers`` and,
whatever the configuration says, Authorization, Cookie, Proxy-Authorization and
X-Api-Key.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request

from asyncendpoints.http.guard import headers_of
from asyncendpoints.job import HttpContext

ALWAYS_DROPPED = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})


def dropped_headers(configured: Iterable[str]) -> frozenset[str]:
    """The header names (lower case) never captured."""
    return ALWAYS_DROPPED | {name.lower() for name in configured}


def capture(request: Request, dropped: frozenset[str]) -> HttpContext:
    """The request's headers (repeated ones joined with ``", "``) minus ``dropped``,
    its route parameters as text, and its query parameters (the last of repeated ones)."""
    headers = {name: value for name, value in headers_of(request).items() if name not in dropped}
    return HttpContext(
        headers=headers,
        route_params={name: str(value) for name, value in request.path_params.items()},
        query_params=dict(request.query_params) if request.scope.get("query_string") else {},
    )


__all__ = ["ALWAYS_DROPPED", "capture", "dropped_headers"]
