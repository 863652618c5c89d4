"""Retry delays: exponential backoff with full jitter (AWS Architecture Blog's "Full Jitter")."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``delay(n) = uniform(0, min(cap, base * 2**n))`` for the n-th retry (n from 0)."""

    base: float = 1.0
    cap: float = 300.0

    def ceiling(self, retry: int) -> float:
        return float(min(self.cap, self.base * (2 ** min(retry, 62))))

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0.0, self.ceiling(retry))
