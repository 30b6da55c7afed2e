"""Bulk import of municipal files: Dutch spreadsheets in, all or nothing, idempotent."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.tables import detention_periods
from terugkeer.reintegration import values
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.reintegration.importing import (
    activities as activity_import,
)
from terugkeer.reintegration.importing import (
    error_file_for,
    import_activities,
    import_cases,
    import_screenings,
)
from terugkeer.reintegration.safety import BSN_AS_REFERENCE, BSN_IN_TEXT
from terugkeer.reintegration.sheets import detect_encoding
from terugkeer.reintegration.tables import (
    activities,
    condition_facts,
    intake_screenings,
    reintegration_cases,
    reintegration_consents,
    reintegration_imports,
)
from terugkeer.security.tables import audit_log
from tests.feedutil import BSN, BSN2, intake, lines, msg

GM = "GM0363"
runner = CliRunner()

CASES_HEADER = (
    "Dossiernummer;Detentiekenmerk;BSN;Toestemming;Toestemming datum;Moment;Datum;"
    "Identiteitsbewijs;Onderdak;Werk en inkomen;Schulden;Zorg;Zorgbehoefte;Medewerker"
)
GOOD_CASES = [
    "NZ-001;P1;999993653;gegeven;20-01-2025;ontslag;;geldig;huurwoning;uitkering;met plan;"
    "zorg nodig en geregeld;ggz;nzc-07",
    "NZ-001;P1;999993653;;;1 maand;05-03-2025;geldig;huurwoning;werk;met plan;geregeld;ggz;nzc-07",
    "NZ-002;P2;;geweigerd;21-01-2025;;;;;;;;;nzc-07",
]
ACTIVITIES_HEADER = (
    "dossiernummer;activiteitnummer;soort;aanbieder;startdatum;einddatum;uren;kosten;financier;"
    "programma"
)
GOOD_ACTIVITIES = [
    "NZ-001;A1;schuldhulpverlening;Kredietbank Amsterdam;01-02-2025;01-06-2025;12,5;"
    "€ 1.500,00;gemeente;Aanpak nazorg Amsterdam",
    "NZ-001;A2;apply_id;Gemeente;3-2-2025;;1;70,38;Gemeente;",
    "NZ-001;;case_management;Reclassering Nederland;01-02-2025;;20;0;;",
]


def write(path: Path, header: str, rows: list[str], encoding: str = "cp1252") -> Path:
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode(encoding))
    return path


@pytest.fixture
def periods(engine: Engine) -> Engine:
    """Two released persons returning to Amsterdam, each with a case."""
    text = lines(
        intake("e1"),
        msg("release", "e2", 30, release_kind="end_of_sentence"),
        intake("f1", period="P2", bsn=BSN2),
        msg("release", "f2", 31, period="P2", bsn=BSN2, release_kind="end_of_sentence"),
    )
    assert ingest_text(engine, text, hooks=[reintegration_hook()]).quarantined == 0
    return engine


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_dutch_spreadsheet_is_imported_and_reimporting_changes_nothing(
    periods: Engine, tmp_path: Path
) -> None:
    cases_file = write(tmp_path / "dossiers.csv", CASES_HEADER, GOOD_CASES)
    report = import_cases(periods, cases_file, municipality=GM, actor="test")
    assert report.errors == [], report.text()
    assert (report.rows, report.applied, report.unchanged) == (3, 3, 0)
    assert report.delimiter == ";"
    acts = write(tmp_path / "activiteiten.csv", ACTIVITIES_HEADER, GOOD_ACTIVITIES)
    report = import_activities(periods, acts, municipality=GM, actor="test")
    assert report.errors == [], report.text()
    assert report.as_json() == {
        "rows": 3,
        "applied": 3,
        "unchanged": 0,
        "errors": 0,
        "dry_run": False,
    }
    assert report.encoding == "cp1252"  # the euro sign
    with periods.connect() as conn:
        stored = {r.key: r for r in conn.execute(select(activities).order_by(activities.c.id))}
        facts = conn.execute(select(condition_facts)).all()
        refs = dict(
            conn.execute(
                select(reintegration_cases.c.municipal_ref, reintegration_cases.c.consent)
            ).all()
        )
    assert stored["ref:A1"].cost_cents == 150000
    assert stored["ref:A1"].hours_x100 == 1250
    assert stored["ref:A2"].start_date == date(2025, 2, 3)
    assert stored["ref:A2"].funder == "municipality"
    assert "case_management|2025-02-01|Reclassering Nederland" in stored
    assert len(facts) == 10
    care = next(f for f in facts if f.condition == "care" and f.moment == "release")
    assert care.status == "arranged"
    assert care.detail == "mental_health"
    assert care.as_of == date(2025, 2, 5)  # the release date, pre-filled
    assert care.recorded_by == "nzc-07"
    assert refs == {"NZ-001": "given", "NZ-002": "refused"}
    # the same files again: nothing changes
    again = import_cases(periods, cases_file, municipality=GM, actor="test")
    assert (again.applied, again.unchanged, again.errors) == (0, 3, [])
    again = import_activities(periods, acts, municipality=GM, actor="test")
    assert again.as_json() == {
        "rows": 3,
        "applied": 0,
        "unchanged": 3,
        "errors": 0,
        "dry_run": False,
    }
    assert count(periods, condition_facts) == 10
    assert count(periods, reintegration_consents) == 2
    # a changed cost is an update of the same activity
    changed = write(
        tmp_path / "activiteiten2.csv",
        ACTIVITIES_HEADER,
        [GOOD_ACTIVITIES[0].replace("1.500,00", "1.750,00")],
    )
    report = import_activities(periods, changed, municipality=GM, actor="test")
    assert (report.applied, report.unchanged) == (1, 0)
    assert count(periods, activities) == 3


def test_utf8_with_bom_commas_and_iso_dates(periods: Engine, tmp_path: Path) -> None:
    header = ACTIVITIES_HEADER.replace(";", ",")
    rows = ["NZ-001,A9,Aanvragen uitkering,UWV,2025-02-10,2025-03-01,2.5,150.00,rijk,"]
    cases_file = write(tmp_path / "d.csv", CASES_HEADER, GOOD_CASES[:1], "utf-8")
    assert import_cases(periods, cases_file, municipality=GM, actor="t").ok
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join([header, *rows]) + "\n").encode())
    report = import_activities(periods, path, municipality=GM, actor="t")
    assert report.ok, report.text()
    assert report.encoding == "utf-8-sig"
    assert report.delimiter == ","
    with periods.connect() as conn:
        row = conn.execute(select(activities)).one()
    assert (row.type, row.hours_x100, row.cost_cents, row.funder) == (
        "apply_benefit",
        250,
        15000,
        "central_government",
    )


def test_a_bad_file_is_rejected_whole_with_a_report(periods: Engine, tmp_path: Path) -> None:
    rows = [
        *GOOD_CASES,
        "NZ-003;P1;;;;ontslag;31-02-2025;geldig;kasteel;werk;geen;geen;;x",  # 2 errors
        "NZ-004;;123456789;;;;;;;;;;;",  # a bad BSN
        "NZ-005;P9;;gegeven;01-01-2025;;;;;;;;;",  # no such case
        "NZ-002;P2;;;;ontslag;;geldig;;;;;;",  # P2 refused: no consent
    ]
    path = write(tmp_path / "dossiers.csv", CASES_HEADER, rows)
    report = import_cases(periods, path, municipality=GM, actor="test")
    assert not report.ok
    got = [(e.row, e.column, e.value) for e in report.errors]
    assert got == [
        (5, "Onderdak", "kasteel"),
        (5, "Datum", "31-02-2025"),
        (6, "BSN", "******789"),
        (7, "Detentiekenmerk", "P9"),
        (8, "Toestemming", "refused"),
    ]
    assert report.as_json() == {
        "rows": 7,
        "applied": 0,
        "unchanged": 0,
        "errors": 5,
        "dry_run": False,
    }
    assert count(periods, condition_facts) == 0
    assert count(periods, reintegration_consents) == 0
    text = report.text()
    assert "rejected, nothing written" in text
    assert "row 6, column BSN" in text
    assert "123456789" not in text  # BSNs only masked
    assert report.error_file == error_file_for(path)
    with report.error_file.open(encoding="utf-8-sig") as fh:
        listed = list(csv.reader(fh, delimiter=";"))
    assert listed[0] == ["row", "column", "value", "reason"]
    assert [r[:3] for r in listed[1:]] == [[str(a), b, c] for a, b, c in got]
    # fixed: applied, and the stale report goes
    fixed = write(tmp_path / "dossiers.csv", CASES_HEADER, GOOD_CASES)
    assert import_cases(periods, fixed, municipality=GM, actor="test").ok
    assert not error_file_for(path).exists()


def test_bad_activity_rows_and_dry_run(periods: Engine, tmp_path: Path) -> None:
    assert import_cases(
        periods, write(tmp_path / "d.csv", CASES_HEADER, GOOD_CASES), municipality=GM, actor="t"
    ).ok
    rows = [
        *GOOD_ACTIVITIES,
        "NZ-001;A3;sportschool;X;01-02-2025;;1;10,00;gemeente;",
        "NZ-001;A4;apply_id;Gemeente;01-02-2025;01-01-2025;1;1.500;gemeente;",
        "NZ-001;A5;apply_id;Gemeente;01-02-2025;;1;-5,00;gemeente;",
        "NZ-001;A6;apply_id;Gemeente;01-02-2025;;1;5,00;;",
        "NZ-002;A7;apply_id;Gemeente;01-02-2025;;;;;",
        "NZ-404;A8;apply_id;Gemeente;01-02-2099;;;;;",
        "NZ-001;A1;apply_id;Gemeente;01-02-2025;;;;;",
    ]
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, rows)
    report = import_activities(periods, path, municipality=GM, actor="t")
    reasons = [(e.row, e.column, e.reason.split(";")[0]) for e in report.errors]
    assert reasons == [
        (5, "soort", "unknown activity type"),
        (6, "einddatum", "before the start date"),
        (
            6,
            "kosten",
            "ambiguous number: write a decimal comma (1,234) or no thousands point (1234)",
        ),
        (7, "kosten", "a negative number is not allowed"),
        (8, "financier", "a cost needs its funder (gemeente, rijk, overig)"),
        (9, "dossiernummer", "the case has no consent for registration"),
        (10, "dossiernummer", "no case with this reference in GM0363"),
        (10, "startdatum", "lies in the future"),
        (11, "activiteitnummer", "the same activity is on row 2"),
    ]
    assert count(periods, activities) == 0
    good = write(tmp_path / "a.csv", ACTIVITIES_HEADER, GOOD_ACTIVITIES)
    dry = import_activities(periods, good, municipality=GM, actor="t", dry_run=True)
    assert dry.as_json() == {"rows": 3, "applied": 3, "unchanged": 0, "errors": 0, "dry_run": True}
    assert count(periods, activities) == 0


def test_file_level_problems(periods: Engine, tmp_path: Path) -> None:
    unknown = write(tmp_path / "x.csv", CASES_HEADER + ";Schoenmaat", [])
    report = import_cases(periods, unknown, municipality=GM, actor="t")
    assert report.errors[0].column == "Schoenmaat"
    assert "unknown column" in report.errors[0].reason
    missing = write(tmp_path / "y.csv", "soort;aanbieder", ["apply_id;Gemeente"])
    report = import_activities(periods, missing, municipality=GM, actor="t")
    assert "missing column(s): dossiernummer, startdatum" in report.errors[0].reason
    other = tmp_path / "z.ods"
    other.write_text("x")
    assert (
        "unsupported file type"
        in import_cases(periods, other, municipality=GM, actor="t").errors[0].reason
    )
    with pytest.raises(Exception, match="unknown municipality"):
        import_cases(periods, unknown, municipality="GM9999", actor="t")


def test_screenings_import(periods: Engine, tmp_path: Path) -> None:
    path = tmp_path / "screenings.csv"
    path.write_text(
        "detentiekenmerk;screeningsdatum;identiteitsbewijs;onderdak;werk_inkomen;schulden;zorg;zorgbehoefte\n"
        "P1;08-01-2025;geldig;dakloos;geen;zonder plan;niet geregeld;ggz\n"
        "P9;08-01-2025;geldig;;;;;\n"
        "P2;08-01-2025;geldig;huurwoning;werk;geen;niet nodig;lvb\n",
        encoding="utf-8",
    )
    report = import_screenings(periods, path, actor="dji")
    assert [(e.row, e.column) for e in report.errors] == [  # sorted by row
        (3, "detentiekenmerk"),
        (4, "zorgbehoefte"),
    ]
    path.write_text(path.read_text().splitlines()[0] + "\nP1;08-01-2025;geldig;dakloos;;;;\n")
    assert import_screenings(periods, path, actor="dji").applied == 1
    assert import_screenings(periods, path, actor="dji").unchanged == 1
    path.write_text(path.read_text().replace("dakloos", "opvang"))
    assert import_screenings(periods, path, actor="dji").applied == 1
    with periods.connect() as conn:
        assert conn.execute(select(intake_screenings.c.housing_status)).scalar_one() == "shelter"


def test_xlsx(periods: Engine, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Dossiernummer", "Detentiekenmerk", "BSN", "Toestemming", "Toestemming datum",
                  "Moment", "Datum", "Identiteitsbewijs", "Onderdak", "Werk en inkomen",
                  "Schulden", "Zorg"])  # fmt: skip
    sheet.append(["NZ-001", "P1", int(BSN), "gegeven", date(2025, 1, 20), "ontslag", None,
                  "geldig", "huurwoning", "uitkering", "geen", "niet nodig"])  # fmt: skip
    sheet.append([None] * 12)  # an empty row is skipped, the numbering goes on
    sheet.append(["NZ-002", "P2", None, "gegeven", "32-01-2025", None, None, None, None, None,
                  None, None])  # fmt: skip
    path = tmp_path / "dossiers.xlsx"
    book.save(path)
    report = import_cases(periods, path, municipality=GM, actor="t")
    assert [(e.row, e.column, e.value) for e in report.errors] == [
        (4, "Toestemming datum", "32-01-2025")
    ]
    book = openpyxl.load_workbook(path)
    book.active.delete_rows(3, 2)
    book.save(path)
    report = import_cases(periods, path, municipality=GM, actor="t")
    assert report.ok, report.text()
    assert report.applied == 1
    acts = openpyxl.Workbook()
    acts.active.append(["dossiernummer", "soort", "aanbieder", "startdatum", "uren", "kosten",
                        "financier"])  # fmt: skip
    acts.active.append(["NZ-001", "debt_counselling", "Kredietbank", date(2025, 2, 1), 12.5,
                        1500, "gemeente"])  # fmt: skip
    path = tmp_path / "activiteiten.xlsx"
    acts.save(path)
    report = import_activities(periods, path, municipality=GM, actor="t")
    assert report.ok, report.text()
    with periods.connect() as conn:
        row = conn.execute(select(activities)).one()
    assert (row.hours_x100, row.cost_cents) == (1250, 150000)


@pytest.fixture
def cli_db(periods: Engine, cli_db: Engine) -> Engine:
    """The shared command-line store (tests/conftest.py), holding the two periods' cases."""
    return cli_db


