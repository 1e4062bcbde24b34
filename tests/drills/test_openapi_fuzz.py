"""schemathesis against the service's own OpenAPI, served on a real socket.

The schema is loaded from the running app's /openapi.json, with the fake
upstreams and a real Postgres behind it. Valid and invalid requests are
generated for every operation. No answer may be a 500; a 502, 503 or 504 is
acceptable only with the JSON error body the API documents (none is expected
here: the fake upstreams answer well). Each answer must also match the
documented status codes, content types and response schemas.

Not checked: that invalid input is always refused. The contract accepts more
than the schema says on purpose (salaries as strings like "120k", free-text
dates and job types from the old frontend), so schemathesis's negative data
is sometimes, rightly, a 200.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.drills.conftest import SharedService

EXAMPLES_PER_MODE = 75
MIN_REQUESTS = 200
UPSTREAM_ERRORS = {502, 503, 504}
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def test_generated_requests_get_no_server_error(shared: SharedService) -> None:
    schema = schemathesis.openapi.from_url(f"{shared.url}/openapi.json")
    statuses: Counter[int] = Counter()

    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=shared.url, timeout=30)
        statuses[response.status_code] += 1
        label = f"{case.method} {case.path} {case.body!r:.200}"
        assert response.status_code != 500, f"500 for {label}: {response.text[:300]}"
        if response.status_code in UPSTREAM_ERRORS:
            error = response.json()["error"]
            assert error["code"].startswith(("upstream_", "source_")), label
            assert error["request_id"] == response.headers["x-request-id"]
        assert response.status_code < 500 or response.status_code in UPSTREAM_ERRORS, label
        case.validate_response(response, checks=CHECKS)

    loaded = list(schema.get_all_operations())
    operations = [result.ok() for result in loaded if isinstance(result, Ok)]
    assert len(operations) == len(loaded), "an operation of the schema could not be loaded"
    assert {op.path for op in operations} >= {"/health", "/ready", "/api/jobs/jsearch"}
    for operation in operations:
        # GET /health and /ready take no input: one request each says all there is to say.
        has_input = operation.method.upper() == "POST"
        modes = (
            [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
            if has_input
            else [GenerationMode.POSITIVE]
        )
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode)

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES_PER_MODE if has_input else 3,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case[Any]) -> None:
                check(case)

            run()

    total = sum(statuses.values())
    print(f"schemathesis: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert total >= MIN_REQUESTS
    assert statuses[200] > 0
    assert statuses[422] > 0


def test_bad_json_status_is_documented(shared: SharedService) -> None:
    response = httpx.post(
        f"{shared.url}/api/jobs/jsearch",
        content=b"[" * 3000 + b"]" * 3000,  # too deep to parse: 400, not 422
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    documented = httpx.get(f"{shared.url}/openapi.json").json()["paths"]["/api/jobs/jsearch"]
    assert "400" in documented["post"]["responses"]
