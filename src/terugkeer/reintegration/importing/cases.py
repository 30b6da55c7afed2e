"""Importing a municipality's cases: their own case reference, consent, and condition statuses
per moment (one row per case and moment).

Every row is checked, first on its own, then against the store and the rows above it; with
any bad row nothing is written. A valid file is written with set-based statements in one
transaction, with its audit rows (one place: ``_apply_cases``). Rows are upserted on the
municipality's case reference: the same file again changes nothing.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from terugkeer.db.bulk import among, chunks, read_date
from terugkeer.reintegration import values
from terugkeer.reintegration.audit import audit_many, now_utc
from terugkeer.reintegration.codes import CONDITIONS, ConsentScope, ConsentStatus
from terugkeer.reintegration.errors import ReintegrationError
from terugkeer.reintegration.importing.report import Collector, ImportReport, finish
from terugkeer.reintegration.importing.shared import (
    cell,
    check_municipality,
    end_import,
    open_for,
    sha256_of,
    sheet_rows,
    start_import,
)
from terugkeer.reintegration.safety import (
    BSN_AS_REFERENCE,
    FORMULA_REASON,
    formula_like,
    looks_like_bsn,
)
from terugkeer.reintegration.service import (
    CaseRow,
    ConditionsIn,
    ConsentIn,
    case_from_row,
    case_select,
    check_conditions,
    check_consent,
    consent_too_early,
    current_facts,
    plan_conditions,
    prefill_screenings,
)
from terugkeer.reintegration.sheets import Sheet
from terugkeer.reintegration.tables import (
    condition_facts,
    reintegration_cases,
    reintegration_consents,
)

CASE_ALIASES: dict[str, tuple[str, ...]] = {
    "case_ref": ("dossiernummer", "dossier", "dossiernr", "zaaknummer", "case_ref"),
    "period_ref": ("detentiekenmerk", "detentienummer", "period_ref"),
    "bsn": ("bsn", "burgerservicenummer"),
    "consent": ("toestemming", "consent"),
    "consent_date": ("toestemming_datum", "datum_toestemming", "consent_date"),
    "consent_scope": ("toestemming_reikwijdte", "reikwijdte", "consent_scope"),
    "moment": ("moment",),
    "as_of": ("datum", "peildatum", "as_of"),
    "id": ("identiteitsbewijs", "id", "identiteit"),
    "housing": ("onderdak", "huisvesting", "housing"),
    "income": ("werk_en_inkomen", "werk_inkomen", "inkomen", "income"),
    "debts": ("schulden", "debts"),
    "care": ("zorg", "care"),
    "care_needs": ("zorgbehoefte", "care_needs"),
    "recorded_by": ("geregistreerd_door", "medewerker", "recorded_by"),
}


@dataclass
class _CaseLine:
    row: int
    case_ref: str
    period_ref: str | None
    bsn: str | None
    consent: ConsentIn | None
    conditions: ConditionsIn | None
    recorded_by: str | None
    raw: dict[str, Any] = field(default_factory=dict)  # cells as the file gives them
    bad: bool = False  # the row has errors of its own: checked against the store, not applied
    moment: str | None = None  # the moment, also of a bad row (to find a repeat of it)


def _parse_case_line(n: int, cells: list[Any], sheet: Sheet, err: Collector) -> _CaseLine:
    before = err.count

    def text(name: str) -> str:
        return values.cell_text(cell(cells, sheet, name))

    def parse(name: str, fn: Callable[[Any], Any]) -> Any:
        raw = cell(cells, sheet, name)
        if values.cell_text(raw) == "":
            return None
        try:
            return fn(raw)
        except ValueError as e:
            err.add(n, name, raw, str(e))
            return None

    case_ref = text("case_ref")
    if not case_ref:
        err.add(n, "case_ref", "", "the municipality's case reference is required")
    elif len(case_ref) > 64:
        err.add(n, "case_ref", case_ref, "longer than 64 characters")
    elif formula_like(case_ref):
        err.add(n, "case_ref", case_ref, FORMULA_REASON)
    elif looks_like_bsn(case_ref):
        err.add(n, "case_ref", case_ref, BSN_AS_REFERENCE)
    period_ref = text("period_ref") or None
    bsn = parse("bsn", values.parse_bsn)
    if period_ref is None and bsn is None and not text("bsn"):
        err.add(n, "period_ref", "", "give the detention reference (detentiekenmerk) or the BSN")
    consent_status = parse("consent", lambda v: values.parse_code("consent", v))
    consent_date = parse("consent_date", values.parse_date)
    scope = parse("consent_scope", lambda v: values.parse_codes("scope", v))
    consent: ConsentIn | None = None
    if consent_status is not None and consent_status != ConsentStatus.NONE:
        if consent_date is None:
            if not text("consent_date"):
                err.add(n, "consent_date", "", "the date of the consent is required")
        else:
            consent = ConsentIn(
                consent_status,
                consent_date,
                tuple(scope) if scope else (ConsentScope.REGISTRATION.value,),
            )
            for column, reason in check_consent(consent):
                err.add(n, "consent_date" if column == "date" else "consent", consent_date, reason)
    statuses: dict[str, str] = {}
    for c in CONDITIONS:
        code = parse(c.value, functools.partial(values.parse_code, c.value))
        if code is not None:
            statuses[c.value] = code
    needs = parse("care_needs", functools.partial(values.parse_codes, "care_need")) or []
    moment = parse("moment", lambda v: values.parse_code("moment", v))
    as_of = parse("as_of", values.parse_date)
    conditions: ConditionsIn | None = None
    if statuses or needs:
        if moment is None:
            if not text("moment"):
                err.add(n, "moment", "", "a moment is required with condition statuses")
        else:
            conditions = ConditionsIn(moment, statuses, tuple(needs), as_of)
            for column, value, reason in check_conditions(conditions):
                err.add(n, column, value, reason)
    elif moment is not None:
        err.add(n, "moment", text("moment"), "a moment without any condition status")
    recorded_by = text("recorded_by")[:100] or None
    if formula_like(recorded_by):
        err.add(n, "recorded_by", recorded_by, FORMULA_REASON)
    raw = {
        k: cell(cells, sheet, k)
        for k in ("bsn", "consent", "consent_date", "moment", "period_ref", "as_of")
    }
    return _CaseLine(
        n,
        case_ref,
        period_ref,
        bsn,
        consent,
        conditions,
        recorded_by,
        raw,
        bad=err.count > before,
        moment=moment,
    )


def import_cases(
    engine: Engine,
    path: Path,
    *,
    municipality: str,
    actor: str,
    dry_run: bool = False,
    write_report: bool = True,
    now: datetime | None = None,
) -> ImportReport:
    """Import a municipality's cases: their own case reference, consent, and condition statuses
    per moment (one row per case and moment)."""
    now = now or now_utc()
    municipality = check_municipality(municipality)
    report = ImportReport("cases", path, municipality, dry_run)
    sheet = open_for(report, CASE_ALIASES, ("case_ref",))
    if sheet is None:
        return finish(report, write_report=write_report)
    err = Collector(report, sheet)
    if "period_ref" not in sheet.columns and "bsn" not in sheet.columns:
        err.add(1, "", "", "the file needs a column detentiekenmerk or bsn")
        return finish(report, write_report=write_report)
    lines: list[_CaseLine] = []
    for n, cells in sheet_rows(sheet, err):
        report.rows += 1
        lines.append(_parse_case_line(n, cells, sheet, err))
    with engine.begin() as conn:
        plan = _plan_cases(conn, lines, municipality, err)
        if report.errors or report.more_errors:
            return finish(report, write_report=write_report)
        report.applied = sum(1 for p in plan if p.changes)
        report.unchanged = len(plan) - report.applied
        if dry_run:
            return finish(report, write_report=write_report)
        report.import_id = start_import(conn, report, actor, sha256_of(path), now)
        _apply_cases(conn, plan, report.import_id, actor, now)
        end_import(conn, report)
    return finish(report, write_report=write_report)


@dataclass
class _CasePlan:
    line: _CaseLine
    case: CaseRow
    set_ref: bool = False
    consent: ConsentIn | None = None
    as_of: date | None = None
    facts: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return self.set_ref or self.consent is not None or bool(self.facts)


def _plan_cases(
    conn: Connection, lines: list[_CaseLine], municipality: str, err: Collector
) -> list[_CasePlan]:
    cases = [
        case_from_row(r)
        for r in conn.execute(
            case_select().where(reintegration_cases.c.municipality == municipality)
        )
    ]
    by_period = {c.period_ref: c for c in cases}
    by_ref = {c.municipal_ref: c for c in cases if c.municipal_ref}
    by_bsn: dict[str, list[CaseRow]] = {}
    for c in cases:
        if c.bsn:
            by_bsn.setdefault(c.bsn, []).append(c)
    # every consent recorded for the cases (a row that states one of them changes nothing:
    # an old file's consent never undoes a later withdrawal), the current one's date, and
    # the cases' facts
    recorded: dict[int, set[tuple[str, date | None, str]]] = {}
    current_on: dict[int, date] = {}
    for chunk in chunks([c.id for c in cases]):
        for rc in conn.execute(
            select(reintegration_consents)
            .where(among(conn, reintegration_consents.c.case_id, chunk))
            .order_by(reintegration_consents.c.id)
        ):
            on_date = read_date(rc.on_date)
            recorded.setdefault(rc.case_id, set()).add((rc.status, on_date, rc.scope))
            if on_date is not None:
                current_on[rc.case_id] = on_date
    facts = current_facts(conn, [c.id for c in cases])
    ref_of: dict[int, str] = {}  # case id -> case reference given in this file
    case_of: dict[str, tuple[int, int]] = {}  # case reference -> (case id, first row) in this file
    ref_set: set[int] = set()  # cases that get their reference from this file
    seen_moment: dict[tuple[int, str], int] = {}
    state: dict[int, tuple[str, tuple[str, ...]]] = {
        c.id: (c.consent, c.consent_scope) for c in cases
    }
    plans: list[_CasePlan] = []
    for line in lines:
        n = line.row
        raw = line.raw
        case = None
        if line.period_ref is not None:
            case = by_period.get(line.period_ref)
            if case is None:
                err.add(
                    n,
                    "period_ref",
                    raw.get("period_ref", line.period_ref),
                    f"no case for this detention period in {municipality}",
                )
                continue
            if line.bsn is not None and case.bsn != line.bsn:
                err.add(n, "bsn", raw["bsn"], "does not match the person of the detention period")
                continue
        elif line.bsn is not None:
            found = by_bsn.get(line.bsn, [])
            if len(found) != 1:
                reason = (
                    f"no case for this person in {municipality}"
                    if not found
                    else f"the person has {len(found)} cases in {municipality}: "
                    "give the detention reference (detentiekenmerk)"
                )
                err.add(n, "bsn", raw["bsn"], reason)
                continue
            case = found[0]
        if case is None:
            continue
        if line.bad:  # its own errors are reported: only look for a repeat of it below
            if line.case_ref:
                case_of.setdefault(line.case_ref, (case.id, n))
            if line.moment is not None:
                seen_moment.setdefault((case.id, line.moment), n)
            continue
        owner = by_ref.get(line.case_ref)
        if owner is not None and owner.id != case.id:
            err.add(
                n, "case_ref", line.case_ref, f"is already the reference of case {owner.period_ref}"
            )
            continue
        if case.municipal_ref and case.municipal_ref != line.case_ref:
            err.add(
                n,
                "case_ref",
                line.case_ref,
                f"this case already has the reference [{case.municipal_ref}]",
            )
            continue
        if ref_of.setdefault(case.id, line.case_ref) != line.case_ref:
            err.add(
                n,
                "case_ref",
                line.case_ref,
                f"the same case has reference [{ref_of[case.id]}] above",
            )
            continue
        other, first_row = case_of.setdefault(line.case_ref, (case.id, n))
        if other != case.id:
            err.add(
                n,
                "case_ref",
                line.case_ref,
                f"is the reference of another case on row {first_row}",
            )
            continue
        plan = _CasePlan(line, case, set_ref=case.municipal_ref is None and case.id not in ref_set)
        if plan.set_ref:
            ref_set.add(case.id)
        if line.consent is not None:
            given = line.consent
            scope = ",".join(sorted(given.scope)) if given.status == ConsentStatus.GIVEN else ""
            stated = (given.status, given.on_date, scope)
            if stated not in recorded.get(case.id, ()):
                if (
                    given.status == ConsentStatus.WITHDRAWN
                    and state[case.id][0] != ConsentStatus.GIVEN
                ):
                    err.add(n, "consent", raw["consent"], "no consent given to withdraw")
                    continue
                late = consent_too_early(current_on.get(case.id), given.on_date)
                if late:
                    err.add(n, "consent_date", raw["consent_date"], late)
                    continue
                plan.consent = given
                recorded.setdefault(case.id, set()).add(stated)
                current_on[case.id] = given.on_date
                state[case.id] = (given.status, tuple(sorted(given.scope)) if scope else ())
        if line.conditions is not None:
            status, scope_now = state[case.id]
            if status != ConsentStatus.GIVEN or ConsentScope.REGISTRATION not in scope_now:
                err.add(
                    n,
                    "consent",
                    status,
                    "condition statuses need consent given for registration "
                    "(give it in this row or an earlier one)",
                )
                continue
            key = (case.id, line.conditions.moment)
            if key in seen_moment:
                err.add(
                    n,
                    "moment",
                    raw["moment"],
                    f"this case and moment are already on row {seen_moment[key]}",
                )
                continue
            seen_moment[key] = n
            try:
                as_of, new = plan_conditions(case, line.conditions, facts.get(case.id, {}))
            except ReintegrationError as e:
                column = e.field or "moment"
                err.add(n, column, raw.get(column, line.conditions.moment), e.message)
                continue
            plan.as_of, plan.facts = as_of, new
        plans.append(plan)
    return plans


def _apply_cases(
    conn: Connection, plans: list[_CasePlan], import_id: int, actor: str, now: datetime
) -> None:
    """Write a checked plan with set-based statements (a municipality's file has thousands
    of rows): references, consent records and the cases' current consent, prefill from the
    screening, facts, audit."""
    source = f"import:{import_id}"
    touched: Counter[int] = Counter()
    refs = []
    consents = []
    current: dict[int, tuple[str, str | None]] = {}
    audits: dict[str, list[tuple[int | None, dict[str, Any]]]] = {}
    prefill: dict[int, int] = {}
    facts: list[dict[str, Any]] = []
    for p in plans:
        who = (p.line.recorded_by or actor)[:100]
        if p.set_ref:
            refs.append({"b_id": p.case.id, "b_ref": p.line.case_ref})
            touched[p.case.id] += 1
        if p.consent is not None:
            c = p.consent
            given = c.status == ConsentStatus.GIVEN
            scope = ",".join(sorted(c.scope)) if given else ""
            consents.append(
                {
                    "case_id": p.case.id,
                    "status": c.status,
                    "on_date": c.on_date,
                    "scope": scope,
                    "recorded_at": now,
                    "recorded_by": who,
                    "source": source,
                }
            )
            current[p.case.id] = (c.status, scope or None)
            audits.setdefault(f"consent_{c.status}", []).append(
                (p.case.id, {"on": c.on_date.isoformat(), "scope": scope, "source": source})
            )
            if given and ConsentScope.REGISTRATION in c.scope:
                prefill[p.case.id] = p.case.period_id
            touched[p.case.id] += 1
        if p.facts and p.line.conditions is not None:
            facts.extend(
                {
                    "case_id": p.case.id,
                    "condition": name,
                    "moment": p.line.conditions.moment,
                    "status": status,
                    "detail": detail,
                    "as_of": p.as_of,
                    "recorded_at": now,
                    "recorded_by": who,
                    "source": source,
                }
                for name, status, detail in p.facts
            )
            touched[p.case.id] += len(p.facts)
    t = reintegration_cases
    if refs:
        conn.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"))
            .values(municipal_ref=bindparam("b_ref"), updated_at=now),
            refs,
        )
    if consents:
        conn.execute(reintegration_consents.insert(), consents)
        conn.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"))
            .values(
                consent=bindparam("b_consent"), consent_scope=bindparam("b_scope"), updated_at=now
            ),
            [
                {"b_id": case_id, "b_consent": status, "b_scope": scope}
                for case_id, (status, scope) in current.items()
            ],
        )
        for action, entries in audits.items():
            audit_many(conn, actor, action, entries, at=now)
    if prefill:
        prefill_screenings(conn, list(prefill.items()), now=now)
    if facts:
        conn.execute(condition_facts.insert(), facts)
    audit_many(
        conn,
        actor,
        "case_imported",
        [
            (case_id, {"import_id": import_id, "changes": n})
            for case_id, n in sorted(touched.items())
        ],
        at=now,
    )
