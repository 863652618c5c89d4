"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's rules.

Every controller replica runs :meth:`LeaderElector.acquire`; the one that takes the Lease
runs the operator, renews every ``retry_period`` and stops acting (the process exits, to
come back as a standby) if it cannot renew within ``renew_deadline``. The others wait:
a Lease whose record has not changed for ``lease_duration`` seconds of *their own* clock
is expired and may be taken (no clock comparison across machines). A clean shutdown
releases the Lease so that a standby takes over at once.

Needs only ``get``, ``create`` and ``update`` on ``leases`` in one namespace: no extra CRD.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from controller.kube import Kube, KubeError, group_path

log = logging.getLogger("asyncendpoints.controller.leader")


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    lease_duration: int = 15
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if self.lease_duration < 1:
            raise ValueError("the lease duration must be at least 1 second")
        if not 0 < self.retry_period < self.renew_deadline <= self.lease_duration:
            raise ValueError("need 0 < retry period < renew deadline <= lease duration")


def micro_time(moment: dt.datetime | None = None) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, kube: Kube, config: LeaseConfig) -> None:
        self.kube = kube
        self.config = config
        self.path = group_path("coordination.k8s.io", "v1", config.namespace, "leases", config.name)
        self.is_leader = False
        self.holder: str | None = None
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    def _observe(self, spec: dict[str, Any]) -> None:
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed = record
            self._observed_at = time.monotonic()
        self.holder = spec.get("holderIdentity") or None

    def _spec(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        now = micro_time()
        previous = previous or {}
        ours = previous.get("holderIdentity") == self.config.identity
        transitions = int(previous.get("leaseTransitions") or 0)
        if previous.get("holderIdentity") and not ours:
            transitions += 1
        return {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": self.config.lease_duration,
            "acquireTime": previous.get("acquireTime") if ours else now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this process holds the Lease afterwards."""
        lease = await self.kube.get_or_none(self.path)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": self.config.namespace},
                "spec": self._spec(None),
            }
            try:
                await self.kube.request("POST", self.path.rsplit("/", 1)[0], body)
            except KubeError as exc:
                if exc.conflict:
                    return False
                raise
            self.holder = self.config.identity
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity")
        if holder and holder != self.config.identity:
            duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
            if time.monotonic() < self._observed_at + duration:
                return False
            log.info(
                "the lease of %s expired; taking over", holder, extra={"lease": self.config.name}
            )
        lease["spec"] = self._spec(spec)
        try:
            updated = await self.kube.request("PUT", self.path, lease)
        except KubeError as exc:
            if exc.conflict:  # another candidate wrote first
                return False
            raise
        self._observe(updated.get("spec") or {})
        return True

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process holds the Lease (True) or ``stop`` is set (False)."""
        reported: str | None = None
        while not stop.is_set():
            try:
                if await self.try_acquire_or_renew():
                    self.is_leader = True
                    log.info(
                        "became the leader",
                        extra={"lease": self.config.name, "identity": self.config.identity},
                    )
                    return True
            except KubeError as exc:
                log.warning(
                    "cannot read or write the lease: %s", exc, extra={"lease": self.config.name}
                )
            if self.holder and self.holder != reported:
                reported = self.holder
                log.info(
                    "standby: the lease %s/%s is held by %s",
                    self.config.namespace,
                    self.config.name,
                    self.holder,
                    extra={"lease": self.config.name, "identity": self.config.identity},
                )
            try:
                await asyncio.wait_for(stop.wait(), self.config.retry_period)
            except TimeoutError:
                pass
        return False

    async def hold(self) -> None:
        """Renew until the Lease is lost; return then (the caller stops acting)."""
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(self.config.retry_period)
            try:
                if await self.try_acquire_or_renew():
                    last_renewal = time.monotonic()
                    continue
                log.error("lost the lease to %s", self.holder, extra={"lease": self.config.name})
                break
            except KubeError as exc:
                log.warning("cannot renew the lease: %s", exc, extra={"lease": self.config.name})
            if time.monotonic() - last_renewal > self.config.renew_deadline:
                log.error(
                    "could not renew the lease for %.1f s; giving it up",
                    self.config.renew_deadline,
                    extra={"lease": self.config.name},
                )
                break
        self.is_leader = False

    async def release(self) -> None:
        """Hand the Lease back (a standby takes it at once); best effort."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = await self.kube.get_or_none(self.path)
            if (
                lease is None
                or (lease.get("spec") or {}).get("holderIdentity") != self.config.identity
            ):
                return
            lease["spec"].update(
                {"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": micro_time()}
            )
            await self.kube.request("PUT", self.path, lease)
            log.info("released the lease", extra={"lease": self.config.name})
        except KubeError as exc:
            log.warning("could not release the lease: %s", exc, extra={"lease": self.config.name})
