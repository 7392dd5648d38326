"""Schema-driven fuzzing of /api/v1 with schemathesis against a real `incident serve`.

Schemathesis reads the served OpenAPI document and sends valid and invalid requests for
every operation. No response may be a 5xx, and every response must be one the document
declares, in the shape it declares. `FUZZ_EXAMPLES` (default 25) sets examples per
operation and generation mode.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Err

from incident.web.api import OPERATIONS as API_OPERATIONS
from incident.web.openapi import openapi_document
from tests.served_process import incident_serve

TOKEN = "fuzz-admin-token-0123456789"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = {
        "INCIDENT_API_TOKENS": f"{TOKEN}:admin:fuzzer",
        "INCIDENT_BASE_URL": "http://127.0.0.1:{port}",
        "INCIDENT_MAX_BODY_BYTES": "65536",
        "INCIDENT_COMPONENTS": "api:API,web:Website",
    }
    with incident_serve(tmp_path_factory.mktemp("fuzz") / "fuzz.db", settings) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(served: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served}/api/v1/openapi.json")


# Collected from the document the code builds, so every operation is a test of its own.
# (Schemathesis' pytest plugin does not support pytest 9 yet: its strategies are driven with
# Hypothesis directly instead.)
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, item in openapi_document("http://127.0.0.1").get("paths", {}).items()
    for method in item
]
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# The document is no looser than the server: a JSON body it refuses, the server refuses.
# (Not for query strings: `?kind=false` is the string "false" to us and to the document,
# while schemathesis counts it as a boolean in the place of a string. The query rules have
# tests of their own in test_api.py.)
BODY_CHECKS = [*CHECKS, checks.negative_data_rejection]
WITH_BODY = {f"{op.method} {op.path}" for op in API_OPERATIONS if op.body is not None}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_request_gets_a_server_error(
    api_schema: schemathesis.BaseSchema, label: str, mode: GenerationMode
) -> None:
    operations = {}
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the served document itself is invalid: that, not a KeyError
        operation = result.ok()
        operations[operation.label] = operation
    assert set(operations) == set(OPERATIONS)
    strategy = operations[label].as_strategy(generation_mode=mode)

    @given(case=strategy)
    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {TOKEN}"},
            checks=BODY_CHECKS if label in WITH_BODY else CHECKS,
        )

    run()
