"""The IDV officer in a real browser: from signing in (with the second factor) to recording
that a victim was informed, with the keyboard alone; a form with a missing answer says what is
missing; the victims' pages are the IDV's alone."""

from __future__ import annotations

from terugkeer.security.roles import Role
from tests.browser.conftest import SQLITE_ONLY, Walk

VICTIMS = "/portaal/slachtoffers"


def test_the_idv_officer_records_a_victim_informed_with_the_keyboard(walk: Walk) -> None:
    notice = walk.portal.world.victim_notices["WV1"]
    walk.sign_in(walk.portal.account(Role.IDV_OFFICER), keyboard=True)
    page = walk.page

    walk.follow(page.get_by_role("link", name="Slachtoffers", exact=True).first)
    assert page.url == walk.url(VICTIMS)
    walk.check("slachtoffers")

    walk.follow(page.get_by_role("link", name=str(notice), exact=True))
    walk.check("melding voor een slachtoffer")
    assert "Slachtoffer 1" not in page.content()  # the contact details are one step away

    walk.follow(page.get_by_role("link", name="Contactgegevens tonen"))
    walk.check("contactgegevens", readme="slachtoffer-idv")
    details = page.locator("main").inner_text()
    assert "Slachtoffer 1" in details
    assert "slachtoffer1@example.org" in details

    # first without saying how: the form comes back with the error, nothing recorded
    walk.follow(page.get_by_role("button", name="Vastleggen"), status=400)
    walk.check("contactgegevens, formulier met fout")
    assert "Kies hoe u het slachtoffer heeft geïnformeerd." in page.locator("main").inner_text()

    walk.choose(page.get_by_label("Hoe heeft u het slachtoffer geïnformeerd?"), "Telefonisch")
    walk.type_into(page.get_by_label("Toelichting (niet verplicht)"), "Teruggebeld op verzoek.")
    walk.follow(page.get_by_role("button", name="Vastleggen"))
    assert page.url.startswith(walk.url(f"{VICTIMS}/{notice}?"))
    walk.check("slachtoffer geïnformeerd")
    body = page.locator("main").inner_text()
    assert "Vastgelegd: het slachtoffer is geïnformeerd." in body
    assert "telefonisch. Teruggebeld op verzoek." in body


@SQLITE_ONLY
def test_the_victims_pages_are_the_idvs_alone(walk: Walk) -> None:
    notice = walk.portal.world.victim_notices["WV1"]
    walk.sign_in(walk.portal.account(Role.CASEWORKER))
    walk.goto(f"{VICTIMS}/{notice}/contactgegevens", "contactgegevens, geen toegang", status=403)
    body = walk.page.locator("body").inner_text()
    assert "Geen toegang" in body
    assert "Slachtoffer 1" not in body
    assert "example.org" not in body
