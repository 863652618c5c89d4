"""The benchmark's app for this project: one no-op endpoint.

``asyncendpoints worker benchmarks.systems.ours_app:app`` runs its worker;
``benchmarks.systems.ours`` submits to it.
"""

from __future__ import annotations

from pydantic import BaseModel

from asyncendpoints import AsyncEndpoints
from benchmarks.systems._events import record

app = AsyncEndpoints()


class Noop(BaseModel):
    i: int = 0


@app.post("/noop", name="noop", max_retries=0)
async def noop(request: Noop) -> None:
    record(request.i)
