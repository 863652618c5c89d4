"""The submit route of one endpoint: validate, precheck, store a Queued job, answer 202.

The route's function is built with a signature FastAPI reads like a hand-written one:
the handler's body type as the (JSON) body, so FastAPI validates it (422) and ``/docs``
shows it, and each ``{param}`` of the path typed by its convertor. Query parameters are
not declared: all of them are captured into the job's context as they come. Where
FastAPI could add nothing to it (see :func:`~asyncendpoints.http.guard.guarded_route`),
the route validates the raw body with the same model through pydantic's JSON parser
instead, skipping FastAPI's request handler: the same answers, at a lower cost.

Idempotent submit: with an ``Idempotency-Key`` (or ``X-Async-Request-Id``) header, a
retry of the same request (same tenant, endpoint and key) answers the job the first one
created, with the same ``202`` and an ``Idempotent-Replayed: true`` header, and stores
nothing. The same key with a different body or route parameters is a 422.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from pydantic import ValidationError
from starlette.convertors import FloatConvertor, IntegerConvertor, UUIDConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

from asyncendpoints.app import AsyncEndpoints
from asyncendpoints.handlers import Endpoint
from asyncendpoints.http.batching import SubmitBatcher
from asyncendpoints.http.context import capture
from asyncendpoints.http.guard import Guard, guarded_route, headers_of, request_tenant
from asyncendpoints.http.precheck import Precheck
from asyncendpoints.http.problems import Problem, problem_responses
from asyncendpoints.http.resources import JobResource, JobUrls

IDEMPOTENCY_HEADERS = ("idempotency-key", "x-async-request-id")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_CONVERTED: dict[type, Any] = {
    IntegerConvertor: int,
    FloatConvertor: float,
    UUIDConvertor: uuid.UUID,
}
_OPERATION_ID = re.compile(r"[^A-Za-z0-9_]")


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    """The request's idempotency key (an RFC 8941 string may be quoted); 400 when invalid."""
    keys = set()
    for header in IDEMPOTENCY_HEADERS:
        value = headers.get(header)
        if value is not None:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            keys.add(value)
    if not keys:
        return None
    if len(keys) > 1:
        raise Problem(
            400, "invalid-idempotency-key", "Idempotency-Key and X-Async-Request-Id differ."
        )
    key = keys.pop()
    if not _KEY.fullmatch(key):
        raise Problem(
            400,
            "invalid-idempotency-key",
            "An idempotency key is 1 to 255 printable ASCII characters without spaces.",
        )
    return key


def _signature(endpoint: Endpoint) -> tuple[inspect.Signature, str | None]:
    """The submit function's signature, and the name of its body parameter."""
    _, _, convertors = compile_path(endpoint.path)
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("request", kw, annotation=Request)]
    for name, convertor in convertors.items():
        kind = _CONVERTED.get(type(convertor), str)
        params.append(inspect.Parameter(name, kw, annotation=Annotated[kind, Path()]))
    body_name = None
    if endpoint.body_param is not None:
        taken = {p.name for p in params}
        body_name = "body"
        while body_name in taken:
            body_name += "_"
        default = inspect.signature(endpoint.handler).parameters[endpoint.body_param].default
        params.append(
            inspect.Parameter(
                body_name, kw, annotation=Annotated[endpoint.body_type, Body()], default=default
            )
        )
    return inspect.Signature(params, return_annotation=Response), body_name


def _body_parser(endpoint: Endpoint) -> Callable[[bytes], Any]:
    """Raw body -> the validated body, raising FastAPI's validation error (``body`` loc)."""
    adapter = endpoint.body_adapter
    required = True
    default: Any = None
    if endpoint.body_param is not None:
        param = inspect.signature(endpoint.handler).parameters[endpoint.body_param]
        if param.default is not inspect.Parameter.empty:
            required, default = False, param.default

    def parse(raw: bytes) -> Any:
        if adapter is None:
            return None
        if not raw:
            if not required:
                return default
            missing = {"type": "missing", "loc": ("body",), "msg": "Field required"}
            raise RequestValidationError([missing])
        try:
            return adapter.validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            raise RequestValidationError(
                [{**error, "loc": ("body", *error["loc"])} for error in errors]
            ) from None

    return parse


