"""AsyncEndpoints: turn long HTTP requests into jobs (202 Accepted, a status URL, workers).

This is the core package that users import and the services (``api``, ``worker``,
``controller``) share: the app object, the job model and its state machine, the job
store contract and its in-memory and Redis implementations, the job manager, settings.
"""

from asyncendpoints.app import AsyncEndpoints, load_app
from asyncendpoints.backoff import Backoff
from asyncendpoints.context import JobContext
from asyncendpoints.errors import (
    AsyncEndpointsError,
    ConfigurationError,
    InvalidTransitionError,
    JobCanceledError,
    JobNotFoundError,
    JobTimeoutError,
    PayloadError,
    PermanentError,
    QueueFullError,
    StaleLeaseError,
    StoreUnavailableError,
)
from asyncendpoints.handlers import Endpoint
from asyncendpoints.job import (
    Claim,
    HttpContext,
    Job,
    JobError,
    JobStatus,
    Lease,
    NewJob,
    QueueStats,
    WorkerInfo,
)
from asyncendpoints.manager import JobManager
from asyncendpoints.settings import Settings
from asyncendpoints.store import InMemoryJobStore, JobStore, make_store

__version__ = "0.1.0"

__all__ = [
    "AsyncEndpoints",
    "AsyncEndpointsError",
    "Backoff",
    "Claim",
    "ConfigurationError",
    "Endpoint",
    "HttpContext",
    "InMemoryJobStore",
    "InvalidTransitionError",
    "Job",
    "JobCanceledError",
    "JobContext",
    "JobError",
    "JobManager",
    "JobNotFoundError",
    "JobStatus",
    "JobStore",
    "JobTimeoutError",
    "Lease",
    "NewJob",
    "PayloadError",
    "PermanentError",
    "QueueFullError",
    "QueueStats",
    "Settings",
    "StaleLeaseError",
    "StoreUnavailableError",
    "WorkerInfo",
    "load_app",
    "make_store",
]
