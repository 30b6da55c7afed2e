"""Accounts, sign-in with a second factor and throttling, sessions with CSRF, API tokens and
their lifecycle (expiry, revocation, disabling, a new second factor, ending sessions)."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.config import get_settings
from terugkeer.security.accounts import (
    SIGN_IN_REFUSED,
    AccountError,
    SignInError,
    add_user,
    create_token,
    disable_user,
    end_sessions,
    grant_contact_details,
    principal_for_session,
    principal_for_token,
    reset_second_factor,
    revoke_token,
    sign_in,
    totp_secret,
)
from terugkeer.security.actor import Actor
from terugkeer.security.passwords import WeakPasswordError
from terugkeer.security.tables import api_tokens, audit_log, users
from terugkeer.web.app import create_app
from terugkeer.web.auth import CSRF_HEADER, SESSION_COOKIE

PASSWORD = "een heel lang wachtwoord"


def test_accounts_are_checked_and_passwords_hashed(engine: Engine) -> None:
    add_user(engine, "j.jansen", "mayor_office", PASSWORD, "GM0363")
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    with pytest.raises(AccountError, match="needs --municipality"):
        add_user(engine, "x", "caseworker", PASSWORD)
    with pytest.raises(AccountError, match="unknown municipality"):
        add_user(engine, "x", "caseworker", PASSWORD, "GM9999")
    with pytest.raises(AccountError, match="unknown role"):
        add_user(engine, "x", "pope", PASSWORD)
    with pytest.raises(AccountError, match="exists already"):
        add_user(engine, "j.jansen", "mayor_office", PASSWORD, "GM0363")
    with pytest.raises(WeakPasswordError):
        add_user(engine, "y", "analyst", "kort")
    for weak in (" " * 12, "ab" * 8, "aaaa1111aaaa"):  # long enough, but hardly a password
        with pytest.raises(WeakPasswordError, match="5 of them different"):
            add_user(engine, "y", "analyst", weak)
    # a name is part of web addresses: with a slash, or as . or .., its pages were unreachable
    for name in ["rev/slash", "/", ".", "..", "a\tb", "", "x" * 101]:
        with pytest.raises(AccountError, match="no slash"):
            add_user(engine, name, "analyst", PASSWORD)
        with pytest.raises(AccountError, match="no slash"):
            create_token(engine, name, "j.jansen")
    add_user(engine, "a.b@gemeente nl", "analyst", PASSWORD)  # dots, at and space are fine


def test_second_factor_is_required_for_operator_idv_and_administrator(engine: Engine) -> None:
    created = add_user(engine, "idv", "idv_officer", PASSWORD)
    assert created.totp_uri is not None
    assert created.totp_uri.startswith("otpauth://")
    secret = totp_secret(engine, "idv")
    assert secret is not None
    with pytest.raises(SignInError) as refused:
        sign_in(engine, "idv", PASSWORD, "10.0.0.1")
    assert str(refused.value) == SIGN_IN_REFUSED  # the right password is not confirmed
    session = sign_in(engine, "idv", PASSWORD, "10.0.0.1", pyotp.TOTP(secret).now())
    assert session.principal.role == "idv_officer"
    assert session.principal.second_factor
    assert add_user(engine, "analist", "analyst", PASSWORD).totp_uri is None


def test_one_message_for_a_wrong_name_password_or_code(engine: Engine) -> None:
    add_user(engine, "op", "operator", PASSWORD)
    secret = totp_secret(engine, "op")
    assert secret is not None
    wrong_code = f"{(int(pyotp.TOTP(secret).now()) + 1) % 1_000_000:06d}"
    messages = set()
    for name, password, code in [
        ("nobody", PASSWORD, None),
        ("op", "wrong password!", pyotp.TOTP(secret).now()),
        ("op", PASSWORD, wrong_code),
        ("op", PASSWORD, None),
    ]:
        with pytest.raises(SignInError) as refused:
            sign_in(engine, name, password, f"10.1.0.{len(messages)}", code, sleep=lambda s: None)
        messages.add((refused.value.reason, str(refused.value)))
    assert messages == {("credentials", SIGN_IN_REFUSED)}


def test_a_one_time_code_is_used_once(engine: Engine) -> None:
    add_user(engine, "idv", "idv_officer", PASSWORD)
    secret = totp_secret(engine, "idv")
    assert secret is not None
    now = datetime.now(UTC)
    code = pyotp.TOTP(secret).at(now)
    assert sign_in(engine, "idv", PASSWORD, "10.0.0.1", code, now=now).principal.name == "idv"
    with pytest.raises(SignInError):  # the same code again, at once or from elsewhere
        sign_in(engine, "idv", PASSWORD, "10.0.0.9", code, now=now + timedelta(seconds=5))
    later = now + timedelta(seconds=60)  # the next code works
    assert sign_in(engine, "idv", PASSWORD, "10.0.0.1", pyotp.TOTP(secret).at(later), now=later)


def test_failed_sign_ins_are_audited_with_the_factor_that_failed(engine: Engine) -> None:
    add_user(engine, "idv", "idv_officer", PASSWORD)
    with engine.connect() as conn:
        start = conn.execute(select(audit_log.c.id).order_by(audit_log.c.id.desc())).scalar()
    for password, code in [("wrong password!", None), (PASSWORD, "000000"), (PASSWORD, None)]:
        with pytest.raises(SignInError):
            sign_in(engine, "idv", password, "10.0.0.1", code, sleep=lambda s: None)
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.record_id, audit_log.c.details)
            .where(audit_log.c.id > (start or 0), audit_log.c.action == "sign_in_failed")
            .order_by(audit_log.c.id)
        ).all()
    factors = [(r.record_id, json.loads(r.details)["factor"]) for r in rows]
    assert factors == [("idv", "password"), ("idv", "second_factor"), ("idv", "second_factor")]


def _median_seconds(call: object, n: int = 3) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        with contextlib.suppress(SignInError):
            call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2]


def test_sign_in_takes_as_long_for_an_unknown_name_as_for_a_known_one(engine: Engine) -> None:
    add_user(engine, "known", "analyst", PASSWORD)
    quiet = {"sleep": lambda s: None}
    with contextlib.suppress(SignInError):  # the first unknown name prepares the stand-in
        sign_in(engine, "warm-up", "x" * 12, "10.2.0.1", **quiet)  # type: ignore[arg-type]
    unknown = _median_seconds(
        lambda: sign_in(engine, "nobody", "wrong password!", "10.2.0.2", **quiet)
    )  # type: ignore[arg-type]
    known = _median_seconds(
        lambda: sign_in(engine, "known", "wrong password!", "10.2.0.3", **quiet)
    )  # type: ignore[arg-type]
    assert 0.5 < unknown / known < 2, (unknown, known)


def test_failures_slow_an_account_down_but_never_lock_it(engine: Engine) -> None:
    add_user(engine, "a", "analyst", PASSWORD)
    now = datetime.now(UTC)
    waits: list[float] = []
    for i in range(9):  # from nine addresses: no address is locked
        with pytest.raises(SignInError) as refused:
            sign_in(engine, "a", "wrong password!", f"10.3.0.{i}", now=now, sleep=waits.append)
        assert refused.value.reason == "credentials"
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]  # after three free failures, doubling
    # the owner, with the right password, gets in (after the delay), from a fresh address
    session = sign_in(engine, "a", PASSWORD, "10.3.1.1", now=now, sleep=waits.append)
    assert session.principal.name == "a"
    assert waits[-1] == 8.0


def test_an_address_is_locked_after_too_many_failures(engine: Engine) -> None:
    add_user(engine, "b", "analyst", PASSWORD)
    now = datetime.now(UTC)
    limit = get_settings().address_failures
    for i in range(limit):  # guessing many accounts from one address
        with pytest.raises(SignInError):
            sign_in(engine, f"guess{i}", "wrong password!", "10.4.0.1", now=now)
    with pytest.raises(SignInError) as locked:
        sign_in(engine, "b", PASSWORD, "10.4.0.1", now=now)
    assert locked.value.reason == "throttled"
    assert sign_in(engine, "b", PASSWORD, "10.4.0.2", now=now).principal.name == "b"
    later = now + timedelta(minutes=16)
    assert sign_in(engine, "b", PASSWORD, "10.4.0.1", now=later).principal.name == "b"


ADMIN = Actor("beheerder", "administrator", "account administration")


def test_tokens_expire(engine: Engine) -> None:
    add_user(engine, "feed-pi", "feed", PASSWORD)
    made = datetime.now(UTC) - timedelta(days=get_settings().token_days)
    old = create_token(engine, "old", "feed-pi", now=made)
    new = create_token(engine, "new", "feed-pi")
    with engine.begin() as conn:
        assert principal_for_token(conn, old) is None
        assert principal_for_token(conn, new) is not None
        expires = conn.execute(
            select(api_tokens.c.expires_at).where(api_tokens.c.name == "new")
        ).scalar_one()
    days = (expires - datetime.now(UTC)).days
    assert get_settings().token_days - 1 <= days <= get_settings().token_days


def test_a_tokens_last_use_is_kept_to_the_minute(engine: Engine) -> None:
    add_user(engine, "feed-lu", "feed", PASSWORD)
    token = create_token(engine, "lu", "feed-lu")
    start = datetime.now(UTC)

    def last_used() -> datetime | None:
        with engine.connect() as conn:
            return conn.execute(
                select(api_tokens.c.last_used_at).where(api_tokens.c.name == "lu")
            ).scalar_one()

    assert last_used() is None
    for seconds, expected in ((0, 0), (30, 0), (59, 0), (60, 60), (61, 60), (125, 125)):
        with engine.begin() as conn:
            assert principal_for_token(conn, token, start + timedelta(seconds=seconds))
        assert last_used() == start + timedelta(seconds=expected)


def test_revoke_disable_reset_and_end_sessions(engine: Engine) -> None:
    add_user(engine, "idv", "idv_officer", PASSWORD)
    add_user(engine, "a", "analyst", PASSWORD)
    token = create_token(engine, "a-t", "a")
    secret = totp_secret(engine, "idv")
    assert secret is not None
    session = sign_in(engine, "idv", PASSWORD, "10.5.0.1", pyotp.TOTP(secret).now())
    revoke_token(engine, "a-t", actor=ADMIN)
    with engine.begin() as conn:
        assert principal_for_token(conn, token) is None
    with pytest.raises(AccountError, match="revoked already"):
        revoke_token(engine, "a-t", actor=ADMIN)
    assert end_sessions(engine, "idv", actor=ADMIN) == 1
    with engine.begin() as conn:
        assert principal_for_session(conn, session.token) is None
    renewed = reset_second_factor(engine, "idv", actor=ADMIN)
    assert renewed.totp_uri is not None
    assert totp_secret(engine, "idv") != secret
    with pytest.raises(SignInError):  # the old authenticator no longer works
        sign_in(engine, "idv", PASSWORD, "10.5.0.1", pyotp.TOTP(secret).now())
    with pytest.raises(AccountError, match="no second factor"):
        reset_second_factor(engine, "a", actor=ADMIN)
    token2 = create_token(engine, "a-t2", "a")
    assert disable_user(engine, "a", actor=ADMIN) == 0
    with engine.begin() as conn:
        assert principal_for_token(conn, token2) is None
    with pytest.raises(SignInError):
        sign_in(engine, "a", PASSWORD, "10.5.0.2")
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.record_type, audit_log.c.record_id).where(
                audit_log.c.actor == "beheerder"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("revoke", "api_token", "a-t"),
        ("end_sessions", "user", "idv"),
        ("reset_2fa", "user", "idv"),
        ("disable", "user", "a"),
    ]


def test_contact_details_need_the_second_factor_or_an_explicit_grant(engine: Engine) -> None:
    add_user(engine, "idv", "idv_officer", PASSWORD)
    add_user(engine, "a", "analyst", PASSWORD)
    token = create_token(engine, "idv-system", "idv")
    with engine.begin() as conn:
        plain = principal_for_token(conn, token)
    assert plain is not None
    assert not plain.second_factor
    with pytest.raises(AccountError, match="never reads"):
        create_token(engine, "a-t", "a", contact_details=True)
    grant_contact_details(engine, "idv-system", actor=ADMIN)
    with engine.begin() as conn:
        granted = principal_for_token(conn, token)
        row = conn.execute(
            select(audit_log.c.action, audit_log.c.record_id)
            .where(audit_log.c.actor == "beheerder")
            .order_by(audit_log.c.id.desc())
        ).first()
    assert granted is not None
    assert granted.second_factor
    assert row is not None
    assert tuple(row) == ("grant_contacts", "idv-system")
    grant_contact_details(engine, "idv-system", False, actor=ADMIN)
    with engine.begin() as conn:
        withdrawn = principal_for_token(conn, token)
    assert withdrawn is not None
    assert not withdrawn.second_factor


def test_session_cookie_and_csrf(engine: Engine) -> None:
    add_user(engine, "j.jansen", "mayor_office", PASSWORD, "GM0363")
    client = TestClient(create_app(engine))
    wrong = client.post(
        "/api/v1/sessies", json={"naam": "j.jansen", "wachtwoord": "nope nope nope"}
    )
    assert wrong.status_code == 401
    signed = client.post("/api/v1/sessies", json={"naam": "j.jansen", "wachtwoord": PASSWORD})
    assert signed.status_code == 201
    cookie = signed.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    csrf = signed.json()["csrf_token"]
    assert client.get("/api/v1/meldingen").status_code == 200  # reading needs no CSRF token
    no_token = client.post("/api/v1/meldingen/1/lezen")
    assert no_token.status_code == 403
    assert "CSRF" in no_token.json()["detail"]
    with_token = client.post("/api/v1/meldingen/1/lezen", headers={CSRF_HEADER: csrf})
    assert with_token.status_code == 404  # allowed through; there is no such notice
    assert client.delete("/api/v1/sessies/huidige").status_code == 204
    assert client.get("/api/v1/meldingen").status_code == 401


def test_security_headers(engine: Engine) -> None:
    response = TestClient(create_app(engine)).get("/api/v1/health")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_tokens_store_only_a_hash_and_the_cli_reads_the_password_from_stdin(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERUGKEER_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        added = runner.invoke(
            app, ["user", "add", "feed-pi", "--role", "feed"], input=PASSWORD + "\n"
        )
        assert added.exit_code == 0, added.output
        assert PASSWORD not in added.output
        made = runner.invoke(app, ["token", "create", "pi-vught", "--user", "feed-pi"])
        assert made.exit_code == 0, made.output
        token = made.stdout.strip()
        with engine.connect() as conn:
            stored = conn.execute(select(api_tokens.c.token_hash)).scalar_one()
        assert token not in stored
        assert len(stored) == 64
        short = runner.invoke(app, ["user", "add", "x", "--role", "analyst"], input="kort\n")
        assert short.exit_code == 2
    finally:
        get_settings.cache_clear()
    assert create_token(engine, "second", "feed-pi") != token
