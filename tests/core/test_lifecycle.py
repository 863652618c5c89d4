"""The state machine: exactly the moves of DESIGN.md, nothing else."""

from __future__ import annotations

import itertools

import pytest

from asyncendpoints import InvalidTransitionError, JobStatus
from asyncendpoints.lifecycle import TRANSITIONS, can_transition, check_transition

S = JobStatus
ALLOWED = {
    (S.QUEUED, S.IN_PROGRESS),
    (S.QUEUED, S.CANCELED),
    (S.SCHEDULED, S.QUEUED),
    (S.SCHEDULED, S.CANCELED),
    (S.IN_PROGRESS, S.COMPLETED),
    (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.SCHEDULED),
    (S.IN_PROGRESS, S.QUEUED),
    (S.IN_PROGRESS, S.CANCELED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_exactly_the_designed_moves_are_allowed(current: S, target: S) -> None:
    assert can_transition(current, target) == ((current, target) in ALLOWED)
    if (current, target) in ALLOWED:
        check_transition("j", current, target)
    else:
        with pytest.raises(InvalidTransitionError) as info:
            check_transition("j", current, target)
        assert info.value.current == current.value
        assert info.value.target == target.value
        assert "cannot go from" in str(info.value)


def test_finished_states_are_terminal() -> None:
    for status in S:
        assert status.finished == (not TRANSITIONS[status])
    assert {s for s in S if s.finished} == {S.COMPLETED, S.FAILED, S.CANCELED}
