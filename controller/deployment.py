"""The worker Deployment of a pool, built as a plain body (no API calls here).

The controller writes this body when it creates the Deployment and again whenever the
hash of the body changes (the pool's spec changed, or a newer controller builds it
differently). It never writes ``spec.replicas`` then: the scaler owns that field.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from controller import crd
from controller.spec import PoolSpec

RESERVED_ENV = (
    "ASYNCENDPOINTS_REDIS_URL",
    "ASYNCENDPOINTS_KEY_PREFIX",
    "ASYNCENDPOINTS_CONCURRENCY",
    "ASYNCENDPOINTS_LEASE_SECONDS",
    "ASYNCENDPOINTS_SHUTDOWN_GRACE_SECONDS",
    "ASYNCENDPOINTS_WORKER_HEALTH_PORT",
    "POD_NAME",
)
"""Variables the controller sets; the CRD refuses them in ``spec.env``."""

RUN_AS_USER = 10001
"""The worker runs as this non-root user (any uid works: the image needs only read access)."""


def worker_command(spec: PoolSpec) -> list[str]:
    command = ["asyncendpoints", "worker", spec.app]
    if spec.job_names:
        command += ["--names", ",".join(spec.job_names)]
    return command


def worker_env(spec: PoolSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {
            "name": "ASYNCENDPOINTS_REDIS_URL",
            "valueFrom": {
                "secretKeyRef": {"name": spec.redis.secret_name, "key": spec.redis.secret_key}
            },
        },
        {"name": "ASYNCENDPOINTS_KEY_PREFIX", "value": spec.redis.key_prefix},
        {"name": "ASYNCENDPOINTS_LEASE_SECONDS", "value": str(spec.lease_seconds)},
        {
            "name": "ASYNCENDPOINTS_SHUTDOWN_GRACE_SECONDS",
            "value": str(spec.shutdown_grace_seconds),
        },
        {"name": "ASYNCENDPOINTS_WORKER_HEALTH_PORT", "value": str(crd.HEALTH_PORT)},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    if spec.concurrency is not None:
        env.insert(2, {"name": "ASYNCENDPOINTS_CONCURRENCY", "value": str(spec.concurrency)})
    return env + [e for e in spec.pod.env if e.get("name") not in RESERVED_ENV]


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": crd.HEALTH_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def pod_template(pool: str, spec: PoolSpec) -> dict[str, Any]:
    labels = {
        **spec.pod.pod_labels,
        crd.PART_OF_LABEL: "asyncendpoints",
        crd.MANAGED_BY_LABEL: crd.MANAGER,
        **crd.selector_labels(pool),  # last: the selector labels cannot be overridden
    }
    container: dict[str, Any] = {
        "name": crd.CONTAINER_NAME,
        "image": spec.image,
        "command": worker_command(spec),
        "env": worker_env(spec),
        "ports": [{"name": crd.HEALTH_PORT_NAME, "containerPort": crd.HEALTH_PORT}],
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "resources": spec.pod.resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if spec.pod.image_pull_policy:
        container["imagePullPolicy"] = spec.pod.image_pull_policy
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": spec.termination_grace_seconds,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if spec.pod.node_selector:
        pod_spec["nodeSelector"] = spec.pod.node_selector
    if spec.pod.tolerations:
        pod_spec["tolerations"] = list(spec.pod.tolerations)
    if spec.pod.service_account_name:
        pod_spec["serviceAccountName"] = spec.pod.service_account_name
    metadata: dict[str, Any] = {"labels": labels}
    if spec.pod.pod_annotations:
        metadata["annotations"] = spec.pod.pod_annotations
    return {"metadata": metadata, "spec": pod_spec}


def build(pool: str, namespace: str, spec: PoolSpec, *, replicas: int) -> dict[str, Any]:
    """The Deployment body (without owner references: the caller adopts it)."""
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": crd.deployment_name(pool),
            "namespace": namespace,
            "labels": {
                crd.PART_OF_LABEL: "asyncendpoints",
                crd.MANAGED_BY_LABEL: crd.MANAGER,
                **crd.selector_labels(pool),
            },
            "annotations": {},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": crd.selector_labels(pool)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "revisionHistoryLimit": 3,
            "template": pod_template(pool, spec),
        },
    }
    body["metadata"]["annotations"][crd.TEMPLATE_HASH_ANNOTATION] = template_hash(body)
    return body


def template_hash(body: dict[str, Any]) -> str:
    """A hash of what the controller manages in ``body`` (everything but the replicas)."""
    managed = {
        "labels": body["metadata"].get("labels", {}),
        "spec": {k: v for k, v in body["spec"].items() if k != "replicas"},
    }
    text = json.dumps(managed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def current_hash(existing: dict[str, Any]) -> str | None:
    annotations = existing.get("metadata", {}).get("annotations") or {}
    value = annotations.get(crd.TEMPLATE_HASH_ANNOTATION)
    return str(value) if value else None


def merged_for_update(existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with the controller's fields replaced by ``desired``'s, replicas kept.

    Labels and annotations that others added (``deployment.kubernetes.io/revision``, ...)
    stay; the spec is the controller's, except the replicas the scaler set.
    """
    meta = dict(existing["metadata"])
    meta["labels"] = {**(meta.get("labels") or {}), **desired["metadata"]["labels"]}
    meta["annotations"] = {**(meta.get("annotations") or {}), **desired["metadata"]["annotations"]}
    refs = list(meta.get("ownerReferences") or [])
    for ref in desired["metadata"].get("ownerReferences") or []:
        if not any(r.get("uid") == ref["uid"] for r in refs):
            refs.append(ref)
    meta["ownerReferences"] = refs
    spec = dict(desired["spec"])
    spec["replicas"] = existing.get("spec", {}).get("replicas", desired["spec"]["replicas"])
    return {**existing, "metadata": meta, "spec": spec}
