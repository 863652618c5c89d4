"""Exponential backoff with full jitter."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from asyncendpoints import Backoff


@given(
    retry=st.integers(min_value=0, max_value=200),
    base=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.01, max_value=3600),
)
def test_delay_is_within_zero_and_the_capped_exponential(
    retry: int, base: float, cap: float
) -> None:
    backoff = Backoff(base, cap)
    delay = backoff.delay(retry, random.Random(retry))
    assert 0.0 <= delay <= min(cap, base * 2 ** min(retry, 62))


def test_ceiling_doubles_until_the_cap() -> None:
    backoff = Backoff(1.0, 10.0)
    assert [backoff.ceiling(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]


def test_jitter_spreads_the_delays() -> None:
    rng = random.Random(7)
    delays = {round(Backoff(1.0, 300.0).delay(5, rng), 3) for _ in range(50)}
    assert len(delays) > 40
