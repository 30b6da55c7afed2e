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


def submit(client: TestClient, name: str, password: str, volgende: str = "") -> object:
    page = client.get("/portaal/inloggen")
    data = {"naam": name, "wachtwoord": password, "form_token": form_token(page.text)}
    if volgende:
        data["volgende"] = volgende
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


def test_the_second_factor_on_its_own_page(engine: Engine) -> None:
    quick_user(engine, Role.IDV_OFFICER, "idv-inlog")
    client = TestClient(create_app(engine))
    first = submit(client, "idv-inlog", PASSWORD)
    assert first.status_code == 303  # type: ignore[attr-defined]
    assert first.headers["location"].startswith("/portaal/tweede-factor")  # type: ignore[attr-defined]
    assert client.cookies.get("terugkeer_session") is None
    page = client.get("/portaal/tweede-factor")
    assert 'autocomplete="one-time-code"' in page.text
    wrong = client.post(
        "/portaal/tweede-factor",
        data={"code": "000000", "form_token": form_token(page.text)},
        follow_redirects=False,
    )
    if wrong.status_code == 303:  # 000000 was, by chance, the code: sign out and go on
        raise AssertionError("a one-in-a-million code")
    assert REFUSED in wrong.text
    assert client.cookies.get("terugkeer_session") is None
    # the pending sign-in is gone: the code page sends you back to the start
    assert "Het inloggen duurde te lang" in client.get("/portaal/tweede-factor").text

    sign_in(client, engine, "idv-inlog", Role.IDV_OFFICER, step_offset=1)
    assert client.get("/portaal/slachtoffers").status_code == 200
    with engine.connect() as conn:
        assert conn.execute(select(sessions.c.second_factor)).scalars().all() == [True]


def test_a_code_without_the_password_step_is_refused(engine: Engine) -> None:
    quick_user(engine, Role.OPERATOR, "operator-inlog")
    client = TestClient(create_app(engine))
    page = client.get("/portaal/inloggen")
    response = client.post(
        "/portaal/tweede-factor",
        data={"code": code_for(engine, "operator-inlog"), "form_token": form_token(page.text)},
    )
    assert "Het inloggen duurde te lang" in response.text
    assert client.cookies.get("terugkeer_session") is None


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
    first = submit(client, "demo-idv_officer", password)
    page = client.get(first.headers["location"])  # type: ignore[attr-defined]
    done = client.post(
        "/portaal/tweede-factor",
        data={"code": pyotp.TOTP(secret).now(), "form_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert client.get("/portaal/slachtoffers").status_code == 200
