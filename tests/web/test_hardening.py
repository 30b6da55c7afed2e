"""Issue 13 at the web's edge: no 500 from input (ids, offsets, dates, amounts, NUL
characters), the security headers on every response (a 500 too), a limit on request bodies,
no bound values in errors, refused and not-found reads audited, the registration form audited,
victims' contact details only with the second factor (or an audited grant), the
administrator's account routes, and one answer to a refused sign-in."""

from __future__ import annotations

import json
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError

from terugkeer.config import ConfigError, Settings, check_environment, get_settings
from terugkeer.detention.ingest import ingest_text
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.security.accounts import SIGN_IN_REFUSED, add_user, create_token, totp_secret
from terugkeer.security.tables import audit_log
from terugkeer.web.app import create_app
from tests.feedutil import intake, lines, msg

GM = "GM0363"
PASSWORD = "een heel lang wachtwoord"
HUGE = 2**63  # and larger: more than either store's integers hold
PROBLEM = "application/problem+json"


def bearer(engine: Engine, name: str, role: str, municipality: str | None = None) -> dict[str, str]:
    add_user(engine, name, role, PASSWORD, municipality)
    return {"Authorization": f"Bearer {create_token(engine, name + '-t', name)}"}


@pytest.fixture
def world(engine: Engine) -> tuple[TestClient, dict[str, str], int]:
    victim = msg(
        "victim_registered",
        "v1",
        2,
        source="OM-IDV",
        victim_ref="V1",
        relation="victim",
        spoke_in_court=True,
        wants_information=True,
        contact={"name": "Slachtoffer Een"},
    )
    text_ = lines(intake("e1"), victim, msg("release", "e2", 30, release_kind="end_of_sentence"))
    assert ingest_text(engine, text_, hooks=[reintegration_hook()]).quarantined == 0
    who = bearer(engine, "cw", "caseworker", GM)
    client = TestClient(create_app(engine))
    (case,) = client.get("/api/v1/nazorgdossiers", headers=who).json()
    return client, who, int(case["id"])


def _rows(engine: Engine, after: int, **where: str) -> list[Any]:
    q = select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id)
    for column, value in where.items():
        q = q.where(audit_log.c[column] == value)
    with engine.connect() as conn:
        return list(conn.execute(q).all())


def _last_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(audit_log.c.id).order_by(audit_log.c.id.desc())).scalar() or 0
        )


