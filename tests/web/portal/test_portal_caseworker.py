"""The caseworker's portal pages (/portaal/casussen) on both stores: the expected returns and
the cases of the own municipality, a case with its conditions per moment and its activities
and costs, consent, registering a moment within the field budget, and an import file whose
errors are shown per row; another municipality's case does not exist for the caseworker, and
other roles are refused."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from terugkeer.detention.tables import detention_periods
from terugkeer.reintegration.tables import (
    condition_facts,
    reintegration_cases,
    reintegration_consents,
)
from terugkeer.security.roles import Role
from terugkeer.security.tables import audit_log
from tests.web.portal.conftest import csrf_token
from tests.web.portal.data import BAD, GM, OTHER, case_ids, register, residents

Portal = Callable[..., TestClient]


def rows_of(engine: Engine, actor: str, action: str) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(audit_log.c.id).where(
                    audit_log.c.actor == actor, audit_log.c.action == action
                )
            ).all()
        )


def test_pages_show_the_municipalitys_cases_and_refuse_others(
    engine: Engine, portal: Portal
) -> None:
    residents(engine, returned=2, planned=1, other=1)
    mine = case_ids(engine)
    register(engine, mine[0], GM, BAD)
    elsewhere = case_ids(engine, OTHER)[0]
    worker = portal(Role.CASEWORKER, name="nazorg-ams")
    assert 'href="/portaal/casussen"' in worker.get("/portaal/").text  # on the start page
    upcoming = worker.get("/portaal/casussen", params={"weken": 26})
    assert upcoming.status_code == 200  # the planned release in 2025 lies in the past: empty
    assert "niemand terug" in upcoming.text
    for weeks in (1, 52):  # the form's choices are 2 to 26 weeks (docs/portal.md)
        assert worker.get("/portaal/casussen", params={"weken": weeks}).status_code == 400
    listed = worker.get("/portaal/casussen/alle").text
    assert (
        listed.count('href="/portaal/casussen/') - listed.count('href="/portaal/casussen/alle') >= 3
    )
    assert "teruggekeerd" in listed
    only = worker.get("/portaal/casussen/alle", params={"status": "planned"}).text
    assert "ontslag gepland" in only
    assert "teruggekeerd</td>" not in only

    case = worker.get(f"/portaal/casussen/{mine[0]}")
    assert case.status_code == 200
    text = case.text
    assert "dakloos" in text  # the housing status at release, by its Dutch label
    assert "niet op orde" in text
    assert "€ 250,00" in text  # the activity and its cost
    assert "aanvragen identiteitsbewijs" in text
    assert text.count("<h1") == 1
    assert rows_of(engine, "nazorg-ams", "case_read") >= 1

    assert worker.get(f"/portaal/casussen/{elsewhere}").status_code == 404  # not theirs
    assert worker.get("/portaal/casussen/99999").status_code == 404
    rotterdam = portal(Role.CASEWORKER, name="nazorg-rdam", municipality=OTHER)
    assert rotterdam.get(f"/portaal/casussen/{mine[0]}").status_code == 404
    assert rotterdam.get(f"/portaal/casussen/{elsewhere}").status_code == 200
    for role in (Role.MAYOR_OFFICE, Role.ANALYST, Role.OPERATOR):
        other = portal(role)
        assert other.get("/portaal/casussen").status_code == 403
        assert other.get(f"/portaal/casussen/{mine[0]}").status_code == 403


def test_consent_and_registering_a_moment(engine: Engine, portal: Portal) -> None:
    residents(engine, returned=1, planned=0, other=0)
    (case_id,) = case_ids(engine)
    worker = portal(Role.CASEWORKER, name="nazorg-reg")
    page = worker.get(f"/portaal/casussen/{case_id}").text
    assert "Zonder gegeven toestemming" in page
    token = csrf_token(page)
    assert worker.get(f"/portaal/casussen/{case_id}/registratie").status_code == 200
    refused = worker.post(
        f"/portaal/casussen/{case_id}/registratie",
        data={"csrf_token": token, "moment": "release", **{k: "valid" for k in ("id",)}},
    )
    assert refused.status_code == 400  # four statuses missing, and no consent yet
    bad_date = worker.post(
        f"/portaal/casussen/{case_id}/toestemming",
        data={"csrf_token": token, "status": "given", "datum": "1-2-2025"},
    )
    assert bad_date.status_code == 400
    assert 'id="fout-datum"' in bad_date.text
    assert 'aria-invalid="true"' in bad_date.text
    # consent given for nothing, or for something unknown, is asked again, not assumed
    for scope in ([], ["bogus"], ["registration", "bogus"]):
        unclear = worker.post(
            f"/portaal/casussen/{case_id}/toestemming",
            data={"csrf_token": token, "status": "given", "datum": "2025-01-20", "scope": scope},
        )
        assert unclear.status_code == 400, scope
        assert 'href="#veld-scope"' in unclear.text
        assert "Kies waarvoor de toestemming geldt." in unclear.text
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(reintegration_consents)).scalar() == 0
    given = worker.post(
        f"/portaal/casussen/{case_id}/toestemming",
        data={
            "csrf_token": token,
            "status": "given",
            "datum": "2025-01-20",
            "scope": ["registration"] * 50,  # a scope named twice is kept once
        },
    )
    assert given.status_code == 200
    with engine.connect() as conn:
        assert conn.execute(select(reintegration_consents.c.scope)).scalars().all() == [
            "registration"
        ]
    assert "De toestemming is vastgelegd" in given.text
    assert 'aria-label="Registreren: bij ontslag"' in given.text  # every moment, none recorded

    form = worker.get(f"/portaal/casussen/{case_id}/registratie", params={"moment": "release"})
    assert form.status_code == 200
    budget = re.search(r"U vult <strong>(\d+)</strong> velden in", form.text)
    assert budget is not None
    assert int(budget.group(1)) <= 8  # the burden docs/conditions.md states
    assert 'for="veld-housing"' in form.text
    statuses = {"id": "valid", "housing": "homeless", "income": "benefit", "debts": "none"}
    missing = worker.post(
        f"/portaal/casussen/{case_id}/registratie",
        data={"csrf_token": token, "moment": "release", **statuses},
    )
    assert missing.status_code == 400
    assert 'href="#veld-care"' in missing.text  # the error summary names the field left out
    assert 'aria-describedby="fout-care"' in missing.text
    done = worker.post(
        f"/portaal/casussen/{case_id}/registratie",
        data={
            "csrf_token": token,
            "moment": "release",
            **statuses,
            "care": "not_arranged",
            "care_needs": "addiction",
        },
    )
    assert done.status_code == 200
    assert "De registratie is vastgelegd" in done.text
    with engine.connect() as conn:
        facts = {
            r.condition: (r.status, r.source, r.recorded_by)
            for r in conn.execute(
                select(condition_facts).where(condition_facts.c.case_id == case_id)
            )
        }
    assert facts["housing"] == ("homeless", "portal", "nazorg-reg")
    assert facts["care"][0] == "not_arranged"
    assert rows_of(engine, "nazorg-reg", "conditions_recorded") == 1
    assert rows_of(engine, "nazorg-reg", "consent_given") == 1
    forged = worker.post(
        f"/portaal/casussen/{case_id}/registratie", data={"moment": "release", **statuses}
    )
    assert forged.status_code == 403  # no CSRF token


def test_an_import_file_with_errors_shows_each_bad_row(engine: Engine, portal: Portal) -> None:
    residents(engine, returned=2, planned=0, other=0)
    with engine.connect() as conn:
        by_period = dict(
            conn.execute(
                select(detention_periods.c.period_ref, reintegration_cases.c.id).join(
                    detention_periods,
                    detention_periods.c.id == reintegration_cases.c.period_id,
                )
            ).all()
        )
    first, second = by_period["P1"], by_period["P2"]
    worker = portal(Role.CASEWORKER, name="nazorg-import")
    page = worker.get("/portaal/casussen/importeren")
    assert page.status_code == 200
    token = csrf_token(page.text)
    bad = (
        "dossiernummer;detentiekenmerk;toestemming;toestemming_datum;moment;datum;"
        "identiteitsbewijs;onderdak;werk_en_inkomen;schulden;zorg\n"
        "A-1;P1;gegeven;20-01-2025;bij ontslag;10-02-2025;geldig;dakloos;uitkering;geen;"
        "geen zorg nodig\n"
        "A-2;P2;gegeven;20-01-2025;bij ontslag;10-02-2025;geldig;kasteel;uitkering;geen;"
        "geen zorg nodig\n"
        "A-3;P404;gegeven;20-01-2025;bij ontslag;10-02-2025;geldig;dakloos;uitkering;geen;"
        "geen zorg nodig\n"
    )
    refused = worker.post(
        "/portaal/casussen/importeren",
        data={"csrf_token": token, "soort": "cases"},
        files={"bestand": ("dossiers.csv", bad.encode("utf-8"), "text/csv")},
    )
    assert refused.status_code == 400
    assert "Het bestand is niet geïmporteerd" in refused.text
    assert "2 fouten in 3 gelezen regels." in refused.text
    one_row = "\n".join(bad.splitlines()[:1] + bad.splitlines()[3:]) + "\n"  # only A-3
    single = worker.post(
        "/portaal/casussen/importeren",
        data={"csrf_token": token, "soort": "cases"},
        files={"bestand": ("dossiers.csv", one_row.encode("utf-8"), "text/csv")},
    )
    assert "1 fout in 1 gelezen regel." in single.text
    report = refused.text.split("Fouten per regel", 1)[1]
    cells = re.findall(r'<th scope="row"[^>]*>(\d+)</th>', report)
    assert cells == ["3", "4"]  # the second and third data rows, as the spreadsheet numbers them
    assert "kasteel" in report
    assert "P404" in report
    with engine.connect() as conn:  # all or nothing: the good row was not written either
        assert conn.execute(select(condition_facts.c.id)).first() is None
    api = worker.post(  # the same import through the API, in the same session
        "/api/v1/nazorgdossiers/importen",
        params={"soort": "cases"},
        headers={"X-CSRF-Token": token},
        files={"bestand": ("dossiers.csv", bad.encode("utf-8"), "text/csv")},
    )
    assert api.status_code == 200, api.text
    answer = api.json()
    assert answer["ok"] is False
    assert sorted({e["row"] for e in answer["rows_with_errors"]}) == [3, 4]
    assert answer["applied"] == 0

    good = bad.split("\n")[0] + "\n" + bad.split("\n")[1] + "\n"
    checked = worker.post(
        "/portaal/casussen/importeren",
        data={"csrf_token": token, "soort": "cases", "proef": "1"},
        files={"bestand": ("dossiers.csv", good.encode("utf-8"), "text/csv")},
    )
    assert checked.status_code == 200
    assert "alleen gecontroleerd" in checked.text
    imported = worker.post(
        "/portaal/casussen/importeren",
        data={"csrf_token": token, "soort": "cases"},
        files={"bestand": ("dossiers.csv", good.encode("utf-8"), "text/csv")},
    )
    assert imported.status_code == 200
    assert "Het bestand is geïmporteerd" in imported.text
    with engine.connect() as conn:
        housing = conn.execute(
            select(condition_facts.c.status).where(
                condition_facts.c.case_id == first, condition_facts.c.condition == "housing"
            )
        ).scalar()
    assert housing == "homeless"
    empty = worker.post(
        "/portaal/casussen/importeren", data={"csrf_token": token, "soort": "cases"}
    )
    assert empty.status_code == 400
    assert 'id="fout-bestand"' in empty.text
    with engine.connect() as conn:  # the other case was not in the file
        other = select(condition_facts.c.id).where(condition_facts.c.case_id == second)
        assert conn.execute(other).first() is None
