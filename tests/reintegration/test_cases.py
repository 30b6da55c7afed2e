"""Cases open from detention data; consent governs what they hold; conditions are dated facts
with history; activities; the burden of a release-moment registration."""

from __future__ import annotations

import json
import random
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.tables import detention_periods
from terugkeer.domain.bsn import generate_bsn
from terugkeer.reintegration import codes
from terugkeer.reintegration.cases import open_cases, reintegration_hook
from terugkeer.reintegration.codes import Condition, InOrder
from terugkeer.reintegration.errors import Conflict, ConsentRequired, Invalid, NotFound
from terugkeer.reintegration.importing import import_screenings
from terugkeer.reintegration.queries import (
    activity_costs,
    completeness,
    condition_history,
    current_conditions,
    get_case,
    list_activities,
    not_in_order_at_release,
    registration_form,
    upcoming_returns,
    upcoming_returns_page,
)
from terugkeer.reintegration.service import (
    ActivityIn,
    ConditionsIn,
    ConsentIn,
    add_activity,
    record_conditions,
    record_consent,
    update_activity,
)
from terugkeer.reintegration.tables import reintegration_cases
from terugkeer.security.tables import audit_log
from tests.feedutil import BSN2, intake, lines, msg

DOCS = Path(__file__).parents[2] / "docs"
USER = "caseworker:ams-1"
GM = "GM0363"
ALL_OK = {"id": "valid", "housing": "own_or_rented", "income": "work", "debts": "none"}


def _ingest(engine: Engine, *messages: dict[str, object]) -> None:
    result = ingest_text(engine, lines(*messages), hooks=[reintegration_hook()])
    assert result.quarantined == 0, result


def _case_id(engine: Engine, period: str = "P1") -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(reintegration_cases.c.id)
                .join(detention_periods, detention_periods.c.id == reintegration_cases.c.period_id)
                .where(detention_periods.c.period_ref == period)
            ).scalar_one()
        )


def _released(engine: Engine) -> int:
    _ingest(
        engine,
        intake("e1"),
        msg("release", "e2", 30, release_kind="end_of_sentence", return_municipality=GM),
    )
    return _case_id(engine)


def test_cases_open_when_a_release_is_planned_and_follow_the_period(engine: Engine) -> None:
    _ingest(engine, intake("e1"))  # a planned release date in the intake
    case_id = _case_id(engine)
    with engine.connect() as conn:
        case = get_case(conn, case_id, GM, actor=USER)
    assert case.status == "planned"
    assert case.consent == "none"
    assert case.period.period_ref == "P1"
    assert case.period.planned_release_date == date(2026, 2, 10)
    # without consent: only the release signal
    assert case.moments is None
    assert case.activities is None
    assert not case.registration_allowed

    _ingest(engine, msg("release", "e2", 40, release_kind="conditional_release"))
    with engine.connect() as conn:
        case = get_case(conn, case_id, GM, actor=USER)
        assert case.status == "returned"
        assert case.period.release_date == date(2025, 2, 15)
        actions = [
            r.action
            for r in conn.execute(
                select(audit_log.c.action).where(audit_log.c.record_type == "reintegration_case")
            )
        ]
    assert "case_opened" in actions
    assert "case_followed_period" in actions
    # another municipality cannot see it
    with engine.connect() as conn, pytest.raises(NotFound):
        get_case(conn, case_id, "GM0599", actor=USER)


