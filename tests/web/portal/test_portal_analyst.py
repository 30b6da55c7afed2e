"""The analyst's portal pages (/portaal/sturing) on both stores: the steering figures per
municipality as tables and server-drawn bar charts, small cells suppressed, the same figures
as the API; refused for other roles; the monitor's and the MKBA's places marked, not faked."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from terugkeer.config import get_settings
from terugkeer.security.roles import Role
from terugkeer.web.portal.analyst import JOINING
from tests.web.portal.data import BAD, GM, GOOD, OTHER, case_ids, register, residents

Portal = Callable[..., TestClient]
PAGES = ("/portaal/sturing", "/portaal/sturing/ontslag", "/portaal/sturing/kosten")


@pytest.fixture
def small_cells(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The smallest threshold the settings allow (5), so that few residents make a figure."""
    monkeypatch.setenv("TERUGKEER_MONITOR_MIN_CELL", "5")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("small_cells")
def test_steering_pages_for_the_analyst(engine: Engine, portal: Portal) -> None:
    residents(engine, returned=6, planned=0, other=1)
    for n, case_id in enumerate(case_ids(engine)):
        register(engine, case_id, GM, BAD if n < 2 else GOOD)
    register(engine, case_ids(engine, OTHER)[0], OTHER, BAD)
    analyst = portal(Role.ANALYST)
    assert 'href="/portaal/sturing"' in analyst.get("/portaal/").text  # on the start page
    for url in PAGES:
        page = analyst.get(url)
        assert page.status_code == 200, (url, page.text)
        assert page.text.count("<h1") == 1
        assert "<script" not in page.text.split("<main", 1)[1]  # the chart is drawn on the server
        assert '<svg xmlns="http://www.w3.org/2000/svg" role="img"' in page.text
        assert "Amsterdam" in page.text
        assert "Rotterdam" in page.text
        for href, _name in JOINING:  # the monitor's and the MKBA's pages, linked and there
            assert f'href="{href}"' in page.text
            assert analyst.get(href).status_code == 200
        assert "nog niet beschikbaar" not in page.text

    release = analyst.get("/portaal/sturing/ontslag").text
    ams = release.split(">Amsterdam</th>", 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'numeric-data">([^<]*)</td>', ams)
    assert cells[:4] == ["6", "–", "–", "0"]  # 4 in order, 2 not: fewer than 5 each
    rdam = release.split(">Rotterdam</th>", 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'numeric-data">([^<]*)</td>', rdam)[0] == "–"  # one person
    costs = analyst.get("/portaal/sturing/kosten").text
    assert "€ 1.500,00" in costs
    assert "€ 250,00" in costs
    complete = analyst.get("/portaal/sturing", params={"moment": "release"}).text
    assert "100%" in complete
    api = analyst.get("/api/v1/stuurinformatie/gemeenten/kosten").json()
    mine = next(g for g in api["gemeenten"] if g["municipality"] == GM)
    assert (mine["cases"], mine["cost_eur"]) == (6, "1500.00")  # the page's figures
    by_value = analyst.get("/portaal/sturing/kosten", params={"sorteer": "waarde"}).text
    assert by_value.index(">Amsterdam</th>") < by_value.index(">Rotterdam</th>")
    assert analyst.get("/portaal/sturing", params={"peildatum": "2025-13-01"}).status_code == 400
    # the filter form sent with its date field left empty: no date, not an error
    assert analyst.get("/portaal/sturing", params={"peildatum": ""}).status_code == 200
    assert analyst.get("/portaal/sturing/kosten", params={"van": "", "tot": ""}).status_code == 200

    for role in (Role.CASEWORKER, Role.OPERATOR, Role.AUDITOR):
        other = portal(role)
        for url in PAGES:
            assert other.get(url).status_code == 403, (role, url)
        assert other.get("/api/v1/stuurinformatie/gemeenten/kosten").status_code == 403


def test_empty_steering_pages(engine: Engine, portal: Portal) -> None:
    analyst = portal(Role.ANALYST)
    assert "Er zijn nog geen nazorgdossiers" in analyst.get("/portaal/sturing").text
    assert "Er zijn geen activiteiten" in analyst.get("/portaal/sturing/kosten").text
