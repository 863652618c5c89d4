"""A pool's spec, parsed once into a frozen dataclass (the CRD applied the defaults).

The API server validates the spec against the CRD's schema and CEL rules and fills in
its defaults; :meth:`PoolSpec.parse` applies the same defaults again so that a spec
written before a default existed (or read from a test) still parses.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncendpoints.errors import ConfigurationError
from asyncendpoints.types import JobName

DEFAULT_SECRET_KEY = "url"  # noqa: S105 (the name of a key in a Secret, not a secret)
DEFAULT_KEY_PREFIX = "ae"
DEFAULT_MIN_REPLICAS = 1
DEFAULT_MAX_REPLICAS = 10
DEFAULT_TARGET_JOBS_PER_REPLICA = 10
DEFAULT_POLLING_INTERVAL_SECONDS = 5
DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS = 60
DEFAULT_LEASE_SECONDS = 30
DEFAULT_SHUTDOWN_GRACE_SECONDS = 25
TERMINATION_GRACE_MARGIN_SECONDS = 10
"""terminationGracePeriodSeconds = shutdownGraceSeconds + this (the drain must fit in)."""


class SpecError(ConfigurationError):
    """The pool's spec cannot be used (the schema should have refused it)."""


@dataclass(frozen=True, slots=True)
class RedisRef:
    """Where the pool's Redis URL lives (a Secret key) and the key prefix of its store."""

    secret_name: str
    secret_key: str = DEFAULT_SECRET_KEY
    key_prefix: str = DEFAULT_KEY_PREFIX


@dataclass(frozen=True, slots=True)
class PodOverrides:
    """What the pool changes in the worker pod template (each as the Kubernetes API spells it)."""

    resources: dict[str, Any] = field(default_factory=dict)
    env: tuple[dict[str, Any], ...] = ()
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    service_account_name: str | None = None
    pod_annotations: dict[str, str] = field(default_factory=dict)
    pod_labels: dict[str, str] = field(default_factory=dict)
    image_pull_policy: str | None = None


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """``AsyncWorkerPool.spec``, typed."""

    image: str
    app: str
    redis: RedisRef
    job_names: tuple[JobName, ...] = ()
    min_replicas: int = DEFAULT_MIN_REPLICAS
    max_replicas: int = DEFAULT_MAX_REPLICAS
    target_jobs_per_replica: int = DEFAULT_TARGET_JOBS_PER_REPLICA
    concurrency: int | None = None
    polling_interval_seconds: int = DEFAULT_POLLING_INTERVAL_SECONDS
    scale_down_stabilization_seconds: int = DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    shutdown_grace_seconds: int = DEFAULT_SHUTDOWN_GRACE_SECONDS
    paused: bool = False
    pod: PodOverrides = field(default_factory=PodOverrides)

    @property
    def termination_grace_seconds(self) -> int:
        return math.ceil(self.shutdown_grace_seconds) + TERMINATION_GRACE_MARGIN_SECONDS

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> PoolSpec:
        """Parse a plain mapping or kopf's view of it; :class:`SpecError` when unusable."""
        try:
            image = _required_str(spec, "image")
            app = _required_str(spec, "app")
            redis = spec.get("redis")
            if not isinstance(redis, Mapping):
                raise SpecError("spec.redis is required")
            secret = redis.get("secretRef")
            if not isinstance(secret, Mapping) or not secret.get("name"):
                raise SpecError("spec.redis.secretRef.name is required")
            parsed = cls(
                image=image,
                app=app,
                redis=RedisRef(
                    secret_name=str(secret["name"]),
                    secret_key=str(secret.get("key") or DEFAULT_SECRET_KEY),
                    key_prefix=str(redis.get("keyPrefix") or DEFAULT_KEY_PREFIX),
                ),
                job_names=tuple(str(n) for n in _seq(spec, "jobNames")),
                min_replicas=_int(spec, "minReplicas", DEFAULT_MIN_REPLICAS),
                max_replicas=_int(spec, "maxReplicas", DEFAULT_MAX_REPLICAS),
                target_jobs_per_replica=_int(
                    spec, "targetJobsPerReplica", DEFAULT_TARGET_JOBS_PER_REPLICA
                ),
                concurrency=_optional_int(spec, "concurrency"),
                polling_interval_seconds=_int(
                    spec, "pollingIntervalSeconds", DEFAULT_POLLING_INTERVAL_SECONDS
                ),
                scale_down_stabilization_seconds=_int(
                    spec, "scaleDownStabilizationSeconds", DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS
                ),
                lease_seconds=_int(spec, "leaseSeconds", DEFAULT_LEASE_SECONDS),
                shutdown_grace_seconds=_int(
                    spec, "shutdownGraceSeconds", DEFAULT_SHUTDOWN_GRACE_SECONDS
                ),
                paused=bool(spec.get("paused", False)),
                pod=PodOverrides(
                    resources=plain(spec.get("resources") or {}),
                    env=tuple(plain(e) for e in _seq(spec, "env")),
                    node_selector={str(k): str(v) for k, v in _map(spec, "nodeSelector").items()},
                    tolerations=tuple(plain(t) for t in _seq(spec, "tolerations")),
                    service_account_name=spec.get("serviceAccountName") or None,
                    pod_annotations={
                        str(k): str(v) for k, v in _map(spec, "podAnnotations").items()
                    },
                    pod_labels={str(k): str(v) for k, v in _map(spec, "podLabels").items()},
                    image_pull_policy=spec.get("imagePullPolicy") or None,
                ),
            )
        except (TypeError, ValueError) as exc:
            raise SpecError(f"invalid pool spec: {exc}") from exc
        parsed.check()
        return parsed

    def check(self) -> None:
        """The rules the CRD's CEL validation also enforces (for specs that bypassed it)."""
        if self.min_replicas < 0 or self.max_replicas < 1:
            raise SpecError("minReplicas must be >= 0 and maxReplicas >= 1")
        if self.min_replicas > self.max_replicas:
            raise SpecError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas "
                f"({self.max_replicas})"
            )
        if self.target_jobs_per_replica < 1:
            raise SpecError("targetJobsPerReplica must be at least 1")
        if self.polling_interval_seconds < 1:
            raise SpecError("pollingIntervalSeconds must be at least 1")
        if ":" not in self.app:
            raise SpecError(f"app {self.app!r} is not a module:attr reference")


def _required_str(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise SpecError(f"spec.{key} is required")
    return value


def _int(spec: Mapping[str, Any], key: str, default: int) -> int:
    value = spec.get(key)
    return default if value is None else int(value)


def _optional_int(spec: Mapping[str, Any], key: str) -> int | None:
    value = spec.get(key)
    return None if value is None else int(value)


def _seq(spec: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = spec.get(key)
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SpecError(f"spec.{key} must be a list")
    return value


def _map(spec: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = spec.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"spec.{key} must be a map")
    return value


def plain(value: Any) -> Any:
    """A deep, plain copy of a mapping or list (kopf hands out read-only views)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return copy.deepcopy(value)