@pytest.mark.parametrize("batches", ["one", "three"])
def test_a_case_follows_its_period_to_the_person_of_a_new_intake(
    engine: Engine, batches: str
) -> None:
    """The intake named the wrong person; it is withdrawn and the period taken in again for
    the right one. The case must name the period's new person: the monitor links a case to
    its person's reconvictions, and the caseworker's page shows its person."""
    messages = [
        intake("e1"),
        msg("correction", "c1", 1, withdraws="e1"),
        intake("e1b", days=0.5, bsn=BSN2),
    ]
    for batch in [messages] if batches == "one" else [[m] for m in messages]:
        _ingest(engine, *batch)
    with engine.connect() as conn:
        period_person, case_person = conn.execute(
            select(detention_periods.c.person_id, reintegration_cases.c.person_id).join(
                reintegration_cases,
                reintegration_cases.c.period_id == detention_periods.c.id,
            )
        ).one()
        followed = (
            conn.execute(
                select(audit_log.c.details).where(
                    audit_log.c.record_type == "reintegration_case",
                    audit_log.c.action == "case_followed_period",
                )
            )
            .scalars()
            .all()
        )
    assert case_person == period_person
    if batches == "three":  # the case was opened for the first person, then followed
        assert any("person_id" in json.loads(d) for d in followed)


def test_who_gets_a_case(engine: Engine) -> None:
    without_date = {"planned_release_date": None}
    _ingest(
        engine,
        # no release planned yet: no case, until a date is set
        msg(
            "intake",
            "a1",
            0,
            period="A",
            title="pre_trial",
            offences=[{"category": "vermogen", "statutory_max_years": 4}],
            residence_municipality=GM,
        ),
        # a short stay: no case
        intake("b1", period="B", bsn=BSN2, fields={"planned_release_date": "2025-01-10"}),
        # a juvenile: no case
        intake(
            "c1",
            period="C",
            bsn=None,
            prison_number="DJ12345678",
            fields={"birth_date": "2010-05-01", "sex": "M"},
        ),
    )
    assert without_date  # (documentation of the first case)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(reintegration_cases)).scalar() == 0
    _ingest(engine, msg("release_date_set", "a2", 5, period="A", planned_release_date="2025-06-01"))
    assert _case_id(engine, "A")
    # the back-fill finds nothing new and changes nothing
    result = open_cases(engine, None)
    assert result.opened == 0
    assert result.updated == 0
    assert result.unchanged == 1
    assert result.skipped == {"short_stay": 1, "juvenile": 1}


def test_a_death_cancels_the_case(engine: Engine) -> None:
    _ingest(engine, intake("e1"))
    _ingest(engine, msg("death", "e2", 50))
    with engine.connect() as conn:
        assert conn.execute(select(reintegration_cases.c.status)).scalar_one() == "cancelled"


def test_consent_governs_registration(engine: Engine) -> None:
    case_id = _released(engine)
    release = ConditionsIn("release", {**ALL_OK, "care": "not_needed"})
    with pytest.raises(ConsentRequired, match="no consent"):
        record_conditions(engine, case_id, release, actor=USER, municipality=GM)
    record_consent(
        engine, case_id, ConsentIn("refused", date(2025, 1, 20)), actor=USER, municipality=GM
    )
    with pytest.raises(ConsentRequired):
        record_conditions(engine, case_id, release, actor=USER, municipality=GM)
    with pytest.raises(Conflict, match="no consent given to withdraw"):
        record_consent(engine, case_id, ConsentIn("withdrawn", date(2025, 1, 21)), actor=USER)
    record_consent(engine, case_id, ConsentIn("given", date(2025, 1, 22)), actor=USER)
    assert record_conditions(engine, case_id, release, actor=USER).written == 5
    record_consent(engine, case_id, ConsentIn("withdrawn", date(2025, 3, 1)), actor=USER)
    with pytest.raises(ConsentRequired):
        record_conditions(engine, case_id, release, actor=USER)
    with pytest.raises(ConsentRequired):
        add_activity(
            engine, case_id, ActivityIn("apply_id", "Gemeente", date(2025, 3, 2)), actor=USER
        )
    with engine.connect() as conn:
        case = get_case(conn, case_id, GM, actor=USER)
        assert case.moments is None  # back to the release signal only
        with pytest.raises(ConsentRequired):
            current_conditions(conn, case_id, GM, actor=USER)
        actions = [
            r.action
            for r in conn.execute(
                select(audit_log.c.action).where(audit_log.c.record_type == "reintegration_case")
            )
        ]
    assert {"consent_refused", "consent_given", "consent_withdrawn"} <= set(actions)
    with pytest.raises(Invalid, match="future"):
        record_consent(engine, case_id, ConsentIn("given", date(2999, 1, 1)), actor=USER)
    # a consent dated before the withdrawal is older news: it does not bring consent back
    with pytest.raises(Conflict, match="current consent"):
        record_consent(engine, case_id, ConsentIn("given", date(2025, 2, 1)), actor=USER)
    with pytest.raises(ConsentRequired):
        record_conditions(engine, case_id, release, actor=USER)
    # given again on the day of the withdrawal or later, it is the current consent
    record_consent(engine, case_id, ConsentIn("given", date(2025, 3, 1)), actor=USER)
    assert record_conditions(engine, case_id, release, actor=USER).written == 0


