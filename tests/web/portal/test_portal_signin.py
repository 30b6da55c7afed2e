"""Signing in to the portal on the API's sessions: password, the second factor on its own page,
the sign-in form's CSRF token, throttling, signing out, going back to the page asked for."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Engine, insert, select

from terugkeer.demo.accounts import demo_accounts
from terugkeer.security.roles import Role
from terugkeer.security.tables import login_throttle, sessions
from terugkeer.web.app import create_app
from tests.web.portal.conftest import (
    PASSWORD,
    code_for,
    csrf_token,
    form_token,
    quick_user,
    sign_in,
)

Portal = Callable[..., TestClient]
REFUSED = "Inloggen is niet gelukt. Controleer uw naam, wachtwoord en code."


def submit(
    client: TestClient, name: str, password: str, volgende: str = "", code: str = ""
) -> object:
    page = client.get("/portaal/inloggen")
    data = {"naam": name, "wachtwoord": password, "form_token": form_token(page.text)}
    if volgende:
        data["volgende"] = volgende
    if code:
        data["code"] = code
    return client.post("/portaal/inloggen", data=data, follow_redirects=False)


def test_password_sign_in_back_to_the_page_and_the_api_accepts_the_session(
    engine: Engine,
) -> None:
    quick_user(engine, Role.MAYOR_OFFICE, "oov-inlog")
    client = TestClient(create_app(engine))
    asked = client.get("/portaal/meldingen?toon=nieuw", follow_redirects=False)
    assert asked.status_code == 303
    target = asked.headers["location"]
    page = client.get(target)
    assert 'name="volgende" value="/portaal/meldingen?toon=nieuw"' in page.text
    response = client.post(
        "/portaal/inloggen",
        data={
            "naam": "oov-inlog",
            "wachtwoord": PASSWORD,
            "form_token": form_token(page.text),
            "volgende": "/portaal/meldingen?toon=nieuw",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/portaal/meldingen?toon=nieuw"
    assert client.get("/portaal/meldingen").status_code == 200
    # the same session works for the API (a browser may call it too)
    assert client.get("/api/v1/meldingen").status_code == 200
    # signed in, the sign-in page sends you on
    assert client.get("/portaal/inloggen", follow_redirects=False).status_code == 303


def test_a_wrong_password_an_unknown_name_and_a_foreign_target(engine: Engine) -> None:
    quick_user(engine, Role.AUDITOR, "privacy-inlog")
    client = TestClient(create_app(engine))
    for name, password in (("privacy-inlog", "fout-wachtwoord-123"), ("niemand", PASSWORD)):
        refused = submit(client, name, password)
        assert refused.status_code == 200  # type: ignore[attr-defined]
        assert REFUSED in refused.text  # type: ignore[attr-defined]
        assert client.cookies.get("terugkeer_session") is None
    elsewhere = submit(client, "privacy-inlog", PASSWORD, volgende="//evil.example/portaal/")
    assert elsewhere.headers["location"] == "/portaal/"  # type: ignore[attr-defined]


def test_the_sign_in_form_needs_its_token(engine: Engine) -> None:
    quick_user(engine, Role.ANALYST, "analist-inlog")
    client = TestClient(create_app(engine))
    client.get("/portaal/inloggen")  # the cookie half of the token
    forged = client.post(
        "/portaal/inloggen",
        data={"naam": "analist-inlog", "wachtwoord": PASSWORD, "form_token": "geraden"},
        follow_redirects=False,
    )
    assert forged.status_code == 200
    assert "Het inloggen duurde te lang. Begin opnieuw." in forged.text
    assert client.cookies.get("terugkeer_session") is None


def test_the_second_factor_is_checked_with_the_password(engine: Engine) -> None:
    quick_user(engine, Role.IDV_OFFICER, "idv-inlog")
    client = TestClient(create_app(engine))
    assert 'autocomplete="one-time-code"' in client.get("/portaal/inloggen").text
    right = code_for(engine, "idv-inlog")
    wrong = "000000" if right != "000000" else "111111"
    for password, code in ((PASSWORD, ""), (PASSWORD, wrong), ("fout-wachtwoord-123", right)):
        refused = submit(client, "idv-inlog", password, code=code)
        assert refused.status_code == 200  # type: ignore[attr-defined]
        assert REFUSED in refused.text  # type: ignore[attr-defined]
        assert client.cookies.get("terugkeer_session") is None
    sign_in(client, engine, "idv-inlog", Role.IDV_OFFICER, step_offset=1)
    assert client.get("/portaal/slachtoffers").status_code == 200
    with engine.connect() as conn:
        assert conn.execute(select(sessions.c.second_factor)).scalars().all() == [True]


def test_the_answer_does_not_tell_who_has_an_account_or_a_second_factor(engine: Engine) -> None:
    """Issue 13, finding 7, for the portal: a first step that went on to a code page for
    accounts with a second factor only would name them (and confirm their passwords)."""
    quick_user(engine, Role.OPERATOR, "operator-inlog")
    quick_user(engine, Role.ANALYST, "analist-inlog2")
    client = TestClient(create_app(engine))
    answers = set()
    for name, password in (
        ("operator-inlog", PASSWORD),  # right password, no code
        ("operator-inlog", "fout-wachtwoord-123"),
        ("analist-inlog2", "fout-wachtwoord-123"),
        ("niemand-hier", PASSWORD),
    ):
        answer = submit(client, name, password)
        answers.add((answer.status_code, REFUSED in answer.text, answer.headers.get("location")))  # type: ignore[attr-defined]
    assert answers == {(200, True, None)}
    assert client.get("/portaal/tweede-factor", follow_redirects=False).status_code == 404


def test_a_locked_address_is_told_to_wait(engine: Engine) -> None:
    quick_user(engine, Role.ANALYST, "analist-slot")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(login_throttle).values(
                key="addr:testclient",
                failures=10,
                window_start=now,
                locked_until=now + timedelta(minutes=15),
            )
        )
    client = TestClient(create_app(engine))
    locked = submit(client, "analist-slot", PASSWORD)
    assert locked.status_code == 429  # type: ignore[attr-defined]
    assert "Wacht een kwartier" in locked.text  # type: ignore[attr-defined]
    assert client.cookies.get("terugkeer_session") is None


def test_signing_out(engine: Engine, portal: Portal) -> None:
    client = portal(Role.CASEWORKER)
    home = client.get("/portaal/")
    forged = client.post("/portaal/uitloggen")
    assert forged.status_code == 403
    assert client.get("/portaal/").status_code == 200  # still signed in
    out = client.post(
        "/portaal/uitloggen", data={"csrf_token": csrf_token(home.text)}, follow_redirects=False
    )
    assert out.status_code == 303
    assert out.headers["location"] == "/portaal/inloggen?bericht=uitgelogd"
    assert "U bent uitgelogd." in client.get(out.headers["location"]).text
    with engine.connect() as conn:
        assert conn.execute(select(sessions.c.revoked_at)).scalar_one() is not None


def test_the_demo_accounts_sign_in_with_what_the_demo_wrote(engine: Engine, tmp_path: Path) -> None:
    console = Console(file=io.StringIO())
    made = demo_accounts(engine, tmp_path, console, roles=(Role.IDV_OFFICER,))
    written = (tmp_path / "accounts.txt").read_text(encoding="utf-8")
    assert (tmp_path / "accounts.txt").stat().st_mode & 0o077 == 0  # its owner only
    password = re.search(r"password: (\S+)", written)[1]  # type: ignore[index]
    secret = re.search(r"totp_secret: (\S+)", written)[1]  # type: ignore[index]
    assert (made[0].password, made[0].totp_secret) == (password, secret)
    assert password in console.file.getvalue()  # type: ignore[attr-defined]
    client = TestClient(create_app(engine))
    done = submit(client, "demo-idv_officer", password, code=pyotp.TOTP(secret).now())
    assert done.status_code == 303  # type: ignore[attr-defined]
    assert client.get("/portaal/slachtoffers").status_code == 200
