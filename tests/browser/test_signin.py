"""Signing in and out in a real browser (each role's walk signs in with the keyboard alone, in
test_<role>.py); a wrong password, an empty form, the way back after signing in, signing out,
the 404 page. Every page reached passes axe (``Walk.check``)."""

from __future__ import annotations

from terugkeer.security.roles import Role
from tests.browser.conftest import HOME, SIGN_IN, SQLITE_ONLY, Walk
from tests.browser.seed import Account


@SQLITE_ONLY
def test_a_wrong_password_is_refused_with_one_message(walk: Walk) -> None:
    account = walk.portal.account(Role.ANALYST)
    walk.goto(SIGN_IN, "inloggen")
    walk.page.get_by_label("Naam", exact=True).fill(account.name)
    walk.page.get_by_label("Wachtwoord", exact=True).fill("niet het wachtwoord")
    with walk.page.expect_navigation():
        walk.page.keyboard.press("Enter")
    walk.check("inloggen mislukt")
    alert = walk.page.get_by_role("alert")
    assert "niet gelukt" in alert.inner_text()
    assert walk.page.context.cookies() == [] or all(
        c["name"] != "terugkeer_session" for c in walk.page.context.cookies()
    )


@SQLITE_ONLY
def test_an_empty_form_says_what_is_missing(walk: Walk) -> None:
    walk.goto(SIGN_IN, "inloggen")
    walk.follow(walk.page.get_by_role("button", name="Inloggen"))
    walk.check("inloggen leeg")
    body = walk.page.locator("main").inner_text()
    assert "Vul uw naam in." in body
    assert "Vul uw wachtwoord in." in body


@SQLITE_ONLY
def test_a_page_without_signing_in_leads_to_sign_in_and_back(walk: Walk) -> None:
    """Opening the start page signed out: the sign-in page, and after it the page asked for."""
    account: Account = walk.portal.account(Role.AUDITOR)
    walk.goto(HOME, "start, niet ingelogd")
    assert SIGN_IN in walk.page.url
    walk.page.get_by_label("Naam", exact=True).fill(account.name)
    walk.page.get_by_label("Wachtwoord", exact=True).fill(account.password)
    with walk.page.expect_navigation():
        walk.page.keyboard.press("Enter")
    assert walk.page.url == walk.url(HOME)
    walk.check("start na inloggen")


@SQLITE_ONLY
def test_signing_out_ends_the_session(walk: Walk) -> None:
    account = walk.portal.account(Role.CASEWORKER)
    walk.goto(SIGN_IN, "inloggen")
    walk.page.get_by_label("Naam", exact=True).fill(account.name)
    walk.page.get_by_label("Wachtwoord", exact=True).fill(account.password)
    with walk.page.expect_navigation():
        walk.page.keyboard.press("Enter")
    walk.check("start")
    walk.follow(walk.page.get_by_role("button", name="Uitloggen"))
    assert SIGN_IN in walk.page.url
    walk.check("uitgelogd")
    walk.goto(HOME, "start na uitloggen")
    assert SIGN_IN in walk.page.url  # the session is gone: back to sign-in


@SQLITE_ONLY
def test_an_unknown_page_is_a_page_not_a_trace(walk: Walk) -> None:
    walk.sign_in(walk.portal.account(Role.ANALYST))
    walk.goto("/portaal/bestaat-niet", "niet gevonden", status=404)
    assert walk.page.get_by_role("heading", level=1).inner_text() == "Niet gevonden"
    assert "Traceback" not in walk.page.content()
