"""The authorisation matrix, generated from the application's own route table: every API
route, every role (and no one), with and without scope. A route added without a declared
permission stops the app from starting; a route added without an entry here fails this test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.reintegration.cases import open_cases
from terugkeer.security.accounts import add_user, create_token
from terugkeer.security.roles import ROLE_PERMISSIONS, Permission, Role
from terugkeer.web.app import create_app
from terugkeer.web.auth import PUBLIC, api_routes, route_permissions
from tests.feedutil import intake, msg
from tests.notify.delivery.test_dispatch import channels, clock, feed, obligation

PASSWORD = "een heel lang wachtwoord"


@dataclass(frozen=True)
class Caller:
    label: str
    role: Role | None  # None: anonymous
    municipality: str | None = None


CALLERS = [
    Caller("anonymous", None),
    *[
        Caller(r.value, r, "GM0363" if r in (Role.MAYOR_OFFICE, Role.CASEWORKER) else None)
        for r in Role
    ],
    Caller("mayor_office@GM0599", Role.MAYOR_OFFICE, "GM0599"),
    Caller("caseworker@GM0599", Role.CASEWORKER, "GM0599"),
]


@dataclass
class World:
    client: TestClient
    headers: dict[str, dict[str, str]]
    mayor_notice: int
    case_id: int
    activity_id: int


@pytest.fixture
def world(engine: Engine) -> World:
    victim = msg(
        "victim_registered",
        "v1",
        2,
        source="OM-IDV",
        victim_ref="V1",
        relation="victim",
        spoke_in_court=True,
        wants_information=True,
        contact={"name": "Slachtoffer Een"},
    )
    feed(engine, intake("e1"), victim, msg("release", "e2", 40, release_kind="end_of_sentence"))
    dispatch_once(engine, clock(), channels=channels())
    open_cases(engine, None)
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for c in CALLERS:
        if c.role is None:
            continue
        name = c.label.replace("@", "-")
        add_user(engine, name, c.role.value, PASSWORD, c.municipality)
        # the IDV's token is granted victims' contact details (tokens have no second factor)
        grant = c.role is Role.IDV_OFFICER
        token = create_token(engine, name + "-t", name, contact_details=grant)
        headers[c.label] = {"Authorization": f"Bearer {token}"}
    # whom the administrator's routes act on (each change once; again it is a 409)
    add_user(engine, "target", Role.IDV_OFFICER.value, PASSWORD)
    create_token(engine, "target-revoke", "target")
    create_token(engine, "target-grant", "target")
    client = TestClient(create_app(engine))
    (case,) = client.get("/api/v1/nazorgdossiers", headers=headers["caseworker"]).json()
    base = f"/api/v1/nazorgdossiers/{case['id']}"
    given = client.post(f"{base}/toestemmingen", headers=headers["caseworker"], json=CONSENT)
    assert given.status_code == 201, given.text
    activity = client.post(f"{base}/activiteiten", headers=headers["caseworker"], json=ACTIVITY)
    assert activity.status_code == 201, activity.text
    return World(
        client, headers, obligation(engine, "mayor.release").id, case["id"], activity.json()["id"]
    )


CONSENT = {"status": "given", "date": "2025-02-01"}
CONDITIONS = {"moment": "release", "statuses": {"id": "valid"}}
ACTIVITY = {"type": "case_management", "provider": "Gemeente", "start_date": "2025-02-01"}


def NONE(w: World) -> dict[str, Any]:
    return {}


def CASE(w: World) -> dict[str, Any]:
    return {"case_id": w.case_id}


def OWN_CASE(c: Caller) -> bool:
    return c.label == "caseworker"  # the case is in GM0363


UPLOAD = {"bestand": ("dossiers.csv", b"dossiernummer;detentiekenmerk\n", "text/csv")}


def NOBODY(c: Caller) -> bool:
    return False  # the record is not there: 404 for whoever may act on it


def SIGN_IN(c: Caller) -> dict[str, Any]:
    """A failed sign-in per caller, each with a name of its own: the failures of one name
    make its next attempt wait (0.1 s, doubling), which cost this test 33 s of sleep."""
    return {"naam": f"onbekend-{c.label}", "wachtwoord": "y"}


# Per route: the path parameters, a request body (or a function of the caller giving it),
# and who owns the resource (None: anyone with the permission). A new route needs a line here.
Owner = Callable[[Caller], bool] | None
Body = dict[str, Any] | Callable[[Caller], dict[str, Any]] | None
ROUTES: dict[tuple[str, str], tuple[Callable[[World], dict[str, Any]], Body, Owner]] = {
    ("GET", "/api/v1/health"): (lambda w: {}, None, None),
    ("POST", "/api/v1/sessies"): (lambda w: {}, SIGN_IN, None),
    ("DELETE", "/api/v1/sessies/huidige"): (lambda w: {}, None, None),
    ("GET", "/api/v1/meldingen"): (
        lambda w: {},
        None,
        lambda c: c.role in (Role.MAYOR_OFFICE, Role.CASEWORKER, Role.IDV_OFFICER),
    ),
    ("GET", "/api/v1/meldingen/{melding_id}"): (
        lambda w: {"melding_id": w.mayor_notice},
        None,
        lambda c: c.label == "mayor_office",
    ),
    ("POST", "/api/v1/meldingen/{melding_id}/lezen"): (
        lambda w: {"melding_id": w.mayor_notice},
        None,
        lambda c: c.label == "mayor_office",
    ),
    ("POST", "/api/v1/meldingen/{melding_id}/bevestigingen"): (
        lambda w: {"melding_id": w.mayor_notice},
        {},
        lambda c: c.label == "mayor_office",
    ),
    ("GET", "/api/v1/slachtoffers/{slachtoffer}/contactgegevens"): (
        lambda w: {"slachtoffer": "V1"},
        None,
        None,
    ),
    ("GET", "/api/v1/nazorgdossiers"): (NONE, None, None),
    ("GET", "/api/v1/nazorgdossiers/{case_id}"): (CASE, None, OWN_CASE),
    ("GET", "/api/v1/nazorgdossiers/{case_id}/toestemmingen"): (CASE, None, OWN_CASE),
    ("POST", "/api/v1/nazorgdossiers/{case_id}/toestemmingen"): (CASE, CONSENT, OWN_CASE),
    ("GET", "/api/v1/nazorgdossiers/{case_id}/basisvoorwaarden"): (CASE, None, OWN_CASE),
    ("GET", "/api/v1/nazorgdossiers/{case_id}/basisvoorwaarden/historie"): (CASE, None, OWN_CASE),
    ("GET", "/api/v1/nazorgdossiers/{case_id}/basisvoorwaarden/formulier"): (CASE, None, OWN_CASE),
    ("POST", "/api/v1/nazorgdossiers/{case_id}/basisvoorwaarden"): (CASE, CONDITIONS, OWN_CASE),
    ("GET", "/api/v1/nazorgdossiers/{case_id}/activiteiten"): (CASE, None, OWN_CASE),
    ("POST", "/api/v1/nazorgdossiers/{case_id}/activiteiten"): (CASE, ACTIVITY, OWN_CASE),
    ("PUT", "/api/v1/nazorgdossiers/{case_id}/activiteiten/{activity_id}"): (
        lambda w: {"case_id": w.case_id, "activity_id": w.activity_id},
        ACTIVITY,
        OWN_CASE,
    ),
    ("GET", "/api/v1/stuurinformatie/verwachte-terugkeer"): (NONE, None, None),
    ("GET", "/api/v1/stuurinformatie/niet-op-orde-bij-ontslag"): (NONE, None, None),
    ("GET", "/api/v1/stuurinformatie/activiteiten-en-kosten"): (NONE, None, None),
    ("GET", "/api/v1/stuurinformatie/registratievolledigheid"): (NONE, None, None),
    ("GET", "/api/v1/codelijsten/basisvoorwaarden"): (NONE, None, None),
    ("GET", "/api/v1/codelijsten/activiteitsoorten"): (NONE, None, None),
    ("GET", "/api/v1/auditlog"): (NONE, None, None),
    ("GET", "/api/v1/auditlog/verificatie"): (NONE, None, None),
    ("GET", "/api/v1/tokens"): (NONE, None, None),
    ("DELETE", "/api/v1/tokens/{token}"): (lambda w: {"token": "target-revoke"}, None, None),
    ("PUT", "/api/v1/tokens/{token}/contactgegevens"): (
        lambda w: {"token": "target-grant"},
        None,
        None,
    ),
    ("DELETE", "/api/v1/tokens/{token}/contactgegevens"): (
        lambda w: {"token": "target-grant"},
        None,
        None,
    ),
    ("POST", "/api/v1/gebruikers/{naam}/uitschakeling"): (lambda w: {"naam": "target"}, None, None),
    ("POST", "/api/v1/gebruikers/{naam}/tweede-factor"): (lambda w: {"naam": "target"}, None, None),
    ("DELETE", "/api/v1/gebruikers/{naam}/sessies"): (lambda w: {"naam": "target"}, None, None),
    ("POST", "/api/v1/detentiegebeurtenissen"): (NONE, [intake("e9", period="P9")], None),  # type: ignore[dict-item]
    # the cost-benefit analysis (web/api/mkba.py): the analyst only
    ("GET", "/api/v1/mkba-scenarios"): (NONE, None, None),
    ("GET", "/api/v1/mkba-scenarios/{naam}"): (lambda w: {"naam": "npi-prison"}, None, None),
    ("POST", "/api/v1/mkba-scenarios/{naam}/doorrekeningen"): (
        lambda w: {"naam": "npi-prison"},
        {"draws": 50, "seed": 1},
        None,
    ),
    ("GET", "/api/v1/mkba-scenarios/{naam}/doorrekeningen/{doorrekening}"): (
        lambda w: {"naam": "npi-prison", "doorrekening": "50-1"},
        None,
        None,
    ),
    # the operator's routes (web/api/operations.py): no burst, quarantined message or dead
    # letter in this world (NOBODY: a 404 for the operator); the notice is not unresolved and
    # its delivery not dead (409)
    ("GET", "/api/v1/beheer/bronnen"): (NONE, None, None),
    ("GET", "/api/v1/beheer/pieken"): (NONE, None, None),
    ("POST", "/api/v1/beheer/pieken/{piek}/bevestiging"): (lambda w: {"piek": 1}, None, NOBODY),
    ("POST", "/api/v1/beheer/pieken/{piek}/vervallenverklaring"): (
        lambda w: {"piek": 1},
        None,
        NOBODY,
    ),
    ("GET", "/api/v1/beheer/quarantaine"): (NONE, None, None),
    ("POST", "/api/v1/beheer/quarantaine/{bericht}/herverwerking"): (
        lambda w: {"bericht": 1},
        None,
        NOBODY,
    ),
    ("GET", "/api/v1/beheer/verplichtingen"): (NONE, None, None),
    ("GET", "/api/v1/beheer/onbekende-ontvangers"): (NONE, None, None),
    ("POST", "/api/v1/beheer/onbekende-ontvangers/{verplichting}/gemeente"): (
        lambda w: {"verplichting": w.mayor_notice},
        {"gemeente": "GM0599"},
        None,
    ),
    ("GET", "/api/v1/beheer/onbestelbaar"): (NONE, None, None),
    ("POST", "/api/v1/beheer/onbestelbaar/{bezorging}/herzending"): (
        lambda w: {"bezorging": 1},
        None,
        None,
    ),
    ("GET", "/api/v1/beheer/controle"): (NONE, None, None),
    ("POST", "/api/v1/beheer/controle"): (NONE, None, None),
    ("GET", "/api/v1/beheer/controle/tekorten"): (NONE, None, None),
    ("GET", "/api/v1/beheer/aanvulling"): (NONE, None, None),
    ("POST", "/api/v1/beheer/aanvulling"): (NONE, {"sinds": "2025-01-01"}, None),
    # a municipality's import file (web/api/imports.py): a file with a header and no rows
    ("POST", "/api/v1/nazorgdossiers/importen"): (NONE, {"files": UPLOAD}, None),
    # the analysts' steering figures (web/api/steering.py)
    ("GET", "/api/v1/stuurinformatie/gemeenten/volledigheid"): (NONE, None, None),
    ("GET", "/api/v1/stuurinformatie/gemeenten/bij-ontslag"): (NONE, None, None),
    ("GET", "/api/v1/stuurinformatie/gemeenten/kosten"): (NONE, None, None),
    # the monitor (web/api/monitor.py): suppressed aggregates for the analyst
    ("GET", "/api/v1/monitor/indicatoren"): (NONE, None, None),
    ("GET", "/api/v1/monitor/recidive"): (NONE, None, None),
    ("GET", "/api/v1/monitor/samenhang"): (NONE, None, None),
}


def expected(permissions: frozenset[Permission], owner: Owner, caller: Caller) -> set[int]:
    if permissions == {PUBLIC}:
        return {200, 201, 204, 400, 401, 429}  # sign-in: wrong credentials, then throttled
    if caller.role is None:
        return {401}
    if not permissions <= ROLE_PERMISSIONS[caller.role]:
        return {403}
    if owner is not None and not owner(caller):
        return {403, 404}  # another organisation's inbox: 403; its notice or case: not there
    return {200, 201, 204, 409}  # 409: done already by an earlier caller


def test_every_route_and_role(world: World) -> None:
    routes = [
        (method, path, route, inherited)
        for path, route, inherited in api_routes(world.client.app.routes)  # type: ignore[attr-defined]
        for method in sorted(route.methods or ())
        if route.include_in_schema
    ]
    covered = {(m, p) for m, p, _, _ in routes}
    assert covered == set(ROUTES), f"routes without a matrix entry: {covered - set(ROUTES)}"
    failures = []
    for method, path, route, inherited in routes:
        params, body, owner = ROUTES[(method, path)]
        permissions = route_permissions(route, inherited)
        assert permissions
        url = path.format(**params(world))
        for caller in CALLERS:
            sent = body(caller) if callable(body) else body
            upload = isinstance(sent, dict) and "files" in sent  # a multipart request
            response = world.client.request(
                method,
                url,
                headers=world.headers[caller.label],
                **({"files": sent["files"]} if upload else {"json": sent}),  # type: ignore[index]
            )
            allowed = expected(permissions, owner, caller)
            if response.status_code not in allowed:
                failures.append(
                    f"{method} {path} as {caller.label}: {response.status_code}, expected {sorted(allowed)}"
                )
    assert failures == []
