"""The auditor in a real browser: searching the audit log by actor, kind of record and record,
an empty result, and the chain check, with the keyboard alone."""

from __future__ import annotations

from terugkeer.security.roles import Role
from tests.browser.conftest import Walk

LOG = "/portaal/auditlog"


def test_the_auditor_searches_the_log_and_checks_the_chain_with_the_keyboard(
    walk: Walk,
) -> None:
    analyst = walk.portal.account(Role.ANALYST).name
    walk.sign_in(walk.portal.account(Role.AUDITOR), keyboard=True)
    page = walk.page

    walk.follow(page.get_by_role("link", name="Logboek", exact=True).first)
    walk.check("logboek")

    walk.type_into(page.get_by_label("Wie (naam)"), "system")
    walk.choose(page.get_by_label("Soort gegeven"), "Gebruiker")
    walk.type_into(page.get_by_label("Kenmerk van het gegeven"), analyst)
    walk.follow(page.get_by_role("button", name="Zoeken"))
    walk.check("logboek, gezocht")
    rows = page.locator("table tbody tr")
    assert rows.count() == 1  # the account's creation, by terugkeer itself
    row = rows.first.inner_text()
    assert analyst in row
    assert "create" in row

    walk.type_into(page.get_by_label("Kenmerk van het gegeven"), "bestaat-niet", replace=True)
    walk.follow(page.get_by_role("button", name="Zoeken"))
    walk.check("logboek, niets gevonden")
    assert "Er zijn geen regels in het logboek die hieraan voldoen." in page.inner_text("main")

    walk.follow(page.get_by_role("link", name="Controle van het logboek", exact=True).first)
    walk.check("controle van het logboek")
    walk.follow(page.get_by_role("button", name="Controleer nu"))
    walk.check("controle van het logboek, uitgevoerd")
    result = page.inner_text("main")
    assert "Het logboek is in orde." in result
    assert "Aantal gecontroleerde regels" in result
