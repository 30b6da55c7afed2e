from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from terugkeer.db.engine import make_engine
from terugkeer.web.app import API_VERSION, create_app


def test_health_and_api_version_header(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.headers["API-Version"] == API_VERSION


def test_openapi_document_is_published_at_the_base_path(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    document = client.get("/api/v1/openapi.json").json()
    assert document["info"]["version"] == API_VERSION
    assert document["servers"][0]["url"] == "/api/v1"  # the paths are relative to it
    assert "/health" in document["paths"]


def test_errors_are_problem_json(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert response.headers["API-Version"] == API_VERSION


def test_health_reports_a_database_that_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = make_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    response = TestClient(create_app(broken)).get("/api/v1/health")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
