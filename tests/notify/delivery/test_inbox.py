"""The portal inbox on SQLite and PostgreSQL: services, the JSON API (meldingen) and the
command line."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.notify.assurance.escalate import escalate
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.delivery.inbox import (
    InvalidRequest,
    NoticeConflict,
    NoticeNotFound,
    acknowledge,
    get_notice,
    list_notices,
    mark_read,
)
from terugkeer.notify.tables import alerts, deliveries
from terugkeer.security.accounts import add_user, create_token
from terugkeer.security.actor import Actor
from terugkeer.security.tables import audit_log
from terugkeer.web.app import create_app
from tests.feedutil import intake, msg
from tests.notify.delivery.test_dispatch import channels, clock, feed, obligation

TEST = Actor.system("test", "testing")

runner = CliRunner()


def victim(spoke_in_court: bool = True) -> dict[str, Any]:
    return msg(
        "victim_registered", "v1", 2, source="OM-IDV", victim_ref="V1", relation="victim",
        spoke_in_court=spoke_in_court, wants_information=True,
        contact={"name": "Slachtoffer Een", "email": "slachtoffer@example.org"},
    )  # fmt: skip


def inbox(engine: Engine, kind: str, ref: str, **kw: Any) -> list[str]:
    with engine.connect() as conn:
        return [n.rule_id for n in list_notices(conn, kind, ref, actor=TEST, **kw).notices]


def test_the_inbox_shows_delivered_notices_of_the_organisation_only(engine: Engine) -> None:
    feed(engine, intake("e1"), intake("e9", period="P2", bsn="999990019",
                                     fields={"residence_municipality": "GM0599"}))  # fmt: skip
    assert inbox(engine, "mayor", "GM0363") == []  # nothing delivered yet
    dispatch_once(engine, clock(), channels=channels())
    assert inbox(engine, "mayor", "GM0363") == ["mayor.release"]
    assert inbox(engine, "mayor", "GM0599") == ["mayor.release"]
    assert sorted(inbox(engine, "nazorg", "GM0363")) == ["nazorg.intake", "nazorg.release"]
    assert inbox(engine, "idv", "OM-IDV") == []
    with engine.connect() as conn:
        page = list_notices(conn, "nazorg", "GM0363", actor=TEST, limit=1)
    assert (page.total, len(page.notices)) == (2, 1)
    notice = page.notices[0]
    assert notice.recipient_ref == "GM0363"
    assert notice.facts["categories"] == ["zeden"]
    assert [d.status for d in notice.deliveries] == ["delivered"]
    with pytest.raises(InvalidRequest, match="unknown recipient kind"):
        inbox(engine, "police", "GM0363")


def test_read_and_acknowledge(engine: Engine) -> None:
    feed(engine, intake("e1"))
    dispatch_once(engine, clock(), channels=channels())
    ref = obligation(engine, "mayor.release").id
    assert inbox(engine, "mayor", "GM0363", unread=True) == ["mayor.release"]
    read = mark_read(engine, ref, actor=TEST)
    assert read.read
    assert read.deliveries[0].read_at is not None
    assert inbox(engine, "mayor", "GM0363", unread=True) == []
    assert inbox(engine, "mayor", "GM0363", unacknowledged=True) == ["mayor.release"]

    done = acknowledge(engine, ref, "j.jansen", "gezien", actor=TEST)
    assert (done.status, done.acknowledged_by, done.ack_note) == (
        "acknowledged", "j.jansen", "gezien",
    )  # fmt: skip
    assert done.acknowledged_at is not None
    assert inbox(engine, "mayor", "GM0363", unacknowledged=True) == []
    with pytest.raises(NoticeConflict, match=r"already acknowledged by j\.jansen"):
        acknowledge(engine, ref, "someone else", actor=TEST)
    with pytest.raises(InvalidRequest, match="who acknowledges"):
        acknowledge(engine, obligation(engine, "nazorg.release").id, "  ", actor=TEST)


def test_a_notice_is_not_in_the_inbox_before_it_is_delivered(engine: Engine) -> None:
    feed(engine, intake("e1"))
    ref = obligation(engine, "mayor.release").id
    with engine.connect() as conn, pytest.raises(NoticeNotFound):
        get_notice(conn, ref, actor=TEST)
    with pytest.raises(NoticeNotFound):
        acknowledge(engine, ref, "j.jansen", actor=TEST)


def test_a_changed_notice_must_be_acknowledged_in_its_new_version(engine: Engine) -> None:
    feed(engine, intake("e1"))
    now = clock()
    dispatch_once(engine, now, channels=channels())
    ref = obligation(engine, "mayor.release").id
    mark_read(engine, ref, actor=TEST)
    feed(engine, msg("release_date_set", "e2", 3, planned_release_date="2026-03-10"))
    with pytest.raises(NoticeConflict, match="newer version"):
        acknowledge(engine, ref, "j.jansen", actor=TEST)
    dispatch_once(engine, clock(), channels=channels())
    notice = acknowledge(engine, ref, "j.jansen", actor=TEST)
    assert (notice.version, notice.planned_for.date().isoformat()) == (2, "2026-03-10")  # type: ignore[union-attr]
    assert [(d.notice, d.version) for d in notice.deliveries] == [("notice", 1), ("change", 2)]


def test_the_idv_inbox_holds_the_victims_and_needs_how_each_was_informed(engine: Engine) -> None:
    feed(engine, intake("e1"), victim())
    dispatch_once(engine, clock(), channels=channels())
    assert sorted(inbox(engine, "idv", "OM-IDV")) == ["idv.release", "victim.release"]
    ref = obligation(engine, "victim.release").id
    with pytest.raises(InvalidRequest, match="how the victim was informed"):
        acknowledge(engine, ref, "IDV-medewerker", actor=TEST)
    done = acknowledge(engine, ref, "IDV-medewerker", "per telefoon op 3 februari", actor=TEST)
    assert done.ack_note == "per telefoon op 3 februari"
    assert done.recipient_ref == "V1"
    assert "Slachtoffer" not in done.model_dump_json()  # no contact details in the inbox
    acknowledge(
        engine, obligation(engine, "idv.release").id, "IDV-medewerker", actor=TEST
    )  # no note needed


# -- the API ------------------------------------------------------------------------------------


@pytest.fixture
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(engine))


PASSWORD = "een heel lang wachtwoord"


def bearer(engine: Engine, name: str, role: str, municipality: str | None = None) -> dict[str, str]:
    """An account with an API token, as the Authorization header."""
    add_user(engine, name, role, PASSWORD, municipality)
    return {"Authorization": f"Bearer {create_token(engine, f'{name}-token', name)}"}


def test_api_lists_reads_and_acknowledges(engine: Engine, client: TestClient) -> None:
    feed(engine, intake("e1"), victim())
    dispatch_once(engine, clock(), channels=channels())
    mayor = bearer(engine, "j.jansen", "mayor_office", "GM0363")
    idv = bearer(engine, "idv.medewerker", "idv_officer")
    listed = client.get("/api/v1/meldingen", headers=mayor)  # defaults to one's own inbox
    assert listed.status_code == 200
    assert listed.headers["API-Version"]
    body = listed.json()
    assert (body["total"], body["notices"][0]["rule_id"]) == (1, "mayor.release")
    ref = body["notices"][0]["id"]

    one = client.get(f"/api/v1/meldingen/{ref}", headers=mayor)
    assert (one.status_code, one.json()["read"]) == (200, False)
    assert client.post(f"/api/v1/meldingen/{ref}/lezen", headers=mayor).json()["read"] is True
    unread = client.get("/api/v1/meldingen", params={"ongelezen": "true"}, headers=mayor)
    assert unread.json()["total"] == 0

    acked = client.post(f"/api/v1/meldingen/{ref}/bevestigingen", headers=mayor, json={})
    assert acked.status_code == 201
    assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", "j.jansen")
    again = client.post(f"/api/v1/meldingen/{ref}/bevestigingen", headers=mayor)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    victim_ref = obligation(engine, "victim.release").id
    # the mayor's office cannot see the victim notice at all; the IDV can
    assert client.get(f"/api/v1/meldingen/{victim_ref}", headers=mayor).status_code == 404
    missing_note = client.post(f"/api/v1/meldingen/{victim_ref}/bevestigingen", headers=idv)
    assert missing_note.status_code == 400
    assert "how the victim was informed" in missing_note.json()["detail"]
    noted = client.post(
        f"/api/v1/meldingen/{victim_ref}/bevestigingen", headers=idv, json={"note": "per brief"}
    )
    assert (noted.status_code, noted.json()["ack_note"]) == (201, "per brief")
    with engine.connect() as conn:
        actions = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.record_type).where(
                audit_log.c.actor.in_(("j.jansen", "idv.medewerker"))
            )
        ).all()
    assert ("j.jansen", "read", "notice") in actions
    assert ("idv.medewerker", "update", "notice") in actions


def test_an_acknowledgement_and_its_audit_row_commit_together(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the audit row cannot be written, the acknowledgement must not stand either."""
    from terugkeer.security import audit

    feed(engine, intake("e1"))
    dispatch_once(engine, clock(), channels=channels())
    ref = obligation(engine, "mayor.release").id
    mayor = bearer(engine, "j.jansen", "mayor_office", "GM0363")

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record_many", broken)
    client = TestClient(create_app(engine), raise_server_exceptions=False)
    failed = client.post(f"/api/v1/meldingen/{ref}/bevestigingen", headers=mayor, json={})
    assert failed.status_code == 500
    unread = client.post(f"/api/v1/meldingen/{ref}/lezen", headers=mayor)
    assert unread.status_code == 500
    assert obligation(engine, "mayor.release").status == "delivered"
    with engine.connect() as conn:
        assert conn.execute(
            select(deliveries.c.read_at).where(deliveries.c.obligation_id == ref)
        ).scalars().all() == [None]
    monkeypatch.undo()
    acked = TestClient(create_app(engine)).post(
        f"/api/v1/meldingen/{ref}/bevestigingen", headers=mayor, json={}
    )
    assert acked.status_code == 201
    assert obligation(engine, "mayor.release").status == "acknowledged"


