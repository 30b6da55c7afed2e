"""Every action that shows or changes personal data writes its own audit rows, with the actor
it is given (who, in which role, for which purpose), in the same transaction as what it does:
when the audit log cannot be written, the change does not stand and nothing is shown.

Each case below prepares a store, names the action (a call with an actor), the rows it must
write (action, record type) and, for a change, a probe of the state it changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.tables import detention_periods, quarantine
from terugkeer.notify.tables import alerts, deliveries, obligations
from terugkeer.reintegration.cases import open_cases, reintegration_hook
from terugkeer.reintegration.service import (
    ActivityIn,
    ConditionsIn,
    ConsentIn,
    add_activity,
    record_conditions,
    record_consent,
)
from terugkeer.reintegration.tables import reintegration_cases
from terugkeer.security import audit
from terugkeer.security.actor import Actor
from terugkeer.security.tables import audit_log, users
from tests.feedutil import BSN2, intake, lines, msg

GM = "GM0363"
Probe = Callable[[Engine], Any]


@dataclass
class Case:
    """An action under test: ``run(engine, actor)`` after ``prepare(engine)``."""

    run: Callable[[Engine, Actor], Any]
    rows: set[tuple[str, str]]  # (action, record type) it must write
    probe: Probe | None = None  # the state a change changes (None: a read)


def _feed(engine: Engine, *messages: dict[str, Any]) -> None:
    from terugkeer.notify.hook import notify_hook

    ingest_text(engine, lines(*messages), hooks=[notify_hook(), reintegration_hook()])


def _delivered(engine: Engine) -> int:
    from terugkeer.notify.delivery.dispatch import dispatch_once
    from tests.notify.delivery.test_dispatch import channels, clock

    _feed(engine, intake("e1"))
    dispatch_once(engine, clock(), channels=channels())
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(obligations.c.id)
                .where(obligations.c.status == "delivered", obligations.c.recipient_kind == "mayor")
                .order_by(obligations.c.id)
                .limit(1)
            ).scalar_one()
        )


def _one(engine: Engine, stmt: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(stmt).all()


def _case_id(engine: Engine) -> int:
    _feed(engine, intake("e1", fields={"return_municipality": GM}))
    with engine.connect() as conn:
        return int(conn.execute(select(reintegration_cases.c.id)).scalar_one())


def _consented(engine: Engine) -> int:
    case_id = _case_id(engine)
    record_consent(engine, case_id, ConsentIn("given", date(2025, 1, 10)), actor="caseworker:setup")
    return case_id


# -- the cases ---------------------------------------------------------------------------------


def quarantine_list(engine: Engine) -> Case:
    from terugkeer.detention.quarantine import list_quarantine

    ingest_text(engine, lines(msg("release", "e2", 400, release_kind="end_of_sentence")))
    return Case(lambda e, a: list_quarantine(e, actor=a), {("read", "quarantine")})


def quarantine_replay(engine: Engine) -> Case:
    from terugkeer.intake import replay_quarantine

    ingest_text(engine, lines(msg("release", "e2", 400, release_kind="end_of_sentence")))
    return Case(
        lambda e, a: replay_quarantine(e, actor=a),
        {("update", "quarantine")},
        lambda e: _one(e, select(quarantine.c.attempts, quarantine.c.status)),
    )


def periods_check(engine: Engine) -> Case:
    from terugkeer.detention.store import check_periods

    _feed(engine, intake("e1"))
    with engine.begin() as conn:
        conn.execute(update(detention_periods).values(status="released"))

    def run(e: Engine, a: Actor) -> Any:
        with e.begin() as conn:
            return check_periods(conn, actor=a)

    return Case(run, {("read", "detention_period")})


def inbox_list(engine: Engine) -> Case:
    from terugkeer.notify.delivery.inbox import list_notices

    _delivered(engine)

    def run(e: Engine, a: Actor) -> Any:
        with e.begin() as conn:
            return list_notices(conn, "mayor", GM, actor=a)

    return Case(run, {("read", "notice")})


def inbox_get(engine: Engine) -> Case:
    from terugkeer.notify.delivery.inbox import get_notice

    ref = _delivered(engine)

    def run(e: Engine, a: Actor) -> Any:
        with e.begin() as conn:
            return get_notice(conn, ref, actor=a)

    return Case(run, {("read", "notice")})


def inbox_mark_read(engine: Engine) -> Case:
    from terugkeer.notify.delivery.inbox import mark_read

    ref = _delivered(engine)
    return Case(
        lambda e, a: mark_read(e, ref, actor=a),
        {("update", "notice")},
        lambda e: _one(e, select(deliveries.c.read_at).order_by(deliveries.c.id)),
    )


def inbox_acknowledge(engine: Engine) -> Case:
    from terugkeer.notify.delivery.inbox import acknowledge

    ref = _delivered(engine)
    return Case(
        lambda e, a: acknowledge(e, ref, "j.jansen", actor=a),
        {("update", "notice")},
        lambda e: _one(e, select(obligations.c.status).order_by(obligations.c.id)),
    )


def delivery_retry(engine: Engine) -> Case:
    from terugkeer.notify.delivery.dispatch import retry_dead

    _feed(engine, intake("e1"))
    with engine.begin() as conn:
        dead = conn.execute(select(deliveries.c.id).order_by(deliveries.c.id).limit(1)).scalar()
        conn.execute(update(deliveries).where(deliveries.c.id == dead).values(status="dead"))
    return Case(
        lambda e, a: retry_dead(e, dead, actor=a),
        {("update", "delivery")},
        lambda e: _one(e, select(deliveries.c.status).order_by(deliveries.c.id)),
    )


def burst_decision(engine: Engine) -> Case:
    from terugkeer.notify.assurance.watch import decide_burst
    from terugkeer.notify.hook import notify_hook
    from tests.notify.assurance.test_watch import burst

    ingest_text(engine, burst(25), hooks=[notify_hook()])
    alert_id = _one(engine, select(alerts.c.id).where(alerts.c.kind == "burst"))[0][0]
    return Case(
        lambda e, a: decide_burst(e, alert_id, confirm=True, by="operator-1", actor=a),
        {("update", "notice")},
        lambda e: (
            _one(e, select(alerts.c.status).order_by(alerts.c.id)),
            _one(e, select(obligations.c.status).order_by(obligations.c.id)),
        ),
    )


def obligations_list(engine: Engine) -> Case:
    from terugkeer.notify.assurance.backfill import list_obligations

    _feed(engine, intake("e1"))
    return Case(lambda e, a: list_obligations(e, period_ref="P1", actor=a), {("read", "notice")})


def period_explain(engine: Engine) -> Case:
    from terugkeer.notify.assurance.backfill import explain_period

    _feed(engine, intake("e1"))
    return Case(lambda e, a: explain_period(e, "P1", actor=a), {("read", "detention_period")})


def backfill(engine: Engine) -> Case:
    from terugkeer.notify.assurance.backfill import backfill as run_backfill
    from tests.notify.assurance.test_reconcile import remove

    _feed(engine, intake("e1"), msg("escape", "e2", 20))
    remove(engine, ["mayor.escape|P1|escape:e2|-"])
    return Case(
        lambda e, a: run_backfill(e, datetime(2025, 1, 1, tzinfo=UTC), actor=a),
        {("create", "notice")},
        lambda e: _one(e, select(obligations.c.key).order_by(obligations.c.key)),
    )


def alert_queue(engine: Engine) -> Case:
    from terugkeer.notify.alerts import list_alerts, raise_alert

    with engine.begin() as conn:
        raise_alert(conn, "test", "test:1", "a test alert", {}, datetime.now(UTC))

    def run(e: Engine, a: Actor) -> Any:
        with e.begin() as conn:
            return list_alerts(conn, actor=a)

    return Case(run, {("read", "alert")})


def victim_contact(engine: Engine) -> Case:
    from terugkeer.detention.contacts import victim_contact as contact

    victim = msg(
        "victim_registered", "v1", 2, source="OM-IDV", victim_ref="V1", relation="victim",
        spoke_in_court=True, wants_information=True, contact={"name": "Slachtoffer Een"},
    )  # fmt: skip
    _feed(engine, intake("e1"), victim)
    return Case(lambda e, a: contact(e, "V1", actor=a), {("read", "victim_contact")})


def user_add(engine: Engine) -> Case:
    from terugkeer.security.accounts import add_user

    name = f"u-{uuid.uuid4().hex[:8]}"
    return Case(
        lambda e, a: add_user(e, name, "analyst", "een heel lang wachtwoord", actor=a),
        {("create", "user")},
        lambda e: _one(e, select(func.count()).select_from(users)),
    )


def token_create(engine: Engine) -> Case:
    from terugkeer.security.accounts import add_user, create_token

    name = f"u-{uuid.uuid4().hex[:8]}"
    add_user(engine, name, "feed", "een heel lang wachtwoord")
    return Case(
        lambda e, a: create_token(e, f"t-{name}", name, actor=a),
        {("create", "api_token")},
        lambda e: _one(e, select(func.count()).select_from(users)),
    )


def cases_open(engine: Engine) -> Case:
    from terugkeer.notify.hook import notify_hook

    ingest_text(engine, lines(intake("e1")), hooks=[notify_hook()])  # no case hook
    return Case(
        lambda e, a: open_cases(e, None, actor=a),
        {("case_opened", "reintegration_case")},
        lambda e: _one(e, select(func.count()).select_from(reintegration_cases)),
    )


def consent(engine: Engine) -> Case:
    case_id = _case_id(engine)
    return Case(
        lambda e, a: record_consent(e, case_id, ConsentIn("given", date(2025, 1, 10)), actor=a),
        {("consent_given", "reintegration_case")},
        lambda e: _one(e, select(reintegration_cases.c.consent)),
    )


def conditions(engine: Engine) -> Case:
    case_id = _consented(engine)
    return Case(
        lambda e, a: record_conditions(
            e, case_id, ConditionsIn("release", {"id": "valid"}), actor=a
        ),
        {("conditions_recorded", "reintegration_case")},
        lambda e: _one(e, select(func.count()).select_from(audit_log)),
    )


def activity(engine: Engine) -> Case:
    case_id = _consented(engine)
    new = ActivityIn(
        "apply_id", "Gemeente", date(2025, 1, 20), cost_cents=7038, funder="municipality"
    )
    return Case(
        lambda e, a: add_activity(e, case_id, new, actor=a),
        {("activity_added", "reintegration_case")},
    )


def case_reads(engine: Engine) -> Case:
    from terugkeer.reintegration import queries

    case_id = _consented(engine)

    def run(e: Engine, a: Actor) -> Any:
        with e.begin() as conn:
            return (
                queries.get_case(conn, case_id, GM, actor=a),
                queries.list_cases(conn, GM, actor=a),
                queries.consent_history(conn, case_id, GM, actor=a),
                queries.current_conditions(conn, case_id, GM, actor=a),
                queries.condition_history(conn, case_id, GM, actor=a),
                queries.list_activities(conn, case_id, GM, actor=a),
            )

    return Case(
        run,
        {
            ("case_read", "reintegration_case"),
            ("case_listed", "reintegration_case"),
            ("consents_read", "reintegration_case"),
            ("conditions_read", "reintegration_case"),
            ("activities_read", "reintegration_case"),
        },
    )


def steering_lists(engine: Engine) -> Case:
    from terugkeer.reintegration import queries

    _feed(
        engine,
        intake("e1", fields={"planned_release_date": "2025-03-01", "return_municipality": GM}),
        intake("f1", period="P2", bsn=BSN2, fields={"planned_release_date": "2025-02-01"}),
        msg("release", "f2", 26, period="P2", bsn=BSN2, release_kind="end_of_sentence"),
    )
    with engine.connect() as conn:
        p2 = conn.execute(
            select(reintegration_cases.c.id)
            .join(detention_periods, detention_periods.c.id == reintegration_cases.c.period_id)
            .where(detention_periods.c.period_ref == "P2")
        ).scalar_one()
    record_consent(engine, p2, ConsentIn("given", date(2025, 1, 10)), actor="caseworker:setup")

    def run(e: Engine, a: Actor) -> Any:
        with e.begin() as conn:
            upcoming = queries.upcoming_returns(conn, GM, actor=a, on=date(2025, 2, 10))
            bad = queries.not_in_order_at_release(conn, GM, actor=a)
            assert upcoming
            assert bad
            return upcoming, bad

    return Case(run, {("case_listed", "reintegration_case")})


CASES: list[Callable[[Engine], Case]] = [
    quarantine_list,
    quarantine_replay,
    periods_check,
    inbox_list,
    inbox_get,
    inbox_mark_read,
    inbox_acknowledge,
    delivery_retry,
    burst_decision,
    obligations_list,
    period_explain,
    backfill,
    alert_queue,
    victim_contact,
    user_add,
    token_create,
    cases_open,
    consent,
    conditions,
    activity,
    case_reads,
    steering_lists,
]


def _mark(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one())


def _rows(engine: Engine, since: int, actor: Actor) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_log)
                .where(audit_log.c.id > since, audit_log.c.actor == actor.name)
                .order_by(audit_log.c.id)
            )
        )


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_the_action_writes_its_rows_with_its_actor(engine: Engine, make: Any) -> None:
    case = make(engine)
    who = Actor.cli(f"tester-{uuid.uuid4().hex[:8]}", f"test of {make.__name__}", "test")
    since = _mark(engine)
    case.run(engine, who)
    rows = _rows(engine, since, who)
    assert {(r.action, r.record_type) for r in rows} == case.rows
    assert {(r.actor, r.role, r.purpose) for r in rows} == {(who.name, "cli", who.purpose)}
    assert audit.verify(engine).ok


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_without_its_audit_rows_the_action_does_not_stand(
    engine: Engine, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = make(engine)
    before = case.probe(engine) if case.probe else None
    since = _mark(engine)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the audit log cannot be written")

    monkeypatch.setattr(audit, "record_many", broken)
    who = Actor.system("test", "testing")
    with pytest.raises(RuntimeError, match="cannot be written"):
        case.run(engine, who)  # a read returns nothing: it raises before it returns
    monkeypatch.undo()
    assert _mark(engine) == since
    if case.probe is not None:
        assert case.probe(engine) == before


def test_a_job_writes_one_row_per_run(engine: Engine, tmp_path: Any) -> None:
    """Bulk jobs commit as they go; their one row is written when they end (ingest, key
    rotation) or start (the worker), and the reconciliation's with its report."""
    from terugkeer.detention.contacts import rotate
    from terugkeer.intake import ingest_files
    from terugkeer.notify.assurance.backfill import check

    who = Actor.cli("ops", "test of jobs", "test")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(lines(intake("e1")))
    since = _mark(engine)
    ingest_files(engine, [feed], actor=who)
    rotate(engine, actor=who)
    check(engine, actor=who, shown=0)  # shows no gap: reads no period
    rows = _rows(engine, since, who)
    assert [(r.action, r.record_type, r.record_id) for r in rows] == [
        ("run", "job", "ingest"),
        ("run", "job", "keys rotate"),
        ("run", "job", "reconcile"),
    ]
    assert audit.verify(engine).ok


