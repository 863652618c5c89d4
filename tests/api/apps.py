"""The AsyncEndpoints app the API tests serve: a few endpoints covering each kind of route."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field

from asyncendpoints import AsyncEndpoints, JobContext, JobStore, Settings

TOKEN_A = "token-a-0123456789"
TOKEN_B = "token-b-9876543210"


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
"""An integer as JSON Schema means it: pydantic's lax mode would also take `true` and
`"3"` (which the schemathesis run reports as schema-violating data accepted), its strict
mode would refuse `3.0` (a valid JSON integer)."""


class Echo(BaseModel):
    message: str = Field(max_length=200)


class ReportRequest(BaseModel):
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    pages: JsonInt = Field(default=1, ge=1, le=100)


class Item(BaseModel):
    name: str
    tags: list[str] = []


calls: list[dict[str, Any]] = []
"""What the prechecks saw (tests clear it)."""


async def report_precheck(body: ReportRequest, request: Request) -> JSONResponse | None:
    calls.append({"month": body.month, "path": request.url.path})
    if body.month == "9999-12":
        raise HTTPException(400, "that month has not happened yet")
    if body.month == "0000-00":
        return JSONResponse({"answered": "by the precheck"}, status_code=200)
    if body.month == "6666-66":
        raise RuntimeError("secret internals of the precheck")
    return None


async def report_precheck_documented(body: ReportRequest) -> None:
    """Refuses with 400 only: every answer it causes is in the OpenAPI spec."""
    if body.month == "9999-12":
        raise HTTPException(400, "that month has not happened yet")


def item_precheck(item: Item) -> None:
    """A sync precheck without a Request parameter."""
    calls.append({"item": item.name})
    if item.name == "forbidden":
        raise HTTPException(403, "no", headers={"X-Reason": "forbidden item"})


def make_app(settings: Settings, store: JobStore, *, documented: bool = False) -> AsyncEndpoints:
    """The test app; ``documented`` swaps the report precheck (which answers 200 or crashes
    on purpose for some months) for one whose answers are all in the spec."""
    ae = AsyncEndpoints(settings, store=store, title="API tests")
    precheck = report_precheck_documented if documented else report_precheck

    @ae.post("/echo", name="echo", max_retries=0)
    async def echo(request: Echo) -> Echo:
        """Return the message."""
        return request

    @ae.post("/reports/{region}", name="report", max_retries=2, precheck=precheck)
    async def report(request: ReportRequest, ctx: JobContext) -> dict[str, Any]:
        return {"region": ctx.route_params["region"], "month": request.month}

    @ae.put("/items/{item_id:int}", name="item", precheck=item_precheck)
    def item(item: Item) -> Item:
        return item

    @ae.post("/ping", name="ping")
    async def ping(ctx: JobContext) -> str:
        return "pong"

    return ae
