"""The auditor's pages: the audit log searched by actor, subject and period; the chain check;
refused for other roles."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from terugkeer.security.actor import Actor
from terugkeer.security.roles import Role
from terugkeer.security.tables import audit_log
from terugkeer.web.portal.auditor import chain_text
from terugkeer.web.portal.i18n import ZONE

Portal = Callable[..., TestClient]


def rows_of(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr class="utrecht-table__row" id="regel-(\d+)">', html)]


def write(engine: Engine, actor: str, record_type: str, ids: list[str]) -> None:
    with engine.begin() as conn:
        Actor(actor, "mayor_office", "testing").record(conn, "read", record_type, ids)


def test_search_by_actor_subject_and_period(engine: Engine, portal: Portal) -> None:
    write(engine, "zoek-a", "notice", ["17", "18"])
    write(engine, "zoek-b", "notice", ["17"])
    client = portal(Role.AUDITOR, name="privacy-1")
    by_actor = client.get("/portaal/auditlog", params={"wie": "zoek-a"})
    assert by_actor.status_code == 200
    assert len(rows_of(by_actor.text)) == 2
    assert rows_of(by_actor.text) == sorted(rows_of(by_actor.text), reverse=True)  # newest first
    assert "Resultaat 1–2 van 2" in by_actor.text
    by_subject = client.get("/portaal/auditlog", params={"soort": "notice", "kenmerk": "17"})
    found = client.get(
        "/portaal/auditlog", params={"soort": "notice", "kenmerk": "17", "wie": "zoek-b"}
    )
    assert len(rows_of(found.text)) == 1
    assert len(rows_of(by_subject.text)) >= 2  # zoek-a and zoek-b (SQLite keeps older rows)
    today = datetime.now(ZONE).date()  # the period is in Dutch days
    this_period = client.get(
        "/portaal/auditlog",
        params={"wie": "zoek-a", "van": today.isoformat(), "tot": today.isoformat()},
    )
    assert len(rows_of(this_period.text)) == 2
    past = client.get(
        "/portaal/auditlog", params={"wie": "zoek-a", "van": "2020-01-01", "tot": "2020-01-31"}
    )
    assert rows_of(past.text) == []
    assert "Er zijn geen regels in het logboek die hieraan voldoen." in past.text
    # the search itself is in the log
    with engine.connect() as conn:
        searches = conn.execute(
            select(func.count()).where(
                audit_log.c.actor == "privacy-1", audit_log.c.record_type == "audit_log"
            )
        ).scalar_one()
    assert searches == 5


def test_a_wrong_date_is_an_error_on_its_field(engine: Engine, portal: Portal) -> None:
    client = portal(Role.AUDITOR)
    page = client.get("/portaal/auditlog", params={"van": "2026-13-45", "tot": "2020-01-01"})
    assert page.status_code == 400
    assert 'id="fout-van"' in page.text
    assert 'aria-describedby="fout-van"' in page.text
    assert 'href="#veld-van"' in page.text
    backwards = client.get("/portaal/auditlog", params={"van": "2026-02-01", "tot": "2026-01-01"})
    assert backwards.status_code == 400
    assert 'id="fout-tot"' in backwards.text


def test_the_chain_check(engine: Engine, portal: Portal) -> None:
    write(engine, "keten", "notice", ["1"])
    client = portal(Role.AUDITOR)
    idle = client.get("/portaal/auditlog/verificatie")
    assert idle.status_code == 200
    assert "Het logboek is in orde." not in idle.text  # it runs when asked
    checked = client.get("/portaal/auditlog/verificatie", params={"nu": "1"})
    assert "Het logboek is in orde." in checked.text
    with engine.connect() as conn:
        entries = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    assert re.search(r"Aantal gecontroleerde regels</dt>\s*<dd>([\d.]+)</dd>", checked.text)[
        1
    ].replace(".", "") == str(entries)  # type: ignore[index]
    # what the check finds is said in Dutch on this page (English on request)
    assert "er is geen controlepunt: een weggehaald laatste deel" in checked.text
    assert "no checkpoint" not in checked.text
    english = client.get("/portaal/auditlog/verificatie", params={"nu": "1", "lang": "en"})
    assert "no checkpoint: a removed tail" in english.text


@pytest.mark.parametrize(
    "finding",
    [
        "does not follow the entry before it (removed or inserted rows)",
        "content does not match its hash (changed)",
        "has no key mark after marked entries (rewritten)",
        "key mark does not match its hash (rewritten)",
        "the log lacks entry 41 of the checkpoint of 2026-12-01 09:00 (40 entries then, 39 now):"
        " entries were removed",
        "differs from the checkpoint of 2026-12-01 09:00 (rewritten or removed entries)",
        "marked under a key no longer configured, after the checkpoint",
        "no checkpoint: a removed tail or an emptied log cannot be told from a short one; the"
        " newest 3 entries are marked under a key no longer configured, with no newer entry to"
        " vouch for them",
        "audit checkpoint file [/srv/cp] cannot be read: Permission denied",
        "audit checkpoint file [/srv/cp] line 4 is not JSON",
        "audit checkpoint file [/srv/cp]: the last checkpoint is malformed",
        "the last audit checkpoint in [/srv/cp] is signed with key [k1], which is not configured",
        "the last audit checkpoint in [/srv/cp] has a wrong signature",
    ],
)
def test_every_finding_of_the_chain_check_reads_in_dutch(finding: str) -> None:
    """Each text security/audit.py.verify gives, as the auditor's page shows it
    (tests/security/test_audit.py checks the same for each finding its broken chains give)."""
    assert_dutch(chain_text(finding, "nl"))
    assert chain_text(finding, "en") == finding


def assert_dutch(text: str | None) -> None:
    """No English of the chain check left, outside the names in brackets."""
    assert text is not None
    bare = re.sub(r"\[[^\]]*\]", "", text)
    for english in ENGLISH:
        assert english not in bare, text


ENGLISH = ("entry", "entries", "checkpoint", "hash (", "removed", "rewritten", "key", "signature",
           "configured", "cannot", "malformed", "line")  # fmt: skip
