"""Synthetic registrations, derived from a synthetic year (``truth.csv`` + ``detention.jsonl``
from :func:`terugkeer.synth.generate`): the prisons' intake screenings and, per municipality, the
files a municipal system would export for ``terugkeer import cases`` and ``import activities``.

Usage::

    summary = write_registrations(Path("var/synth"), Path("var/registrations"), seed=1)

Deterministic: all randomness comes from ``seed``; the clock is never read (``as_of``, the day
the municipalities export, defaults to 30 June of the year after the synthetic year).

What is simulated (the figures are assumptions unless a source is named):

* **Who has a case**: the same rule as the system (``reintegration.scope``): adults whose stay
  exceeded 10 days, released into society, in the return (else residence) municipality.
* **Screenings**: 90 % of those periods, a few days after intake, with statuses drawn from the
  truth's ``<condition>_intake`` (in order or not, as the Monitor Nazorg shares of the truth).
* **Consent**: given 75 %, refused 12 %, not registered 13 %.
* **Moments recorded** with consent: before release 80 %, release 90 %, then 1/6/12/24 months
  75/60/50/40 % when that moment has come by ``as_of``. Release statuses follow the truth's
  ``<condition>_release``; later, a condition not in order gets in order with chance 0.15, 0.30,
  0.40, 0.45 by 1/6/12/24 months and one in order is lost with chance 0.05 a step (the Monitor:
  work 13 % right after release, 20 % within two years).
* **Activities** for each condition not in order at release (70 %) and case management (60 %),
  with unit costs: ID card €70.38 (RvIG 2023), debt counselling €1,500 a case (NVVK 2005,
  secondary), shelter €23,236 a year and supported housing €41,200 a year (Cebeon 2011,
  secondary); hours at an assumed €75 an hour otherwise. Half the municipalities run a named
  programme ("Aanpak nazorg <name>") that 60 % of their activities belong to.
* **File formats**, as Dutch systems write them: CSV with ``;`` in Windows-1252 (45 %) or UTF-8
  with BOM (35 %), decimal commas and ``dd-mm-jjjj``; CSV with ``,``, ISO dates and decimal
  points (10 %); XLSX (10 %, when openpyxl is installed, else the first form). Status columns
  carry Dutch labels or codes.
* **Messy** (``MessyRegistrations``): a share of the files gets bad rows (an impossible date,
  an unknown code, a bad BSN, a negative cost, an end before the start, an unknown case, an
  ambiguous number), so the demo shows files rejected whole with their error reports.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from terugkeer.domain.refdata import refdata
from terugkeer.reintegration import codes
from terugkeer.reintegration.codes import CONDITIONS
from terugkeer.reintegration.scope import PeriodView, municipality, skip_reason

SCREENED = 0.90
CONSENT = (("given", 0.75), ("refused", 0.12), ("none", 0.13))
MOMENT_SHARE = {
    "before_release": 0.80,
    "release": 0.90,
    "month_1": 0.75,
    "month_6": 0.60,
    "month_12": 0.50,
    "month_24": 0.40,
}
MONTHS = {"month_1": 1, "month_6": 6, "month_12": 12, "month_24": 24}
GET_IN_ORDER = {"month_1": 0.15, "month_6": 0.30, "month_12": 0.40, "month_24": 0.45}
LOSE = 0.05
ACTIVITY_FOR_NOT_IN_ORDER = 0.70
CASE_MANAGEMENT = 0.60
PROGRAMME_MUNICIPALITIES = 0.5
IN_PROGRAMME = 0.60
HOURLY = 75.0  # euros, assumption

# Statuses drawn for "in order" and "not in order" (weights, assumptions).
IN_ORDER_DRAW = {
    "id": (("valid", 1.0),),
    "housing": (("own_or_rented", 0.6), ("family_or_friends", 0.3), ("institution", 0.1)),
    "income": (("benefit", 0.6), ("work", 0.3), ("education", 0.1)),
    "debts": (("none", 0.35), ("with_plan", 0.65)),
    "care": (("not_needed", 0.6), ("arranged", 0.4)),
}
NOT_IN_ORDER_DRAW = {
    "id": (("expired", 0.4), ("none", 0.4), ("applied_for", 0.2)),
    "housing": (
        ("homeless", 0.35),
        ("shelter", 0.3),
        ("postal_address_only", 0.35),
    ),
    "income": (("none", 0.6), ("applied_for", 0.4)),
    "debts": (("without_plan", 0.7), ("unknown_amount", 0.3)),
    "care": (("not_arranged", 1.0),),
}
CARE_NEEDS = (("mental_health", 0.5), ("addiction", 0.35), ("intellectual_disability", 0.15))

# Activity type -> (providers, hours range, cost function, funders with weights)
PROVIDERS = {
    "apply_id": ("Gemeente",),
    "postal_address": ("Gemeente", "Leger des Heils"),
    "housing_support": ("Woningcorporatie", "Stichting Exodus", "Leger des Heils"),
    "shelter": ("Leger des Heils", "Stichting Maatschappelijke Opvang"),
    "supported_housing": ("Stichting Beschermd Wonen", "Leger des Heils"),
    "apply_benefit": ("Gemeente", "UWV"),
    "work_placement": ("Werkbedrijf", "UWV", "Re-integratiebureau Voorwaarts"),
    "education": ("ROC", "Leerwerkloket"),
    "debt_counselling": ("Kredietbank", "Schuldhulpverlening gemeente"),
    "budget_management": ("Kredietbank", "Budgetbeheer Noord"),
    "referral_mental_health": ("GGZ-instelling", "Huisarts"),
    "referral_addiction": ("Verslavingszorg", "Tactus"),
    "referral_disability": ("MEE", "Zorgaanbieder lvb"),
    "case_management": ("Gemeente", "Reclassering Nederland", "Stichting Nazorg"),
}
TYPES_FOR = {
    "id": ("apply_id",),
    "housing": ("postal_address", "housing_support", "shelter", "supported_housing"),
    "income": ("apply_benefit", "work_placement", "education"),
    "debts": ("debt_counselling", "budget_management"),
    "care": ("referral_mental_health", "referral_addiction", "referral_disability"),
}


@dataclass
class MessyRegistrations:
    """A share of the municipal files gets bad rows: each row of such a file is made bad with
    chance ``rows`` (at least one row per file)."""

    files: float = 0.15
    rows: float = 0.02


@dataclass
class MunicipalFiles:
    code: str
    cases: Path
    activities: Path | None
    case_rows: int
    activity_rows: int
    bad_rows: int = 0


@dataclass
class RegistrationSummary:
    out: Path
    screenings: int
    screening_file: Path
    municipalities: dict[str, MunicipalFiles] = field(default_factory=dict)
    case_rows: int = 0
    activity_rows: int = 0
    messy_files: int = 0
    bad_rows: int = 0
    as_of: date | None = None


def _pick(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    return rng.choices([o[0] for o in options], weights=[o[1] for o in options])[0]


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _municipalities(detention: Path) -> dict[str, tuple[str | None, str | None]]:
    """Per period: (residence, return) municipality, as the ingest would fold them (newest
    return municipality wins; unknown codes, as malformed lines carry, are ignored)."""
    rd = refdata()
    residence: dict[str, str] = {}
    back: dict[str, tuple[str, str]] = {}  # period -> (occurred_at, code)
    with detention.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if '"period"' not in line or "municipality" not in line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict) or obj.get("kind") not in (
                "intake",
                "release_date_set",
                "release",
            ):
                continue
            ref, when = obj.get("period"), str(obj.get("occurred_at", ""))
            if not isinstance(ref, str):
                continue
            for name in ("residence_municipality", "return_municipality"):
                code = obj.get(name)
                resolved = rd.resolve_municipality(code) if isinstance(code, str) else None
                if resolved is None:
                    continue
                if name == "residence_municipality" and obj["kind"] == "intake":
                    residence[ref] = resolved
                elif name == "return_municipality" and when >= back.get(ref, ("", ""))[0]:
                    back[ref] = (when, resolved)
    refs = set(residence) | set(back)
    return {r: (residence.get(r), back[r][1] if r in back else None) for r in refs}


def _add_months(day: date, months: int) -> date:
    from terugkeer.reintegration.service import add_months

    return add_months(day, months)


@dataclass
class _Case:
    period: str
    bsn: str | None
    intake: date
    release: date
    truth_intake: dict[str, int]
    truth_release: dict[str, int]


@dataclass
class _Style:
    kind: str  # "cp1252", "utf8bom", "comma", "xlsx"
    labels: bool  # Dutch labels instead of codes


def write_registrations(
    feeds: Path,
    out: Path,
    *,
    seed: int = 1,
    messy: MessyRegistrations | None = None,
    as_of: date | None = None,
) -> RegistrationSummary:
    """Write ``screenings.csv`` and per municipality ``GMxxxx-dossiers.<ext>`` and
    ``GMxxxx-activiteiten.<ext>`` into ``out``."""
    feeds, out = Path(feeds), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed * 104729 + 7)
    messy_rng = random.Random(seed * 7919 + 3)  # apart, so clean and messy files match
    places = _municipalities(feeds / "detention.jsonl")
    with (feeds / "truth.csv").open(encoding="utf-8", newline="") as fh:
        truth = list(csv.DictReader(fh))
    if not truth:
        raise ValueError(f"no periods in {feeds / 'truth.csv'}")
    year = max(_day(r["end_date"]) or date.min for r in truth).year
    as_of = as_of or date(year + 1, 6, 30)
    cases: dict[str, list[_Case]] = defaultdict(list)
    for r in truth:
        residence, back = places.get(r["period"], (None, None))
        view = PeriodView(
            status="deceased" if r["end"] == "death" else "released",
            release_kind=r["release_kind"] or None,
            intake_date=date.fromisoformat(r["intake_date"]),
            end_date=_day(r["end_date"]),
            planned_release_date=None,
            birth_date=_day(r["birth_date"]),
            return_municipality=back,
            residence_municipality=residence,
        )
        if skip_reason(view) is not None or view.end_date is None:
            continue
        where = municipality(view)
        assert where is not None  # noqa: S101 - skip_reason checked it
        key = r["person_key"]
        cases[where].append(
            _Case(
                r["period"],
                key.removeprefix("bsn:") if key.startswith("bsn:") else None,
                view.intake_date,
                view.end_date,
                {c.value: int(r[f"{c.value}_intake"]) for c in CONDITIONS},
                {c.value: int(r[f"{c.value}_release"] or 0) for c in CONDITIONS},
            )
        )
    summary = RegistrationSummary(out, 0, out / "screenings.csv", as_of=as_of)
    summary.screenings = _write_screenings(summary.screening_file, cases, rng)
    xlsx_ok = _has_openpyxl()
    for code in sorted(cases):
        style = _style(rng, xlsx_ok)
        bad = messy_rng.random() < (messy.files if messy is not None else 0.0)
        files, case_rows, activity_rows = _municipality_files(
            out, code, cases[code], rng, style, as_of
        )
        if bad and messy is not None:
            files.bad_rows = _make_messy(case_rows, activity_rows, messy_rng, messy.rows)
            summary.messy_files += 1
            summary.bad_rows += files.bad_rows
        _write_files(files, case_rows, activity_rows, style)
        summary.municipalities[code] = files
        summary.case_rows += files.case_rows
        summary.activity_rows += files.activity_rows
    return summary


def _has_openpyxl() -> bool:
    try:
        import openpyxl  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        return False
    return True


def _style(rng: random.Random, xlsx_ok: bool) -> _Style:
    u = rng.random()
    kind = "cp1252" if u < 0.45 else "utf8bom" if u < 0.80 else "comma" if u < 0.90 else "xlsx"
    if kind == "xlsx" and not xlsx_ok:
        kind = "cp1252"
    return _Style(kind, rng.random() < 0.5)


def _status(rng: random.Random, condition: str, ok: int) -> str:
    return _pick(rng, (IN_ORDER_DRAW if ok else NOT_IN_ORDER_DRAW)[condition])


def _write_screenings(path: Path, cases: dict[str, list[_Case]], rng: random.Random) -> int:
    rows = []
    for code in sorted(cases):
        for c in cases[code]:
            if rng.random() >= SCREENED:
                continue
            day = min(c.intake + timedelta(days=rng.randint(1, 7)), c.release)
            statuses = {k: _status(rng, k, v) for k, v in c.truth_intake.items()}
            needs = _pick(rng, CARE_NEEDS) if statuses["care"] != "not_needed" else ""
            rows.append(
                [
                    c.period,
                    day.strftime("%d-%m-%Y"),
                    *(statuses[k.value] for k in CONDITIONS),
                    needs,
                ]
            )
    rows.sort()
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerow(
            [
                "detentiekenmerk",
                "screeningsdatum",
                "identiteitsbewijs",
                "onderdak",
                "werk_inkomen",
                "schulden",
                "zorg",
                "zorgbehoefte",
            ]
        )
        w.writerows(rows)
    return len(rows)


CASE_HEADER = [
    "dossiernummer",
    "detentiekenmerk",
    "bsn",
    "toestemming",
    "toestemming_datum",
    "moment",
    "datum",
    "identiteitsbewijs",
    "onderdak",
    "werk_en_inkomen",
    "schulden",
    "zorg",
    "zorgbehoefte",
    "medewerker",
]
ACTIVITY_HEADER = [
    "dossiernummer",
    "activiteitnummer",
    "soort",
    "aanbieder",
    "startdatum",
    "einddatum",
    "uren",
    "kosten",
    "financier",
    "programma",
]
FUNDER_NL = {"municipality": "gemeente", "central_government": "rijk", "other": "overig"}


def _municipality_files(
    out: Path, code: str, cases: list[_Case], rng: random.Random, style: _Style, as_of: date
) -> tuple[MunicipalFiles, list[list[Any]], list[list[Any]]]:
    name = refdata().municipalities[code].name
    programme = f"Aanpak nazorg {name}" if rng.random() < PROGRAMME_MUNICIPALITIES else None
    with_refs = rng.random() < 0.8
    staff = [f"nzc-{code}-{k:02d}" for k in range(1, 2 + len(cases) // 150)]
    case_rows: list[list[Any]] = []
    activity_rows: list[list[Any]] = []
    serial = 0
    for k, c in enumerate(sorted(cases, key=lambda x: x.period), start=1):
        consent = _pick(rng, CONSENT)
        if consent == "none" or c.release > as_of:
            continue
        ref = f"NZ{c.release.year % 100:02d}-{k:05d}"
        given_on = max(c.intake + timedelta(days=1), c.release - timedelta(days=rng.randint(0, 20)))
        worker = rng.choice(staff)
        base = [ref, c.period, c.bsn or ""]
        if consent == "refused":
            case_rows.append([*base, "refused", given_on, "", "", *[""] * 6, worker])
            continue
        state = dict(c.truth_release)
        first = True
        moments: list[tuple[str, date, dict[str, int]]] = []
        for moment, share in MOMENT_SHARE.items():
            if moment == "before_release":
                day = max(c.intake, c.release - timedelta(days=rng.randint(3, 14)))
                values = dict(c.truth_release)
            elif moment == "release":
                day, values = c.release, dict(c.truth_release)
            else:
                day = _add_months(c.release, MONTHS[moment])
                if day > as_of:
                    break
                for cond, ok in state.items():
                    if not ok and rng.random() < GET_IN_ORDER[moment]:
                        state[cond] = 1
                    elif ok and rng.random() < LOSE:
                        state[cond] = 0
                values = dict(state)
            if day > as_of or day < given_on or rng.random() >= share:
                continue
            moments.append((moment, day, values))
        if not moments:
            case_rows.append([*base, "given", given_on, "", "", *[""] * 6, worker])
        for moment, day, values in moments:
            statuses = {cond: _status(rng, cond, ok) for cond, ok in values.items()}
            needs = _pick(rng, CARE_NEEDS) if statuses["care"] != "not_needed" else ""
            shown_day: Any = "" if moment == "release" and rng.random() < 0.5 else day
            consent_cells: list[Any] = ["given", given_on] if first else ["", ""]
            first = False
            case_rows.append(
                [
                    *base,
                    *consent_cells,
                    moment,
                    shown_day,
                    *(statuses[cond.value] for cond in CONDITIONS),
                    needs,
                    worker,
                ]
            )
        # activities: for what was not in order at release, and case management
        todo = [cond for cond, ok in c.truth_release.items() if not ok]
        types = [
            rng.choice(TYPES_FOR[cond]) for cond in todo if rng.random() < ACTIVITY_FOR_NOT_IN_ORDER
        ]
        if rng.random() < CASE_MANAGEMENT:
            types.append("case_management")
        for t in dict.fromkeys(types):
            start = c.release + timedelta(days=rng.randint(-20, 30))
            start = min(max(start, c.intake), as_of)
            hours, cost, days_long, funder = _cost(rng, t)
            end = start + timedelta(days=days_long)
            serial += 1
            activity_rows.append(
                [
                    ref,
                    f"A{serial:06d}" if with_refs else "",
                    t,
                    rng.choice(PROVIDERS[t]),
                    start,
                    end if end <= as_of else "",
                    hours,
                    cost,
                    funder,
                    programme if programme and rng.random() < IN_PROGRAMME else "",
                ]
            )
    files = MunicipalFiles(
        code,
        out / f"{code}-dossiers",
        out / f"{code}-activiteiten" if activity_rows else None,
        len(case_rows),
        len(activity_rows),
    )
    return files, case_rows, activity_rows


def _cost(rng: random.Random, t: str) -> tuple[float, float, int, str]:
    """(hours, euros, duration in days, funder) of one activity of type ``t``."""
    if t == "apply_id":
        return 1.0, 70.38, 21, "municipality"
    if t == "debt_counselling":
        return float(rng.randint(8, 30)), 1500.0, rng.randint(90, 365), "municipality"
    if t == "shelter":
        months = rng.randint(1, 6)
        return 0.0, round(23236 / 12 * months, 2), 30 * months, "municipality"
    if t == "supported_housing":
        months = rng.randint(3, 12)
        return 0.0, round(41200 / 12 * months, 2), 30 * months, "municipality"
    if t == "education":
        return float(rng.randint(20, 200)), float(rng.randint(5, 30) * 100), 180, "other"
    hours = {
        "postal_address": (1, 3),
        "housing_support": (10, 30),
        "apply_benefit": (2, 4),
        "work_placement": (20, 80),
        "budget_management": (6, 24),
        "referral_mental_health": (1, 3),
        "referral_addiction": (1, 3),
        "referral_disability": (1, 3),
        "case_management": (10, 40),
    }[t]
    h = rng.randint(*hours) + rng.choice((0.0, 0.5))
    funder = (
        "central_government" if t == "work_placement" and rng.random() < 0.3 else "municipality"
    )
    return h, round(h * HOURLY, 2), rng.randint(14, 180), funder


# --- messy files ----------------------------------------------------------------------------

_BAD_CASE: tuple[tuple[str, int, Any], ...] = (
    ("date", 6, "31-02-2024"),
    ("code", 8, "woont bij oma"),
    ("bsn", 2, "123456789"),
    ("moment", 5, "na 3 weken"),
    ("period", 1, "DP99999999"),
)
_BAD_ACTIVITY: tuple[tuple[str, int, Any], ...] = (
    ("cost", 7, "-150,00"),
    ("ambiguous", 7, "1.500"),
    ("type", 2, "sportschool"),
    ("case", 0, "NZ-ONBEKEND"),
    ("end_before_start", 5, date(1999, 1, 1)),
    ("date", 4, "2024-13-01"),
)


def _make_messy(
    case_rows: list[list[Any]], activity_rows: list[list[Any]], rng: random.Random, share: float
) -> int:
    bad = 0
    for rows, spoilers in ((case_rows, _BAD_CASE), (activity_rows, _BAD_ACTIVITY)):
        hits = [i for i in range(len(rows)) if rng.random() < share]
        if not hits and rows and not bad:
            hits = [rng.randrange(len(rows))]
        for i in hits:
            _, column, value = rng.choice(spoilers)
            if column == 2 and rows is case_rows and not rows[i][2]:
                column, value = 6, "31-02-2024"  # no BSN to spoil: spoil the date
            rows[i][column] = value
            bad += 1
    return bad


# --- writing --------------------------------------------------------------------------------


def _cell_writer(style: _Style) -> Callable[[Any, str], Any]:
    labels = {(cond.value, s.code): s.label for cond in CONDITIONS for s in codes.STATUSES[cond]}
    moment_nl = {"before_release": "voor ontslag", "release": "ontslag"}

    def fmt(value: Any, column: str) -> Any:
        if isinstance(value, date):
            if style.kind == "xlsx":
                return value
            return value.isoformat() if style.kind == "comma" else value.strftime("%d-%m-%Y")
        if isinstance(value, float):
            if style.kind == "xlsx":
                return value
            text = f"{value:.2f}"
            return text if style.kind == "comma" else text.replace(".", ",")
        if style.labels and isinstance(value, str):
            if column in ("id", "housing", "income", "debts", "care"):
                return labels.get((column, value), value)
            if column == "funder":
                return FUNDER_NL.get(value, value)
            if column == "consent":
                return {"given": "gegeven", "refused": "geweigerd"}.get(value, value)
            if column == "moment":
                return moment_nl.get(value, value)
        return value

    return fmt


_CASE_COLUMN_NAMES = [
    "case_ref",
    "period_ref",
    "bsn",
    "consent",
    "consent_date",
    "moment",
    "as_of",
    "id",
    "housing",
    "income",
    "debts",
    "care",
    "care_needs",
    "recorded_by",
]
_ACTIVITY_COLUMN_NAMES = [
    "case_ref",
    "activity_ref",
    "type",
    "provider",
    "start",
    "end",
    "hours",
    "cost",
    "funder",
    "programme",
]


def _write_files(
    files: MunicipalFiles,
    case_rows: list[list[Any]],
    activity_rows: list[list[Any]],
    style: _Style,
) -> None:
    fmt = _cell_writer(style)
    ext = ".xlsx" if style.kind == "xlsx" else ".csv"
    files.cases = files.cases.with_suffix(ext)
    _write(files.cases, CASE_HEADER, _CASE_COLUMN_NAMES, case_rows, fmt, style)
    if files.activities is not None:
        files.activities = files.activities.with_suffix(ext)
        _write(files.activities, ACTIVITY_HEADER, _ACTIVITY_COLUMN_NAMES, activity_rows, fmt, style)


def _write(
    path: Path,
    header: list[str],
    names: list[str],
    rows: list[list[Any]],
    fmt: Callable[[Any, str], Any],
    style: _Style,
) -> None:
    cells = [[fmt(v, n) for v, n in zip(row, names, strict=True)] for row in rows]
    if style.kind == "xlsx":
        import openpyxl  # type: ignore[import-untyped,import-not-found,unused-ignore]

        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(header)
        for row in cells:
            sheet.append([None if v == "" else v for v in row])
        book.save(path)
        return
    encoding = {"cp1252": "cp1252", "utf8bom": "utf-8-sig", "comma": "utf-8"}[style.kind]
    delimiter = "," if style.kind == "comma" else ";"
    with path.open("w", encoding=encoding, newline="", errors="replace") as fh:
        w = csv.writer(fh, delimiter=delimiter, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(cells)