def test_cli(cli_db: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "dossiers.csv", CASES_HEADER, GOOD_CASES)
    args = ["import", "cases", str(path), "--municipality", GM, "--json"]
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout) == {
        "rows": 3,
        "applied": 3,
        "unchanged": 0,
        "errors": 0,
        "dry_run": True,
    }
    done = runner.invoke(app, args)
    assert json.loads(done.stdout) == {
        "rows": 3,
        "applied": 3,
        "unchanged": 0,
        "errors": 0,
        "dry_run": False,
    }
    again = runner.invoke(app, args)
    assert json.loads(again.stdout) == {
        "rows": 3,
        "applied": 0,
        "unchanged": 3,
        "errors": 0,
        "dry_run": False,
    }
    bad = write(tmp_path / "bad.csv", CASES_HEADER, ["NZ-9;P1;;;;;31-13-2025;;;;;;;"])
    result = runner.invoke(app, ["import", "cases", str(bad), "-m", GM])
    assert result.exit_code == 1
    assert "row 2, column Datum" in result.stdout
    assert "bad.errors.csv" in result.stdout
    assert (
        runner.invoke(app, ["import", "cases", str(tmp_path / "nope.csv"), "-m", GM]).exit_code == 2
    )
    assert runner.invoke(app, ["import", "cases", str(path), "-m", "GM9999"]).exit_code == 2
    opened = runner.invoke(app, ["reintegration", "open-cases", "--json"])
    assert json.loads(opened.stdout)["unchanged"] == 2
    shown = runner.invoke(app, ["reintegration", "completeness", "--on", "2025-06-01", "--json"])
    (gm,) = json.loads(shown.stdout)
    assert gm["municipality"] == GM
    assert gm["with_consent"] == 1


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1234,56", 123456),
        ("1.234,5", 123450),
        ("€ 12", 1200),
        ("12.5", 1250),
        ("0,05", 5),
        (1500, 150000),
        (12.25, 1225),
    ],
)
def test_numbers(text: str | int | float, cents: int) -> None:
    assert values.parse_scaled(text, 2) == cents


