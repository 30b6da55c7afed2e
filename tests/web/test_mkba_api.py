"""The cost-benefit API: the analyst walks scenarios and runs; every other role is refused."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from terugkeer.security.accounts import add_user, create_token
from terugkeer.security.roles import Role
from terugkeer.web.app import create_app
from tests.mkba.store import build

PASSWORD = "een heel lang wachtwoord"
BASE = "/api/v1/mkba-scenarios"


def bearer(engine: Engine, role: Role) -> dict[str, str]:
    name = f"{role.value}-mkba"
    municipality = "GM0363" if role in (Role.MAYOR_OFFICE, Role.CASEWORKER) else None
    add_user(engine, name, role.value, PASSWORD, municipality)
    return {"Authorization": f"Bearer {create_token(engine, name + '-t', name)}"}


@pytest.fixture
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(engine))


def test_the_analyst_walks_scenarios_and_runs(client: TestClient, engine: Engine) -> None:
    build(engine)
    who = bearer(engine, Role.ANALYST)
    listed = client.get(BASE, headers=who)
    assert listed.status_code == 200, listed.text
    names = {s["name"] for s in listed.json()}
    assert {"pit-amsterdam", "npi-prison", "gemeente-registratie"} <= names
    shown = client.get(f"{BASE}/npi-prison", headers=who).json()
    assert shown["effect"]["measure"] == "smd"
    assert any(p["assumption"] for p in shown["parameters"])
    assert all(p["source"] for p in shown["parameters"])
    made = client.post(
        f"{BASE}/npi-prison/doorrekeningen", headers=who, json={"draws": 300, "seed": 5}
    )
    assert made.status_code == 201, made.text
    run = made.json()
    assert made.headers["location"].endswith("/doorrekeningen/300-5")
    assert run["seed"] == 5
    assert run["draws"] == 300
    assert 0 <= run["monte_carlo"]["society"]["p_benefits_exceed_costs"] <= 1
    again = client.get(made.headers["location"], headers=who)
    assert again.status_code == 200
    assert again.json()["per_participant"] == run["per_participant"]
    assert again.json()["monte_carlo"] == run["monte_carlo"]
    # the registered approach, on this store (recomputed each time)
    store = client.post(
        f"{BASE}/gemeente-registratie/doorrekeningen", headers=who, json={"draws": 200, "seed": 1}
    )
    assert store.status_code == 201, store.text
    assert store.json()["scenario"]["participants"] > 0
    # bad requests
    assert client.get(f"{BASE}/nope", headers=who).status_code == 404
    too_many = client.post(f"{BASE}/npi-prison/doorrekeningen", headers=who, json={"draws": 10**7})
    assert too_many.status_code == 400
    assert client.get(f"{BASE}/npi-prison/doorrekeningen/abc", headers=who).status_code == 400


def test_other_roles_are_refused(client: TestClient, engine: Engine) -> None:
    # two roles here; every role against every route: tests/web/test_authz_matrix.py
    for role in (Role.CASEWORKER, Role.AUDITOR):
        who = bearer(engine, role)
        for method, path in [
            ("GET", BASE),
            ("GET", f"{BASE}/pit-amsterdam"),
            ("POST", f"{BASE}/pit-amsterdam/doorrekeningen"),
            ("GET", f"{BASE}/pit-amsterdam/doorrekeningen/100-1"),
        ]:
            response = client.request(method, path, headers=who, json={"draws": 10})
            assert response.status_code == 403, (role, method, path, response.text)
            assert client.request(method, path, json={"draws": 10}).status_code == 401