def test_conditions_are_dated_facts_with_history(engine: Engine) -> None:
    case_id = _released(engine)
    record_consent(engine, case_id, ConsentIn("given", date(2025, 1, 10)), actor=USER)
    first = ConditionsIn(
        "release", {**ALL_OK, "income": "none", "care": "not_arranged"}, ("addiction",)
    )
    assert record_conditions(engine, case_id, first, actor=USER).written == 5
    # the same again: nothing new
    assert record_conditions(engine, case_id, first, actor="someone:else").written == 0
    # a correction: a new fact, the old one kept
    fixed = ConditionsIn("release", {"income": "benefit"}, as_of=date(2025, 2, 5))
    assert record_conditions(engine, case_id, fixed, actor="caseworker:ams-2").written == 1
    with engine.connect() as conn:
        history = condition_history(conn, case_id, GM, actor=USER)
        moments = current_conditions(conn, case_id, GM, actor=USER)
    assert [(f.condition, f.status) for f in history if f.condition == "income"] == [
        ("income", "none"),
        ("income", "benefit"),
    ]
    release = next(m for m in moments if m.moment == "release")
    income = release.conditions["income"]
    assert income is not None
    assert income.as_of == date(2025, 2, 5)
    assert income.recorded_by == "caseworker:ams-2"
    care = release.conditions["care"]
    assert care is not None
    assert care.detail == "addiction"
    assert care.in_order is InOrder.NO
    # the release date from detention is the default date
    assert history[0].as_of == date(2025, 2, 5)
    assert release.complete
    assert release.in_order is InOrder.NO
    bad = [
        ConditionsIn("release", {"housing": "castle"}),
        ConditionsIn("sometime", {"id": "valid"}),
        ConditionsIn("release", {"care": "not_needed"}, ("addiction",)),
        ConditionsIn("release", {"id": "valid"}, as_of=date(2999, 1, 1)),
    ]
    for c in bad:
        with pytest.raises(Invalid):
            record_conditions(engine, case_id, c, actor=USER)


def test_month_moments_need_a_release(engine: Engine) -> None:
    _ingest(engine, intake("e1"))
    case_id = _case_id(engine)
    record_consent(engine, case_id, ConsentIn("given", date(2025, 1, 10)), actor=USER)
    with pytest.raises(Invalid, match="release into society"):
        record_conditions(engine, case_id, ConditionsIn("month_1", {"id": "valid"}), actor=USER)
    before = ConditionsIn("before_release", {"id": "applied_for"}, as_of=date(2025, 1, 20))
    assert record_conditions(engine, case_id, before, actor=USER).written == 1


