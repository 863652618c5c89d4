"""The AsyncWorkerPool operator (kopf): worker Deployments, autoscaling, job recovery.

For each ``AsyncWorkerPool`` it owns a worker Deployment (:mod:`controller.deployment`),
scales it by the queue depth it reads from the job store (:mod:`controller.scaling`,
:mod:`controller.reconcile`), writes the pool's status (:mod:`controller.status`) and puts
the jobs of dead workers back in their queues (:mod:`controller.recovery`). One replica
acts at a time (:mod:`controller.leader`, a Lease). This is the only package that imports
kopf or the Kubernetes client.

Run it with ``asyncendpoints controller`` or ``python -m controller``; the entry point is
:data:`controller.service.SERVICE`.
"""

from controller.reconcile import Controller
from controller.service import SERVICE

__all__ = ["SERVICE", "Controller"]