@pytest.mark.parametrize("text", ["1.234", "12,345", "1,2,3", "abc", "-1", "1.23.4", "1e3"])
def test_bad_numbers(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        values.parse_scaled(text, 2)


def test_dates_and_bsn() -> None:
    assert values.parse_date("5-3-2025") == date(2025, 3, 5)
    assert values.parse_date("05/03/2025") == date(2025, 3, 5)
    assert values.parse_date("2025-03-05") == date(2025, 3, 5)
    for bad in ("05-03-25", "2025/03/05", "29-02-2025", "03-05"):
        with pytest.raises(ValueError, match=r"."):
            values.parse_date(bad)
    assert values.parse_bsn("9999.93.653") == BSN
    assert values.parse_bsn(int(BSN)) == BSN
    with pytest.raises(ValueError, match="11-proef"):
        values.parse_bsn("123456789")


def test_encoding_detection(tmp_path: Path) -> None:
    sample = "naam;plaats\nJosé;Zaandam €\n"
    for encoding, expected in (
        ("cp1252", "cp1252"),
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
    ):
        path = tmp_path / f"{encoding}.csv"
        path.write_text(sample, encoding=encoding)
        assert detect_encoding(path) == expected
    ascii_file = tmp_path / "a.csv"
    ascii_file.write_text("a;b\n1;2\n")
    assert detect_encoding(ascii_file) == "utf-8"


# -- the fast path: column by column, optimistic, repeats found by the unique index -------------

MIXED_ACTIVITIES = [
    *GOOD_ACTIVITIES,
    "NZ-001;A10;Schuldhulpverlening;Kredietbank;01-03-2025;31-03-2025;2,25;70,38;Rijk;",
    " NZ-001 ; A11 ;apply_id; UWV ;2025-03-02;;1;0;;  Aanpak nazorg Amsterdam ",
    "NZ-001;A12;CASE_MANAGEMENT;Reclassering Nederland;1.3.2025;01-04-2025;;€ 12;overig;",
    "NZ-001;;apply_id;Gemeente;04-03-2025;;;;;",
    "NZ-001;A13;apply_id;Gemeente;05-03-2025;05-03-2025;12.5;1234;gemeente;X",
    "NZ-001;A14;schuldhulpverlening;Kredietbank;06-03-2025;;400;9999,99;gemeente;",
    "NZ-001;A15;apply_id;Gemeente;07-03-2025;;0,5;0,01;gemeente;",
]


def stored_activities(engine: Engine) -> list[tuple[object, ...]]:
    skip = {"id", "recorded_at", "updated_at", "source"}
    columns = [c for c in activities.c if c.name not in skip]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(activities.c.id))]


