"""Every Redis key the project uses, in one place (as arq's ``constants.py``).

Layout, for the default prefix ``ae`` and a job name ``report`` whose tag is
``t = name_tag("report")`` (8 hex digits, also the first 8 characters of its job ids).
Keys of one name share the hash tag ``{t}``, so every Lua script touches one hash slot
(the groundwork for sharding by name on Redis Cluster; see the README's key layout):

====================================  ======  ==================================================
key                                   type    holds
====================================  ======  ==================================================
``ae:{t}:job:<id>``                   hash    one job (fields below); expires after retention
``ae:{t}:queue:report``               list    Queued job ids; LPUSH to enqueue, RPOP to claim
``ae:{t}:scheduled:report``           zset    Scheduled job ids by due time
``ae:{t}:leases:report``              zset    ``<id>:<token>`` of InProgress jobs by lease expiry
``ae:{t}:notify:report``              list    wake-up tokens for blocked workers (BLPOP)
``ae:{t}:seq:report``                 string  fencing-token counter
``ae:{t}:stats:report``               hash    counters: completed, failed, canceled
``ae:{t}:idem:<sha256>``              string  job id of an idempotent submit (tenant + key)
``ae:names``                          set     every registered job name
``ae:workers``                        zset    worker ids by registration expiry
``ae:worker:<worker id>``             string  the worker's :class:`WorkerInfo` as JSON
====================================  ======  ==================================================
"""

from __future__ import annotations

from asyncendpoints.job import name_tag, tag_of
from asyncendpoints.types import JobId, JobName, WorkerId

JOB = "job"
QUEUE = "queue"
SCHEDULED = "scheduled"
LEASES = "leases"
NOTIFY = "notify"
SEQ = "seq"
STATS = "stats"
IDEMPOTENCY = "idem"
NAMES = "names"
WORKERS = "workers"
WORKER = "worker"

# Fields of a job hash (short names: they are stored once per job).
F_ID = "id"
F_NAME = "n"
F_STATUS = "s"
F_PAYLOAD = "p"
F_CONTEXT = "c"
F_TENANT = "t"
F_RETRY = "r"
F_MAX_RETRIES = "m"
F_TIMEOUT = "to"
F_DELAY_UNTIL = "d"
F_CREATED = "ca"
F_STARTED = "sa"
F_COMPLETED = "fa"
F_UPDATED = "ua"
F_RESULT = "res"
F_ERROR = "err"
F_WORKER = "w"
F_TOKEN = "k"  # noqa: S105 (the fencing token field, not a password)
F_PROGRESS = "pg"
F_PROGRESS_MESSAGE = "pm"

# Counter fields of the stats hash.
S_COMPLETED = "completed"
S_FAILED = "failed"
S_CANCELED = "canceled"


class KeySpace:
    """Key names under one prefix (several deployments can share one Redis)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "ae") -> None:
        self.prefix = prefix

    def _tagged(self, tag: str, kind: str, rest: str) -> str:
        return f"{self.prefix}:{{{tag}}}:{kind}:{rest}"

    def job(self, job_id: JobId) -> str:
        return self._tagged(tag_of(job_id), JOB, job_id)

    def queue(self, name: JobName) -> str:
        return self._tagged(name_tag(name), QUEUE, name)

    def scheduled(self, name: JobName) -> str:
        return self._tagged(name_tag(name), SCHEDULED, name)

    def leases(self, name: JobName) -> str:
        return self._tagged(name_tag(name), LEASES, name)

    def notify(self, name: JobName) -> str:
        return self._tagged(name_tag(name), NOTIFY, name)

    def seq(self, name: JobName) -> str:
        return self._tagged(name_tag(name), SEQ, name)

    def stats(self, name: JobName) -> str:
        return self._tagged(name_tag(name), STATS, name)

    def idempotency(self, name: JobName, digest: str) -> str:
        return self._tagged(name_tag(name), IDEMPOTENCY, digest)

    def job_prefix(self, name: JobName) -> str:
        """What ``job(id)`` starts with for every id of this name (scripts append the id)."""
        return f"{self.prefix}:{{{name_tag(name)}}}:{JOB}:"

    @property
    def names(self) -> str:
        return f"{self.prefix}:{NAMES}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:{WORKERS}"

    def worker(self, worker_id: WorkerId) -> str:
        return f"{self.prefix}:{WORKER}:{worker_id}"