def test_the_screening_prefills_the_intake_once_consent_is_given(
    engine: Engine, tmp_path: Path
) -> None:
    case_id = _released(engine)
    screening = tmp_path / "screenings.csv"
    screening.write_text(
        "detentiekenmerk;screeningsdatum;identiteitsbewijs;onderdak;werk_inkomen;schulden;zorg;zorgbehoefte\n"
        "P1;08-01-2025;geldig;dakloos;geen;zonder plan;niet geregeld;ggz\n",
        encoding="utf-8",
    )
    report = import_screenings(engine, screening, actor="dji")
    assert report.errors == []
    assert report.applied == 1
    with engine.connect() as conn:
        assert get_case(conn, case_id, GM, actor=USER).moments is None
    record_consent(engine, case_id, ConsentIn("given", date(2025, 1, 10)), actor=USER)
    with engine.connect() as conn:
        moments = current_conditions(conn, case_id, GM, actor=USER)
    intake_moment = moments[0]
    assert intake_moment.moment == "intake"
    assert intake_moment.complete
    housing = intake_moment.conditions["housing"]
    assert housing is not None
    assert housing.status == "homeless"
    assert housing.source == "screening"
    assert housing.as_of == date(2025, 1, 8)


def test_activities(engine: Engine) -> None:
    case_id = _released(engine)
    record_consent(engine, case_id, ConsentIn("given", date(2025, 1, 10)), actor=USER)
    a = ActivityIn(
        "debt_counselling",
        "Kredietbank Amsterdam",
        date(2025, 2, 1),
        date(2025, 6, 1),
        hours_x100=1250,
        cost_cents=150000,
        funder="municipality",
        programme="Aanpak Nazorg Amsterdam",
    )
    activity_id = add_activity(engine, case_id, a, actor=USER, municipality=GM)
    with pytest.raises(Conflict):
        add_activity(engine, case_id, a, actor=USER)
    with pytest.raises(Invalid, match="funder"):
        add_activity(
            engine,
            case_id,
            ActivityIn("apply_id", "Gemeente", date(2025, 2, 1), cost_cents=7038),
            actor=USER,
        )
    with pytest.raises(Invalid, match="before the start"):
        add_activity(
            engine,
            case_id,
            ActivityIn("apply_id", "Gemeente", date(2025, 2, 1), date(2025, 1, 1)),
            actor=USER,
        )
    update_activity(
        engine,
        case_id,
        activity_id,
        ActivityIn("case_management", "Gemeente", date(2025, 2, 1), cost_cents=0),
        actor=USER,
    )
    add_activity(
        engine,
        case_id,
        ActivityIn(
            "apply_id", "Gemeente", date(2025, 2, 3), cost_cents=7038, funder="municipality"
        ),
        actor=USER,
    )
    with engine.connect() as conn:
        listed = list_activities(conn, case_id, GM, actor=USER)
        costs = activity_costs(conn, GM)
        details = [
            json.loads(r.details)
            for r in conn.execute(
                select(audit_log.c.details)
                .where(audit_log.c.action == "activity_changed")
                .order_by(audit_log.c.id.desc())
                .limit(1)
            )
        ]
    assert [x.type for x in listed] == ["case_management", "apply_id"]
    assert str(listed[1].cost_eur) == "70.38"
    assert details[0]["before"]["type"] == "debt_counselling"
    assert [(c.condition, c.programme, str(c.cost_eur)) for c in costs] == [
        ("id", None, "70.38"),
        ("general", None, "0.00"),
    ]


