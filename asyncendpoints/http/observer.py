"""Hooks for metrics: what the HTTP layer reports about submissions and rejections.

The core knows no metrics library; ``api`` passes an observer that counts into
Prometheus (see ``api.metrics``).
"""

from __future__ import annotations

from typing import Literal, Protocol

Outcome = Literal["accepted", "replayed", "answered", "rejected"]
"""``answered``: a precheck answered the request itself (no job stored)."""


class HttpObserver(Protocol):
    def submitted(self, name: str, outcome: Outcome) -> None:
        """One request to a submit route, by job name and outcome."""

    def rejected(self, reason: str) -> None:
        """One problem answered on an async route, by reason (``queue-full``, ...)."""


class NullObserver:
    """Observes nothing."""

    def submitted(self, name: str, outcome: Outcome) -> None:
        return None

    def rejected(self, reason: str) -> None:
        return None


__all__ = ["HttpObserver", "NullObserver", "Outcome"]
