"""The administrator's pages: accounts (create, second factor, sessions, disable) and API tokens
(created and shown once, revoked), each change audited in the administrator's name."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from terugkeer.security.roles import Role
from terugkeer.security.tables import audit_log, users
from tests.web.portal.conftest import PASSWORD, csrf_token, quick_user

Portal = Callable[..., TestClient]


def actions(engine: Engine, actor: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.record_type, audit_log.c.record_id)
            .where(audit_log.c.actor == actor)
            .order_by(audit_log.c.id)
        ).all()
    return [(r.action, r.record_type, r.record_id) for r in rows]


def test_accounts_listed_filtered_and_created(engine: Engine, portal: Portal) -> None:
    quick_user(engine, Role.MAYOR_OFFICE, "oov-utrecht", "GM0344")
    quick_user(engine, Role.ANALYST, "analist-1")
    admin = portal(Role.ADMINISTRATOR, name="beheerder-1")
    listing = admin.get("/portaal/accounts")
    assert listing.status_code == 200
    for name in ("oov-utrecht", "analist-1", "beheerder-1"):
        assert f">{name}</a>" in listing.text
    filtered = admin.get("/portaal/accounts", params={"gemeente": "gm0344"})
    assert ">oov-utrecht</a>" in filtered.text
    assert ">analist-1</a>" not in filtered.text
    assert "Resultaat 1–1 van 1" in filtered.text

    form = admin.get("/portaal/accounts/nieuw")
    token = csrf_token(form.text)
    wrong = admin.post(
        "/portaal/accounts/nieuw",
        data={"naam": "oov-2", "rol": "mayor_office", "wachtwoord": "kort", "csrf_token": token},
    )
    assert wrong.status_code == 400
    assert 'id="fout-gemeente"' in wrong.text
    assert 'id="fout-wachtwoord"' in wrong.text
    created = admin.post(
        "/portaal/accounts/nieuw",
        data={
            "naam": "operator-2",
            "rol": "operator",
            "wachtwoord": PASSWORD,
            "csrf_token": token,
        },
    )
    assert created.status_code == 200
    assert "otpauth://totp/" in created.text  # the second factor's enrolment, shown once
    assert "Ingelogd als <strong>beheerder-1</strong> (Applicatiebeheerder)" in created.text
    assert "<dd>Functioneel beheerder Justid</dd>" in created.text
    assert ("create", "user", "operator-2") in actions(engine, "beheerder-1")
    duplicate = admin.post(
        "/portaal/accounts/nieuw",
        data={"naam": "operator-2", "rol": "operator", "wachtwoord": PASSWORD, "csrf_token": token},
    )
    assert duplicate.status_code == 400
    assert "Deze naam bestaat al." in duplicate.text


def test_second_factor_sessions_and_disabling(engine: Engine, portal: Portal) -> None:
    admin = portal(Role.ADMINISTRATOR, name="beheerder-2")
    operator = portal(Role.OPERATOR, name="operator-1")
    assert operator.get("/portaal/").status_code == 200
    page = admin.get("/portaal/accounts/operator-1")
    assert page.status_code == 200
    token = csrf_token(page.text)
    renewed = admin.post("/portaal/accounts/operator-1/tweede-factor", data={"csrf_token": token})
    assert renewed.status_code == 200
    secret = re.search(r'<span class="tk-secret">([A-Z2-7]+)</span>', renewed.text)
    assert secret, "the new secret is shown"
    # a new second factor ends the sessions: the operator signs in again
    gone = operator.get("/portaal/", follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/portaal/inloggen")

    unsure = admin.post("/portaal/accounts/operator-1/uitschakelen", data={"csrf_token": token})
    assert unsure.status_code == 400
    assert 'id="fout-zeker"' in unsure.text
    disabled = admin.post(
        "/portaal/accounts/operator-1/uitschakelen",
        data={"csrf_token": token, "zeker": "1"},
        follow_redirects=False,
    )
    assert disabled.status_code == 303
    with engine.connect() as conn:
        assert (
            conn.execute(select(users.c.active).where(users.c.name == "operator-1")).scalar_one()
            is False
        )
    assert [a for a in actions(engine, "beheerder-2") if a[1] == "user"] == [
        ("reset_2fa", "user", "operator-1"),
        ("disable", "user", "operator-1"),
    ]
    assert admin.get("/portaal/accounts/niemand").status_code == 404


def test_api_tokens_are_shown_once_and_revoked(engine: Engine, portal: Portal) -> None:
    quick_user(engine, Role.MAYOR_OFFICE, "oov-api")
    admin = portal(Role.ADMINISTRATOR, name="beheerder-3")
    page = admin.get("/portaal/api-sleutels")
    assert "Er zijn nog geen API-sleutels." in page.text
    token = csrf_token(page.text)
    refused = admin.post(
        "/portaal/api-sleutels",
        data={"naam": "zaaksysteem", "gebruiker": "oov-api", "contact": "1", "csrf_token": token},
    )
    assert refused.status_code == 400
    assert "Deze rol leest nooit contactgegevens van slachtoffers." in refused.text
    made = admin.post(
        "/portaal/api-sleutels",
        data={"naam": "zaaksysteem", "gebruiker": "oov-api", "csrf_token": token},
    )
    assert made.status_code == 200
    secret = re.search(r'<span class="tk-secret" id="sleutel">([^<]+)</span>', made.text)
    assert secret
    api = TestClient(admin.app)
    bearer = {"Authorization": f"Bearer {secret[1]}"}
    assert api.get("/api/v1/meldingen", headers=bearer).status_code == 200
    listing = admin.get("/portaal/api-sleutels")
    assert "zaaksysteem" in listing.text
    assert secret[1] not in listing.text  # never shown again
    revoked = admin.post(
        "/portaal/api-sleutels/zaaksysteem/intrekken",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert api.get("/api/v1/meldingen", headers=bearer).status_code == 401
    assert [a for a in actions(engine, "beheerder-3") if a[1] == "api_token"] == [
        ("create", "api_token", "zaaksysteem"),
        ("revoke", "api_token", "zaaksysteem"),
    ]


def test_a_name_with_a_slash_is_refused_on_the_form(engine: Engine, portal: Portal) -> None:
    """Its pages (/portaal/accounts/NAME, …/api-sleutels/NAME/intrekken) could never be
    reached: an account that cannot be disabled, a token that cannot be revoked."""
    quick_user(engine, Role.ANALYST, "analist")
    admin = portal(Role.ADMINISTRATOR, name="beheerder-4")
    token = csrf_token(admin.get("/portaal/api-sleutels").text)
    forms = [
        (
            "/portaal/accounts/nieuw",
            {"naam": "rev/slash", "rol": "analyst", "wachtwoord": PASSWORD * 2},
        ),
        ("/portaal/api-sleutels", {"naam": "k/slash", "gebruiker": "analist"}),
    ]
    for url, data in forms:
        refused = admin.post(url, data={**data, "csrf_token": token})
        assert refused.status_code == 400
        assert "zonder schuine streep (/)" in refused.text
    with engine.connect() as conn:
        assert conn.execute(select(users.c.name).where(users.c.name.like("%/%"))).all() == []
    assert actions(engine, "beheerder-4") == []