def test_steering(engine: Engine) -> None:
    _ingest(
        engine,
        intake("e1", fields={"planned_release_date": "2025-03-01", "return_municipality": GM}),
        intake("f1", period="P2", bsn=BSN2, fields={"planned_release_date": "2025-02-01"}),
        msg("release", "f2", 26, period="P2", bsn=BSN2, release_kind="end_of_sentence"),
    )
    with engine.connect() as conn:
        upcoming = upcoming_returns(conn, GM, actor=USER, on=date(2025, 2, 10))
    assert [(u.period_ref, u.days_until) for u in upcoming] == [("P1", 19)]
    released = _case_id(engine, "P2")
    record_consent(engine, released, ConsentIn("given", date(2025, 1, 10)), actor=USER)
    record_conditions(
        engine, released, ConditionsIn("release", {**ALL_OK, "income": "none"}), actor=USER
    )
    with engine.connect() as conn:
        bad = not_in_order_at_release(conn, GM, actor=USER)
        shares = completeness(conn, on=date(2025, 4, 1))
    assert [(b.period_ref, b.not_in_order, b.unknown) for b in bad] == [
        ("P2", ["income"], ["care"])
    ]
    (gm,) = shares
    assert gm.municipality == GM
    assert gm.cases == 2
    assert gm.with_consent == 1
    by_moment = {m.moment: (m.due, m.recorded) for m in gm.moments}
    assert by_moment["release"] == (1, 0)  # care missing: not complete
    assert by_moment["month_1"] == (1, 0)
    assert by_moment["month_6"] == (0, 0)
    record_conditions(engine, released, ConditionsIn("release", {"care": "not_needed"}), actor=USER)
    with engine.connect() as conn:
        (gm,) = completeness(conn, GM, on=date(2025, 4, 1))
    assert {m.moment: m.share for m in gm.moments}["release"] == 1.0


def test_burden_of_a_release_registration(engine: Engine) -> None:
    """docs/conditions.md states the fields a caseworker types; this keeps it so (and <= 8)."""
    case_id = _released(engine)
    record_consent(engine, case_id, ConsentIn("given", date(2025, 1, 10)), actor=USER)
    with engine.connect() as conn:
        form = registration_form(conn, case_id, "release", GM, actor="cli:test")
    typed = [f.name for f in form.fields if f.required and f.value is None]
    assert typed == ["id", "housing", "income", "debts", "care", "care_needs"]
    assert form.to_type == len(typed) <= 8
    stated = re.search(r"\*\*(\d+) fields\*\*", (DOCS / "conditions.md").read_text("utf-8"))
    assert stated is not None
    assert int(stated.group(1)) == form.to_type
    as_of = next(f for f in form.fields if f.name == "as_of")
    assert as_of.value == "2025-02-05"
    assert as_of.prefilled_from == "detention data"


def test_docs_list_every_code() -> None:
    text = (DOCS / "conditions.md").read_text("utf-8")
    for condition in Condition:
        for status in codes.STATUSES[condition]:
            assert f"`{status.code}`" in text, (condition, status.code)
            assert status.in_order.value in text
    for t in codes.ACTIVITY_TYPES:
        assert f"`{t.code}`" in text
    for m in codes.Moment:
        assert f"`{m.value}`" in text


def test_a_page_of_upcoming_returns_audits_only_the_cases_on_it(engine: Engine) -> None:
    """The caseworker's page of expected returns shows 25 at a time: the audit log says which
    cases were shown, not every case in the window."""
    rng = random.Random(5)
    _ingest(
        engine,
        *(
            intake(
                f"e{n}",
                period=f"P{n}",
                bsn=generate_bsn(rng),
                fields={"planned_release_date": f"2025-03-{n + 1:02d}", "return_municipality": GM},
            )
            for n in range(5)
        ),
    )
    with engine.connect() as conn:  # the log keeps earlier tests' rows: count from here
        before = conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one()
    with engine.begin() as conn:
        total, shown = upcoming_returns_page(
            conn, GM, actor=USER, limit=2, offset=2, on=date(2025, 2, 10), days=60
        )
    assert total == 5
    assert [u.period_ref for u in shown] == ["P2", "P3"]  # soonest first
    with engine.connect() as conn:
        listed = conn.execute(
            select(audit_log.c.record_id).where(
                audit_log.c.action == "case_listed", audit_log.c.id > before
            )
        ).scalars()
        assert sorted(listed) == sorted(str(u.case_id) for u in shown)
    with engine.begin() as conn:
        everything = upcoming_returns(conn, GM, actor=USER, on=date(2025, 2, 10), days=60)
    assert [u.period_ref for u in everything] == [f"P{n}" for n in range(5)]
    assert everything[2:4] == shown