def test_api_errors_are_problem_json(engine: Engine, client: TestClient) -> None:
    feed(engine, intake("e1"))
    ref = obligation(engine, "mayor.release").id
    mayor = bearer(engine, "j.jansen", "mayor_office", "GM0363")
    other = bearer(engine, "r.rotterdam", "mayor_office", "GM0599")
    analyst = bearer(engine, "a.analist", "analyst")
    cases = [
        (client.get(f"/api/v1/meldingen/{ref}", headers=mayor), 404),  # not delivered yet
        (client.get("/api/v1/meldingen/999999", headers=mayor), 404),
        (client.post(f"/api/v1/meldingen/{ref}/lezen"), 401),  # who is asking?
        (client.post(f"/api/v1/meldingen/{ref}/bevestigingen", json={"note": "x"}), 401),
        (client.get("/api/v1/meldingen", headers={"Authorization": "Bearer nonsense"}), 401),
        (client.get("/api/v1/meldingen", params={"ontvanger": "GM0599"}, headers=mayor), 403),
        (client.get("/api/v1/meldingen", headers=analyst), 403),
        (client.get("/api/v1/meldingen/abc", headers=mayor), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == status
    dispatch_once(engine, clock(), channels=channels())
    assert client.get(f"/api/v1/meldingen/{ref}", headers=mayor).status_code == 200
    assert client.get(f"/api/v1/meldingen/{ref}", headers=other).status_code == 404


def test_api_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {
        "/meldingen",
        "/meldingen/{melding_id}",
        "/meldingen/{melding_id}/lezen",
        "/meldingen/{melding_id}/bevestigingen",
    } <= set(paths)


# -- the command line ---------------------------------------------------------------------------


def test_inbox_and_ack_from_the_command_line(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"))
    dispatch_once(cli_db, clock(), channels=channels())
    args = ["notify", "inbox", "--recipient-kind", "mayor", "--recipient", "GM0363"]
    listed = runner.invoke(app, [*args, "--json"])
    assert listed.exit_code == 0, listed.output
    (notice,) = json.loads(listed.stdout)["notices"]
    table = runner.invoke(app, args)
    assert "1 notices" in table.stdout

    acked = runner.invoke(app, ["notify", "ack", str(notice["id"]), "--by", "j.jansen"])
    assert acked.exit_code == 0, acked.output
    assert f"notice {notice['id']} acknowledged by j.jansen" in acked.stdout
    # acknowledged already, and unknown: expected errors, exit 2 as the error contract says
    assert runner.invoke(app, ["notify", "ack", str(notice["id"]), "--by", "x"]).exit_code == 2
    assert runner.invoke(app, ["notify", "ack", "999999", "--by", "x"]).exit_code == 2
    bad = runner.invoke(app, ["notify", "inbox", "--recipient-kind", "x", "--recipient", "y"])
    assert bad.exit_code == 2


def test_acknowledging_resolves_the_unacknowledged_alert(engine: Engine) -> None:
    feed(engine, msg("escape", "e2", 20), intake("e1"))
    dispatch_once(engine, clock(), channels=channels())
    escape = obligation(engine, "mayor.escape")
    escalate(engine, escape.delivered_at + timedelta(hours=3))
    key = f"unacknowledged:{escape.id}"
    with engine.connect() as conn:
        assert (
            conn.execute(select(alerts.c.status).where(alerts.c.key == key)).scalar_one() == "open"
        )
    acknowledge(engine, escape.id, "j.jansen", actor=TEST)
    with engine.connect() as conn:
        assert (
            conn.execute(select(alerts.c.status).where(alerts.c.key == key)).scalar_one()
            == "resolved"
        )
        assert all(
            r.read_at is not None
            for r in conn.execute(select(deliveries).where(deliveries.c.obligation_id == escape.id))
        )