def activity_imports(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(reintegration_imports.c.kind == "activities")
            ).scalar_one()
        )


@pytest.fixture
def consenting(periods: Engine, tmp_path: Path) -> Engine:
    """NZ-001 with consent, NZ-002 without."""
    cases_file = write(tmp_path / "dossiers.csv", CASES_HEADER, GOOD_CASES)
    assert import_cases(periods, cases_file, municipality=GM, actor="t").ok
    return periods


@pytest.mark.parametrize("chunk", [2, 3, 2048])
def test_column_check_stores_what_the_row_check_stores(
    consenting: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """The same rows through the column-wise check (CSV; chunks that pass and chunks that fall
    back to the row check) and through the row check alone (XLSX cells): the same rows stored,
    each case's activities in the file's order."""
    openpyxl = pytest.importorskip("openpyxl")
    monkeypatch.setattr(activity_import, "CHUNK_ROWS", chunk)
    monkeypatch.setattr(activity_import, "FLUSH_ROWS", 3)
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, MIXED_ACTIVITIES)
    report = import_activities(consenting, path, municipality=GM, actor="t")
    assert report.ok, report.text()
    assert report.as_json() == {
        "rows": 10,
        "applied": 10,
        "unchanged": 0,
        "errors": 0,
        "dry_run": False,
    }
    by_columns = stored_activities(consenting)
    refs = [r[2] for r in by_columns]
    assert refs == ["A1", "A2", None, "A10", "A11", "A12", None, "A13", "A14", "A15"]
    with consenting.begin() as conn:
        conn.execute(activities.delete())
    book = openpyxl.Workbook()
    book.active.append(ACTIVITIES_HEADER.split(";"))
    for line in MIXED_ACTIVITIES:
        book.active.append(line.split(";"))
    xlsx = tmp_path / "a.xlsx"
    book.save(xlsx)
    report = import_activities(consenting, xlsx, municipality=GM, actor="t")
    assert report.ok, report.text()
    assert stored_activities(consenting) == by_columns
    # and again, either way: nothing changes (what one path stored, the other compares)
    for again in (path, xlsx):
        report = import_activities(consenting, again, municipality=GM, actor="t")
        assert report.as_json() == {
            "rows": 10,
            "applied": 0,
            "unchanged": 10,
            "errors": 0,
            "dry_run": False,
        }
    assert stored_activities(consenting) == by_columns
    assert by_columns[4][2:6] == ("A11", "apply_id", "id", "UWV")  # cells are trimmed
    assert by_columns[4][11] == "Aanpak nazorg Amsterdam"
    assert [r[9] for r in by_columns] == [150000, 7038, 0, 7038, 0, 1200, 0, 123400, 999999, 1]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_repeated_activity_is_reported_with_the_row_it_repeats(
    consenting: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    """Writing, a repeat is left to the unique index, in another chunk and another batch of
    inserts too; the file is then checked again and the report is exact."""
    monkeypatch.setattr(activity_import, "CHUNK_ROWS", 2)
    monkeypatch.setattr(activity_import, "FLUSH_ROWS", 2)
    causes: list[Exception | None] = []
    diagnose = activity_import.Diagnose.__init__

    def spy(self: activity_import.Diagnose, cause: Exception | None = None) -> None:
        causes.append(cause)
        diagnose(self, cause)

    monkeypatch.setattr(activity_import.Diagnose, "__init__", spy)
    rows = [
        *GOOD_ACTIVITIES,
        "NZ-001;A9;apply_id;Gemeente;01-02-2025;;;;;",
        "NZ-001; A2 ;apply_id;Gemeente;01-03-2025;;;;;",  # A2 again, in another chunk
        "NZ-001;;case_management;Reclassering Nederland;01-02-2025;;1;;;",  # row 4 again
    ]
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, rows)
    report = import_activities(consenting, path, municipality=GM, actor="t", dry_run=dry_run)
    assert [(e.row, e.column, e.value, e.reason) for e in report.errors] == [
        (6, "activiteitnummer", "A2", "the same activity is on row 3"),
        (7, "soort", "case_management", "the same activity is on row 4"),
    ]
    assert (report.rows, len(report.errors), report.import_id) == (6, 2, None)
    # writing, it was the unique index that found the repeat; a dry run writes nothing
    if dry_run:
        assert causes == []
    else:
        integrity_error = consenting.dialect.dbapi.IntegrityError  # type: ignore[union-attr]
        assert len(causes) == 1
        assert isinstance(causes[0], integrity_error)
    assert count(consenting, activities) == 0
    assert activity_imports(consenting) == 0


