"""The analyst's monitor and cost-benefit pages in a real browser: both open from the menu,
the monitor by release year and municipality (its plots load as images under the portal's
Content Security Policy), a scenario is run with the keyboard; axe finds no WCAG 2.1 A/AA
violation on any of them. Store-independent, so on SQLite only."""

from __future__ import annotations

from terugkeer.security.roles import Role
from tests.browser.conftest import SQLITE_ONLY, Walk

NPI = (
    "Programma in detentie naar het voorbeeld van het nieuw Positief Initiatief "
    "(PI Noord-Holland Noord)"
)


@SQLITE_ONLY
def test_the_analyst_reads_the_monitor_and_runs_a_scenario(walk: Walk) -> None:
    walk.sign_in(walk.portal.account(Role.ANALYST))
    page = walk.page

    walk.follow(page.get_by_role("link", name="Monitor", exact=True).first)
    walk.check("monitor")
    assert "samenhang, geen effect" in page.inner_text("main").lower()
    images = page.locator("main img")
    assert images.count() >= 2
    for i in range(images.count()):  # every plot loaded (an image of width 0 did not)
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")

    municipality = page.locator("#veld-gemeente option").nth(1).get_attribute("value")
    walk.goto(f"/portaal/monitor?jaar=totaal&gemeente={municipality}", "monitor, een gemeente")
    assert page.get_by_role("table").count() >= 5

    walk.follow(page.get_by_role("link", name="MKBA", exact=True).first)
    walk.check("mkba")
    walk.choose(page.get_by_label("Scenario"), NPI)
    walk.type_into(page.get_by_label("Trekkingen"), "500", replace=True)
    walk.follow(page.get_by_role("button", name="Doorrekenen"))
    assert "trekkingen=500" in page.url
    walk.check("mkba, doorrekening")
    assert page.locator("main svg[role=img] title").count() == 1
    assert "Netto contante waarde" in page.inner_text("main")
