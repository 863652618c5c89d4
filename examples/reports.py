"""The example app: a report that takes a while, with progress, and a quick echo.

Run it with ``asyncendpoints dev examples.reports:app`` and open http://127.0.0.1:8000/docs.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from asyncendpoints import AsyncEndpoints, JobContext, PermanentError

app = AsyncEndpoints(title="Reports (AsyncEndpoints example)")


class ReportRequest(BaseModel):
    month: str = Field(pattern=r"^\d{4}-\d{2}$", examples=["2026-11"])
    pages: int = Field(default=3, ge=1, le=100)
    seconds_per_page: float = Field(default=0.2, ge=0, le=10)


class Report(BaseModel):
    region: str
    month: str
    pages: int
    url: str


@app.post("/reports/{region}", name="generate-report", max_retries=3, timeout=300)
async def generate_report(request: ReportRequest, ctx: JobContext) -> Report:
    """Render a report page by page, reporting progress as it goes."""
    region = ctx.route_params["region"]
    if region == "nowhere":
        raise PermanentError("there is no region called nowhere")
    for page in range(1, request.pages + 1):
        await asyncio.sleep(request.seconds_per_page)
        await ctx.report_progress(page / request.pages, f"page {page} of {request.pages}")
    return Report(
        region=region,
        month=request.month,
        pages=request.pages,
        url=f"/files/{region}-{request.month}.pdf",
    )


class Echo(BaseModel):
    message: str = Field(max_length=1000)


@app.post("/echo", name="echo", max_retries=0)
async def echo(request: Echo) -> Echo:
    """Return the message: a no-op job, for benchmarks and smoke tests."""
    return request


@app.post("/checksum", name="checksum")
def checksum(request: Echo) -> dict[str, int]:
    """A sync handler: runs in the worker's thread pool."""
    return {"length": len(request.message), "sum": sum(request.message.encode()) % 65536}
