"""The scaling rules, as pure functions: no cluster, no Redis, no clock."""

from __future__ import annotations

import pytest

from controller.scaling import (
    Backlog,
    Recommendation,
    decide,
    desired_replicas,
    prune,
    replicas_text,
    stabilize,
)


@pytest.mark.parametrize(
    ("backlog", "target", "lo", "hi", "expected"),
    [
        (0, 10, 1, 5, 1),  # an empty queue keeps minReplicas
        (0, 10, 0, 5, 0),  # ... which may be zero
        (1, 10, 0, 5, 1),  # the first job scales up from zero
        (10, 10, 0, 5, 1),
        (11, 10, 0, 5, 2),  # ceil, not round
        (48 + 2, 10, 1, 10, 5),
        (100, 10, 1, 5, 5),  # clamped to maxReplicas
        (3, 1, 4, 8, 4),  # clamped to minReplicas
        (-5, 10, 0, 5, 0),  # a negative count (never from a store) is treated as empty
    ],
)
def test_desired_replicas(backlog: int, target: int, lo: int, hi: int, expected: int) -> None:
    assert desired_replicas(backlog, target, lo, hi) == expected


def test_desired_replicas_refuses_a_target_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        desired_replicas(5, 0, 0, 5)


def test_scaling_up_is_immediate() -> None:
    history = [Recommendation(0.0, 1), Recommendation(5.0, 1)]
    replicas, kept = stabilize(history, now=10.0, window=60, desired=5, current=1)
    assert replicas == 5
    assert kept[-1] == Recommendation(10.0, 5)


def test_scaling_down_waits_for_the_window() -> None:
    history: list[Recommendation] = []
    replicas, history = stabilize(history, now=0.0, window=30, desired=5, current=1)
    assert replicas == 5
    current = replicas
    # the backlog is gone: the high recommendation holds for the whole window
    for now in (5.0, 10.0, 20.0, 29.9):
        replicas, history = stabilize(history, now=now, window=30, desired=1, current=current)
        assert replicas == 5, now
    replicas, history = stabilize(history, now=30.0, window=30, desired=1, current=current)
    assert replicas == 1
    assert all(r.at > 0.0 for r in history)  # the old recommendation was dropped


def test_scaling_down_takes_the_highest_recommendation_in_the_window() -> None:
    history = [Recommendation(0.0, 8), Recommendation(10.0, 4), Recommendation(20.0, 6)]
    # at 35 s with a 30 s window, 8 (at 0 s) has left, 6 and 4 remain
    replicas, kept = stabilize(history, now=35.0, window=30, desired=2, current=8)
    assert replicas == 6
    assert [r.replicas for r in kept] == [4, 6, 2]


def test_a_stale_high_recommendation_never_scales_up() -> None:
    history = [Recommendation(0.0, 9)]
    replicas, _ = stabilize(history, now=1.0, window=60, desired=2, current=3)
    assert replicas == 3  # held at current, not raised to 9


def test_zero_window_scales_down_at_once() -> None:
    history = [Recommendation(0.0, 9)]
    replicas, kept = stabilize(history, now=0.0, window=0, desired=2, current=9)
    assert replicas == 2
    assert kept == [Recommendation(0.0, 2)]


def test_prune_keeps_the_window_only() -> None:
    history = [Recommendation(t, 1) for t in (0.0, 10.0, 20.0)]
    assert [r.at for r in prune(history, now=25.0, window=10)] == [20.0]


def test_decide_scales_up_with_an_event_message() -> None:
    decision, _ = decide(
        Backlog(queued=48, in_progress=2),
        current=1,
        target_per_replica=10,
        min_replicas=1,
        max_replicas=10,
        window=60,
        history=[],
        now=0.0,
    )
    assert decision.changes and decision.direction == "up"
    assert (decision.desired, decision.replicas, decision.reason) == (5, 5, "ScaledUp")
    assert decision.message == "scaled 1 -> 5: 48 queued, 2 in progress"


def test_decide_holds_then_scales_down() -> None:
    decision, history = decide(
        Backlog(queued=100),
        current=1,
        target_per_replica=10,
        min_replicas=0,
        max_replicas=5,
        window=60,
        history=[],
        now=0.0,
    )
    assert decision.replicas == 5
    assert decision.reason == "ScaledUp"
    decision, history = decide(
        Backlog(),
        current=5,
        target_per_replica=10,
        min_replicas=0,
        max_replicas=5,
        window=60,
        history=history,
        now=30.0,
    )
    assert not decision.changes
    assert decision.reason == "ScaleDownStabilizing"
    assert decision.desired == 0 and decision.replicas == 5
    assert "holding 5 replicas (0 desired) for the 60 s stabilization window" in decision.message
    decision, history = decide(
        Backlog(),
        current=5,
        target_per_replica=10,
        min_replicas=0,
        max_replicas=5,
        window=60,
        history=history,
        now=61.0,
    )
    assert decision.changes and decision.direction == "down"
    assert (decision.replicas, decision.reason) == (0, "ScaledDown")
    assert decision.message == "scaled 5 -> 0: 0 queued, 0 in progress"


def test_decide_reports_the_max_replicas_limit() -> None:
    decision, _ = decide(
        Backlog(queued=500),
        current=5,
        target_per_replica=10,
        min_replicas=0,
        max_replicas=5,
        window=60,
        history=[],
        now=0.0,
    )
    assert not decision.changes
    assert decision.reason == "AtMaxReplicas"
    assert decision.message == "at maxReplicas 5: 500 queued, 0 in progress"


def test_decide_steady() -> None:
    decision, _ = decide(
        Backlog(queued=5, in_progress=5),
        current=1,
        target_per_replica=10,
        min_replicas=1,
        max_replicas=5,
        window=60,
        history=[],
        now=0.0,
    )
    assert (decision.changes, decision.direction, decision.reason) == (False, "none", "Steady")
    assert decision.message == "1 replica: 5 queued, 5 in progress"


def test_scheduled_jobs_do_not_count_toward_the_backlog() -> None:
    backlog = Backlog(queued=0, in_progress=0, scheduled=50)
    assert backlog.total == 0
    assert desired_replicas(backlog.total, 10, 0, 5) == 0


def test_no_oscillation_under_a_noisy_backlog() -> None:
    """A backlog that swings every tick changes the replicas only upward within the window."""
    history: list[Recommendation] = []
    current = 0
    changes = []
    for tick in range(30):  # 5 s ticks over 150 s, window 60 s
        queued = 40 if tick % 2 == 0 else 5
        decision, history = decide(
            Backlog(queued=queued),
            current=current,
            target_per_replica=10,
            min_replicas=0,
            max_replicas=10,
            window=60,
            history=history,
            now=tick * 5.0,
        )
        if decision.changes:
            changes.append((tick, current, decision.replicas))
            current = decision.replicas
    assert changes == [(0, 0, 4)]


def test_replicas_text() -> None:
    assert replicas_text(1) == "1 replica"
    assert replicas_text(0) == "0 replicas"
    assert replicas_text(3) == "3 replicas"