def test_a_repeated_update_is_reported(consenting: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, GOOD_ACTIVITIES)
    assert import_activities(consenting, path, municipality=GM, actor="t").ok
    before = stored_activities(consenting)
    changed = GOOD_ACTIVITIES[1].replace("70,38", "80,00")
    path = write(tmp_path / "b.csv", ACTIVITIES_HEADER, [changed, GOOD_ACTIVITIES[0], changed])
    report = import_activities(consenting, path, municipality=GM, actor="t")
    assert [(e.row, e.value, e.reason) for e in report.errors] == [
        (4, "A2", "the same activity is on row 2")
    ]
    assert stored_activities(consenting) == before
    path = write(tmp_path / "c.csv", ACTIVITIES_HEADER, [changed, GOOD_ACTIVITIES[0]])
    report = import_activities(consenting, path, municipality=GM, actor="t")
    assert report.as_json() == {
        "rows": 2,
        "applied": 1,
        "unchanged": 1,
        "errors": 0,
        "dry_run": False,
    }
    assert [r[9] for r in stored_activities(consenting)] == [150000, 8000, 0]


def test_a_bad_row_after_many_good_ones(
    consenting: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows already written by the optimistic pass go with its transaction."""
    monkeypatch.setattr(activity_import, "CHUNK_ROWS", 2)
    monkeypatch.setattr(activity_import, "FLUSH_ROWS", 2)
    good = [f"NZ-001;B{k};apply_id;Gemeente;01-02-2025;;1;10,00;gemeente;" for k in range(9)]
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, [*good, "NZ-001;B9;apply_id;;;;;;;"])
    report = import_activities(consenting, path, municipality=GM, actor="t")
    assert [(e.row, e.column) for e in report.errors] == [(11, "aanbieder"), (11, "startdatum")]
    assert count(consenting, activities) == 0
    assert activity_imports(consenting) == 0
    # a byte that is not Windows-1252, late in the file: the file is refused as it was before
    path.write_bytes(path.read_bytes().replace(b"B9;apply_id;;;;;;;", b"B9;apply_id;\x81;;;;;;"))
    report = import_activities(consenting, path, municipality=GM, actor="t")
    assert len(report.errors) == 1
    assert "neither UTF-8 nor Windows-1252" in report.errors[0].reason
    assert count(consenting, activities) == 0


def test_who_imported_is_stored_as_given(consenting: Engine, tmp_path: Path) -> None:
    """On SQLite the columns that are the same on every row go into the statement as text."""
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, GOOD_ACTIVITIES)
    actor = "d'Ancona'); DROP TABLE activities; --"
    report = import_activities(consenting, path, municipality=GM, actor=actor)
    assert report.ok, report.text()
    with consenting.connect() as conn:
        stored = conn.execute(select(activities.c.recorded_by, activities.c.source)).all()
    assert stored == [(actor, f"import:{report.import_id}")] * 3


def test_cells_beyond_the_header_are_reported_as_before(consenting: Engine, tmp_path: Path) -> None:
    rows = [*GOOD_ACTIVITIES, "NZ-001;A9;apply_id;Gemeente;01-02-2025;;;;;;x"]
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, rows)
    report = import_activities(consenting, path, municipality=GM, actor="t")
    assert [(e.row, e.value, e.reason) for e in report.errors] == [
        (5, "x", "row 5 has 11 cells, the header 10")
    ]
    assert count(consenting, activities) == 0
    assert activity_imports(consenting) == 0


def test_an_import_gives_the_connection_back_with_its_own_page_cache(
    periods: Engine, tmp_path: Path
) -> None:
    """The import widens SQLite's page cache for itself; the pooled connection keeps the
    engine's setting afterwards, after a good file and after a rejected one."""
    if periods.dialect.name != "sqlite":
        pytest.skip("a page cache setting of SQLite")
    with periods.connect() as conn:
        configured = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    assert configured != -activity_import.IMPORT_CACHE_KIB
    import_cases(
        periods, write(tmp_path / "d.csv", CASES_HEADER, GOOD_CASES), municipality=GM, actor="t"
    )
    for rows in (GOOD_ACTIVITIES, ["NZ-001;A9;unknown_type;X;01-02-2025;;;;;"]):
        import_activities(
            periods, write(tmp_path / "a.csv", ACTIVITIES_HEADER, rows), municipality=GM, actor="t"
        )
        with periods.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == configured


# --- issue 14: registration as a municipal officer expects it ---------------------------------


def test_one_reference_for_two_cases_is_an_error_not_a_crash(
    periods: Engine, tmp_path: Path
) -> None:
    rows = ["NZ-7;P1;;gegeven;20-01-2025;;;;;;;;;", "NZ-7;P2;;gegeven;21-01-2025;;;;;;;;;"]
    path = write(tmp_path / "twee.csv", CASES_HEADER, rows)
    for dry_run in (True, False):
        report = import_cases(periods, path, municipality=GM, actor="t", dry_run=dry_run)
        assert [(e.row, e.column, e.reason) for e in report.errors] == [
            (3, "Dossiernummer", "is the reference of another case on row 2")
        ]
        assert error_file_for(path).is_file()
    assert count(periods, reintegration_consents) == 0


def test_dutch_moment_labels_are_accepted_and_errors_name_them(
    periods: Engine, tmp_path: Path
) -> None:
    rows = [
        "NZ-1;P1;;gegeven;20-01-2025;bij ontslag;;geldig;huurwoning;uitkering;met plan;geen;;",
        "NZ-1;P1;;;;1 maand na ontslag;05-03-2025;geldig;huurwoning;werk;met plan;geen;;",
        "NZ-1;P1;;;;bij binnenkomst (screening);07-01-2025;geldig;;;;;;",
    ]
    path = write(tmp_path / "labels.csv", CASES_HEADER, rows)
    report = import_cases(periods, path, municipality=GM, actor="t")
    assert report.ok, report.text()
    bad = write(tmp_path / "bad.csv", CASES_HEADER, ["NZ-1;P1;;;;na 3 weken;;geldig;;;;;;"])
    (error,) = import_cases(periods, bad, municipality=GM, actor="t").errors
    assert "6 maanden na ontslag" in error.reason
    assert error.value == "na 3 weken"


def test_json_of_a_refused_file_and_of_a_dry_run(consenting: Engine, tmp_path: Path) -> None:
    rows = [*GOOD_ACTIVITIES, "NZ-001;A9;sportschool;Gym;01-02-2025;;;;;"]
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, rows)
    refused = import_activities(consenting, path, municipality=GM, actor="t")
    assert refused.as_json() == {
        "rows": 4,
        "applied": 0,  # nothing was written
        "unchanged": 0,
        "errors": 1,
        "dry_run": False,
    }
    good = write(tmp_path / "g.csv", ACTIVITIES_HEADER, GOOD_ACTIVITIES)
    dry = import_activities(consenting, good, municipality=GM, actor="t", dry_run=True)
    assert dry.as_json()["dry_run"] is True


