"""Accounts, sign-in with a second factor and throttling, sessions with CSRF, API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.config import get_settings
from terugkeer.security.accounts import (
    AccountError,
    SignInError,
    add_user,
    create_token,
    sign_in,
    totp_secret,
)
from terugkeer.security.passwords import WeakPasswordError
from terugkeer.security.tables import api_tokens, users
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


def test_second_factor_is_required_for_operator_idv_and_administrator(engine: Engine) -> None:
    created = add_user(engine, "idv", "idv_officer", PASSWORD)
    assert created.totp_uri is not None
    assert created.totp_uri.startswith("otpauth://")
    secret = totp_secret(engine, "idv")
    assert secret is not None
    with pytest.raises(SignInError) as refused:
        sign_in(engine, "idv", PASSWORD, "10.0.0.1")
    assert refused.value.reason == "second_factor"
    session = sign_in(engine, "idv", PASSWORD, "10.0.0.1", pyotp.TOTP(secret).now())
    assert session.principal.role == "idv_officer"
    assert add_user(engine, "analist", "analyst", PASSWORD).totp_uri is None


def test_sign_in_is_throttled_per_account_and_per_address(engine: Engine) -> None:
    add_user(engine, "a", "analyst", PASSWORD)
    now = datetime.now(UTC)
    for _ in range(5):
        with pytest.raises(SignInError):
            sign_in(engine, "a", "wrong password!", "10.0.0.2", now=now)
    with pytest.raises(SignInError) as locked:
        sign_in(engine, "a", PASSWORD, "10.0.0.3", now=now)  # the right password, too late
    assert locked.value.reason == "throttled"
    # another account from the same address is locked out too
    add_user(engine, "b", "analyst", PASSWORD)
    with pytest.raises(SignInError, match="too many"):
        sign_in(engine, "b", PASSWORD, "10.0.0.2", now=now)
    later = now + timedelta(minutes=16)
    assert sign_in(engine, "a", PASSWORD, "10.0.0.3", now=later).principal.name == "a"


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
