"""The feed over HTTP: ``POST /api/v1/detentiegebeurtenissen``, through the real app, on both
stores. The same guarantees as the file ingest (applied, duplicate, quarantined with its reason,
parked until what it waits for arrives), an answer per message, and the notices the events
require in the outbox when the answer returns."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from terugkeer.config import get_settings
from terugkeer.detention.store import check_periods
from terugkeer.detention.tables import detention_periods, feed_events, quarantine
from terugkeer.notify.tables import deliveries, obligations
from terugkeer.security.accounts import add_user, create_token
from terugkeer.security.tables import audit_log
from terugkeer.web.api import feed as feed_api
from terugkeer.web.app import API_VERSION, create_app
from tests.feedutil import BSN2, intake, msg

URL = "/api/v1/detentiegebeurtenissen"
PASSWORD = "een heel lang wachtwoord"


@pytest.fixture
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(engine))


def token(engine: Engine, name: str, role: str, municipality: str | None = None) -> dict[str, str]:
    add_user(engine, name, role, PASSWORD, municipality)
    return {"Authorization": f"Bearer {create_token(engine, name + '-t', name)}"}


@pytest.fixture
def feed(engine: Engine) -> dict[str, str]:
    return token(engine, "pi-vught", "feed")


def post(client: TestClient, headers: dict[str, str], body: Any) -> dict[str, Any]:
    content = json.dumps(body)  # as ASCII: a lone surrogate goes as its JSON escape
    response = client.post(
        URL, headers={**headers, "Content-Type": "application/json"}, content=content
    )
    assert response.status_code == 200, response.text
    assert response.headers["API-Version"] == API_VERSION
    result: dict[str, Any] = response.json()
    assert result["read"] == result["applied"] + result["duplicates"] + result["quarantined"]
    assert [r["index"] for r in result["results"]] == list(range(len(body)))
    return result


def outcomes(result: dict[str, Any]) -> list[str]:
    return [r["outcome"] for r in result["results"]]


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_batch_is_applied_with_an_answer_per_message(
    engine: Engine, client: TestClient, feed: dict[str, str]
) -> None:
    body = [
        intake("e1"),
        msg("release_date_set", "e2", 5, planned_release_date="2026-01-20"),
        intake("e3", period="P2", bsn=BSN2),
    ]
    result = post(client, feed, body)
    assert outcomes(result) == ["applied"] * 3
    assert [r["event_id"] for r in result["results"]] == ["e1", "e2", "e3"]
    assert (result["read"], result["applied"], result["duplicates"]) == (3, 3, 0)
    assert result["origin"].startswith("api:pi-vught:")
    assert count(engine, feed_events) == 3
    assert count(engine, obligations) > 0  # the rules ran in the same transaction


def test_a_duplicate_changes_nothing_and_says_so(
    engine: Engine, client: TestClient, feed: dict[str, str]
) -> None:
    post(client, feed, [intake("e1")])
    # the same event again, with other whitespace and key order (a string is the line as sent)
    again = '{"kind": "intake", "event_id": "e1", ' + str(intake("e1"))[1:].replace("'", '"')
    result = post(client, feed, [intake("e1"), intake("e1"), again])
    assert outcomes(result) == ["duplicate", "duplicate", "duplicate"]
    assert result["duplicates"] == 3
    assert count(engine, feed_events) == 1


def test_a_bad_message_is_quarantined_with_its_reason_while_the_others_apply(
    engine: Engine, client: TestClient, feed: dict[str, str]
) -> None:
    body: list[Any] = [
        intake("e1"),
        msg("escape", "e2", 3, bsn="123456789"),  # fails the 11-proef
        "{not json",
        42,
        # parked: P9 has no intake yet
        msg("release_date_set", "e3", 4, period="P9", bsn=BSN2, planned_release_date="2026-03-01"),
        msg("release_date_set", "e4", 5, planned_release_date="2026-01-20"),
    ]
    result = post(client, feed, body)
    assert outcomes(result) == [
        "applied",
        "quarantined",
        "quarantined",
        "quarantined",
        "quarantined",
        "applied",
    ]
    bad = result["results"]
    assert (bad[1]["reason"], bad[1]["field"]) == ("invalid_bsn", "person.bsn")
    assert "123456789" not in str(bad[1])  # a BSN is never repeated
    assert bad[2]["reason"] == bad[3]["reason"] == "invalid_json"
    assert (bad[4]["reason"], bad[4]["waits_for"]) == ("unknown_period", "period:P9")
    assert all(r["message"] for r in bad[1:5])
    with engine.connect() as conn:
        rows = conn.execute(
            select(quarantine.c.origin, quarantine.c.line_no, quarantine.c.reason).order_by(
                quarantine.c.line_no
            )
        ).all()
    # found again in the quarantine: the origin of the answer, line = index + 1
    assert [(r.origin, r.line_no, r.reason) for r in rows] == [
        (result["origin"], 2, "invalid_bsn"),
        (result["origin"], 3, "invalid_json"),
        (result["origin"], 4, "invalid_json"),
        (result["origin"], 5, "unknown_period"),
    ]
    # the parked one applies when its intake arrives, in a later delivery
    later = post(client, feed, [intake("e5", days=1, period="P9", bsn=BSN2)])
    assert outcomes(later) == ["applied"]
    assert later["unparked"] == 1


def test_a_message_the_store_cannot_hold_is_quarantined_and_the_others_apply(
    engine: Engine, client: TestClient, feed: dict[str, str]
) -> None:
    """A NUL character (no store keeps one) holds back its own message, not the batch."""
    nul = msg("release_date_set", "e2", 5, planned_release_date="2026-01-20")
    nul["period"] = "P\u000028"
    surrogate = msg("leave_granted", "e4", 7, leave_municipality="GM0363")
    surrogate["leave_from"] = "\ud800"  # a lone surrogate: no store keeps one either
    result = post(client, feed, [intake("e1"), nul, msg("escape", "e3", 6), surrogate])
    assert outcomes(result) == ["applied", "quarantined", "applied", "quarantined"]
    assert (result["results"][1]["reason"], result["results"][1]["field"]) == (
        "invalid_value",
        "period",
    )
    assert result["results"][3]["field"] == "leave_from"


def test_no_token_is_401_and_another_role_is_403(engine: Engine, client: TestClient) -> None:
    body = [intake("e1")]
    anonymous = client.post(URL, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    wrong = client.post(URL, json=body, headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401
    mayor = token(engine, "oov", "mayor_office", "GM0363")
    refused = client.post(URL, json=body, headers=mayor)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "feed:write" in refused.json()["detail"]
    assert count(engine, feed_events) == 0


def test_a_notice_due_within_the_hour_is_in_the_outbox_when_the_answer_returns(
    engine: Engine, client: TestClient, feed: dict[str, str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    arrived = intake("e1")
    arrived["occurred_at"] = (now - timedelta(days=30)).isoformat()
    escape = msg("escape", "e2", 0)
    escape["occurred_at"] = (now - timedelta(minutes=1)).isoformat()
    post(client, feed, [arrived])
    result = post(client, feed, [escape])
    assert outcomes(result) == ["applied"]
    with engine.connect() as conn:
        row = conn.execute(
            select(obligations.c.due_at, deliveries.c.status, deliveries.c.notice)
            .join(deliveries, deliveries.c.obligation_id == obligations.c.id)
            .where(obligations.c.rule_id == "mayor.escape")
        ).one()
    assert (row.status, row.notice) == ("pending", "notice")
    due = row.due_at if row.due_at.tzinfo else row.due_at.replace(tzinfo=UTC)
    assert now < due <= now + timedelta(hours=1)


def test_the_same_batch_posted_again_changes_nothing(
    engine: Engine, client: TestClient, feed: dict[str, str]
) -> None:
    body: list[Any] = [
        intake("e1"),
        msg("release_date_set", "e2", 5, planned_release_date="2026-01-20"),
        msg("escape", "e3", 6, bsn="123456789"),
    ]
    first = post(client, feed, body)
    tables = (feed_events, obligations, deliveries)
    before = [count(engine, t) for t in tables]
    second = post(client, feed, body)
    assert outcomes(first) == ["applied", "applied", "quarantined"]
    assert outcomes(second) == ["duplicate", "duplicate", "quarantined"]
    assert [count(engine, t) for t in tables] == before


def test_deliveries_at_the_same_time_are_applied_one_after_the_other(
    engine: Engine, client: TestClient, feed: dict[str, str]
) -> None:
    """Several senders at once on one period: every event applied and the period as the fold
    of its events (a batch reads the period and writes it back: one writer at a time)."""
    post(client, feed, [intake("e0")])
    bodies = [
        [
            msg(
                "release_date_set",
                f"e{n}",
                1 + n,
                planned_release_date=f"2026-0{1 + n % 9}-10",
            )
        ]
        for n in range(1, 9)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda body: post(client, feed, body), bodies))
    assert [outcomes(r) for r in results] == [["applied"]] * 8
    with engine.connect() as conn:
        assert check_periods(conn) == []
        row = conn.execute(
            select(detention_periods.c.event_count, detention_periods.c.last_event_id)
        ).one()
    assert (row.event_count, row.last_event_id) == (9, "e8")


def test_each_delivery_has_one_audit_row_by_the_sender(
    engine: Engine, client: TestClient, feed: dict[str, str]
) -> None:
    result = post(client, feed, [intake("e1"), "{"])
    with engine.connect() as conn:  # (on SQLite the audit log carries on across tests)
        rows = conn.execute(
            select(audit_log).where(audit_log.c.details.contains(result["origin"]))
        ).all()
    assert [(r.actor, r.role, r.action, r.record_type, r.record_id) for r in rows] == [
        ("pi-vught", "feed", "run", "job", "feed delivery")
    ]
    assert '"messages": 2' in rows[0].details


def test_what_is_not_a_batch_is_refused_as_problem_json(
    client: TestClient, feed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for content, detail in [
        (b"{", "not JSON"),
        (b'{"event_id": "e1"}', "JSON array"),
        (b"[]", "no messages"),
    ]:
        response = client.post(
            URL, content=content, headers={**feed, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, content
        assert response.headers["content-type"] == "application/problem+json"
        assert detail in response.json()["detail"]
    monkeypatch.setattr(get_settings(), "feed_api_max_messages", 2)
    response = client.post(URL, headers=feed, json=[intake("e1"), intake("e2"), intake("e3")])
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["setting"] == "TERUGKEER_FEED_API_MAX_MESSAGES"
    assert problem["limit"] == 2
    assert "at most 2" in problem["detail"]


def test_a_store_that_is_unavailable_is_503_and_the_batch_can_be_sent_again(
    engine: Engine, client: TestClient, feed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(feed_api, "deliver", down)
    response = client.post(URL, headers=feed, json=[intake("e1")])
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"]
    monkeypatch.undo()
    assert outcomes(post(client, feed, [intake("e1")])) == ["applied"]


def test_the_route_is_declared_in_the_openapi_document(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"][URL.removeprefix("/api/v1")]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["type"] == "array"
    assert {"200", "400", "401", "403", "413", "503"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["413"]["content"]
