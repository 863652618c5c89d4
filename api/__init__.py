"""The ingress service: the FastAPI app ``asyncendpoints api`` serves.

It validates requests, stores jobs and answers ``202 Accepted`` (the routes come from
:mod:`asyncendpoints.http`), and adds what a Kubernetes Deployment needs: ``/healthz``,
``/readyz`` (the job store answers) and ``/metrics`` (Prometheus). Workers run elsewhere
(``asyncendpoints worker``), or embedded in the same process (``asyncendpoints dev``).
"""

from api.app import create_app
from api.metrics import Metrics
from api.service import SERVICE, serve_app

__all__ = ["SERVICE", "Metrics", "create_app", "serve_app"]