def add_submit_route(
    router: APIRouter,
    ae: AsyncEndpoints,
    endpoint: Endpoint,
    *,
    guard: Guard,
    urls: JobUrls,
    dropped: frozenset[str],
    batcher: SubmitBatcher | None = None,
    dependencies: Sequence[Depends] = (),
) -> None:
    """Add ``endpoint``'s submit route to ``router``."""
    signature, body_name = _signature(endpoint)
    typed_path = any(
        type(c) in _CONVERTED for c in compile_path(endpoint.path)[2].values()
    )  # a value of the wrong type matches no route: 404
    name = endpoint.name
    adapter = endpoint.body_adapter
    precheck = Precheck(endpoint.precheck) if endpoint.precheck is not None else None
    observer = guard.observer
    manager = ae.manager

    async def accept(request: Request, body: Any) -> Response:
        key = idempotency_key(headers_of(request))
        if precheck is not None:
            answer = await precheck(body, request)
            if answer is not None:
                observer.submitted(name, "answered")
                return answer
        context = capture(request, dropped)
        payload = b"null" if adapter is None else adapter.dump_json(body)
        new = manager.new_job(
            name,
            payload,
            max_retries=endpoint.max_retries,
            timeout=endpoint.timeout,
            context=context,
            tenant=request_tenant(request),
        )
        await ae.startup()
        if key is None and batcher is not None:
            job = await batcher.create(new)
        else:
            job = await manager.create(new, idempotency_key=key)
        if job.id == new.id:
            observer.submitted(name, "accepted")
            return urls.response(request, job, 202)
        if job.payload != payload or job.context.route_params != context.route_params:
            raise Problem(
                422,
                "idempotency-key-reused",
                "This idempotency key was used for a different request.",
            )
        observer.submitted(name, "replayed")
        return urls.response(request, job, 202, {"Idempotent-Replayed": "true"})

    async def submit(request: Request, **params: Any) -> Response:
        """The endpoint FastAPI calls, with the body it validated."""
        return await accept(request, params.get(body_name) if body_name is not None else None)

    submit.__signature__ = signature  # type: ignore[attr-defined]
    parse = _body_parser(endpoint)

    async def direct(request: Request, raw: bytes) -> Response:
        """The same, validating the raw body with pydantic's JSON parser (see
        :func:`~asyncendpoints.http.guard.guarded_route`)."""
        return await accept(request, parse(raw))

    doc = inspect.getdoc(endpoint.handler) or ""
    summary = endpoint.summary or (doc.splitlines()[0] if doc else f"Submit a {name} job")
    router.add_api_route(
        endpoint.path,
        submit,
        methods=[endpoint.method],
        name=f"asyncendpoints.submit.{name}",
        operation_id=f"submit_{_OPERATION_ID.sub('_', name)}",
        summary=summary,
        description=(
            f"{doc}\n\nStores a `{name}` job and answers `202 Accepted` at once, with "
            "`Location` naming the job resource. Send `Idempotency-Key` to make retries safe."
        ).strip(),
        status_code=202,
        response_model=JobResource,
        response_description="The job was stored (or, for a replayed idempotency key, found)",
        responses={
            202: {
                "headers": {
                    "Location": {
                        "description": "The job resource",
                        "schema": {"type": "string"},
                    },
                },
            },
            **problem_responses(400, 401, 413, 415, 422, 429, 503),
            **(problem_responses(404) if typed_path else {}),
        },
        tags=["submit"],
        dependencies=list(dependencies),
        route_class_override=guarded_route(guard, name, direct),
    )


__all__ = ["IDEMPOTENCY_HEADERS", "add_submit_route", "idempotency_key"]
