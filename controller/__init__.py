"""The AsyncWorkerPool operator (kopf): worker Deployments, autoscaling, job recovery.

Run it with ``asyncendpoints controller`` or ``python -m controller``; the entry point is
:data:`controller.service.SERVICE`.
"""
