"""Every page of each role that the walks do not reach, opened once: axe finds no WCAG 2.1 A/AA
violation, nothing fails to load (lists, details, empty states, an English page, the 400 page).
Store-independent, so on SQLite only."""

from __future__ import annotations

import pytest

from terugkeer.security.roles import Role
from tests.browser.conftest import SQLITE_ONLY, Walk

OPERATOR = "/portaal/beheer"
PAGES = {
    Role.OPERATOR: [
        f"{OPERATOR}/meldplichten",
        f"{OPERATOR}/onbekende-ontvangers",
        f"{OPERATOR}/onbestelbaar",
        f"{OPERATOR}/controle",
        f"{OPERATOR}/alsnog-verzenden",
    ],
    Role.ADMINISTRATOR: ["/portaal/api-sleutels", "/portaal/accounts/test-auditor"],
    Role.IDV_OFFICER: ["/portaal/meldingen", "/portaal/slachtoffers?toon=alle"],
    Role.CASEWORKER: ["/portaal/meldingen", "/portaal/casussen/alle?status=cancelled"],
    Role.MAYOR_OFFICE: ["/portaal/meldingen?toon=nieuw&volgorde=nieuwste"],
}


@SQLITE_ONLY
@pytest.mark.parametrize("role", list(PAGES), ids=[r.value for r in PAGES])
def test_every_page_of_the_role_passes_axe(walk: Walk, role: Role) -> None:
    walk.sign_in(walk.portal.account(role))
    for path in PAGES[role]:
        walk.goto(path, path)
        assert walk.page.get_by_role("heading", level=1).count() == 1


@SQLITE_ONLY
def test_a_case_without_consent_shows_only_the_release_signal(walk: Walk) -> None:
    walk.sign_in(walk.portal.account(Role.CASEWORKER))
    walk.goto(f"/portaal/casussen/{walk.portal.world.cases['W4']}", "dossier zonder toestemming")
    assert "Zonder gegeven toestemming" in walk.page.inner_text("main")


@SQLITE_ONLY
def test_the_portal_in_english_and_a_bad_request_page(walk: Walk) -> None:
    walk.sign_in(walk.portal.account(Role.MAYOR_OFFICE))
    walk.goto("/portaal/meldingen?lang=en", "notices in English")
    assert walk.page.locator("html").get_attribute("lang") == "en"
    assert walk.page.get_by_role("heading", level=1).inner_text() == "Notices"
    walk.goto("/portaal/meldingen?lang=nl&pagina=0", "400", status=400)
    assert walk.page.locator("html").get_attribute("lang") == "nl"
    assert walk.page.get_by_role("heading", level=1).inner_text() == "De vraag klopt niet"
