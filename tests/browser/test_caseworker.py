"""The caseworker (nazorgcoördinator) in a real browser: from the expected returns to a case,
consent, the registration of the release moment, and an import file with errors and its report
per row, with the keyboard alone (choosing the file is the browser's file dialog: the test sets
it on the field). Another municipality's case is refused without showing it."""

from __future__ import annotations

from pathlib import Path

from terugkeer.reintegration.codes import CONDITIONS
from terugkeer.security.roles import Role
from tests.browser.conftest import Walk

CASES = "/portaal/casussen"
HEADER = (
    "dossiernummer;detentiekenmerk;bsn;toestemming;toestemming_datum;moment;datum;"
    "identiteitsbewijs;onderdak;werk_en_inkomen;schulden;zorg;zorgbehoefte;medewerker"
)
BAD_FILE = "\n".join(
    [
        HEADER,
        "NZ-W1;W1;;gegeven;31-02-2025;bij ontslag;15-02-2025;geldig identiteitsbewijs;"
        "bij familie of vrienden;werk;schulden zonder plan;geen zorg nodig;;nzc-test",
        "NZ-W1;W1;;;;bij ontslag;15-02-2025;een paspoort misschien;bij familie of vrienden;"
        "werk;schulden zonder plan;geen zorg nodig;;nzc-test",
    ]
)


def test_the_caseworker_registers_a_release_moment_and_imports_a_file_with_errors(
    walk: Walk, tmp_path: Path
) -> None:
    soon, case = walk.portal.world.cases["W4"], walk.portal.world.cases["W1"]
    walk.sign_in(walk.portal.account(Role.CASEWORKER), keyboard=True)
    page = walk.page

    walk.follow(page.get_by_role("link", name="Nazorgdossiers", exact=True).first)
    walk.check("verwachte terugkeer")
    assert page.get_by_role("link", name=f"dossier {soon}", exact=True).count() == 1

    walk.follow(page.get_by_role("link", name="Alle dossiers").first)
    walk.check("alle dossiers")
    walk.follow(page.get_by_role("link", name=f"dossier {case}", exact=True))
    walk.check("dossier zonder toestemming")
    assert "Zonder gegeven toestemming" in page.inner_text("main")

    # the form proposes: given, today, for registration
    walk.follow(page.get_by_role("button", name="Toestemming vastleggen"))
    walk.check("toestemming vastgelegd")
    assert "De toestemming is vastgelegd." in page.inner_text("main")

    walk.follow(page.get_by_role("link", name="Registreren: bij ontslag"))
    walk.check("registreren bij ontslag")
    chosen = {}
    for condition in CONDITIONS:
        select = page.locator(f"#veld-{condition.value}")
        first = select.locator("option").nth(1).inner_text().strip()
        walk.choose(select, first)
        chosen[condition.value] = first
    walk.follow(page.get_by_role("button", name="Registratie vastleggen"))
    walk.check(
        "registratie vastgelegd",
        readme="dossier-nazorg",
        readme_at=page.get_by_role("heading", name="De basisvoorwaarden per meetmoment"),
    )
    main = page.inner_text("main")
    assert "De registratie is vastgelegd." in main
    release_row = page.locator("tr", has=page.get_by_role("link", name="Registreren: bij ontslag"))
    for label in chosen.values():
        assert label in release_row.inner_text()

    walk.follow(page.get_by_role("link", name="Bestand importeren").first)
    walk.check("bestand importeren")
    upload = tmp_path / "dossiers.csv"
    upload.write_text(BAD_FILE + "\n", encoding="utf-8")
    page.get_by_label("Bestand", exact=True).set_input_files(upload)
    walk.follow(page.get_by_role("button", name="Importeren"), status=400)
    walk.check(
        "importverslag met fouten",
        readme="import-nazorg",
        readme_at=page.get_by_role("heading", name="Uitkomst: dossiers.csv"),
    )
    main = page.inner_text("main")
    assert "Het bestand is niet geïmporteerd. Er is niets vastgelegd." in main
    rows = page.locator("table tbody tr")
    assert {rows.nth(i).locator("th").inner_text() for i in range(rows.count())} == {"2", "3"}
    assert "toestemming_datum" in rows.first.inner_text()
    assert "een paspoort misschien" in main


def test_another_municipalitys_case_is_not_found(walk: Walk) -> None:
    other = walk.portal.world.cases["W2"]  # Rotterdam's
    walk.sign_in(walk.portal.account(Role.CASEWORKER))
    walk.goto(f"{CASES}/{other}", "dossier van een andere gemeente", status=404)
    body = walk.page.inner_text("body")
    assert "Niet gevonden" in body
    assert "W2" not in body
