"""The account lifecycle on the command line: token revoke / grant-contacts / list, user
disable / reset-2fa, session end, each an audited action by whoever runs it; and the command
line refuses to start without an explicit environment."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.config import get_settings
from terugkeer.security.accounts import (
    SignInError,
    add_user,
    create_token,
    principal_for_session,
    principal_for_token,
    sign_in,
    totp_secret,
)
from terugkeer.security.tables import audit_log

PASSWORD = "een heel lang wachtwoord"


def _run(*args: str) -> str:
    who = [] if args[-1] == "list" else ["--as", "j.beheer"]
    result = CliRunner().invoke(app, [*args, *who])
    assert result.exit_code == 0, result.output
    return result.output


def _rows(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.record_type, audit_log.c.record_id)
            .where(audit_log.c.actor == "cli:j.beheer")
            .order_by(audit_log.c.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_token_and_account_lifecycle(cli_db: Engine) -> None:
    engine = cli_db
    add_user(engine, "idv", "idv_officer", PASSWORD)
    add_user(engine, "a", "analyst", PASSWORD)
    token = create_token(engine, "idv-system", "idv")
    secret = totp_secret(engine, "idv")
    assert secret is not None
    session = sign_in(engine, "idv", PASSWORD, "10.6.0.1", pyotp.TOTP(secret).now())
    _run("token", "grant-contacts", "idv-system")
    with engine.begin() as conn:
        granted = principal_for_token(conn, token)
    assert granted is not None
    assert granted.second_factor
    listed = _run("token", "list")
    assert "idv-system" in listed
    assert "contact details" in listed
    assert token not in listed
    _run("token", "revoke", "idv-system")
    with engine.begin() as conn:
        assert principal_for_token(conn, token) is None
    assert "1 session(s) ended" in _run("session", "end", "idv")
    with engine.begin() as conn:
        assert principal_for_session(conn, session.token) is None
    assert "otpauth://" in _run("user", "reset-2fa", "idv")
    with pytest.raises(SignInError):
        sign_in(engine, "idv", PASSWORD, "10.6.0.1", pyotp.TOTP(secret).now())
    _run("user", "disable", "a")
    with pytest.raises(SignInError):
        sign_in(engine, "a", PASSWORD, "10.6.0.2")
    assert _rows(engine) == [
        ("grant_contacts", "api_token", "idv-system"),
        ("revoke", "api_token", "idv-system"),
        ("end_sessions", "user", "idv"),
        ("reset_2fa", "user", "idv"),
        ("disable", "user", "a"),
    ]
    again = CliRunner().invoke(app, ["user", "disable", "a"])
    assert again.exit_code == 2
    assert "disabled already" in again.output
    assert "Traceback" not in again.output
    unknown = CliRunner().invoke(app, ["token", "revoke", "nope"])
    assert unknown.exit_code == 2
    assert "no token [nope]" in unknown.output


def test_a_token_expires_and_a_grant_needs_a_role_that_reads_contacts(cli_db: Engine) -> None:
    add_user(cli_db, "a", "analyst", PASSWORD)
    refused = CliRunner().invoke(app, ["token", "create", "t", "--user", "a", "--contact-details"])
    assert refused.exit_code == 2
    assert "never reads victims' contact details" in refused.output
    made = CliRunner().invoke(app, ["token", "create", "t", "--user", "a"])
    assert made.exit_code == 0, made.output
    assert "expires" in _run("token", "list")


def test_the_command_line_refuses_to_start_without_an_environment(
    cli_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TERUGKEER_ENVIRONMENT")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["token", "list"])
    assert result.exit_code == 2
    assert "TERUGKEER_ENVIRONMENT is not set" in result.output
    assert "Traceback" not in result.output
    monkeypatch.setenv("TERUGKEER_ENVIRONMENT", "production")
    monkeypatch.setenv("TERUGKEER_WEBHOOK_SECRET", "changeme")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "refusing to start" in result.output
