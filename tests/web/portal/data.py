"""Test data for the portal's caseworker and analyst pages: residents of GM0363 (and one of
GM0599) released from detention, with consent, conditions at release and activities."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.reintegration import service
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.reintegration.tables import reintegration_cases
from terugkeer.security.actor import Actor
from tests.feedutil import intake, lines, msg

GM, OTHER = "GM0363", "GM0599"
WHO = Actor.system("test", "portal test data")
GOOD = {
    "id": "valid",
    "housing": "own_or_rented",
    "income": "benefit",
    "debts": "none",
    "care": "not_needed",
}
BAD = {**GOOD, "housing": "homeless"}


def _valid(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
    return (total - int(digits[8])) % 11 == 0


BSNS = [b for b in (f"9999{t:05d}" for t in range(2000)) if _valid(b)]


def _bsn(i: int) -> str:
    """The i-th valid test BSN (11-proef) from 999900000."""
    return BSNS[i]


def residents(engine: Engine, returned: int, *, planned: int = 1, other: int = 1) -> None:
    """``returned`` residents of GM0363 released in 2025, ``planned`` still inside with a
    planned release, ``other`` released to GM0599."""
    messages = []
    n = 0
    for kind, count, where in (
        ("returned", returned, GM),
        ("planned", planned, GM),
        ("returned", other, OTHER),
    ):
        for _ in range(count):
            n += 1
            ref = f"P{n}"
            messages.append(
                intake(
                    f"i{n}",
                    period=ref,
                    bsn=_bsn(n),
                    fields={"residence_municipality": where, "planned_release_date": "2025-02-10"},
                )
            )
            if kind == "returned":
                messages.append(
                    msg("release", f"r{n}", 35, ref, bsn=_bsn(n), release_kind="end_of_sentence")
                )
    result = ingest_text(engine, lines(*messages), hooks=[reintegration_hook()])
    assert result.quarantined == 0, result


def case_ids(engine: Engine, municipality: str = GM, status: str = "returned") -> list[int]:
    c = reintegration_cases.c
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(c.id)
                .where(c.municipality == municipality, c.status == status)
                .order_by(c.id)
            ).scalars()
        )


def register(engine: Engine, case_id: int, municipality: str, statuses: dict[str, str]) -> None:
    """Consent, the five conditions at release, and one activity of 250 euro."""
    service.record_consent(
        engine,
        case_id,
        service.ConsentIn("given", date(2025, 1, 20)),
        actor=WHO,
        municipality=municipality,
    )
    service.record_conditions(
        engine,
        case_id,
        service.ConditionsIn("release", statuses, as_of=date(2025, 2, 10)),
        actor=WHO,
        municipality=municipality,
    )
    service.add_activity(
        engine,
        case_id,
        service.ActivityIn(
            "apply_id", "Gemeente", date(2025, 2, 1), cost_cents=25000, funder="municipality"
        ),
        actor=WHO,
        municipality=municipality,
    )
