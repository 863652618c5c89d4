"""Schemathesis over the OpenAPI spec: no generated input makes the API answer 5xx,
and every answer conforms to what the spec documents."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api import create_app
from asyncendpoints import InMemoryJobStore, Settings
from tests.api.apps import make_app

app = create_app(
    make_app(
        Settings(long_poll_max_seconds=0.05, max_body_bytes=4096),
        InMemoryJobStore(),
        documented=True,
    )
)
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""What negative (schema-violating) data may be answered with: no 5xx, and 413 counts."""
config = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api(case: schemathesis.Case) -> None:
    case.call_and_validate()
