"""The analyst's monitor and MKBA pages (web/portal/analysis.py): real figures from a small
ingested synthetic store, suppressed exactly as the API serves them (no count under the minimum
cell size on a page), the plots as SVG without inline styles, a run page with the API's numbers
for the same scenario, draws and seed, and every other role refused. On both stores."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from terugkeer.intake import ingest_files
from terugkeer.mkba.report import euro, pct
from terugkeer.security.roles import Role
from terugkeer.synth import generate
from terugkeer.web.app import create_app
from tests.conftest import empty_all
from tests.web.portal.conftest import quick_session, quick_user

K = 10
CELL = re.compile(r"<td[^>]*>\s*([^<]*?)\s*</td>")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, TestClient]]:
    """One store per module and store, a small synthetic year; the pages only read."""
    engine: Engine = request.getfixturevalue(
        "_sqlite_engine" if request.param == "sqlite" else "_pg_engine"
    )
    empty_all(engine)
    synth = generate(tmp_path_factory.mktemp("analysis") / "feeds", releases=400, seed=3)
    ingest_files(engine, [synth.files[f"{n}.jsonl"] for n in ("detention", "reconvictions")])
    client = TestClient(create_app(engine))
    quick_session(client, engine, quick_user(engine, Role.ANALYST, "analist"))
    yield engine, client
    empty_all(engine)


def counts(page: str) -> list[int]:
    """Every table cell that is a whole number (Dutch thousands separator)."""
    return [
        int(c.replace(".", "")) for c in CELL.findall(page) if re.fullmatch(r"\d{1,3}(\.\d{3})*", c)
    ]


def api(client: TestClient, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def test_monitor_page_shows_the_apis_suppressed_figures(
    world: tuple[Engine, TestClient],
) -> None:
    _, client = world
    page = client.get("/portaal/monitor")
    assert page.status_code == 200, page.text
    text = page.text
    assert "samenhang, geen effect" in text.lower()
    assert text.count("<caption") >= 4
    assert 'scope="col"' in text
    assert 'scope="row"' in text
    # the national figures are the API's: the general 2-year recidivists of all years
    rows = api(client, "/api/v1/monitor/recidive?criterium=general&jaar=totaal&waarde=totaal")
    national = rows["rijen"][0]
    assert national["personen"] is not None
    assert national["personen"] >= K
    assert national["personen"] in counts(text)
    shown = counts(text)
    assert shown, "no figures on the page"
    assert min(shown) >= K, f"a count under {K} on the page: {sorted(shown)[:5]}"
    # a plot as SVG: no inline style (CSP style-src 'self'), with a title
    plot = re.search(r'<img src="(/portaal/monitor/grafiek/[^"]+\.svg)"', text)
    assert plot is not None
    svg = client.get(plot.group(1))
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "style=" not in svg.text
    assert "<style" not in svg.text
    assert "<title" in svg.text


def test_a_small_municipality_shows_no_small_count(world: tuple[Engine, TestClient]) -> None:
    _, client = world
    rows = api(client, "/api/v1/monitor/recidive?dimensie=municipality&jaar=totaal")["rijen"]
    small = sorted({r["waarde"] for r in rows if r["personen"] is None})
    large = sorted({r["waarde"] for r in rows if (r["personen"] or 0) >= K} - {"totaal"})
    assert small, "the synthetic store should have municipalities under the cell size"
    page = client.get(f"/portaal/monitor?gemeente={small[0]}&jaar=totaal")
    assert page.status_code == 200, page.text
    assert small[0] in page.text
    assert "–" in page.text
    assert min(counts(page.text)) >= K
    if large:
        figures = [r for r in rows if r["waarde"] == large[0] and r["personen"] is not None]
        page = client.get(f"/portaal/monitor?gemeente={large[0]}")
        assert figures[0]["personen"] in counts(page.text)
    # a year that is not in the data, a bad municipality
    assert client.get("/portaal/monitor?jaar=1999").status_code == 404
    assert client.get("/portaal/monitor?gemeente=XX").status_code == 400


def test_mkba_run_page_has_the_apis_numbers(world: tuple[Engine, TestClient]) -> None:
    _, client = world
    listing = client.get("/portaal/mkba")
    assert listing.status_code == 200
    scenarios = api(client, "/api/v1/mkba-scenarios")
    assert all(s["title"] in listing.text for s in scenarios)
    page = client.get("/portaal/mkba/doorrekening?scenario=npi-prison&trekkingen=300&seed=5")
    assert page.status_code == 200, page.text
    run = api(client, "/api/v1/mkba-scenarios/npi-prison/doorrekeningen/300-5")
    society = run["per_participant"]["society"]
    # in the table of perspectives, an amount on one line (a no-break space)
    assert euro(society["npv"]).replace(" ", "\u00a0") in page.text
    assert euro(society["benefits"]).replace(" ", "\u00a0") in page.text
    chance = run["monte_carlo"]["society"]["p_benefits_exceed_costs"]
    assert pct(chance).replace(" ", "\u00a0") in page.text
    svg = re.search(r"<svg .*?</svg>", page.text, flags=re.S)
    assert svg is not None
    assert "<title" in svg.group(0)
    assert "style=" not in svg.group(0)
    assert "aanname" in page.text
    assert "Kanttekeningen" in page.text
    # the page's limits are the API's
    too_many = client.get("/portaal/mkba/doorrekening?scenario=npi-prison&trekkingen=20001")
    assert too_many.status_code == 400
    assert client.get("/portaal/mkba/doorrekening?scenario=geen").status_code == 404
    # a scenario the store cannot carry (no programme registered): said on the page
    unrunnable = client.get(
        "/portaal/mkba/doorrekening?scenario=gemeente-registratie&trekkingen=50"
    )
    assert unrunnable.status_code == 422
    assert 'role="alert"' in unrunnable.text


def test_other_roles_are_refused(world: tuple[Engine, TestClient]) -> None:
    engine, client = world
    for role in Role:
        if role in (Role.ANALYST, Role.FEED):
            continue
        other = TestClient(client.app)
        quick_session(other, engine, quick_user(engine, role, f"ander-{role.value}"))
        for path in (
            "/portaal/monitor",
            "/portaal/mkba",
            "/portaal/mkba/doorrekening?scenario=npi-prison",
        ):
            refused = other.get(path)
            assert refused.status_code == 403, (role, path)
            assert "Geen toegang" in refused.text
        menu = other.get("/portaal/").text
        assert 'href="/portaal/monitor"' not in menu
        assert 'href="/portaal/mkba"' not in menu
    anonymous = TestClient(client.app).get("/portaal/monitor", follow_redirects=False)
    assert anonymous.status_code == 303
    # the analyst's menu and start page have both pages
    home = client.get("/portaal/").text
    assert 'href="/portaal/monitor"' in home
    assert 'href="/portaal/mkba"' in home
