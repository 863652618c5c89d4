"""Who a worker is: the id it registers under and writes into every lease it takes.

On Kubernetes the worker id is the pod name (the chart passes ``POD_NAME`` through the
downward API), so the controller can tie a vanished pod to the jobs it held and recover
them at once. Elsewhere it is ``<host>-<pid>``.
"""

from __future__ import annotations

import os
import socket

from asyncendpoints.settings import Settings
from asyncendpoints.types import WorkerId

POD_NAME_VARIABLE = "POD_NAME"


def resolve_worker_id(settings: Settings) -> WorkerId:
    """``settings.worker_id``, else ``$POD_NAME``, else ``<hostname>-<pid>``."""
    if settings.worker_id:
        return settings.worker_id
    pod = os.environ.get(POD_NAME_VARIABLE, "").strip()
    if pod:
        return pod
    return f"{socket.gethostname()}-{os.getpid()}"


__all__ = ["POD_NAME_VARIABLE", "resolve_worker_id"]
