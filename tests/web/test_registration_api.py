"""The JSON API under /api/v1: nazorgdossiers, basisvoorwaarden, activiteiten, stuurinformatie."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.reintegration.tables import reintegration_cases
from terugkeer.security.accounts import add_user, create_token
from terugkeer.security.tables import audit_log
from terugkeer.web.app import create_app
from tests.feedutil import intake, lines, msg

GM = "GM0363"
WHO: dict[str, str] = {}  # the caseworker's Authorization header, set by the fixture
PROBLEM = "application/problem+json"


@pytest.fixture
def client(engine: Engine) -> TestClient:
    text = lines(intake("e1"), msg("release", "e2", 30, release_kind="end_of_sentence"))
    assert ingest_text(engine, text, hooks=[reintegration_hook()]).quarantined == 0
    WHO.clear()
    WHO.update(bearer(engine, "caseworker:ams-1", "caseworker", GM))
    return TestClient(create_app(engine))


def bearer(engine: Engine, name: str, role: str, municipality: str | None) -> dict[str, str]:
    add_user(engine, name, role, "een heel lang wachtwoord", municipality)
    return {"Authorization": f"Bearer {create_token(engine, name + '-token', name)}"}


def case_id(client: TestClient) -> int:
    listed = client.get("/api/v1/nazorgdossiers", params={"gemeente": GM}, headers=WHO)
    assert listed.status_code == 200, listed.text
    (case,) = listed.json()
    return int(case["id"])


def test_identity_and_scope(client: TestClient, engine: Engine) -> None:
    no_user = client.get("/api/v1/nazorgdossiers", params={"gemeente": GM})
    assert no_user.status_code == 401
    assert no_user.headers["content-type"] == PROBLEM
    assert "sign in" in no_user.json()["detail"]
    assert client.get("/api/v1/nazorgdossiers", headers=WHO).status_code == 200  # own municipality
    bad_code = client.get("/api/v1/nazorgdossiers", params={"gemeente": "Amsterdam"}, headers=WHO)
    assert bad_code.status_code == 400
    cid = case_id(client)
    elsewhere = client.get(
        f"/api/v1/nazorgdossiers/{cid}", params={"gemeente": "GM0599"}, headers=WHO
    )
    assert elsewhere.status_code == 403  # not one's own municipality
    assert elsewhere.headers["content-type"] == PROBLEM
    rotterdam = bearer(engine, "caseworker:rdam-1", "caseworker", "GM0599")
    assert client.get(f"/api/v1/nazorgdossiers/{cid}", headers=rotterdam).status_code == 404


def test_a_case_through_the_api(client: TestClient, engine: Engine) -> None:
    cid = case_id(client)
    base = f"/api/v1/nazorgdossiers/{cid}"
    q = {"gemeente": GM}
    case = client.get(base, params=q, headers=WHO).json()
    assert case["period"]["period_ref"] == "P1"
    assert case["status"] == "returned"
    assert case["moments"] is None
    assert case["registration_allowed"] is False

    statuses = {"id": "valid", "housing": "homeless", "income": "benefit", "debts": "none"}
    refused = client.post(
        f"{base}/basisvoorwaarden",
        params=q,
        headers=WHO,
        json={
            "moment": "release",
            "statuses": {**statuses, "care": "not_arranged"},
            "care_needs": ["addiction"],
        },
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    assert "no consent" in refused.json()["detail"]

    given = client.post(
        f"{base}/toestemmingen",
        params=q,
        headers=WHO,
        json={"status": "given", "date": "2025-01-20"},
    )
    assert given.status_code == 201, given.text
    assert given.json()["registration_allowed"] is True

    recorded = client.post(
        f"{base}/basisvoorwaarden",
        params=q,
        headers=WHO,
        json={
            "moment": "release",
            "statuses": {**statuses, "care": "not_arranged"},
            "care_needs": ["addiction"],
        },
    )
    assert recorded.status_code == 201, recorded.text
    (release,) = recorded.json()
    assert release["moment"] == "release"
    assert release["complete"]
    assert release["in_order"] == "no"
    assert release["conditions"]["housing"]["in_order"] == "no"
    assert release["conditions"]["care"]["detail"] == "addiction"
    assert release["conditions"]["id"]["recorded_by"] == "caseworker:ams-1"

    invalid = client.post(
        f"{base}/basisvoorwaarden",
        params=q,
        headers=WHO,
        json={"moment": "release", "statuses": {"housing": "castle"}},
    )
    assert invalid.status_code == 422
    assert invalid.json()["invalid_params"][0]["field"] == "housing"
    extra = client.post(
        f"{base}/basisvoorwaarden",
        params=q,
        headers=WHO,
        json={"moment": "release", "statuses": {}, "x": 1},
    )
    assert extra.status_code == 400

    # Dutch labels, as the import takes them and docs/conditions.md lists them
    dutch = client.post(
        f"{base}/basisvoorwaarden",
        params=q,
        headers=WHO,
        json={
            "moment": "bij ontslag",
            "statuses": {"onderdak": "dakloos", "Werk en inkomen": "uitkering"},
        },
    )
    assert dutch.status_code == 201, dutch.text
    (release,) = dutch.json()
    assert (release["moment"], release["label"]) == ("release", "bij ontslag")
    assert release["conditions"]["housing"]["status"] == "homeless"  # the same: not written again
    unknown = client.post(
        f"{base}/basisvoorwaarden",
        params=q,
        headers=WHO,
        json={"moment": "na 3 weken", "statuses": {"onderdak": "huurwoning"}},
    )
    assert unknown.status_code == 422
    assert "1 maand na ontslag" in unknown.json()["detail"]  # the allowed ones, in Dutch too

    form = client.get(
        f"{base}/basisvoorwaarden/formulier", params={**q, "moment": "month_1"}, headers=WHO
    ).json()
    assert form["to_type"] == 6
    history = client.get(f"{base}/basisvoorwaarden/historie", params=q, headers=WHO).json()
    assert len(history) == 5

    activity = {
        "municipal_ref": "A1",
        "type": "housing_support",
        "provider": "Stichting Exodus",
        "start_date": "2025-02-06",
        "hours": "12.5",
        "cost_eur": "937.50",
        "funder": "municipality",
        "programme": "Aanpak nazorg Amsterdam",
    }
    added = client.post(f"{base}/activiteiten", params=q, headers=WHO, json=activity)
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["condition"] == "housing"
    assert body["cost_eur"] == "937.50"
    assert body["hours"] == "12.50"
    twice = client.post(f"{base}/activiteiten", params=q, headers=WHO, json=activity)
    assert twice.status_code == 409
    changed = client.put(
        f"{base}/activiteiten/{body['id']}",
        params=q,
        headers=WHO,
        json={**activity, "cost_eur": "1000"},
    )
    assert changed.status_code == 200
    assert changed.json()["cost_eur"] == "1000.00"
    listed = client.get(f"{base}/activiteiten", params=q, headers=WHO).json()
    assert [a["municipal_ref"] for a in listed] == ["A1"]

    costs = client.get(
        "/api/v1/stuurinformatie/activiteiten-en-kosten", params=q, headers=WHO
    ).json()
    assert costs == [
        {
            "condition": "housing",
            "programme": "Aanpak nazorg Amsterdam",
            "activities": 1,
            "cases": 1,
            "hours": "12.50",
            "cost_eur": "1000.00",
        }
    ]
    bad = client.get(
        "/api/v1/stuurinformatie/niet-op-orde-bij-ontslag", params=q, headers=WHO
    ).json()
    assert bad[0]["not_in_order"] == ["housing", "care"]
    shares = client.get(
        "/api/v1/stuurinformatie/registratievolledigheid",
        params={"peildatum": "2025-03-01"},
        headers=WHO,
    ).json()
    assert shares[0]["municipality"] == GM
    upcoming = client.get("/api/v1/stuurinformatie/verwachte-terugkeer", params=q, headers=WHO)
    assert upcoming.status_code == 200
    assert upcoming.json() == []

    withdrawn = client.post(
        f"{base}/toestemmingen",
        params=q,
        headers=WHO,
        json={"status": "withdrawn", "date": "2025-03-01"},
    )
    assert withdrawn.status_code == 201
    assert withdrawn.json()["moments"] is None
    assert client.get(f"{base}/activiteiten", params=q, headers=WHO).status_code == 409
    consents = client.get(f"{base}/toestemmingen", params=q, headers=WHO).json()
    assert [c["status"] for c in consents] == ["given", "withdrawn"]
    with engine.connect() as conn:
        actors = {
            r.actor
            for r in conn.execute(
                select(audit_log.c.actor).where(audit_log.c.record_type == "reintegration_case")
            )
        }
        assert conn.execute(select(reintegration_cases.c.consent)).scalar_one() == "withdrawn"
    assert "caseworker:ams-1" in actors


def test_code_lists_and_openapi(client: TestClient) -> None:
    lists = client.get("/api/v1/codelijsten/basisvoorwaarden").json()
    assert [s["code"] for s in lists["conditions"]["debts"]][:2] == ["none", "with_plan"]
    types = client.get("/api/v1/codelijsten/activiteitsoorten").json()
    assert {
        "code": "debt_counselling",
        "label": "schuldhulpverlening",
        "condition": "debts",
    } in types["types"]
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/nazorgdossiers",  # relative to the server, /api/v1
        "/nazorgdossiers/{case_id}/basisvoorwaarden",
        "/nazorgdossiers/{case_id}/activiteiten",
        "/stuurinformatie/registratievolledigheid",
    ):
        assert path in paths


def test_registration_is_in_the_hash_chained_audit_log(client: TestClient, engine: Engine) -> None:
    from terugkeer.security.audit import verify
    from terugkeer.security.tables import audit_log

    cid = case_id(client)
    consent = {"status": "given", "date": "2025-02-20"}
    given = client.post(f"/api/v1/nazorgdossiers/{cid}/toestemmingen", json=consent, headers=WHO)
    assert given.status_code == 201, given.text
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.record_type, audit_log.c.record_id).where(
                audit_log.c.record_type == "reintegration_case"
            )
        ).all()
    assert ("caseworker:ams-1", "reintegration_case", str(cid)) in rows
    with engine.connect() as conn:
        roles = dict(
            conn.execute(
                select(audit_log.c.actor, audit_log.c.role)
                .where(audit_log.c.record_type == "reintegration_case")
                .distinct()
            ).all()
        )
    # the case was opened by the detention hook, then touched by the caseworker
    assert (roles["system:detention"], roles["caseworker:ams-1"]) == ("system", "caseworker")
    assert verify(engine).ok


def test_every_case_shown_in_a_list_is_an_audited_read(client: TestClient, engine: Engine) -> None:
    from terugkeer.security.tables import audit_log

    with engine.connect() as conn:  # the log is append-only: earlier tests' rows stay
        start = conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one()

    def listed_reads() -> list[tuple[str, str]]:
        with engine.connect() as conn:
            return [
                (r.record_id, r.details)
                for r in conn.execute(
                    select(audit_log.c.record_id, audit_log.c.details)
                    .where(audit_log.c.action == "case_listed", audit_log.c.id > start)
                    .order_by(audit_log.c.id)
                )
            ]

    cid = case_id(client)  # the case list shows the one case
    assert [r for r, _ in listed_reads()] == [str(cid)]
    q = {"gemeente": GM}
    base = f"/api/v1/nazorgdossiers/{cid}"
    client.post(
        f"{base}/toestemmingen",
        params=q,
        headers=WHO,
        json={"status": "given", "date": "2025-02-20"},
    )
    statuses = {"id": "valid", "housing": "homeless", "income": "benefit", "debts": "none"}
    recorded = client.post(
        f"{base}/basisvoorwaarden",
        params=q,
        headers=WHO,
        json={"moment": "release", "statuses": {**statuses, "care": "not_needed"}},
    )
    assert recorded.status_code == 201, recorded.text
    bad = client.get("/api/v1/stuurinformatie/niet-op-orde-bij-ontslag", params=q, headers=WHO)
    assert [c["case_id"] for c in bad.json()] == [cid]
    reads = listed_reads()
    assert len(reads) == 2
    assert reads[1][0] == str(cid)
    assert "not-in-order" in str(reads[1][1])
    # a list that shows nobody leaves no row
    upcoming = client.get("/api/v1/stuurinformatie/verwachte-terugkeer", params=q, headers=WHO)
    assert upcoming.json() == []
    assert len(listed_reads()) == 2
