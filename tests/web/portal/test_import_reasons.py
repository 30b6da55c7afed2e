"""The importers' reasons in Dutch on the caseworker's import page (web/portal/reasons.py):
every pattern with an example, keeping the variable parts; no English left for the reasons
that messy synthetic registration files and a file with every kind of mistake produce; and
the page "Bestand importeren" showing the Dutch reason by default and the English one with
``?lang=en``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from terugkeer.detention.ingest import ingest_files
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.reintegration.importing import (
    ImportReport,
    import_activities,
    import_cases,
    import_screenings,
)
from terugkeer.reintegration.safety import BSN_AS_REFERENCE, FORMULA_REASON
from terugkeer.reintegration.scope import today
from terugkeer.security.roles import Role
from terugkeer.synth import generate
from terugkeer.synth.registrations import MessyRegistrations, write_registrations
from terugkeer.web.portal.reasons import PATTERNS, dutch_reason, match
from tests.web.portal.conftest import csrf_token
from tests.web.portal.data import BSNS, GM, residents

Portal = Callable[..., TestClient]

_ALLOWED = "valid (geldig identiteitsbewijs), expired (verlopen)"

# (an English reason as an importer writes it, the parts the Dutch text must keep)
EXAMPLES: list[tuple[str, list[str]]] = [
    ("no such file: import/dossiers.csv", ["import/dossiers.csv"]),
    ("unsupported file type [.ods]: use .csv or .xlsx", ["[.ods]", ".csv", ".xlsx"]),
    (
        "unknown column [kleur]; known columns: dossiernummer, detentiekenmerk, bsn",
        ["[kleur]", "dossiernummer, detentiekenmerk, bsn"],
    ),
    ("column [Onderdak] appears twice", ["[Onderdak]"]),
    ("missing column(s): soort, aanbieder", ["soort, aanbieder"]),
    ("the file is neither UTF-8 nor Windows-1252: invalid start byte", ["UTF-8", "Windows-1252"]),
    # Python's reasons inside the ones above, also on their own
    ("invalid start byte", []),
    ("invalid continuation byte", []),
    ("character maps to <undefined>", []),
    ("field larger than field limit (131072)", ["131072"]),
    ("day is out of range for month", []),
    ("month must be in 1..12", ["1", "12"]),
    ("day 30 must be in range 1..28 for month 2", ["30", "28", "2"]),
    ("unexpected end of data", []),
    (
        "the file is neither UTF-8 nor Windows-1252: character maps to <undefined>",
        ["Windows-1252"],
    ),
    ("not a readable CSV file: field larger than field limit (131072)", ["CSV", "131072"]),
    ("row 12 has 14 cells, the header 11", ["12", "14", "11"]),
    ("the file is empty or its first row (the header) is empty", []),
    ("reading XLSX needs the openpyxl package, which is not installed", ["XLSX", "openpyxl"]),
    (
        "not a readable XLSX file: BadZipFile: File is not a zip file",
        ["XLSX", "BadZipFile: File is not a zip file"],
    ),
    ("the sheet is empty", []),
    ("row 7 has values beyond the header's columns", ["7"]),
    ("unknown municipality code [GM9999]", ["[GM9999]"]),
    ("the file needs a column detentiekenmerk or bsn", ["detentiekenmerk", "bsn"]),
    ("a date without a time of day is expected", []),
    ("not a date: write dd-mm-jjjj, for example 31-01-2025", ["dd-mm-jjjj", "31-01-2025"]),
    ("year 1850 is out of range", ["1850"]),
    ("no such date (day is out of range for month)", []),
    ("no such date (month must be in 1..12)", ["1", "12"]),
    ("no such date (day 31 must be in range 1..29 for month 2 in year 2024)", ["31", "29", "2"]),
    ("not a number", []),
    ("a number is expected", []),
    (
        "ambiguous number: write a decimal comma (1,234) or no thousands point (1234)",
        ["(1,234)", "(1234)"],
    ),
    ("not a number: write for example 1234,56", ["1234,56"]),
    ("a negative number is not allowed", []),
    ("at most 2 decimals", ["2"]),
    ("more than the maximum of 10,000,000", ["10.000.000"]),
    (f"unknown code; allowed: {_ALLOWED}", [_ALLOWED]),
    ("not a valid BSN (9 digits, 11-proef)", ["BSN", "9", "11-proef"]),
    (FORMULA_REASON, ["= + - @"]),
    (BSN_AS_REFERENCE, ["BSN"]),
    ("the municipality's case reference is required", []),
    ("longer than 64 characters", ["64"]),
    ("give the detention reference (detentiekenmerk) or the BSN", ["detentiekenmerk", "BSN"]),
    ("the date of the consent is required", []),
    ("a moment is required with condition statuses", []),
    ("a moment without any condition status", []),
    ("no case for this detention period in GM0363", ["GM0363"]),
    ("does not match the person of the detention period", []),
    ("no case for this person in GM0599", ["GM0599"]),
    (
        "the person has 2 cases in GM0363: give the detention reference (detentiekenmerk)",
        ["2", "GM0363", "detentiekenmerk"],
    ),
    ("is already the reference of case DP00012345", ["DP00012345"]),
    ("this case already has the reference [A-17]", ["[A-17]"]),
    ("the same case has reference [A-18] above", ["[A-18]"]),
    ("is the reference of another case on row 4", ["4"]),
    ("no consent given to withdraw", []),
    (
        "condition statuses need consent given for registration "
        "(give it in this row or an earlier one)",
        [],
    ),
    ("this case and moment are already on row 9", ["9"]),
    ("case [41]: moment month_6 needs a release into society", ["[41]", "month_6"]),
    ("case [42]: no release date known: give the date for release", ["[42]", "release"]),
    (
        "case [43]: date 01-01-2020 is implausible for release (bij ontslag): expected between "
        "01-12-2024 and 31-01-2025 (intake 03-03-2024, release 01-01-2025)",
        [
            "[43]",
            "01-01-2020",
            "release (bij ontslag)",
            "01-12-2024",
            "31-01-2025",
            "03-03-2024",
            "01-01-2025",
        ],
    ),
    (
        "date 01-01-2020 is implausible for month_1 (1 maand na ontslag): expected between "
        "23-01-2025 and 22-02-2025 (intake 03-03-2024, release 01-01-2025)",
        [
            "01-01-2020",
            "month_1 (1 maand na ontslag)",
            "23-01-2025",
            "22-02-2025",
            "03-03-2024",
            "01-01-2025",
        ],
    ),
    (
        "date 01-01-2020 is implausible for intake (bij binnenkomst (screening)): expected "
        "between 02-02-2024 and 31-05-2024 (intake 03-03-2024)",
        [
            "01-01-2020",
            "intake (bij binnenkomst (screening))",
            "02-02-2024",
            "31-05-2024",
            "03-03-2024",
        ],
    ),
    ("must be given, refused or withdrawn", []),
    ("lies in the future", []),
    ("unknown scope research, marketing", ["research, marketing"]),
    ("consent given needs a scope", []),
    ("unknown moment; allowed: intake (bij binnenkomst (screening))", ["intake (bij binnenkomst"]),
    ("no condition given", []),
    ("unknown condition", []),
    (f"unknown status; allowed: {_ALLOWED}", [_ALLOWED]),
    ("unknown care need; allowed: mental_health (ggz), addiction", ["mental_health (ggz)"]),
    ("care needs without care", []),
    ("care is not needed", []),
    ("no case with this reference in GM0363", ["GM0363"]),
    ("the case reference is required", []),
    ("the case has no consent for registration", []),
    ("unknown activity type; allowed: apply_id, shelter", ["apply_id, shelter"]),
    ("a provider is required", []),
    ("a start date is required", []),
    ("implausible: 400 days before the intake of the case (at most 365)", ["400", "365"]),
    (
        "start date 01-01-2020 is implausible: more than 365 days before the intake (03-03-2024)",
        ["01-01-2020", "365", "03-03-2024"],
    ),
    ("before the start date", []),
    ("out of range 0-10,000,000 euros", ["10.000.000"]),
    ("out of range 0-10,000", ["10.000"]),
    ("unknown funder; allowed: gemeente, rijk, overig", ["gemeente, rijk, overig"]),
    ("a cost needs its funder (gemeente, rijk, overig)", ["(gemeente, rijk, overig)"]),
    ("a cost needs its funder", []),
    ("the same activity is on row 3", ["3"]),
    ("the detention reference is required", []),
    ("care needs without care needed", []),
    ("no detention period with this reference", []),
    ("this period is already on row 5", ["5"]),
    (
        "implausible for this period (intake 03-03-2024, release 01-01-2025): a screening lies "
        "between 30 days before the intake and the release",
        ["03-03-2024", "01-01-2025", "30"],
    ),
    (
        "implausible for this period (intake 03-03-2024): a screening lies between 30 days "
        "before the intake and the release",
        ["03-03-2024", "30"],
    ),
]

# words of the English messages that no Dutch text of them should still have
_ENGLISH = re.compile(
    r"\b(the|not|no|for|with|and|or|is required|unknown|must|needs|already|between|before|"
    r"after|row|cells|case|allowed|write|date|file|column|number|lies|future|than)\b",
    re.IGNORECASE,
)


def _left_over(dutch: str, kept: list[str]) -> list[str]:
    """English words in ``dutch`` outside the parts carried over."""
    for part in kept:
        dutch = dutch.replace(part, " ")
    return _ENGLISH.findall(dutch)


def test_every_pattern_has_an_example_and_keeps_the_variable_parts() -> None:
    used: set[int] = set()
    for english, kept in EXAMPLES:
        i = match(english)
        assert i is not None, f"no pattern for [{english}]"
        used.add(i)
        dutch = dutch_reason(english)
        assert dutch != english
        for part in kept:
            assert part in dutch, f"[{part}] lost in [{dutch}] (from [{english}])"
        assert not _left_over(dutch, kept), f"English left in [{dutch}]"
    assert used == set(range(len(PATTERNS))), [
        PATTERNS[i][0].pattern for i in sorted(set(range(len(PATTERNS))) - used)
    ]


def test_some_translations_word_for_word() -> None:
    assert dutch_reason("no case for this detention period in GM0363") == (
        "geen dossier voor deze detentieperiode in GM0363"
    )
    assert dutch_reason("no such date (day is out of range for month)") == (
        "deze datum bestaat niet (die dag bestaat niet in die maand)"
    )
    assert dutch_reason("more than the maximum of 10,000") == "meer dan het maximum van 10.000"
    assert dutch_reason("case [7]: moment month_1 needs a release into society") == (
        "dossier [7]: moment month_1 kan pas na ontslag in de samenleving"
    )
    # a reason no pattern knows is kept as it is, and so is a case's unknown inner reason
    assert dutch_reason("something new went wrong") == "something new went wrong"
    assert dutch_reason("case [7]: something new") == "dossier [7]: something new"


# --- the reasons real imports give ------------------------------------------------------------


def _reasons(reports: list[ImportReport]) -> set[str]:
    return {e.reason for r in reports for e in r.errors}


def _untranslated(reports: list[ImportReport]) -> set[str]:
    """The reasons no pattern knows (they would be shown in English)."""
    return {r for r in _reasons(reports) if match(r) is None}


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, releases=300, seed=5)
    return out


def test_no_english_left_in_a_messy_import(engine: Engine, year: Path, tmp_path: Path) -> None:
    """Messy synthetic registrations of every municipality, checked (dry runs) before and
    after their clean cases are imported: every reason has its Dutch text."""
    ingest_files(engine, [year / "detention.jsonl"], hooks=[reintegration_hook()])
    clean = write_registrations(year, tmp_path / "clean", seed=3)
    messy = write_registrations(
        year, tmp_path / "messy", seed=3, messy=MessyRegistrations(files=1.0, rows=0.2)
    )
    assert import_screenings(engine, clean.screening_file, actor="test:dji").ok
    reports: list[ImportReport] = []
    for code, files in sorted(messy.municipalities.items()):
        actor = f"test:{code}"

        def cases(
            path: Path, *, dry_run: bool, code: str = code, actor: str = actor
        ) -> ImportReport:
            return import_cases(
                engine, path, municipality=code, actor=actor, dry_run=dry_run, write_report=False
            )

        reports.append(cases(files.cases, dry_run=True))
        assert cases(clean.municipalities[code].cases, dry_run=False).ok
        reports.append(cases(files.cases, dry_run=True))
        if files.activities is not None:
            reports.append(
                import_activities(
                    engine, files.activities, municipality=code, actor=actor, dry_run=True,
                    write_report=False,
                )
            )  # fmt: skip
    reasons = _reasons(reports)
    assert len(reasons) >= 8  # the kinds of mistakes the synthetic files plant
    assert not _untranslated(reports)
    for reason in reasons:
        assert dutch_reason(reason) != reason


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_no_english_left_for_a_file_of_every_mistake(engine: Engine, tmp_path: Path) -> None:
    """Hand-made files with the mistakes the synthetic ones do not make: every reason the
    importers give for them has its Dutch text."""
    residents(engine, returned=3, planned=1, other=0)  # P1-P3 released, P4 not yet
    future = f"01-01-{today().year + 1}"
    head = (
        "dossiernummer;detentiekenmerk;bsn;toestemming;toestemming_datum;moment;datum;"
        "identiteitsbewijs;onderdak;werk_en_inkomen;schulden;zorg;zorgbehoefte;"
        "geregistreerd_door\n"
    )
    rows = [
        "A-1;P1;;gegeven;20-01-2025;;;;;;;;;",  # consent for P1
        ";P1;;;;;;;;;;;;",  # no case reference
        "=A1;P1;;;;;;;;;;;;",  # a formula
        "111222333;P2;;;;;;;;;;;;",  # a BSN as reference
        f"{'A' * 70};P1;;;;;;;;;;;;",  # too long
        "A-5;;;;;;;;;;;;;",  # neither period nor BSN
        "A-1;P1;;gegeven;;;;;;;;;;",  # consent without its date
        f"A-1;P1;;gegeven;{future};;;;;;;;;",  # consent in the future
        "A-1;P1;;;;;;geldig;;;;;;",  # a status without a moment
        "A-1;P1;;;;bij ontslag;;;;;;;;",  # a moment without a status
        "A-1;P1;;;;bij ontslag;;;;;;geen zorg nodig;ggz;",  # care needs, care not needed
        "A-1;P1;;;;bij ontslag;;;;;;;ggz;",  # care needs without care
        f"A-1;P1;;;;bij ontslag;{future};geldig;;;;;;",  # a status date in the future
        "A-1;P1;;;;bij ontslag;12:30;geldig;;;;;;",  # not a date
        "A-1;P1;;;;bij ontslag;01-01-1850;geldig;;;;;;",  # year out of range
        "A-1;P1;;;;bij ontslag;;geldig;;;;;;@me",  # a formula in recorded_by
        "A-1;P1;;;;na drie weken;;geldig;;;;;;",  # an unknown moment
        "A-1;P1;;;;bij ontslag;;kwijt;;;;;;",  # an unknown status
        "A-1;P1;;gegeven;31-02-2025;;;;;;;;;",  # no such date
        "A-16;P404;;;;;;;;;;;;",  # no such period
        f"A-1;P1;{BSNS[40]};;;;;;;;;;;;",  # the BSN of someone else
        f"A-17;;{BSNS[41]};;;;;;;;;;;;",  # a BSN without a case
        "A-18;;12345;;;;;;;;;;;;",  # not a BSN
        "A-2;P2;;ingetrokken;20-01-2025;;;;;;;;;",  # nothing to withdraw
        "A-4;P4;;;;bij ontslag;10-02-2025;geldig;;;;;;",  # statuses without consent
        "A-4;P4;;gegeven;20-01-2025;1 maand na ontslag;;geldig;;;;;;",  # not released yet
        "A-1;P1;;;;1 maand na ontslag;01-01-2020;geldig;;;;;;",  # an implausible date
        "A-1;P1;;;;bij ontslag;;geldig;;;;;;",  # the same case and moment again
        "A-9;P1;;;;;;;;;;;;",  # another reference for the same case
        "A-2;P3;;;;;;;;;;;;",  # the reference of another case
    ]
    cases = _write(tmp_path / "dossiers.csv", head + "\n".join(rows) + "\n")
    reports = [import_cases(engine, cases, municipality=GM, actor="t", write_report=False)]
    good = _write(
        tmp_path / "goed.csv",
        head
        + "A-1;P1;;gegeven;20-01-2025;;;;;;;;;\n"
        + "A-2;P2;;gegeven;20-01-2025;;;;;;;;;\n"
        + "A-3;P3;;geweigerd;20-01-2025;;;;;;;;;\n",
    )
    assert import_cases(engine, good, municipality=GM, actor="t", write_report=False).ok
    again = _write(
        tmp_path / "opnieuw.csv",
        head + "A-9;P1;;;;;;;;;;;;\n" + "A-1;P2;;;;;;;;;;;;\n",  # other references
    )
    reports.append(import_cases(engine, again, municipality=GM, actor="t", write_report=False))
    activities = _write(
        tmp_path / "activiteiten.csv",
        "dossiernummer;activiteitnummer;soort;aanbieder;startdatum;einddatum;uren;kosten;"
        "financier;programma\n"
        "A-1;X1;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;2;10,00;gemeente;\n"
        "A-1;X1;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;2;10,00;gemeente;\n"  # repeat
        ";;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;;;\n"  # no case reference
        "A-3;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;;;\n"  # no consent
        "A-1;;aanvragen identiteitsbewijs;;01-02-2025;;;;;\n"  # no provider
        f"A-1;;aanvragen identiteitsbewijs;{'x' * 130};01-02-2025;;;;;\n"  # too long
        "A-1;;aanvragen identiteitsbewijs;+31 Zorg;01-02-2025;;;;;\n"  # formula
        "A-1;;aanvragen identiteitsbewijs;Gemeente;;;;;;\n"  # no start date
        f"A-1;;aanvragen identiteitsbewijs;Gemeente;{future};;;;;\n"  # start in the future
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-01-2000;;;;;\n"  # long before intake
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;31-13-2025;;;;\n"  # bad end
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;20000;;;\n"  # too many hours
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;1,234;;;\n"  # 3 decimals
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;veel;;;\n"  # not a number
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;20000000;;\n"  # too costly
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;10,00;bank;\n"  # funder
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;10,00;;\n"  # no funder
        f"A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;;;{'p' * 110}\n"
        "A-1;;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;;;-aanpak\n"
        f"A-1;{'r' * 70};aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;;;\n"
        "A-1;=X;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;;;\n"
        "A-1;111222333;aanvragen identiteitsbewijs;Gemeente;01-02-2025;;;;;\n",
    )
    reports.append(
        import_activities(
            engine, activities, municipality=GM, actor="t", dry_run=True, write_report=False
        )
    )
    screenings = _write(
        tmp_path / "screenings.csv",
        "detentiekenmerk;screeningsdatum;identiteitsbewijs;zorg;zorgbehoefte\n"
        ";20-01-2025;geldig;;\n"  # no period
        f"P1;{future};geldig;;\n"  # in the future
        "P1;31-02-2025;geldig;;\n"  # no such date
        "P1;20-01-2025;kwijt;;\n"  # unknown status
        "P1;20-01-2025;geldig;;ggz\n"  # care needs without care
        "P1;20-01-2025;geldig;geen zorg nodig;snoep\n"  # unknown care need
        "P404;20-01-2025;geldig;;\n"  # no such period
        "P1;01-01-2000;geldig;;\n"  # implausible
        "P2;01-01-2000;geldig;;\n"
        "P2;01-01-2000;geldig;;\n",  # the same period again
    )
    reports.append(import_screenings(engine, screenings, actor="t", write_report=False))
    headers = {
        "kolommen.csv": "dossiernummer;kleur\nA-1;rood\n",
        "dubbel.csv": "dossiernummer;detentiekenmerk;dossier\nA-1;P1;A-1\n",
        "leeg.csv": "\n",
        "zonder.csv": "detentiekenmerk\nP1\n",
        "geen_periode.csv": "dossiernummer;onderdak\nA-1;dakloos\n",
        "breed.csv": "dossiernummer;detentiekenmerk\nA-1;P1;extra\n",  # beyond the header
    }
    for name, text in headers.items():
        reports.append(
            import_cases(
                engine, _write(tmp_path / name, text), municipality=GM, actor="t",
                write_report=False,
            )
        )  # fmt: skip
    (tmp_path / "kapot.csv").write_bytes(b"dossiernummer;detentiekenmerk\nA-1;P\x81\xff1\n")
    reports.append(
        import_cases(engine, tmp_path / "kapot.csv", municipality=GM, actor="t", write_report=False)
    )
    reports.append(
        import_cases(
            engine, _write(tmp_path / "x.ods", "x"), municipality=GM, actor="t", write_report=False
        )
    )
    reasons = _reasons(reports)
    assert len(reasons) >= 56, sorted(reasons)
    assert not _untranslated(reports), sorted(_untranslated(reports))


# --- the portal page --------------------------------------------------------------------------


def test_the_import_page_shows_the_reasons_in_dutch_or_english(
    engine: Engine, portal: Portal
) -> None:
    residents(engine, returned=2, planned=0, other=0)
    worker = portal(Role.CASEWORKER, name="nazorg-redenen")
    token = csrf_token(worker.get("/portaal/casussen/importeren").text)
    bad = (
        "dossiernummer;detentiekenmerk;toestemming;toestemming_datum;moment;datum;"
        "identiteitsbewijs;onderdak;werk_en_inkomen;schulden;zorg\n"
        "A-1;P1;gegeven;20-01-2025;bij ontslag;10-02-2025;geldig;kasteel;uitkering;geen;"
        "geen zorg nodig\n"
        "A-3;P404;gegeven;20-01-2025;bij ontslag;10-02-2025;geldig;dakloos;uitkering;geen;"
        "geen zorg nodig\n"
    )

    def upload(path: str) -> str:
        response = worker.post(
            path,
            data={"csrf_token": token, "soort": "cases", "proef": "1"},
            files={"bestand": ("dossiers.csv", bad.encode("utf-8"), "text/csv")},
        )
        assert response.status_code == 400
        return str(response.text)

    dutch = upload("/portaal/casussen/importeren")
    assert f"geen dossier voor deze detentieperiode in {GM}" in dutch
    assert "onbekende code; toegestaan: " in dutch
    assert "no case for" not in dutch
    assert "unknown code" not in dutch
    english = upload("/portaal/casussen/importeren?lang=en")
    assert f"no case for this detention period in {GM}" in english
    assert "unknown code; allowed: " in english
    assert "geen dossier voor" not in english