def _bad_param(response: Any, name: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    fields = [p["field"] for p in response.json().get("invalid_params", [])]
    assert any(f.endswith(name) for f in fields), fields


def test_huge_ids_and_offsets_are_a_400_naming_the_parameter(
    engine: Engine, world: tuple[TestClient, dict[str, str], int]
) -> None:
    client, cw, case = world
    mayor = bearer(engine, "mayor", "mayor_office", GM)
    auditor = bearer(engine, "aud", "auditor")
    for url, who, name in [
        (f"/api/v1/meldingen/{HUGE}", mayor, "melding_id"),
        (f"/api/v1/meldingen?offset={HUGE}", mayor, "offset"),
        (f"/api/v1/nazorgdossiers/{HUGE}", cw, "case_id"),
        (f"/api/v1/nazorgdossiers?offset={HUGE}", cw, "offset"),
        (f"/api/v1/nazorgdossiers/{case}/activiteiten/{HUGE}", cw, "activity_id"),
        (f"/api/v1/auditlog?vanaf={HUGE}", auditor, "vanaf"),
    ]:
        method = "PUT" if "activiteiten/" in url else "GET"
        body = {"type": "case_management", "provider": "G", "start_date": "2025-02-01"}
        response = client.request(method, url, headers=who, json=body if method == "PUT" else None)
        _bad_param(response, name)


def test_dates_and_amounts_out_of_range_are_a_400(
    world: tuple[TestClient, dict[str, str], int],
) -> None:
    client, cw, case = world
    for url, name in [
        ("/api/v1/stuurinformatie/verwachte-terugkeer?peildatum=9999-12-31", "peildatum"),
        ("/api/v1/stuurinformatie/registratievolledigheid?peildatum=9999-12-31", "peildatum"),
        ("/api/v1/stuurinformatie/activiteiten-en-kosten?van=0001-01-01", "van"),
    ]:
        _bad_param(client.get(url, headers=cw), name)
    given = {"status": "given", "date": "2025-02-01"}
    assert client.post(f"/api/v1/nazorgdossiers/{case}/toestemmingen", headers=cw, json=given)
    base = {"type": "case_management", "provider": "G", "start_date": "2025-02-01"}
    for extra, name in [
        ({"cost_eur": "1E+400"}, "cost_eur"),
        ({"hours": "1E+30"}, "hours"),
        ({"start_date": "9999-12-31"}, "start_date"),
    ]:
        response = client.post(
            f"/api/v1/nazorgdossiers/{case}/activiteiten", headers=cw, json={**base, **extra}
        )
        _bad_param(response, name)


def test_a_nul_character_is_a_400_also_in_the_sign_in_name(
    world: tuple[TestClient, dict[str, str], int],
) -> None:
    client, cw, _ = world
    response = client.post("/api/v1/sessies", json={"naam": "a\u0000b", "wachtwoord": "x"})
    assert response.status_code == 400, response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    _bad_param(client.get("/api/v1/slachtoffers/V%001/contactgegevens", headers=cw), "path")
    _bad_param(client.get("/api/v1/nazorgdossiers?status=a%00", headers=cw), "status")


def test_a_500_carries_the_security_headers_and_no_detail(engine: Engine) -> None:
    app = create_app(engine)

    def boom() -> None:
        raise RuntimeError("secret detail 123456782")

    app.add_api_route("/api/v1/boom", boom, include_in_schema=False)
    response = TestClient(app, raise_server_exceptions=False).get("/api/v1/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "123456782" not in response.text


def test_request_bodies_are_limited(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    limit = get_settings().max_body_bytes
    big = {"naam": "x", "wachtwoord": "y" * (limit + 10)}
    response = client.post("/api/v1/sessies", json=big)
    assert response.status_code == 413
    assert response.headers["X-Frame-Options"] == "DENY"

    def chunks() -> Any:  # no Content-Length: counted while read
        yield b'{"naam": "x", "wachtwoord": "'
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536
        yield b'"}'

    streamed = client.post(
        "/api/v1/sessies", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_errors_carry_no_bound_values(engine: Engine) -> None:
    with pytest.raises(StatementError) as failed, engine.connect() as conn:
        conn.execute(text("SELECT CAST(:v AS INTEGER) + undefined_column"), {"v": "123456782"})
    assert "123456782" not in str(failed.value)


def test_refused_and_not_found_reads_are_audited(
    engine: Engine, world: tuple[TestClient, dict[str, str], int]
) -> None:
    client, cw, case = world
    mayor = bearer(engine, "mayor", "mayor_office", GM)
    rotterdam = bearer(engine, "cw-rdam", "caseworker", "GM0599")
    analyst = bearer(engine, "an", "analyst")
    start = _last_id(engine)
    assert client.get("/api/v1/meldingen/424242", headers=mayor).status_code == 404
    assert client.get(f"/api/v1/nazorgdossiers/{case}", headers=rotterdam).status_code == 404
    assert client.get("/api/v1/nazorgdossiers/999999", headers=cw).status_code == 404
    assert client.get("/api/v1/meldingen", headers=analyst).status_code == 403
    got = [
        (r.actor, r.action, r.record_type, r.record_id)
        for r in _rows(engine, start)
        if r.action.startswith("read_")
    ]
    assert got == [
        ("mayor", "read_not_found", "notice", "424242"),
        ("cw-rdam", "read_not_found", "reintegration_case", str(case)),
        ("cw", "read_not_found", "reintegration_case", "999999"),
        ("an", "read_denied", "route", "/api/v1/meldingen"),
    ]
    assert client.get("/api/v1/meldingen/1").status_code == 401  # anonymous: no one to name
    assert [r for r in _rows(engine, start) if r.action.startswith("read_")][4:] == []


def test_the_registration_form_is_an_audited_read(
    engine: Engine, world: tuple[TestClient, dict[str, str], int]
) -> None:
    client, cw, case = world
    start = _last_id(engine)
    form = client.get(f"/api/v1/nazorgdossiers/{case}/basisvoorwaarden/formulier", headers=cw)
    assert form.status_code == 200, form.text
    (row,) = _rows(engine, start, action="form_read")
    assert (row.actor, row.record_type, row.record_id) == ("cw", "reintegration_case", str(case))
    assert json.loads(row.details)["moment"] == "release"


def test_contact_details_need_the_second_factor_or_an_audited_grant(
    engine: Engine, world: tuple[TestClient, dict[str, str], int]
) -> None:
    client, _, _ = world
    url = "/api/v1/slachtoffers/V1/contactgegevens"
    idv_token = bearer(engine, "idv", "idv_officer")
    refused = client.get(url, headers=idv_token)
    assert refused.status_code == 403
    assert "second factor" in refused.json()["detail"]
    secret = totp_secret(engine, "idv")
    assert secret is not None
    session = TestClient(client.app)
    signed = session.post(
        "/api/v1/sessies",
        json={"naam": "idv", "wachtwoord": PASSWORD, "code": pyotp.TOTP(secret).now()},
    )
    assert signed.status_code == 201, signed.text
    assert session.get(url).status_code == 200
    admin = bearer(engine, "admin", "administrator")
    start = _last_id(engine)
    assert client.put("/api/v1/tokens/idv-t/contactgegevens", headers=admin).status_code == 204
    assert client.get(url, headers=idv_token).status_code == 200
    (grant,) = _rows(engine, start, action="grant_contacts")
    assert (grant.actor, grant.record_id) == ("admin", "idv-t")
    assert client.delete("/api/v1/tokens/idv-t/contactgegevens", headers=admin).status_code == 204
    assert client.get(url, headers=idv_token).status_code == 403


def test_the_administrator_revokes_disables_resets_and_ends_sessions(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    admin = bearer(engine, "admin", "administrator")
    analyst = bearer(engine, "an", "analyst")
    add_user(engine, "op", "operator", PASSWORD)
    listed = client.get("/api/v1/tokens", headers=admin).json()
    assert {t["naam"] for t in listed} == {"admin-t", "an-t"}
    assert "token" not in json.dumps(listed).replace('"naam"', "")  # names, never tokens
    assert client.delete("/api/v1/tokens/an-t", headers=admin).status_code == 204
    assert client.get("/api/v1/health", headers=analyst).status_code == 200  # public
    assert client.delete("/api/v1/tokens/an-t", headers=admin).status_code == 409
    assert client.delete("/api/v1/tokens/nope", headers=admin).status_code == 404
    reset = client.post("/api/v1/gebruikers/op/tweede-factor", headers=admin)
    assert reset.json()["totp_uri"].startswith("otpauth://")
    ended = client.delete("/api/v1/gebruikers/op/sessies", headers=admin)
    assert ended.json() == {"sessies_beeindigd": 0}
    assert client.post("/api/v1/gebruikers/op/uitschakeling", headers=admin).status_code == 200
    assert client.post("/api/v1/gebruikers/op/uitschakeling", headers=admin).status_code == 409
    assert client.get("/api/v1/tokens", headers=analyst).status_code == 401  # revoked


def test_a_refused_sign_in_has_one_answer(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    add_user(engine, "op", "operator", PASSWORD)
    answers = set()
    for body in [
        {"naam": "nobody", "wachtwoord": PASSWORD},
        {"naam": "op", "wachtwoord": "wrong password!"},
        {"naam": "op", "wachtwoord": PASSWORD},
        {"naam": "op", "wachtwoord": PASSWORD, "code": "123456"},
    ]:
        response = client.post("/api/v1/sessies", json=body)
        answers.add((response.status_code, response.json()["detail"]))
    assert answers == {(401, SIGN_IN_REFUSED)}


def test_the_environment_must_be_said_and_production_refuses_placeholders(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="TERUGKEER_ENVIRONMENT is not set"):
        check_environment(Settings(_env_file=None, environment=None))
    keys = "k1:" + "A" * 43 + "="
    for secret in ["", "changeme", "short"]:
        with pytest.raises(ConfigError, match="TERUGKEER_WEBHOOK_SECRET"):
            check_environment(
                Settings(environment="production", encryption_keys=keys, webhook={"secret": secret})
            )
    check_environment(
        Settings(environment="production", encryption_keys=keys, webhook={"secret": "x" * 32})
    )
    monkeypatch.delenv("TERUGKEER_ENVIRONMENT")
    get_settings.cache_clear()
    try:
        assert get_settings().environment is None
        with pytest.raises(ConfigError):
            create_app(engine)
    finally:
        get_settings.cache_clear()


def test_a_bsn_echoed_by_an_error_answer_is_masked(engine: Engine) -> None:
    """Issue 13, finding 8 on the web: a BSN typed where a name or reference belongs comes back
    masked in the problem answer, as the command line masks it."""
    client = TestClient(create_app(engine))
    admin = bearer(engine, "admin", "administrator")
    bsn = "999993653"  # passes the 11-proef (test range)
    for response in (
        client.delete(f"/api/v1/tokens/{bsn}", headers=admin),
        client.post(f"/api/v1/gebruikers/{bsn}/uitschakeling", headers=admin),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith(PROBLEM)
        assert bsn not in response.text
        assert "******653" in response.json()["detail"]
    # a number that is not a BSN is shown as it is: the message still names what was asked
    answer = client.delete("/api/v1/tokens/123456789", headers=admin)
    assert "123456789" in answer.json()["detail"]


def test_raw_quarantined_lines_need_the_second_factor(engine: Engine) -> None:
    """A quarantined line may hold a BSN or a victim's contact details: an operator's API token
    (no second factor) reads reason, field and message; a session with the second factor the
    raw line as well."""
    bsn = "999993653"
    broken = '{"event_id": "q1", "person": {"bsn": "' + bsn + '"}, "kind": '
    assert ingest_text(engine, broken + "\n").quarantined == 1
    client = TestClient(create_app(engine))
    url = "/api/v1/beheer/quarantaine"
    token = bearer(engine, "ops", "operator")
    (entry,) = client.get(url, headers=token).json()["berichten"]
    assert entry["reason"] == "invalid_json"
    assert entry["raw"] is None
    assert bsn not in client.get(url, headers=token).text
    secret = totp_secret(engine, "ops")
    assert secret is not None
    session = TestClient(client.app)
    signed = session.post(
        "/api/v1/sessies",
        json={"naam": "ops", "wachtwoord": PASSWORD, "code": pyotp.TOTP(secret).now()},
    )
    assert signed.status_code == 201, signed.text
    (entry,) = session.get(url).json()["berichten"]
    assert bsn in entry["raw"]
