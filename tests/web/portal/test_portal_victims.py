"""The IDV officer's pages: victim notices, still-to-inform first; contact details decrypted on
one page only and every view audited; recording when and how the victim was told."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.security.roles import Role
from terugkeer.security.tables import audit_log
from tests.feedutil import intake
from tests.notify.delivery.test_dispatch import channels, clock, feed, obligation
from tests.notify.delivery.test_inbox import victim
from tests.web.portal.conftest import csrf_token

Portal = Callable[..., TestClient]


def contact_reads(engine: Engine, actor: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    audit_log.c.actor == actor,
                    audit_log.c.action == "read",
                    audit_log.c.record_type == "victim_contact",
                    audit_log.c.record_id == "V1",
                )
            ).scalar_one()
        )


def victim_notice(engine: Engine) -> int:
    feed(engine, intake("e1"), victim())
    dispatch_once(engine, clock(), channels=channels())
    return int(obligation(engine, "victim.release").id)


def test_victim_notices_contact_details_and_recording_who_was_told(
    engine: Engine, portal: Portal
) -> None:
    ref = victim_notice(engine)
    client = portal(Role.IDV_OFFICER, name="idv-medewerker")
    listing = client.get("/portaal/slachtoffers")
    assert listing.status_code == 200
    assert [int(r) for r in re.findall(r'href="/portaal/slachtoffers/(\d+)"', listing.text)] == [
        ref
    ]  # the victim notice only, not the IDV's own notice
    assert "V1" in listing.text

    detail = client.get(f"/portaal/slachtoffers/{ref}")
    assert detail.status_code == 200
    assert "slachtoffer@example.org" not in detail.text  # one click away, not here
    assert contact_reads(engine, "idv-medewerker") == 0

    contact = client.get(f"/portaal/slachtoffers/{ref}/contactgegevens")
    assert contact.status_code == 200
    assert "Slachtoffer Een" in contact.text
    assert "slachtoffer@example.org" in contact.text
    assert contact.headers["cache-control"] == "no-store"
    assert contact_reads(engine, "idv-medewerker") == 1
    client.get(f"/portaal/slachtoffers/{ref}/contactgegevens")
    assert contact_reads(engine, "idv-medewerker") == 2  # every view

    token = csrf_token(contact.text)
    missing = client.post(
        f"/portaal/slachtoffers/{ref}/geinformeerd",
        data={"datum": "2999-01-01", "hoe": "", "csrf_token": token},
    )
    assert missing.status_code == 400
    assert 'id="fout-datum"' in missing.text
    assert 'id="fout-hoe"' in missing.text
    assert 'href="#veld-hoe"' in missing.text  # the summary links to the field
    assert obligation(engine, "victim.release").status == "delivered"

    told = client.post(
        f"/portaal/slachtoffers/{ref}/geinformeerd",
        data={
            "datum": "2026-02-04",
            "hoe": "telefoon",
            "toelichting": "Terugbellen",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert told.status_code == 303
    row = obligation(engine, "victim.release")
    assert row.status == "acknowledged"
    assert row.acknowledged_by == "idv-medewerker"
    assert row.ack_note == "Geïnformeerd op 4 februari 2026: telefonisch. Terugbellen"
    assert (
        "Er zijn geen slachtoffers meer te informeren." in client.get("/portaal/slachtoffers").text
    )


def test_only_the_idv_sees_victims(engine: Engine, portal: Portal) -> None:
    ref = victim_notice(engine)
    for role in (Role.MAYOR_OFFICE, Role.CASEWORKER, Role.ADMINISTRATOR):
        client = portal(role)
        for path in ("/portaal/slachtoffers", f"/portaal/slachtoffers/{ref}/contactgegevens"):
            refused = client.get(path)
            assert refused.status_code == 403, (role, path)
            assert "slachtoffer@example.org" not in refused.text
    # the mayor's office does not even see the victim notice in its inbox
    assert portal(Role.MAYOR_OFFICE, name="b2").get(f"/portaal/meldingen/{ref}").status_code == 404
