"""The monitor's API: every monitor route, walked as the analyst, gives suppressed aggregates
only (each count at least the minimum cell size, or null; nothing that names a person); every
other role is refused, and anonymous callers must sign in. On both stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from terugkeer.intake import ingest_files
from terugkeer.security.accounts import add_user, create_token
from terugkeer.security.roles import Role
from terugkeer.synth import generate
from terugkeer.web.app import create_app
from terugkeer.web.auth import api_routes
from tests.conftest import empty_all

K = 10
COUNTS = {"op_orde", "niet_op_orde", "onbekend", "personen", "recidivisten"}
PERSONAL = {"bsn", "person", "person_id", "period_id", "period_ref", "prison_number", "birth_date"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """One store per module and store: the walk only reads."""
    name = "_sqlite_engine" if request.param == "sqlite" else "_pg_engine"
    engine: Engine = request.getfixturevalue(name)
    empty_all(engine)
    synth = generate(tmp_path_factory.mktemp("monitor-api") / "feeds", releases=400, seed=3)
    ingest_files(engine, [synth.files[f"{n}.jsonl"] for n in ("detention", "reconvictions")])
    headers: dict[str, Any] = {"anonymous": {}}
    for role in Role:
        municipality = "GM0363" if role in (Role.MAYOR_OFFICE, Role.CASEWORKER) else None
        add_user(engine, f"u-{role.value}", role.value, "een heel lang wachtwoord", municipality)
        token = create_token(engine, f"t-{role.value}", f"u-{role.value}")
        headers[role.value] = {"Authorization": f"Bearer {token}"}
    app = create_app(engine)
    app.state.monitor_max_age = 0  # figures of an earlier test's store are never reused
    yield TestClient(app), headers
    empty_all(engine)


def monitor_paths(client: TestClient) -> list[str]:
    return sorted(
        path
        for path, route, _ in api_routes(client.app.routes)  # type: ignore[attr-defined]
        if path.startswith("/api/v1/monitor/") and "GET" in (route.methods or ())
    )


def walk(value: Any, seen: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, v in value.items():
            seen.append((key, v))
            walk(v, seen)
    elif isinstance(value, list):
        for v in value:
            walk(v, seen)


def test_analyst_sees_suppressed_aggregates_only(
    world: tuple[TestClient, dict[str, Any]],
) -> None:
    client, headers = world
    paths = monitor_paths(client)
    assert {"/api/v1/monitor/indicatoren", "/api/v1/monitor/recidive"} <= set(paths)
    queries = ["", "?dimensie=municipality", "?dimensie=age_band&jaar=totaal"]
    counted = 0
    for path in paths:
        for query in queries if path != "/api/v1/monitor/samenhang" else [""]:
            response = client.get(path + query, headers=headers["analyst"])
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["minimale_celgrootte"] == K
            assert body["let_op"] == "samenhang, geen effect"
            seen: list[tuple[str, Any]] = []
            walk(body, seen)
            assert not PERSONAL & {key for key, _ in seen}
            for key, value in seen:
                if key in COUNTS and value is not None:
                    assert value >= K, (path, query, key, value)
                    counted += 1
    assert counted > 0  # something was published


def test_a_year_is_a_slice_of_all_years(world: tuple[TestClient, dict[str, Any]]) -> None:
    """Overlapping queries (one year, all years; one municipality, all) give the same cells."""
    client, headers = world
    h = headers["analyst"]
    url = "/api/v1/monitor/recidive?dimensie=municipality"
    everything = client.get(url, headers=h).json()["rijen"]
    year = client.get(url + "&jaar=2024", headers=h).json()["rijen"]
    assert year == [r for r in everything if r["jaar"] == "2024"]
    one = client.get(url + "&waarde=GM0363", headers=h).json()["rijen"]
    assert one == [r for r in everything if r["waarde"] == "GM0363"]


def test_other_roles_are_refused(world: tuple[TestClient, dict[str, Any]]) -> None:
    client, headers = world
    for path in monitor_paths(client):
        assert client.get(path, headers=headers["anonymous"]).status_code == 401
        for role in Role:
            if role is Role.ANALYST:
                continue
            assert client.get(path, headers=headers[role.value]).status_code == 403, role


def test_the_routes_take_the_monitors_code_lists() -> None:
    from typing import get_args

    from terugkeer.monitor.cohorts import DIMENSIONS
    from terugkeer.monitor.recidivism import CRITERIA, HORIZONS
    from terugkeer.reintegration.codes import MOMENTS
    from terugkeer.web.api import monitor

    assert get_args(monitor.Dimensie) == tuple(d.code for d in DIMENSIONS)
    assert get_args(monitor.MomentCode) == tuple(m.value for m in MOMENTS)
    assert get_args(monitor.Criterium) == tuple(c.code for c in CRITERIA)
    assert get_args(monitor.Termijn) == tuple(HORIZONS)
