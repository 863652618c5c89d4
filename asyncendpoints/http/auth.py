"""Optional bearer-token auth: tokens from the settings, tenants from tokens.

Tokens come from ``ASYNCENDPOINTS_AUTH_TOKENS`` and ``ASYNCENDPOINTS_AUTH_TOKENS_FILE``
(a mounted Secret, one token per line); any token turns auth on. A request without a
valid ``Authorization: Bearer <token>`` gets 401 with ``WWW-Authenticate: Bearer``.

The tenant of a request is a stable hash of its token, never the token itself: jobs
are stored with it, and a job is visible and cancelable only by its tenant.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from asyncendpoints.http.problems import unauthorized
from asyncendpoints.settings import Settings


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def tenant_of(token: str) -> str:
    """The tenant a token stands for: 32 hex digits of a domain-separated SHA-256."""
    return hashlib.sha256(b"asyncendpoints:tenant:" + token.encode()).hexdigest()[:32]


class Authenticator:
    """Checks bearer tokens in constant time (over every configured token)."""

    def __init__(self, tokens: list[str]) -> None:
        self._digests = [_digest(token) for token in tokens if token]

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        return cls([secret.get_secret_value() for secret in settings.auth_tokens])

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def valid(self, token: str) -> bool:
        presented = _digest(token)
        found = False
        for digest in self._digests:  # no early exit: the time does not tell which matched
            found |= hmac.compare_digest(presented, digest)
        return found

    def tenant(self, headers: Mapping[str, str]) -> str | None:
        """The tenant of a request with these (lower-case) headers (None when auth is
        off); raises a 401 problem."""
        if not self._digests:
            return None
        header = headers.get("authorization")
        if header is None:
            raise unauthorized("A bearer token is required.", invalid_token=False)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("Use `Authorization: Bearer <token>`.", invalid_token=False)
        if not self.valid(token):
            raise unauthorized("The bearer token is not valid.", invalid_token=True)
        return tenant_of(token)


__all__ = ["Authenticator", "tenant_of"]
