"""The rules, end to end through ingest: which obligations exist after which events.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from terugkeer.detention.ingest import ingest_text
from terugkeer.notify.hook import notify_hook
from terugkeer.notify.rules.ruleset import RuleError, load_rules, parse_rules
from terugkeer.notify.tables import deliveries, obligations
from tests.feedutil import AMS, intake, lines, msg

HOOK = [notify_hook()]


def feed(engine: Engine, *messages: dict[str, Any]) -> None:
    result = ingest_text(engine, lines(*messages), hooks=HOOK)
    assert result.quarantined == 0, result


def rows(engine: Engine, rule: str | None = None) -> list[Any]:
    stmt = select(obligations).order_by(obligations.c.id)
    if rule:
        stmt = stmt.where(obligations.c.rule_id == rule)
    with engine.connect() as conn:
        return conn.execute(stmt).all()


def one(engine: Engine, rule: str) -> Any:
    (row,) = rows(engine, rule)
    return row


def notices(engine: Engine, obligation_id: int) -> list[tuple[str, int, str]]:
    with engine.connect() as conn:
        return [
            (r.notice, r.obligation_version, r.status)
            for r in conn.execute(
                select(deliveries)
                .where(deliveries.c.obligation_id == obligation_id)
                .order_by(deliveries.c.id)
            )
        ]


def mark_delivered(engine: Engine, obligation_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.obligation_id == obligation_id)
            .values(status="delivered")
        )
        conn.execute(
            update(obligations)
            .where(obligations.c.id == obligation_id)
            .values(status="delivered", delivered_at=datetime.now(UTC))
        )


def at_nine(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T09:00:00").replace(tzinfo=AMS).astimezone(UTC)


def test_planned_release_of_a_sex_offender(engine: Engine) -> None:
    feed(engine, intake("e1"))  # zeden, planned release 2026-02-10, residence Amsterdam
    mayor = one(engine, "mayor.release")
    assert (mayor.recipient_kind, mayor.recipient_ref, mayor.status) == ("mayor", "GM0363", "open")
    assert mayor.planned_for == at_nine("2026-02-10")
    assert mayor.due_at == at_nine("2026-02-10") - timedelta(days=7)
    assert not mayor.late
    assert mayor.rule_version == load_rules().version
    assert json.loads(mayor.facts)["scope"] == "offence category zeden"
    assert notices(engine, mayor.id) == [("notice", 1, "pending")]
    nazorg = one(engine, "nazorg.release")
    assert nazorg.due_at == at_nine("2026-02-10") - timedelta(days=14)
    assert one(engine, "nazorg.intake").status == "open"
    assert rows(engine, "idv.release") == []  # no victims


def test_changed_release_date_updates_and_sends_a_change_to_whoever_was_told(
    engine: Engine,
) -> None:
    feed(engine, intake("e1"))
    mayor = one(engine, "mayor.release")
    feed(engine, msg("release_date_set", "e2", 10, planned_release_date="2026-03-01"))
    changed = one(engine, "mayor.release")
    assert changed.version == 2
    assert changed.planned_for == at_nine("2026-03-01")
    assert notices(engine, mayor.id) == [("notice", 2, "pending")]  # not sent yet: one notice
    mark_delivered(engine, mayor.id)
    feed(engine, msg("release_date_set", "e3", 20, planned_release_date="2026-03-05"))
    assert notices(engine, mayor.id) == [("notice", 2, "delivered"), ("change", 3, "pending")]
    assert one(engine, "mayor.release").status == "open"


def test_release_date_known_late_is_marked_late_with_the_reason(engine: Engine) -> None:
    # intake on 2025-01-06, release planned three days later
    feed(engine, intake("e1", fields={"planned_release_date": "2025-01-09", "sentence_days": 3}))
    mayor = one(engine, "mayor.release")
    assert mayor.late
    assert "less than the 7 days notice" in mayor.late_reason
    assert mayor.due_at == datetime(2025, 1, 6, 9, tzinfo=AMS) + timedelta(hours=1)


def test_death_voids_release_notices_and_informs_the_idv(engine: Engine) -> None:
    victim = msg(
        "victim_registered", "v1", 2, source="OM-IDV", victim_ref="V1", relation="victim",
        spoke_in_court=True, wants_information=True, contact={"name": "Slachtoffer 1"},
    )  # fmt: skip
    feed(engine, intake("e1"), victim)
    assert one(engine, "idv.release").status == "open"
    assert one(engine, "victim.release").recipient_ref == "V1"
    mark_delivered(engine, one(engine, "mayor.release").id)
    feed(engine, msg("death", "e2", 30))
    mayor = one(engine, "mayor.release")
    assert (mayor.status, mayor.void_reason) == ("voided", "the person died")
    assert notices(engine, mayor.id)[-1] == ("correction", 2, "pending")
    assert one(engine, "idv.release").status == "voided"
    death = one(engine, "idv.death")
    assert (death.occurrence, death.status) == ("death:e2", "open")
    assert one(engine, "victim.death").recipient_ref == "V1"
    assert all(r.status == "voided" for r in rows(engine, "nazorg.release"))


def test_victim_without_the_right_to_information_gets_no_notice(engine: Engine) -> None:
    victim = msg(
        "victim_registered", "v1", 2, source="OM-IDV", victim_ref="V1", relation="victim",
        spoke_in_court=False, wants_information=True, contact={"name": "Slachtoffer 1"},
    )  # fmt: skip
    feed(engine, intake("e1"), victim)  # sentence of 400 days: no right without spreekrecht
    assert rows(engine, "idv.release") == []
    feed(engine, msg("title_change", "e2", 5, title="prison_sentence", sentence_days=3000))
    assert one(engine, "idv.release").status == "open"  # 8 years or more: the right applies


def test_release_into_tbs_is_not_a_release_into_society(engine: Engine) -> None:
    feed(engine, intake("e1"))
    feed(engine, msg("release", "e2", 100, release_kind="into_tbs"))
    assert one(engine, "mayor.release").status == "voided"
    assert "into_tbs" in one(engine, "mayor.release").void_reason


def test_unplanned_release_is_due_within_an_hour_and_late(engine: Engine) -> None:
    feed(engine, intake("e1", fields={"planned_release_date": None, "title": "pre_trial"}))
    assert rows(engine, "mayor.release") == []
    feed(engine, msg("release", "e2", 40, release_kind="court_order"))
    mayor = one(engine, "mayor.release")
    assert mayor.late
    assert "court_order" in mayor.late_reason
    assert mayor.due_at == datetime(2025, 1, 6, 9, tzinfo=AMS) + timedelta(days=40, hours=1)


def test_escape_and_recapture_are_told_at_once(engine: Engine) -> None:
    feed(engine, intake("e1"), msg("escape", "e2", 20), msg("recapture", "e3", 21))
    escape = one(engine, "mayor.escape")
    assert (escape.occurrence, escape.late) == ("escape:e2", False)
    assert escape.due_at == datetime(2025, 1, 6, 9, tzinfo=AMS) + timedelta(days=20, hours=1)
    assert one(engine, "mayor.recapture").occurrence == "recapture:e3"


def test_withdrawn_escape_voids_its_notice_with_a_correction(engine: Engine) -> None:
    feed(engine, intake("e1"), msg("escape", "e2", 20))
    escape = one(engine, "mayor.escape")
    mark_delivered(engine, escape.id)
    feed(engine, msg("correction", "c1", 20.5, withdraws="e2"))
    voided = one(engine, "mayor.escape")
    assert voided.status == "voided"
    assert "withdrawn by correction [c1]" in voided.void_reason
    assert notices(engine, escape.id)[-1][0] == "correction"


def test_unknown_municipality_is_unresolved_until_it_becomes_known(engine: Engine) -> None:
    feed(engine, intake("e1", fields={"residence_municipality": None}))
    mayor = one(engine, "mayor.release")
    assert (mayor.status, mayor.recipient_ref) == ("unresolved", None)
    assert notices(engine, mayor.id) == []
    feed(engine, msg("release_date_set", "e2", 3, planned_release_date="2026-02-10",
                     return_municipality="GM0599"))  # fmt: skip
    mayor = one(engine, "mayor.release")
    assert (mayor.status, mayor.recipient_ref) == ("open", "GM0599")
    assert notices(engine, mayor.id) == [("notice", 1, "pending")]


def test_leave_granted_in_advance_and_unannounced_leave(engine: Engine) -> None:
    grant = msg("leave_granted", "e2", 10, leave_from="2025-02-01T10:00:00+01:00",
                leave_until="2025-02-01T18:00:00+01:00", leave_municipality="GM0344")  # fmt: skip
    feed(engine, intake("e1"), grant)
    planned = one(engine, "mayor.leave")
    assert (planned.occurrence, planned.recipient_ref, planned.late) == (
        "leave:2025-02-01", "GM0344", False
    )  # fmt: skip
    assert planned.due_at == datetime(2025, 1, 25, 10, tzinfo=AMS)
    start = datetime(2025, 2, 1, 10, 5, tzinfo=AMS)
    feed(
        engine,
        msg("leave_start", "e3", (start - datetime(2025, 1, 6, 9, tzinfo=AMS)).total_seconds() / 86400,
            leave_municipality="GM0344"),
        msg("leave_end", "e4", 26.5),
    )  # fmt: skip
    assert len(rows(engine, "mayor.leave")) == 1  # announced by its grant
    feed(engine, msg("leave_start", "e5", 40, leave_municipality="GM0599"))
    unannounced = [r for r in rows(engine, "mayor.leave") if r.occurrence != "leave:2025-02-01"]
    assert len(unannounced) == 1
    assert unannounced[0].late
    assert unannounced[0].late_reason == "leave without an advance grant"


def test_ordinary_offender_reaches_only_the_nazorg_coordinator(engine: Engine) -> None:
    feed(
        engine,
        intake("e1", fields={"offences": [{"category": "vermogen", "statutory_max_years": 4}]}),
    )
    assert {r.rule_id for r in rows(engine)} == {"nazorg.intake", "nazorg.release"}


def test_juvenile_and_short_stays_get_no_intake_signal(engine: Engine) -> None:
    feed(
        engine,
        intake(
            "e1", period="PJ", fields={"birth_date": "2009-05-01", "title": "juvenile_detention"}
        ),
    )
    assert [
        r for r in rows(engine) if r.period_ref == "PJ" and r.rule_id.startswith("nazorg")
    ] == []
    feed(engine, intake("e2", period="PS", bsn="999990019"))
    assert one(engine, "nazorg.intake").status == "open"
    feed(engine, msg("release", "e3", 5, period="PS", bsn="999990019", release_kind="court_order"))
    short = [r for r in rows(engine, "nazorg.intake") if r.period_ref == "PS"]
    assert short[0].status == "voided"
    assert short[0].void_reason == "stay ended within 10 days"


def test_rule_file_errors_say_where() -> None:
    good = load_rules()
    assert len(good.rules) == 16
    with pytest.raises(RuleError, match=r"rule \[x\]: \[recipient\] must be one of"):
        parse_rules('version = "1"\n[[rules]]\nid = "x"\nrecipient = "pope"\n')
    with pytest.raises(RuleError, match="not valid TOML"):
        parse_rules("version = ")
    text = (
        'version = "1"\n[defaults]\nplanned_notice_days = 7\nlate_within_hours = 1\n'
        "ack_window_hours = 24\nplanned_moment_hour = 9\n"
    )
    rule = (
        '[[rules]]\nid = "a"\nrecipient = "idv"\nsubject = "death"\nscope = "victims"\n'
        'timing = "immediate"\nsource = "s"\n'
    )
    assert len(parse_rules(text + rule).rules) == 1
    with pytest.raises(RuleError, match="duplicate id"):
        parse_rules(text + rule + rule)


def test_a_victim_registration_arriving_after_an_escape_still_gets_its_notice(
    engine: Engine,
) -> None:
    feed(engine, intake("e1"), msg("escape", "e2", 20), msg("recapture", "e3", 21))
    assert rows(engine, "idv.escape") == []
    registered_before = msg(
        "victim_registered", "v1", 2, source="OM-IDV", victim_ref="V1", relation="victim",
        spoke_in_court=True, wants_information=True, contact={"name": "Slachtoffer 1"},
    )  # fmt: skip
    feed(engine, registered_before)  # arrives late, but was registered before the escape
    assert one(engine, "idv.escape").occurrence == "escape:e2"
    assert one(engine, "victim.escape").recipient_ref == "V1"
    registered_after = msg(
        "victim_registered", "v2", 30, source="OM-IDV", victim_ref="V2", relation="victim",
        spoke_in_court=True, wants_information=True, contact={"name": "Slachtoffer 2"},
    )  # fmt: skip
    feed(engine, registered_after)  # registered after the escape: not told of it
    assert [r.recipient_ref for r in rows(engine, "victim.escape")] == ["V1"]


def test_a_return_municipality_named_later_redirects_the_notice(engine: Engine) -> None:
    feed(engine, intake("e1"))
    first = one(engine, "mayor.release")
    assert first.recipient_ref == "GM0363"
    feed(engine, msg("release_date_set", "e2", 5, planned_release_date="2026-02-10",
                     return_municipality="GM0599"))  # fmt: skip
    moved = one(engine, "mayor.release")
    assert (moved.recipient_ref, moved.version) == ("GM0599", 2)
    assert notices(engine, first.id) == [("notice", 1, "voided"), ("notice", 2, "pending")]