def test_implausible_dates_are_refused(consenting: Engine, tmp_path: Path) -> None:
    # intake 06-01-2025, release 05-02-2025
    rows = [
        "NZ-001;P1;;;;6 maanden;01-01-2025;geldig;;;;;;",  # before the intake
        "NZ-001;P1;;;;12 maanden;05-03-2025;geldig;;;;;;",  # a month after release
        "NZ-001;P1;;;;1 maand;06-03-2025;geldig;;;;;;",  # within 15 days of 05-03-2025
    ]
    path = write(tmp_path / "d.csv", CASES_HEADER, rows)
    report = import_cases(consenting, path, municipality=GM, actor="t", dry_run=True)
    assert [(e.row, e.column) for e in report.errors] == [(2, "Datum"), (3, "Datum")]
    assert "implausible" in report.errors[0].reason
    assert report.errors[0].value == "01-01-2025"
    screening = tmp_path / "s.csv"
    screening.write_text(
        "detentiekenmerk;screeningsdatum;identiteitsbewijs\nP1;08-01-1999;geldig\n",
        encoding="utf-8",
    )
    (error,) = import_screenings(consenting, screening, actor="dji").errors
    assert "implausible" in error.reason
    old = write(
        tmp_path / "old.csv", ACTIVITIES_HEADER, ["NZ-001;A7;apply_id;Gemeente;01-02-1990;;;;;"]
    )
    (error,) = import_activities(consenting, old, municipality=GM, actor="t").errors
    assert (error.column, "implausible" in error.reason) == ("startdatum", True)


def test_a_bad_row_does_not_hide_a_later_repeat(consenting: Engine, tmp_path: Path) -> None:
    rows = [
        "NZ-001;P1;;;;1 maand;31-02-2025;geldig;;;;;;",  # a bad date
        "NZ-001;P1;;;;1 maand;05-03-2025;geldig;;;;;;",  # the same case and moment again
    ]
    path = write(tmp_path / "r.csv", CASES_HEADER, rows)
    report = import_cases(consenting, path, municipality=GM, actor="t")
    assert [(e.row, e.column) for e in report.errors] == [(2, "Datum"), (3, "Moment")]
    assert report.errors[1].value == "1 maand"  # as the file says it


