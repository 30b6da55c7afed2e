"""The operator's portal pages (/portaal/beheer) on both stores: each page renders with real
data for the operator and is refused to other roles; confirming and voiding a held burst,
replaying a quarantined message, naming the municipality of an unresolved recipient, retrying
a dead letter, running the reconciliation and a backfill after its preview, each through a
form with the session's CSRF token, each leaving its audit rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select, update

from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.tables import quarantine
from terugkeer.notify.assurance import overview
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.hook import notify_hook
from terugkeer.notify.tables import alerts, deliveries, delivery_attempts, obligations
from terugkeer.security.roles import Role
from terugkeer.security.tables import audit_log
from tests.feedutil import intake, lines, msg
from tests.notify.delivery.test_channels import Receiver
from tests.notify.delivery.test_dispatch import channels, endpoint
from tests.web.portal.conftest import csrf_token

Portal = Callable[..., TestClient]
HOOK = [notify_hook()]
PAGES = (
    "/portaal/beheer",
    "/portaal/beheer/aanlevering",
    "/portaal/beheer/quarantaine",
    "/portaal/beheer/meldplichten",
    "/portaal/beheer/onbekende-ontvangers",
    "/portaal/beheer/onbestelbaar",
    "/portaal/beheer/controle",
    "/portaal/beheer/alsnog-verzenden",
)


def burst(n: int, source: str) -> str:
    """n serious offenders from one prison released in the same hour (a burst)."""
    messages = []
    for i in range(n):
        ref, number = f"{source}-{i}", f"{source}-D{i}"
        messages.append(intake(f"{ref}:i", period=ref, bsn=None, prison_number=number, source=source,
                               fields={"planned_release_date": None, "title": "pre_trial"}))  # fmt: skip
        messages.append(msg("release", f"{ref}:r", 300 + i / 1440, ref, bsn=None,
                            prison_number=number, source=source, release_kind="court_order"))  # fmt: skip
    return lines(*messages)


def audited(engine: Engine, actor: str, action: str, record_type: str) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(audit_log.c.id).where(
                    audit_log.c.actor == actor,
                    audit_log.c.action == action,
                    audit_log.c.record_type == record_type,
                )
            ).all()
        )


def post(client: TestClient, page: str, action: str, **data: str) -> str:
    """Submit a form of ``page`` to ``action`` with the page's CSRF token; the page after the
    redirect."""
    token = csrf_token(client.get(page).text)
    response = client.post(action, data={"csrf_token": token, **data})
    assert response.status_code == 200, response.text
    return response.text


def test_every_page_renders_for_the_operator_and_is_refused_to_others(
    engine: Engine, portal: Portal
) -> None:
    text = lines(intake("e1", fields={"residence_municipality": None}))
    assert ingest_text(engine, text, hooks=HOOK).quarantined == 0
    operator = portal(Role.OPERATOR)
    assert 'href="/portaal/beheer"' in operator.get("/portaal/").text  # on the start page
    for url in PAGES:
        page = operator.get(url)
        assert page.status_code == 200, (url, page.text)
        assert page.text.count("<h1") == 1
    home = operator.get("/portaal/beheer").text
    assert "3 meldplichten zonder gemeente" in home
    unresolved = operator.get("/portaal/beheer/onbekende-ontvangers").text
    assert "P1" in unresolved
    assert "PI-VUG" in unresolved
    due = operator.get("/portaal/beheer/meldplichten", params={"venster": "overdue"}).text
    assert "Resultaat 1–3 van 3" in due
    assert operator.get("/portaal/beheer/meldplichten", params={"venster": "x"}).status_code == 400
    for role in (Role.CASEWORKER, Role.ANALYST, Role.MAYOR_OFFICE):
        other = portal(role)
        for url in PAGES[:3]:
            refused = other.get(url)
            assert refused.status_code == 403, (role, url)
            assert "Geen toegang" in refused.text
    anonymous = portal().get("/portaal/beheer", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/portaal/inloggen")


def test_confirm_and_void_a_held_burst(engine: Engine, portal: Portal) -> None:
    assert ingest_text(engine, burst(25, "PI-ZWO"), hooks=HOOK).quarantined == 0
    assert ingest_text(engine, burst(25, "PI-VUG"), hooks=HOOK).quarantined == 0
    operator = portal(Role.OPERATOR, name="operator-burst")
    page = operator.get("/portaal/beheer/aanlevering").text
    ids = [int(i) for i in re.findall(r"/portaal/beheer/pieken/(\d+)/bevestigen", page)]
    assert len(ids) == 2
    assert "PI-ZWO" in page
    done = post(
        operator, "/portaal/beheer/aanlevering", f"/portaal/beheer/pieken/{ids[0]}/bevestigen"
    )
    assert "de aangehouden meldingen worden nu verzonden" in done
    done = post(
        operator, "/portaal/beheer/aanlevering", f"/portaal/beheer/pieken/{ids[1]}/vervallen"
    )
    assert "de aangehouden meldingen vervallen" in done
    with engine.connect() as conn:
        decided = {
            r.id: r.status for r in conn.execute(select(alerts).where(alerts.c.kind == "burst"))
        }
        statuses = set(conn.execute(select(obligations.c.status)).scalars())
    assert decided == {ids[0]: "resolved", ids[1]: "resolved"}
    assert "held" not in statuses
    assert "voided" in statuses
    assert audited(engine, "operator-burst", "update", "notice") >= 50
    again = operator.post(
        f"/portaal/beheer/pieken/{ids[0]}/bevestigen",
        data={"csrf_token": csrf_token(page)},
    )
    assert again.status_code == 409  # already decided: a page, not a stack trace
    assert "Dat kan nu niet" in again.text
    forged = operator.post(f"/portaal/beheer/pieken/{ids[0]}/vervallen", data={})
    assert forged.status_code == 403  # no CSRF token


def test_replay_a_quarantined_message(engine: Engine, portal: Portal) -> None:
    text = lines(msg("release", "r1", 30, release_kind="end_of_sentence"))  # no intake yet
    assert ingest_text(engine, text, hooks=HOOK).quarantined == 1
    with engine.connect() as conn:
        (qid,) = conn.execute(select(quarantine.c.id)).scalars()
    operator = portal(Role.OPERATOR, name="operator-replay")
    page = operator.get("/portaal/beheer/quarantaine").text
    assert "unknown_period" in page
    assert "999993653" in page  # the raw message, escaped (as the CLI's --json shows it)
    assert "&#34;kind&#34;: &#34;release&#34;" in page
    assert "<script" not in page.split("<main", 1)[1]
    action = f"/portaal/beheer/quarantaine/{qid}/opnieuw"
    assert action in page
    still = post(operator, "/portaal/beheer/quarantaine", action)
    assert "kon weer niet worden verwerkt" in still
    with engine.begin() as conn:
        # kept without what it waits for (as an older ingest left it): the intake below does
        # not apply it by itself; only a replay does
        conn.execute(update(quarantine).where(quarantine.c.id == qid).values(waits_for=None))
    assert ingest_text(engine, lines(intake("e1")), hooks=HOOK).quarantined == 0  # the fix
    done = post(operator, "/portaal/beheer/quarantaine", action)
    assert "Het bericht is opnieuw verwerkt" in done
    with engine.connect() as conn:
        status = conn.execute(select(quarantine.c.status).where(quarantine.c.id == qid)).scalar()
        kinds = set(conn.execute(select(obligations.c.rule_id)).scalars())
    assert status == "applied"
    assert "mayor.release" in kinds
    assert audited(engine, "operator-replay", "read", "quarantine") >= 1
    assert audited(engine, "operator-replay", "update", "quarantine") == 2
    assert (
        "Er staan geen berichten in quarantaine" in operator.get("/portaal/beheer/quarantaine").text
    )
    missing = operator.post(
        f"/portaal/beheer/quarantaine/{qid}/opnieuw", data={"csrf_token": csrf_token(page)}
    )
    assert missing.status_code == 404  # applied: no longer open


def test_name_the_municipality_of_an_unresolved_recipient(engine: Engine, portal: Portal) -> None:
    text = lines(intake("e1", fields={"residence_municipality": None}))
    assert ingest_text(engine, text, hooks=HOOK).quarantined == 0
    operator = portal(Role.OPERATOR, name="operator-naming")
    with engine.connect() as conn:
        first = conn.execute(select(obligations.c.id).order_by(obligations.c.id)).scalars().first()
    url = f"/portaal/beheer/onbekende-ontvangers/{first}"
    form = operator.get(url)
    assert form.status_code == 200
    assert 'for="veld-gemeente"' in form.text
    token = csrf_token(form.text)
    wrong = operator.post(url, data={"csrf_token": token, "gemeente": "GM9999"})
    assert wrong.status_code == 400
    assert 'aria-invalid="true"' in wrong.text
    assert "geen bestaande gemeentecode" in wrong.text
    assert 'href="#veld-gemeente"' in wrong.text  # the error summary links to the field
    done = operator.post(url, data={"csrf_token": token, "gemeente": "GM0599"})
    assert done.status_code == 200
    assert "De gemeente is vastgelegd" in done.text
    with engine.connect() as conn:
        rows = {
            tuple(r)
            for r in conn.execute(select(obligations.c.status, obligations.c.recipient_ref))
        }
    assert rows == {("open", "GM0599")}
    assert audited(engine, "operator-naming", "run", "job") == 1  # the feed message's row
    assert operator.get(url).status_code == 404  # no longer waiting
    assert (
        "Alle meldplichten hebben een bekende ontvanger"
        in operator.get("/portaal/beheer/onbekende-ontvangers").text
    )


def test_dead_letter_retry_reconciliation_and_backfill(engine: Engine, portal: Portal) -> None:
    receiver = Receiver(hang_seconds=0.2)
    try:
        endpoint(engine, "mayor", "GM0363", "webhook", receiver.url)
        assert ingest_text(engine, lines(intake("e1")), hooks=HOOK).quarantined == 0
        receiver.fail(404)
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert dispatch_once(engine, now, channels=channels()).dead == 1
    finally:
        receiver.close()
    operator = portal(Role.OPERATOR, name="operator-repair")
    page = operator.get("/portaal/beheer/onbestelbaar").text
    (delivery,) = re.findall(r"/portaal/beheer/onbestelbaar/(\d+)/opnieuw", page)
    assert "404" in page
    done = post(
        operator, "/portaal/beheer/onbestelbaar", f"/portaal/beheer/onbestelbaar/{delivery}/opnieuw"
    )
    assert "Er zijn geen onbestelbare meldingen" in done
    with engine.connect() as conn:
        status = conn.execute(
            select(deliveries.c.status).where(deliveries.c.id == int(delivery))
        ).scalar()
    assert status == "pending"

    with engine.begin() as conn:  # a fault: the nazorg intake signal went missing
        gone = conn.execute(
            select(obligations.c.id).where(obligations.c.rule_id == "nazorg.intake")
        ).scalar_one()
        sent = select(deliveries.c.id).where(deliveries.c.obligation_id == gone)
        conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(sent)))
        conn.execute(delete(deliveries).where(deliveries.c.obligation_id == gone))
        conn.execute(delete(obligations).where(obligations.c.id == gone))
    started = datetime.now(UTC)
    checked = post(operator, "/portaal/beheer/controle", "/portaal/beheer/controle")
    assert "De volledigheidscontrole is uitgevoerd" in checked
    assert "tekorten gevonden" in checked
    assert "meldplicht ontbreekt" in checked
    assert "operator-repair" in checked  # the last run recorded, by whom
    with engine.connect() as conn:
        status = overview.reconcile_status(conn)
    assert status.last_run_by == "operator-repair"
    assert status.last_run_at is not None
    assert status.last_run_at >= started - timedelta(seconds=1)
    assert status.open_gaps["missing_obligation"] == 1
    only = operator.get("/portaal/beheer/controle", params={"soort": "missing_obligation"})
    assert "Resultaat 1–1 van 1" in only.text
    assert operator.get("/portaal/beheer/controle", params={"soort": "nonsense"}).status_code == 400
    later = operator.get("/portaal/beheer/alsnog-verzenden", params={"sinds": "2025-06-01"}).text
    assert "Er ontbreekt niets sinds deze dag" in later  # caused before: left alone
    assert "1 ontbrekende van eerder" in later
    preview = operator.get("/portaal/beheer/alsnog-verzenden", params={"sinds": "2025-01-01"})
    assert preview.status_code == 200
    assert "nazorg.intake" in preview.text
    assert "1 ontbrekende meldplichten sinds" in preview.text
    with engine.connect() as conn:  # the preview wrote nothing
        assert (
            conn.execute(select(obligations.c.id).where(obligations.c.id == gone)).first() is None
        )
    for wrong in ("31-01-2025", "2999-01-01"):  # not a date, and tomorrow or later
        bad = operator.get("/portaal/beheer/alsnog-verzenden", params={"sinds": wrong})
        assert bad.status_code == 400
        assert 'aria-invalid="true"' in bad.text
    token = csrf_token(preview.text)
    future = operator.post(
        "/portaal/beheer/alsnog-verzenden", data={"csrf_token": token, "sinds": "2999-01-01"}
    )
    assert future.status_code == 400
    result = operator.post(
        "/portaal/beheer/alsnog-verzenden", data={"csrf_token": token, "sinds": "2025-01-01"}
    )
    assert result.status_code == 200
    assert "Wat ontbrak sinds 1 januari 2025 is aangemaakt" in result.text
    assert re.search(r"Aangemaakt</dt><dd>1<", result.text)
    assert audited(engine, "operator-repair", "create", "notice") == 1
    assert audited(engine, "operator-repair", "update", "delivery") == 1
    assert audited(engine, "operator-repair", "run", "job") >= 1  # the reconciliation's row
