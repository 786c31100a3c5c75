"""Schemathesis over the OpenAPI schema, against a real server: whatever it
sends to any operation, the answer is never a 5xx, and it matches the schema."""

from __future__ import annotations

import schemathesis
from helpers import as_
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance, response_headers_conformance]


def test_no_5xx_and_responses_match_the_schema(api, tenants):
    schema = schemathesis.openapi.from_url(f"{api}/api/v1/openapi.json")
    failures, tried = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tried += 1

        @given(operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(headers=as_(tenants["alice"]), timeout=10, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # noqa: BLE001  (every operation is tried; all failures are reported)
            failures.append(f"{operation.label}: {exc}")
    assert tried > 30
    assert not failures, "\n\n".join(failures)
