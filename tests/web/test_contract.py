"""The committed OpenAPI document (docs/api/openapi.json) is the code's: a route changed
without regenerating the document fails here. It also states what the app does."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from terugkeer.web.app import API_VERSION, BASE, create_app
from tools.openapi import COMMAND, COMMITTED, document, render


def test_the_committed_document_is_the_codes() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    assert committed == render(document()), (
        f"{COMMITTED.name} differs from the code's OpenAPI document: run `{COMMAND}` "
        "and commit docs/api/openapi.json"
    )


def test_the_app_serves_the_same_document() -> None:
    engine = create_engine("sqlite://")
    served = TestClient(create_app(engine)).get(f"{BASE}/openapi.json")
    engine.dispose()
    assert served.status_code == 200
    assert served.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_every_response_declares_the_version_header_and_errors_are_problems() -> None:
    doc = document()
    assert doc["servers"] == [{"url": BASE, "description": doc["servers"][0]["description"]}]
    assert doc["info"]["version"] == API_VERSION
    assert {"name", "email", "url"} <= set(doc["info"]["contact"])
    operations = [op for item in doc["paths"].values() for op in item.values()]
    assert len(operations) > 20
    for operation in operations:
        responses = operation["responses"]
        fastapis = responses.get("422", {}).get("content", {}).get("application/json")
        assert fastapis is None, operation["operationId"]  # invalid input is a 400
        assert {"400", "500"} <= set(responses), operation["operationId"]
        for status, response in responses.items():
            assert "API-Version" in response["headers"], (operation["operationId"], status)
            if status[0] in "45":
                assert list(response["content"]) == ["application/problem+json"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])


def test_an_unexpected_error_is_a_problem_with_the_version_header() -> None:
    engine = create_engine("sqlite://")  # no tables: looking up the token fails
    client = TestClient(create_app(engine), raise_server_exceptions=False)
    response = client.get(f"{BASE}/tokens", headers={"Authorization": "Bearer x"})
    engine.dispose()
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["API-Version"] == API_VERSION
    assert set(response.json()) >= {"type", "title", "status", "detail"}
