"""The mayor's office's inbox pages: the municipality's notices only, details, acknowledging
with a note (CSRF, audited), refused for other roles."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.tables import obligations
from terugkeer.security.roles import Role
from terugkeer.security.tables import audit_log
from tests.feedutil import intake
from tests.notify.delivery.test_dispatch import channels, clock, feed
from tests.web.portal.conftest import OTHER_MUNICIPALITY, csrf_token

Portal = Callable[..., TestClient]


def notices(engine: Engine) -> tuple[int, int]:
    """A delivered mayor notice in GM0363 and one in GM0599: their references."""
    feed(
        engine,
        intake("e1"),
        intake("e9", period="P2", bsn="999990019", fields={"residence_municipality": "GM0599"}),
    )
    dispatch_once(engine, clock(), channels=channels())
    with engine.connect() as conn:
        rows = conn.execute(
            select(obligations.c.id, obligations.c.recipient_ref).where(
                obligations.c.rule_id == "mayor.release"
            )
        ).all()
    refs = {r.recipient_ref: r.id for r in rows}
    return refs["GM0363"], refs["GM0599"]


def obligation(engine: Engine, ref: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(obligations).where(obligations.c.id == ref)).one()


def audit_rows(engine: Engine, actor: str, record_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.details).where(
                audit_log.c.actor == actor,
                audit_log.c.record_type == "notice",
                audit_log.c.record_id == str(record_id),
            )
        ).all()
    return [(r.action, r.details) for r in rows]


def test_the_inbox_shows_the_municipalitys_notices_only(engine: Engine, portal: Portal) -> None:
    own, other = notices(engine)
    client = portal(Role.MAYOR_OFFICE, name="burgemeester-a")
    page = client.get("/portaal/meldingen")
    assert page.status_code == 200
    assert f'href="/portaal/meldingen/{own}"' in page.text
    assert f'href="/portaal/meldingen/{other}"' not in page.text
    assert "Einde detentie" in page.text
    assert "Nieuw" in page.text
    assert "Resultaat 1–1 van 1" in page.text
    # another municipality's notice does not exist for this office
    refused = client.get(f"/portaal/meldingen/{other}")
    assert refused.status_code == 404
    assert "Niet gevonden" in refused.text
    # the same page in the other municipality shows the other one
    neighbour = portal(Role.MAYOR_OFFICE, name="burgemeester-b", municipality=OTHER_MUNICIPALITY)
    assert f'href="/portaal/meldingen/{other}"' in neighbour.get("/portaal/meldingen").text


def test_an_empty_inbox_and_filters_are_pages_too(engine: Engine, portal: Portal) -> None:
    client = portal(Role.MAYOR_OFFICE)
    page = client.get("/portaal/meldingen")
    assert page.status_code == 200
    assert "Er zijn geen meldingen." in page.text
    filtered = client.get("/portaal/meldingen?toon=te-bevestigen&volgorde=nieuwste")
    assert "Er zijn geen meldingen die hieraan voldoen." in filtered.text
    bad = client.get("/portaal/meldingen?toon=alles&pagina=0")
    assert bad.status_code == 400
    assert "text/html" in bad.headers["content-type"]


def test_details_and_acknowledge_with_a_note(engine: Engine, portal: Portal) -> None:
    own, _ = notices(engine)
    client = portal(Role.MAYOR_OFFICE, name="oov-adviseur")
    detail = client.get(f"/portaal/meldingen/{own}")
    assert detail.status_code == 200
    text = detail.text
    assert "mayor.release" in text
    assert "P1" in text
    assert "10 februari 2026" in text  # when, in Dutch
    assert "delictcategorie zeden" in text  # why it came: the rule's facts, in Dutch
    assert "offence category" not in text
    assert obligation(engine, own).status == "delivered"
    # opening it marked it read (audited), and it still waits for acknowledgement
    assert ("update", '{"read": true}') in audit_rows(engine, "oov-adviseur", own)

    # without the CSRF token: refused, nothing changes
    forged = client.post(f"/portaal/meldingen/{own}/bevestigen", data={"notitie": "x"})
    assert forged.status_code == 403
    assert obligation(engine, own).status == "delivered"

    done = client.post(
        f"/portaal/meldingen/{own}/bevestigen",
        data={"notitie": "Besproken met de burgemeester", "csrf_token": csrf_token(text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = client.get(done.headers["location"])
    assert "De ontvangst van de melding is bevestigd." in after.text
    assert "Besproken met de burgemeester" in after.text
    row = obligation(engine, own)
    assert (row.status, row.acknowledged_by, row.ack_note) == (
        "acknowledged",
        "oov-adviseur",
        "Besproken met de burgemeester",
    )
    assert ("update", '{"acknowledged": true}') in audit_rows(engine, "oov-adviseur", own)

    again = client.post(
        f"/portaal/meldingen/{own}/bevestigen",
        data={"notitie": "", "csrf_token": csrf_token(text)},
    )
    assert again.status_code == 409
    assert "kan nu niet worden bevestigd" in again.text


def test_the_newest_and_most_urgent_come_first(engine: Engine, portal: Portal) -> None:
    _own, _ = notices(engine)
    client = portal(Role.CASEWORKER)  # the nazorg inbox: an intake and a release notice
    page = client.get("/portaal/meldingen")
    refs = [int(r) for r in re.findall(r'href="/portaal/meldingen/(\d+)"', page.text)]
    assert len(refs) == 2
    first = client.get(f"/portaal/meldingen/{refs[0]}")
    token = csrf_token(first.text)
    client.post(f"/portaal/meldingen/{refs[0]}/bevestigen", data={"csrf_token": token})
    reordered = client.get("/portaal/meldingen")
    assert [int(r) for r in re.findall(r'href="/portaal/meldingen/(\d+)"', reordered.text)] == [
        refs[1],
        refs[0],
    ]  # the acknowledged one goes after the one still waiting


def test_a_nul_in_a_form_or_the_address_and_a_body_too_large_are_pages(
    engine: Engine, portal: Portal
) -> None:
    """A NUL character in a form field is refused like one in a JSON body (PostgreSQL cannot
    store it; SQLite kept it), and the refusals made before the app runs are the portal's
    pages, in Dutch, not problem+json."""
    own, _ = notices(engine)
    client = portal(Role.MAYOR_OFFICE)
    token = csrf_token(client.get(f"/portaal/meldingen/{own}").text)
    for note in ["\x00", "a\x00b"]:
        refused = client.post(
            f"/portaal/meldingen/{own}/bevestigen", data={"notitie": note, "csrf_token": token}
        )
        assert refused.status_code == 400
        assert refused.headers["content-type"].startswith("text/html")
        assert "De vraag klopt niet" in refused.text
    assert obligation(engine, own).status == "delivered"  # nothing was written
    # a percent sign and zeros are text, not a NUL
    done = client.post(
        f"/portaal/meldingen/{own}/bevestigen",
        data={"notitie": "%00 is geen NUL", "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert obligation(engine, own).ack_note == "%00 is geen NUL"

    for response, status, title in [
        (client.get("/portaal/meldingen/%00"), 400, "De vraag klopt niet"),
        (client.get("/portaal/meldingen?toon=%00"), 400, "De vraag klopt niet"),
        (
            client.post(
                f"/portaal/meldingen/{own}/bevestigen",
                data={"notitie": "x" * 2_000_000, "csrf_token": token},
            ),
            413,
            "Te groot",
        ),
    ]:
        assert response.status_code == status
        assert response.headers["content-type"].startswith("text/html")
        assert title in response.text
        assert response.headers["X-Frame-Options"] == "DENY"
    # the API still answers problem+json
    api = client.get("/api/v1/meldingen?ontvanger=%00")
    assert (api.status_code, api.headers["content-type"]) == (400, "application/problem+json")


def test_the_link_in_a_notice_e_mail_opens_the_notice_in_the_portal(
    engine: Engine, portal: Portal
) -> None:
    """The e-mail says only that there is a notice, with a link; the link must lead to it
    (it led to /meldingen/N, a 404, where the portal serves /portaal/meldingen/N)."""
    from urllib.parse import urlsplit

    from terugkeer.notify.delivery.channels.email import compose
    from tests.notify.delivery.test_channels import make_notice

    own, _ = notices(engine)
    message = compose(
        make_notice(obligation_id=own, channel="email", address="oov@gemeente.example"),
        "terugkeer@justid.example",
        "https://terugkeer.example",
    )
    body = message.get_content()
    link = re.search(r"https://terugkeer\.example(\S+)", body)
    assert link is not None, body
    path = urlsplit(link[1]).path
    client = portal(Role.MAYOR_OFFICE)
    page = client.get(path)
    assert page.status_code == 200, path
    assert "mayor.release" in page.text
    # not signed in: the sign-in page, and back to the notice after it
    signed_out = portal().get(path, follow_redirects=False)
    assert signed_out.status_code == 303
    assert "volgende=" in signed_out.headers["location"]


def test_a_page_beyond_the_last_says_so_and_links_back(engine: Engine, portal: Portal) -> None:
    """Not "Er zijn geen meldingen." when there are some, on earlier pages."""
    notices(engine)
    client = portal(Role.MAYOR_OFFICE)
    beyond = client.get("/portaal/meldingen", params={"pagina": 5})
    assert beyond.status_code == 200
    assert "Deze pagina is er niet: de lijst heeft 1 pagina." in beyond.text
    assert 'href="/portaal/meldingen?pagina=1"' in beyond.text
    assert "Er zijn geen meldingen." not in beyond.text
    first = client.get("/portaal/meldingen")
    assert "Deze pagina is er niet" not in first.text
