"""Names the controller shares with the CRD manifest and the chart: group, version, labels.

``manifests/crds/asyncworkerpools.asyncendpoints.io.yaml`` is the one source of truth for
the schema; these constants name the same things for the code.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "asyncendpoints.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "AsyncWorkerPool"
PLURAL: Final = "asyncworkerpools"
SINGULAR: Final = "asyncworkerpool"
SHORT_NAME: Final = "awp"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# Labels of the worker Deployment's pods (the first three are its selector).
NAME_LABEL: Final = "app.kubernetes.io/name"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
WORKER_NAME: Final = "asyncendpoints-worker"
WORKER_COMPONENT: Final = "worker"
MANAGER: Final = "asyncendpoints-controller"

# Annotations.
TEMPLATE_HASH_ANNOTATION: Final = f"{GROUP}/template-hash"
"""On the Deployment: the hash of the body the controller last wrote (update when it differs)."""
POD_DELETION_COST: Final = "controller.kubernetes.io/pod-deletion-cost"
FINALIZER: Final = f"{GROUP}/controller"
"""kopf's finalizer on pools (its per-pool timer must stop before the pool goes)."""

# The worker container.
CONTAINER_NAME: Final = "worker"
HEALTH_PORT: Final = 8081
HEALTH_PORT_NAME: Final = "health"


def selector_labels(pool: str) -> dict[str, str]:
    """The labels that select a pool's worker pods (also its Deployment's selector)."""
    return {NAME_LABEL: WORKER_NAME, INSTANCE_LABEL: pool, COMPONENT_LABEL: WORKER_COMPONENT}


def selector_string(pool: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector_labels(pool).items())


def deployment_name(pool: str) -> str:
    """The worker Deployment of pool ``reports`` is ``reports-worker``."""
    return f"{pool}-worker"
