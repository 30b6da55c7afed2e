"""Signing in and out in a real browser, every role, with the keyboard alone; the error and
"geen toegang" pages. Every page reached passes axe (``Walk.check``)."""

from __future__ import annotations

import pytest

from terugkeer.security.roles import Role
from tests.browser.conftest import HOME, SIGN_IN, SQLITE_ONLY, Walk
from tests.browser.seed import Account

# the roles whose main walk (test_<role>.py, which signs in with the keyboard) is not there yet
# (a feed is a system: it has API tokens, no pages)
PEOPLE = [Role.CASEWORKER, Role.ANALYST]


@SQLITE_ONLY
@pytest.mark.parametrize("role", PEOPLE, ids=[r.value for r in PEOPLE])
def test_each_role_signs_in_with_the_keyboard_and_sees_its_home(walk: Walk, role: Role) -> None:
    account = walk.portal.account(role)
    walk.sign_in(account, keyboard=True)
    page = walk.page
    assert page.url == walk.url(HOME)
    heading = page.get_by_role("heading", level=1)
    assert account.name in heading.inner_text()
    assert page.locator("html").get_attribute("lang") == "nl"


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
    with walk.page.expect_navigation():
        walk.press_on(walk.page.get_by_role("button", name="Inloggen"))
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
    with walk.page.expect_navigation():
        walk.press_on(walk.page.get_by_role("button", name="Uitloggen"))
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
