"""schemathesis against the committed OpenAPI document (docs/api/openapi.json), in process
(ASGI, no network), signed in as each role, on both stores: whatever it generates for any
operation, the answer is never a 5xx and keeps the contract — a declared status code, the
declared content type, the declared headers (API-Version), a body the declared schema
accepts — and it carries the security headers.

Each operation is explored as each role that may call it (a public one anonymously: it reads
no credentials): a refused caller is answered before any input is read, which the
authorisation matrix (``test_authz_matrix.py``) covers. The store holds a delivered notice for each inbox, a case
and a victim, so that lists and reads answer with real records, not only empty lists and 404s.
A few examples per operation and role keep the run within seconds per store."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks
from schemathesis.core.failures import FailureGroup
from sqlalchemy import Engine

from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.reintegration.cases import open_cases
from terugkeer.security.accounts import create_token
from terugkeer.security.roles import ROLE_PERMISSIONS, Role
from terugkeer.web.app import create_app
from terugkeer.web.auth import PUBLIC, api_routes, route_permissions
from tests.feedutil import intake, msg
from tests.notify.delivery.test_dispatch import channels, clock, feed
from tests.web.portal.conftest import quick_user
from tools.openapi import COMMITTED

EXAMPLES = 6  # per operation and role
CONTRACT = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _store(engine: Engine) -> dict[str, dict[str, str]]:
    """A release with a victim, its notices delivered, its case open; a token per role."""
    victim = msg(
        "victim_registered", "v1", 2, source="OM-IDV", victim_ref="V1", relation="victim",
        spoke_in_court=True, wants_information=True,
        contact={"name": "Slachtoffer Een", "email": "slachtoffer@example.org"},
    )  # fmt: skip
    feed(engine, intake("e1"), victim, msg("release", "e2", 40, release_kind="end_of_sentence"))
    open_cases(engine, None)
    dispatch_once(engine, clock(), channels=channels())
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in Role:  # the users as add_user writes them, one password hash for all
        quick_user(engine, role, role.value)
        token = create_token(
            engine, f"{role.value}-t", role.value, contact_details=role is Role.IDV_OFFICER
        )
        headers[role.value] = {"Authorization": f"Bearer {token}"}
    return headers


def _callers(app: FastAPI, headers: dict[str, dict[str, str]]) -> dict[tuple[str, str], list[str]]:
    """For each operation (method, path as the document writes it), who may call it."""
    callers: dict[tuple[str, str], list[str]] = {}
    for path, route, inherited in api_routes(app.routes):
        needs = route_permissions(route, inherited)
        # a public operation reads no credentials (web/auth.py): anonymously is every role
        labels = (
            ["anonymous"]
            if needs <= {PUBLIC}
            else [
                label
                for label in headers
                if label != "anonymous" and needs <= ROLE_PERMISSIONS[Role(label)]
            ]
        )
        for method in route.methods or ():
            callers[(method.upper(), path.removeprefix("/api/v1"))] = labels
    return callers


def test_every_operation_keeps_the_contract_for_every_role(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="httpx")  # the test client's line per request
    headers = _store(engine)
    app = create_app(engine)
    schema = schemathesis.openapi.from_path(COMMITTED)  # the committed contract
    schema.app = app
    callers = _callers(app, headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    explored = set()
    for operation in operations:
        for label in callers[(operation.method.upper(), operation.path)]:
            _explore(operation, label, headers[label], failures)
            explored.add(operation.label)
    assert explored == {operation.label for operation in operations}  # none skipped
    assert failures == [], "\n".join(failures[:20])


def _explore(operation: Any, label: str, auth: dict[str, str], failures: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(headers=auth)
        where = (
            f"{operation.label} as {label}: {response.status_code} for path "
            f"{case.path_parameters} query {case.query} body {str(case.body)[:120]}"
        )
        if "content-security-policy" not in {name.lower() for name in response.headers}:
            failures.append(f"{where}: no security headers")
        try:
            case.validate_response(response, checks=CONTRACT, headers=auth)
        except FailureGroup as e:
            failures.append(f"{where}: {'; '.join(f.title for f in e.exceptions)}")

    run()