def test_an_old_file_does_not_bring_back_withdrawn_consent(periods: Engine, tmp_path: Path) -> None:
    consent = "NZ-001;P1;999993653;gegeven;20-01-2025;;;;;;;;;nzc-07"
    given = write(tmp_path / "gegeven.csv", CASES_HEADER, [consent])
    assert import_cases(periods, given, municipality=GM, actor="t").applied == 1
    withdrawn = write(
        tmp_path / "ingetrokken.csv", CASES_HEADER, ["NZ-001;P1;;ingetrokken;01-03-2025;;;;;;;;;"]
    )
    assert import_cases(periods, withdrawn, municipality=GM, actor="t").applied == 1

    def consent_now() -> str:
        with periods.connect() as conn:
            return str(
                conn.execute(
                    select(reintegration_cases.c.consent).where(
                        reintegration_cases.c.municipal_ref == "NZ-001"
                    )
                ).scalar_one()
            )

    # the first file again: its consent is on record, nothing changes (it gave it back)
    again = import_cases(periods, given, municipality=GM, actor="t")
    assert (again.applied, again.unchanged, again.errors) == (0, 1, [])
    assert consent_now() == "withdrawn"
    # a consent not on record, dated before the withdrawal: refused, naming the date
    older = write(tmp_path / "ouder.csv", CASES_HEADER, ["NZ-001;P1;;gegeven;10-02-2025;;;;;;;;;"])
    report = import_cases(periods, older, municipality=GM, actor="t")
    assert [(e.row, e.column, e.value) for e in report.errors] == [
        (2, "Toestemming datum", "10-02-2025")
    ]
    assert "current consent (2025-03-01)" in report.errors[0].reason
    assert consent_now() == "withdrawn"
    # consent given again after the withdrawal counts
    later = write(tmp_path / "later.csv", CASES_HEADER, ["NZ-001;P1;;gegeven;15-03-2025;;;;;;;;;"])
    assert import_cases(periods, later, municipality=GM, actor="t").applied == 1
    assert consent_now() == "given"


def test_errors_show_what_the_file_says_sorted_by_row(periods: Engine, tmp_path: Path) -> None:
    rows = [
        "NZ-1;P1;;;;;;;;;;;;",
        "NZ-2;P2;;ingetrokken;21-01-2025;;;;;;;;;",
        "NZ-3;P9;;;;;;;;;;;;",
    ]
    path = write(tmp_path / "e.csv", CASES_HEADER, rows)
    report = import_cases(periods, path, municipality=GM, actor="t")
    assert [(e.row, e.value) for e in report.errors] == [(3, "ingetrokken"), (4, "P9")]


def test_spreadsheet_formulas_and_bsns(consenting: Engine, tmp_path: Path) -> None:
    rows = [
        "NZ-001;A8;apply_id;=cmd|' /C calc'!A0;01-02-2025;;;;;",
        "NZ-001;999993653;apply_id;Gemeente;01-02-2025;;;;;",
        "NZ-001;A9;apply_id;Gemeente;01-02-2025;;;;;@SUM(1+1)",
    ]
    path = write(tmp_path / "f.csv", ACTIVITIES_HEADER, rows)
    report = import_activities(consenting, path, municipality=GM, actor="t")
    assert [(e.row, e.column) for e in report.errors] == [
        (2, "aanbieder"),
        (3, "activiteitnummer"),
        (4, "programma"),
    ]
    assert report.errors[1].value == "******653"
    assert "999993653" not in report.text()
    with error_file_for(path).open(encoding="utf-8-sig") as fh:
        cells = [row for row in csv.reader(fh, delimiter=";")]
    assert cells[1][2] == "'=cmd|' /C calc'!A0"  # inert in Excel
    assert cells[3][2] == "'@SUM(1+1)"
    assert "999993653" not in error_file_for(path).read_text(encoding="utf-8-sig")
    # a BSN typed into another column is masked too, and refused as a case reference
    bsn_rows = ["999993653;999993653;;gegeven;20-01-2025;;;;;;;;;"]
    report = import_cases(
        consenting, write(tmp_path / "b.csv", CASES_HEADER, bsn_rows), municipality=GM, actor="t"
    )
    assert "999993653" not in report.text()
    assert any("not a municipal reference" in e.reason for e in report.errors)
    # nor is a BSN stored as a provider or a programme, which the steering figures show
    text_rows = [
        "NZ-001;A10;apply_id;999993653;01-02-2025;;;;;",
        "NZ-001;A11;apply_id;Gemeente;01-02-2025;;;;;999 993 653",  # in groups, too
        "NZ-001;999.993.653;apply_id;Gemeente;01-02-2025;;;;;",
    ]
    report = import_activities(
        consenting, write(tmp_path / "t.csv", ACTIVITIES_HEADER, text_rows), municipality=GM,
        actor="t",
    )  # fmt: skip
    assert [(e.row, e.column, e.reason) for e in report.errors] == [
        (2, "aanbieder", BSN_IN_TEXT),
        (3, "programma", BSN_IN_TEXT),
        (4, "activiteitnummer", BSN_AS_REFERENCE),
    ]
    assert {e.value for e in report.errors} == {"******653"}  # never shown, however written


def test_excel_s_guard_on_a_case_reference_in_the_activity_file(
    periods: Engine, tmp_path: Path
) -> None:
    """Excel keeps a leading zero when a cell is written ="0123"; the case file reads the
    reference as 0123, and so must the activity file."""
    case = ['="0123";P1;;gegeven;20-01-2025;;;;;;;;;']
    assert import_cases(periods, write(tmp_path / "c.csv", CASES_HEADER, case), municipality=GM,
                        actor="t").errors == []  # fmt: skip
    rows = [
        '="0123";="0042";apply_id;Gemeente;01-02-2025;;;;;',
        "0123;A2;apply_id;G;01-02-2025;;;;;",
    ]
    report = import_activities(
        periods, write(tmp_path / "a.csv", ACTIVITIES_HEADER, rows), municipality=GM, actor="t"
    )
    assert (report.errors, report.applied) == ([], 2)
    with periods.connect() as conn:
        keys = set(conn.execute(select(activities.c.key)).scalars())
    assert "ref:0042" in keys