def test_actor_names_roles_and_purposes() -> None:
    from terugkeer.security.roles import Principal, Role

    assert Actor.cli("cli:j.jansen", "x").name == "cli:j.jansen"
    web = Actor.web(Principal("a.de.vries", Role.CASEWORKER, GM), "reintegration registration")
    assert (web.name, web.role) == ("a.de.vries", "caseworker")
    assert (Actor.system("detention", "p").name, Actor.system("detention", "p").role) == (
        "system:detention",
        "system",
    )
    assert Actor.named("cli:x", "p", "caseworker").role == "cli"
    assert Actor.named("someone", "p", "caseworker").role == "caseworker"
    with pytest.raises(ValueError, match="purpose"):
        Actor.cli("x", " ")
    with pytest.raises(ValueError, match="actor"):
        Actor.cli("cli:", "p")


def test_an_import_writes_its_rows_in_its_transaction(
    engine: Engine, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The importers take the actor by its recorded name (``cli:…``, ``demo:…``); their rows
    carry it, in the purpose of reintegration registration."""
    from terugkeer.reintegration.importing import import_cases
    from terugkeer.reintegration.tables import reintegration_consents
    from tests.reintegration.test_import import CASES_HEADER, GOOD_CASES, write

    ingest_text(
        engine,
        lines(
            intake("e1"),
            msg("release", "e2", 30, release_kind="end_of_sentence"),
            intake("f1", period="P2", bsn=BSN2),
            msg("release", "f2", 31, period="P2", bsn=BSN2, release_kind="end_of_sentence"),
        ),
        hooks=[reintegration_hook()],
    )
    path = write(tmp_path / "dossiers.csv", CASES_HEADER, GOOD_CASES)

    def consents(e: Engine) -> Any:
        return _one(e, select(func.count()).select_from(reintegration_consents))

    before, since = consents(engine), _mark(engine)
    monkeypatch.setattr(audit, "record_many", _broken)
    with pytest.raises(RuntimeError, match="cannot be written"):
        import_cases(engine, path, municipality=GM, actor="cli:importer")
    monkeypatch.undo()
    assert (consents(engine), _mark(engine)) == (before, since)

    assert import_cases(engine, path, municipality=GM, actor="cli:importer").ok
    rows = _rows(engine, since, Actor.named("cli:importer", "reintegration registration"))
    assert rows
    assert {(r.role, r.record_type, r.purpose) for r in rows} == {
        ("cli", "reintegration_case", "reintegration registration")
    }
    assert consents(engine) != before


def _broken(*_args: Any, **_kwargs: Any) -> None:
    raise RuntimeError("the audit log cannot be written")
