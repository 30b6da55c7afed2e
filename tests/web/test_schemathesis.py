"""schemathesis against the app's own OpenAPI document, in process (ASGI, no network), signed
in as each role: whatever it generates for any operation, the answer is never a 5xx, and it
always carries the security headers.

Each operation is explored as each role that may call it (and anonymously when it is public):
a refused caller is answered before any input is read, which the authorisation matrix
(``test_authz_matrix.py``) covers. A few examples per operation and role keep the run to about
a minute per store."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import Engine

from terugkeer.reintegration.cases import open_cases
from terugkeer.security.accounts import add_user, create_token
from terugkeer.security.roles import ROLE_PERMISSIONS, Role
from terugkeer.web.app import create_app
from terugkeer.web.auth import PUBLIC, api_routes, route_permissions
from tests.feedutil import intake, msg
from tests.notify.delivery.test_dispatch import feed

PASSWORD = "een heel lang wachtwoord"
EXAMPLES = 15  # per operation and role


def test_no_operation_answers_a_5xx_for_any_role(engine: Engine) -> None:
    feed(engine, intake("e1"), msg("release", "e2", 40, release_kind="end_of_sentence"))
    open_cases(engine, None)
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in Role:
        municipality = "GM0363" if role in (Role.MAYOR_OFFICE, Role.CASEWORKER) else None
        add_user(engine, role.value, role.value, PASSWORD, municipality)
        token = create_token(
            engine, f"{role.value}-t", role.value, contact_details=role is Role.IDV_OFFICER
        )
        headers[role.value] = {"Authorization": f"Bearer {token}"}
    app = create_app(engine)
    needs = {
        (method, path): route_permissions(route, inherited)
        for path, route, inherited in api_routes(app.routes)
        for method in route.methods or ()
    }
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    explored = 0
    for operation in operations:
        permissions = needs[(operation.method.upper(), operation.path)]
        for label, auth in headers.items():
            public = permissions == {PUBLIC}
            if public or (label != "anonymous" and permissions <= ROLE_PERMISSIONS[Role(label)]):
                _explore(operation, label, auth, failures)
                explored += 1
    assert explored >= len(operations)
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
        names = {name.lower() for name in response.headers}
        if response.status_code >= 500 or "content-security-policy" not in names:
            failures.append(
                f"{operation.label} as {label}: {response.status_code} for "
                f"path {case.path_parameters} query {case.query} body {str(case.body)[:120]}"
            )

    run()