def test_the_burden_counts_care_needs_only_when_care_is_needed(consenting: Engine) -> None:
    from terugkeer.reintegration.queries import registration_form
    from terugkeer.reintegration.service import ConditionsIn, record_conditions

    with consenting.begin() as conn:
        case_id = conn.execute(
            select(reintegration_cases.c.id).where(reintegration_cases.c.municipal_ref == "NZ-001")
        ).scalar_one()
        release = registration_form(conn, case_id, "bij ontslag", GM, actor="t")
        record_conditions(
            conn, case_id, ConditionsIn("voor ontslag", {"zorg": "geen zorg nodig"}), actor="t"
        )
        before = registration_form(conn, case_id, "before_release", GM, actor="t")
    needs = {f.name: f.required for f in release.fields}["care_needs"]
    assert needs  # care arranged: the needs are asked
    assert release.moment == "release"
    assert not {f.name: f.required for f in before.fields}["care_needs"]  # care not needed
    assert before.to_type == 4  # id, housing, income, debts


def test_cli_reports_plain_and_whole(cli_db: Engine, tmp_path: Path) -> None:
    long_ref = "P" + "9" * 70
    bad = write(tmp_path / "bad.csv", CASES_HEADER, [f"NZ-9;{long_ref};;;;;;;;;;;;"])
    result = runner.invoke(app, ["import", "cases", str(bad), "-m", GM])
    assert result.exit_code == 1
    assert any(len(line) > 80 and long_ref in line for line in result.stdout.splitlines())
    unknown = runner.invoke(app, ["import", "cases", str(bad), "-m", "[gm0363]"])
    assert unknown.exit_code == 2
    assert "[gm0363]" in unknown.stderr


def last_audit_id(engine: Engine) -> int:
    """The audit log is append-only: a test reads the rows after this id."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one())


def audit_rows(
    engine: Engine, action: str, after: int
) -> list[tuple[str | None, dict[str, object]]]:
    with engine.connect() as conn:
        return [
            (r.record_id, json.loads(r.details))
            for r in conn.execute(
                select(audit_log.c.record_id, audit_log.c.details)
                .where(audit_log.c.action == action, audit_log.c.id > after)
                .order_by(audit_log.c.id)
            )
        ]


def test_an_activity_import_audits_each_case_it_changes_with_old_values(
    consenting: Engine, tmp_path: Path
) -> None:
    """Finding 6 of issue 13: a row per case changed, with the old values (besides the import's
    own row)."""
    start = last_audit_id(consenting)
    path = write(tmp_path / "a.csv", ACTIVITIES_HEADER, GOOD_ACTIVITIES)
    assert import_activities(consenting, path, municipality=GM, actor="t").ok
    with consenting.connect() as conn:
        case_id = conn.execute(
            select(reintegration_cases.c.id).where(reintegration_cases.c.municipal_ref == "NZ-001")
        ).scalar_one()
    first = [r for r in audit_rows(consenting, "activities_imported", start) if "added" in r[1]]
    assert [(r[0], r[1]["added"], r[1]["changed"]) for r in first] == [
        (str(case_id), len(GOOD_ACTIVITIES), [])
    ]
    changed = GOOD_ACTIVITIES[1].replace("70,38", "80,00")
    path = write(tmp_path / "b.csv", ACTIVITIES_HEADER, [changed, GOOD_ACTIVITIES[0]])
    assert import_activities(consenting, path, municipality=GM, actor="t").applied == 1
    rows = [r for r in audit_rows(consenting, "activities_imported", start) if "added" in r[1]]
    (record_id, details) = rows[-1]
    assert record_id == str(case_id)
    assert details["added"] == 0
    assert [c["old"] for c in details["changed"]] == [{"cost_cents": 7038}]  # type: ignore[union-attr]
    # importing the same file again changes nothing and audits no case
    assert import_activities(consenting, path, municipality=GM, actor="t").unchanged == 2
    assert (
        len([r for r in audit_rows(consenting, "activities_imported", start) if "added" in r[1]])
        == 2
    )


def test_a_screenings_import_audits_each_screening_with_old_values(
    periods: Engine, tmp_path: Path
) -> None:
    """Finding 6 of issue 13: a screenings import wrote no audit row."""
    start = last_audit_id(periods)
    path = tmp_path / "screenings.csv"
    header = "detentiekenmerk;screeningsdatum;identiteitsbewijs;onderdak\n"
    path.write_text(header + "P1;08-01-2025;geldig;dakloos\n", encoding="utf-8")
    assert import_screenings(periods, path, actor="dji").applied == 1
    path.write_text(header + "P1;08-01-2025;geldig;opvang\n", encoding="utf-8")
    assert import_screenings(periods, path, actor="dji").applied == 1
    assert import_screenings(periods, path, actor="dji").unchanged == 1
    rows = audit_rows(periods, "screening_imported", start)
    assert [(r[1]["new"], r[1].get("old")) for r in rows] == [
        (True, None),
        (False, {"housing": "homeless"}),
    ]
    with periods.connect() as conn:
        period_id = conn.execute(
            select(detention_periods.c.id).where(detention_periods.c.period_ref == "P1")
        ).scalar_one()
    assert {r[0] for r in rows} == {str(period_id)}
    assert all(r[1]["import_id"] for r in rows)
