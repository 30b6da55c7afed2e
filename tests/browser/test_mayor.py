"""The mayor's office in a real browser: from signing in to acknowledging a notice with the
keyboard alone; another municipality's notice and other roles' pages are refused without
showing anything of them."""

from __future__ import annotations

from terugkeer.security.roles import Role
from tests.browser.conftest import HOME, SQLITE_ONLY, Walk

INBOX = "/portaal/meldingen"


def test_the_mayors_office_acknowledges_a_notice_with_the_keyboard(walk: Walk) -> None:
    world = walk.portal.world
    notice = world.home_notices[0]
    walk.sign_in(walk.portal.account(Role.MAYOR_OFFICE), keyboard=True, readme=True)
    page = walk.page

    walk.follow(page.get_by_role("link", name="Meldingen", exact=True).first)
    assert page.url == walk.url(INBOX)
    walk.check("meldingen", readme="meldingen-burgemeester")

    walk.choose(page.get_by_label("Toon"), "Nog te bevestigen")
    walk.follow(page.get_by_role("button", name="Filteren"))
    assert "toon=te-bevestigen" in page.url
    walk.check("meldingen, nog te bevestigen")

    walk.follow(page.get_by_role("link", name=str(notice), exact=True))
    assert page.url == walk.url(f"{INBOX}/{notice}")
    walk.check("melding", readme="melding-burgemeester")
    details = page.locator("main").inner_text()
    assert "Einde detentie" in details
    assert "W1" in details  # the period the notice is about

    walk.type_into(page.get_by_label("Notitie (niet verplicht)"), "Besproken met de wijkagent.")
    walk.follow(page.get_by_role("button", name="Ontvangst bevestigen"))
    walk.check("melding bevestigd")
    body = page.locator("main").inner_text()
    assert "De ontvangst van de melding is bevestigd." in body
    assert "Besproken met de wijkagent." in body
    assert walk.portal.account(Role.MAYOR_OFFICE).name in body  # acknowledged by
    assert page.get_by_role("button", name="Ontvangst bevestigen").count() == 0


def test_another_municipalitys_notice_is_not_found_and_shows_nothing(walk: Walk) -> None:
    other = walk.portal.world.other_notices[0]
    walk.sign_in(walk.portal.account(Role.MAYOR_OFFICE))
    walk.goto(f"{INBOX}/{other}", "melding van een andere gemeente", status=404)
    body = walk.page.locator("body").inner_text()
    assert "Niet gevonden" in body
    for leak in ("W2", "GM0599", "Rotterdam", "Einde detentie"):
        assert leak not in body
    # the notice exists: the other municipality's own mayor's office opens it
    other_mayor = walk.portal.world.other_mayor
    assert other_mayor is not None
    walk.context.clear_cookies()
    walk.sign_in(other_mayor)
    walk.goto(f"{INBOX}/{other}", "melding van de eigen gemeente")
    assert "W2" in walk.page.locator("main").inner_text()


@SQLITE_ONLY
def test_other_roles_pages_say_geen_toegang(walk: Walk) -> None:
    walk.sign_in(walk.portal.account(Role.MAYOR_OFFICE))
    for path in (
        "/portaal/slachtoffers",
        "/portaal/auditlog",
        "/portaal/accounts",
        "/portaal/beheer",
    ):
        walk.goto(path, f"geen toegang {path}", status=403)
        assert walk.page.get_by_role("heading", level=1).inner_text() == "Geen toegang"
        home = walk.page.get_by_role("link", name="Naar de startpagina")
        assert home.get_attribute("href") == HOME
