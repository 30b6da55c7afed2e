"""A small synthetic store for the cost-benefit analysis: released periods, reconvictions,
new periods, cases with income at release and activities under a programme, written straight
into the tables (no feed), with the truth it was built from. A new period ends in a transfer
to tbs, so that it is not a release of its own."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, insert

from terugkeer.detention.tables import detention_periods, persons, reconvictions
from terugkeer.reintegration.tables import activities, condition_facts, reintegration_cases

GM = "GM0363"
PI = "PI-VUG"  # a penitentiaire inrichting in the reference data
PROGRAMME = "Aanpak nazorg Teststad"
OTHER_CONDITIONS = {  # at release, in order or not (income is drawn with the truth)
    "id": ["valid", "expired"],
    "housing": ["own_or_rented", "homeless"],
    "debts": ["none", "without_plan"],
    "care": ["not_needed", "not_arranged"],
}


@dataclass
class Truth:
    releases: int
    reconvicted: int
    back: int
    return_months: list[float]
    work: int
    benefit: int
    known_income: int
    programme_cases: int
    programme_cost: float
    central_cost: float


def build(engine: Engine, *, n: int = 120, seed: int = 1) -> Truth:
    rng = random.Random(seed)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    people, periods, cases, recs, facts, acts = [], [], [], [], [], []
    truth = Truth(n, 0, 0, [], 0, 0, 0, 0, 0.0, 0.0)
    pid = 0
    for i in range(1, n + 1):
        people.append(
            {
                "id": i,
                "prison_number": f"T{i:06d}",
                "birth_date": date(1960 + rng.randrange(40), 1 + rng.randrange(12), 1),
                "sex": rng.choice("MMMF"),
            }
        )
        out = datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(days=rng.randrange(180))
        if rng.random() < 0.3:  # an earlier stay (a transfer to tbs: not a release)
            pid += 1
            before = datetime(2022, 3, 1, tzinfo=UTC)
            periods.append(_period(pid, i, PI, before, before + timedelta(days=60), "into_tbs"))
        pid += 1
        first = pid
        periods.append(_period(pid, i, PI, out - timedelta(days=90), out, "end_of_sentence"))
        if rng.random() < 0.45:
            truth.reconvicted += 1
            day = (out + timedelta(days=rng.randrange(1, 700))).date()
            recs.append(_rec(len(recs) + 1, i, day, "conviction"))
        elif rng.random() < 0.2:  # not counted: acquitted
            recs.append(_rec(len(recs) + 1, i, (out + timedelta(days=30)).date(), "acquittal"))
        if rng.random() < 0.3:
            truth.back += 1
            back_in = out + timedelta(days=rng.randrange(20, 700))
            stay = rng.randrange(30, 200)
            truth.return_months.append(stay / (365.25 / 12))
            pid += 1
            periods.append(_period(pid, i, PI, back_in, back_in + timedelta(days=stay), "into_tbs"))
        status = rng.choice(["work", "benefit", "benefit", "none", "unknown", "education"])
        if status != "unknown":
            truth.known_income += 1
            truth.work += status in ("work", "education")
            truth.benefit += status == "benefit"
        cases.append(
            {
                "id": i, "period_id": first, "person_id": i, "municipality": GM if i % 2 else "GM0599",
                "status": "returned", "consent": "given", "opened_at": now, "opened_by": "test",
                "updated_at": now,
            }
        )  # fmt: skip
        facts.append(
            {
                "case_id": i, "condition": "income", "moment": "release", "status": status,
                "as_of": out.date(), "recorded_at": now, "recorded_by": "test", "source": "api",
            }
        )  # fmt: skip
        for condition, statuses in OTHER_CONDITIONS.items():
            facts.append(
                {
                    "case_id": i, "condition": condition, "moment": "release",
                    "status": rng.choice(statuses), "as_of": out.date(), "recorded_at": now,
                    "recorded_by": "test", "source": "api",
                }
            )  # fmt: skip
        if i % 2 and i % 3:
            truth.programme_cases += 1
            for k in range(2):
                cents = rng.randrange(20_000, 200_000)
                funder = "central_government" if k else "municipality"
                truth.programme_cost += cents / 100
                truth.central_cost += cents / 100 if k else 0
                acts.append(_act(len(acts) + 1, i, k, cents, funder, PROGRAMME, now))
        elif i % 2:
            acts.append(_act(len(acts) + 1, i, 0, 50_000, "municipality", None, now))
    # a late registration: every release above has its two years of follow-up in the data
    recs.append(
        _rec(len(recs) + 1, 1, date(2026, 9, 1), "conviction", registered=date(2026, 12, 1))
    )
    with engine.begin() as conn:
        conn.execute(insert(persons), people)
        conn.execute(insert(detention_periods), periods)
        conn.execute(insert(reconvictions), recs)
        conn.execute(insert(reintegration_cases), cases)
        conn.execute(insert(condition_facts), facts)
        conn.execute(insert(activities), acts)
    return truth


def _period(
    pid: int, person: int, inst: str, start: datetime, end: datetime, kind: str
) -> dict[str, object]:
    return {
        "id": pid, "period_ref": f"P{pid}", "person_id": person, "source": "PI-TEST",
        "institution": inst, "title": "prison_sentence", "intake_at": start, "status": "released",
        "release_kind": kind, "ended_at": end, "last_event_at": end, "last_event_id": f"e{pid}",
        "event_count": 2,
    }  # fmt: skip


def _rec(
    i: int, person: int, day: date, decision: str, registered: date | None = None
) -> dict[str, object]:
    reg = registered or day + timedelta(days=60)
    return {
        "id": i, "case_ref": f"Z{i}", "person_id": person, "offence_date": day,
        "registered_at": datetime(reg.year, reg.month, reg.day, 12, tzinfo=UTC),
        "category": "vermogen", "statutory_max_years": 4, "decision": decision,
        "custodial": False, "event_id": f"r{i}",
    }  # fmt: skip


def _act(
    i: int, case: int, k: int, cents: int, funder: str, programme: str | None, now: datetime
) -> dict[str, object]:
    return {
        "id": i, "case_id": case, "key": f"k{k}", "type": "case_management",
        "condition": "general", "provider": "Gemeente", "start_date": date(2024, 3, 1),
        "cost_cents": cents, "funder": funder, "programme": programme, "recorded_at": now,
        "recorded_by": "test", "source": "api", "updated_at": now,
    }  # fmt: skip
