"""The pool's status: conditions (Ready, StoreReachable, Scaling) and the counts.

Conditions follow the Kubernetes conventions: ``status`` is ``"True"``/``"False"``, a
CamelCase ``reason``, a human ``message``, and ``lastTransitionTime`` that changes only
when ``status`` does. The controller writes the status only when something changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.spec import plain

READY = "Ready"
STORE_REACHABLE = "StoreReachable"
SCALING = "Scaling"


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def render_conditions(
    conditions: Sequence[Condition], previous: Sequence[Mapping[str, Any]], generation: int
) -> list[dict[str, Any]]:
    """The conditions as the API spells them, keeping transition times that still hold."""
    before = {str(c.get("type")): c for c in previous if isinstance(c, Mapping)}
    rendered = []
    for cond in conditions:
        status = "True" if cond.status else "False"
        old = before.get(cond.type)
        if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
            since = str(old["lastTransitionTime"])
        else:
            since = now_rfc3339()
        rendered.append(
            {
                "type": cond.type,
                "status": status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            }
        )
    return rendered


@dataclass(slots=True)
class StatusReport:
    """What one tick learned; :meth:`patch` turns it into the status to write."""

    generation: int
    conditions: list[Condition] = field(default_factory=list)
    replicas: dict[str, int] = field(default_factory=dict)
    """desiredReplicas, currentReplicas, readyReplicas (whatever is known)."""
    counts: dict[str, int] = field(default_factory=dict)
    """queued, inProgress, scheduled (absent while the store cannot be read)."""
    last_scale_time: str | None = None
    last_recovery: dict[str, Any] | None = None

    def add(self, type_: str, status: bool, reason: str, message: str) -> None:
        self.conditions.append(Condition(type_, status, reason, message))

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def patch(self, previous: Mapping[str, Any]) -> dict[str, Any]:
        """The full status fields this controller manages, for a merge patch."""
        status: dict[str, Any] = {"observedGeneration": self.generation}
        status.update(self.replicas)
        status.update(self.counts)
        if self.last_scale_time:
            status["lastScaleTime"] = self.last_scale_time
        if self.last_recovery:
            status["lastRecovery"] = self.last_recovery
        status["conditions"] = render_conditions(
            self.conditions, previous.get("conditions") or (), self.generation
        )
        return status


def differs(patch: Mapping[str, Any], previous: Mapping[str, Any]) -> bool:
    """True when writing ``patch`` would change ``previous``."""
    return any(plain(previous.get(k)) != plain(v) for k, v in patch.items())
