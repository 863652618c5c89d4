"""The claim's one-pass decoder gives exactly what the general decoder gives."""

from __future__ import annotations

from asyncendpoints.job import JobStatus
from asyncendpoints.store import keys as k
from asyncendpoints.store.codec import claimed_job, job_from_fields

FULL = {
    k.F_ID: b"d8d908d2-YMHdpbT4OJThTYiOULMxlg",
    k.F_NAME: b"noop",
    k.F_STATUS: b"Queued",
    k.F_PAYLOAD: b'{"i":1}',
    k.F_CONTEXT: b'{"h":{"a":"b"},"r":{},"q":{"x":"1"}}',
    k.F_TENANT: b"acme",
    k.F_RETRY: b"2",
    k.F_MAX_RETRIES: b"5",
    k.F_TIMEOUT: b"1.5",
    k.F_DELAY_UNTIL: b"1712345678.123",
    k.F_CREATED: b"1712345670.5",
    k.F_UPDATED: b"1712345671.25",
    k.F_COMPLETED: b"1712345672.0",
    k.F_RESULT: b"[1]",
    k.F_ERROR: b'{"type":"Boom","message":"no"}',
    k.F_WORKER: b"old",
    k.F_TOKEN: b"3",
    k.F_PROGRESS: b"0.5",
    k.F_PROGRESS_MESSAGE: b"half",
}
MINIMAL = {key: FULL[key] for key in (k.F_ID, k.F_NAME, k.F_STATUS, k.F_CREATED, k.F_UPDATED)}


def general(f: dict[str, bytes], now: bytes, worker: bytes, token: int) -> object:
    """The claim's writes applied to the hash, decoded by :func:`job_from_fields`."""
    f = dict(f)
    f.pop(k.F_PROGRESS, None)
    f.pop(k.F_PROGRESS_MESSAGE, None)
    f[k.F_STATUS] = JobStatus.IN_PROGRESS.value.encode()
    f[k.F_WORKER], f[k.F_TOKEN] = worker, str(token).encode()
    f[k.F_STARTED] = f[k.F_UPDATED] = now
    return job_from_fields(f)


def flat(f: dict[str, bytes]) -> list[bytes]:
    return [x for key, value in f.items() for x in (key.encode(), value)]


def test_claimed_job_matches_the_general_decoder() -> None:
    now = b"1712345680.000123"
    for f in (FULL, MINIMAL, {**MINIMAL, k.F_CONTEXT: b"", k.F_TENANT: b"", k.F_ERROR: b""}):
        for worker in ("w-1", ""):
            expected = general(f, now, worker.encode(), 7)
            assert claimed_job(flat(f), float(now), worker, 7) == expected


def test_blpop_timeout_never_blocks_forever() -> None:
    """BLPOP 0 blocks forever: a wait of under half a millisecond must still time out."""
    from asyncendpoints.store.redis_io import blpop_timeout

    assert blpop_timeout(0.0) == "0.001"
    assert blpop_timeout(0.0004) == "0.001"
    assert blpop_timeout(0.0011) == "0.002"  # rounded up, never down
    assert blpop_timeout(1.0) == "1.000"
