"""The portal's framework: the role's menu and home, Dutch first and English on request, Dutch
dates and numbers, error pages with the security headers and no details, static files from
the package only, every page with a declared permission."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from terugkeer.security.roles import Role
from terugkeer.web.app import create_app
from terugkeer.web.portal import check_pages, i18n

Portal = Callable[..., TestClient]
HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")


def menu(html: str) -> list[str]:
    return re.findall(r'<a class="tk-nav__link" href="([^"]+)"', html)


def test_each_role_has_its_own_menu_and_home(engine: Engine, portal: Portal) -> None:
    expected = {
        Role.MAYOR_OFFICE: {"/portaal/meldingen"},
        Role.IDV_OFFICER: {"/portaal/meldingen", "/portaal/slachtoffers"},
        Role.AUDITOR: {"/portaal/auditlog", "/portaal/auditlog/verificatie"},
        Role.ADMINISTRATOR: {"/portaal/accounts", "/portaal/api-sleutels"},
    }
    everything = set().union(*expected.values())
    for role, pages in expected.items():
        home = portal(role).get("/portaal/")
        assert home.status_code == 200
        shown = set(menu(home.text))
        assert pages <= shown, role
        assert not (everything - pages) & shown, role  # none of another role's pages
        assert '<h1 class="utrecht-heading-1">Welkom' in home.text


MINE = {  # the pages of this module's roles, and who may open them
    "/portaal/meldingen": {Role.MAYOR_OFFICE, Role.IDV_OFFICER, Role.CASEWORKER},
    "/portaal/slachtoffers": {Role.IDV_OFFICER},
    "/portaal/auditlog": {Role.AUDITOR},
    "/portaal/auditlog/verificatie": {Role.AUDITOR},
    "/portaal/accounts": {Role.ADMINISTRATOR},
    "/portaal/accounts/nieuw": {Role.ADMINISTRATOR},
    "/portaal/api-sleutels": {Role.ADMINISTRATOR},
}


def test_every_page_opens_for_its_roles_and_is_refused_to_the_others(
    engine: Engine, portal: Portal
) -> None:
    anonymous = portal()
    for path in MINE:
        away = anonymous.get(path, follow_redirects=False)
        assert away.status_code == 303
        assert away.headers["location"].startswith("/portaal/inloggen?volgende=")
    for role in Role:
        if role is Role.FEED:
            continue
        client = portal(role)
        assert client.get("/portaal/").status_code == 200
        for path, allowed in MINE.items():
            response = client.get(path)
            if role in allowed:
                assert response.status_code == 200, (role, path)
            else:
                assert response.status_code == 403, (role, path)
                assert "Geen toegang" in response.text
                assert response.headers["content-type"].startswith("text/html")


def test_the_root_and_a_page_when_not_signed_in(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    root = client.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (303, "/portaal/")
    home = client.get("/portaal/", follow_redirects=False)
    assert home.headers["location"] == "/portaal/inloggen?volgende=%2Fportaal%2F"
    signin = client.get("/portaal/inloggen")
    assert signin.status_code == 200
    assert '<html lang="nl">' in signin.text
    assert '<a class="utrecht-skip-link' in signin.text
    assert "<title>Inloggen bij terugkeer – terugkeer</title>" in signin.text
    assert '<label class="utrecht-form-label" for="veld-naam">Naam</label>' in signin.text


def test_dutch_first_english_on_request(engine: Engine, portal: Portal) -> None:
    client = portal(Role.AUDITOR)
    dutch = client.get("/portaal/", headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8"})
    assert '<html lang="nl">' in dutch.text
    assert "Uitloggen" in dutch.text
    english = client.get("/portaal/?lang=en")
    assert '<html lang="en">' in english.text
    assert "Sign out" in english.text
    assert "Audit log" in english.text
    assert english.cookies.get("terugkeer_lang") == "en"
    remembered = client.get("/portaal/auditlog")  # the cookie keeps English
    assert '<html lang="en">' in remembered.text
    back = client.get("/portaal/?lang=nl")
    assert '<html lang="nl">' in back.text
    browser = portal(Role.AUDITOR, name="engels").get(
        "/portaal/", headers={"Accept-Language": "en-GB,en"}
    )
    assert '<html lang="en">' in browser.text
    assert '<html lang="nl">' in portal().get("/portaal/inloggen").text


def test_dutch_dates_and_numbers() -> None:
    assert i18n.format_date(date(2026, 12, 5)) == "5 december 2026"
    assert i18n.format_date(date(2026, 3, 1), "en") == "1 March 2026"
    # a moment is shown in Dutch time: 23:30 UTC on 31 December is 1 January in winter
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert i18n.format_datetime(late) == "1 januari 2027, 00:30"
    assert i18n.format_datetime(datetime(2026, 7, 1, 12, 0)) == "1 juli 2026, 14:00"  # naive: UTC
    assert i18n.format_number(1234.56, 2) == "1.234,56"
    assert i18n.format_number(1234567) == "1.234.567"
    assert i18n.format_number(1234.5, 2, "en") == "1,234.50"
    assert i18n.format_money(Decimal("-1234.5")) == "€ -1.234,50"
    assert i18n.format_date(None) == ""


def test_not_found_and_refused_are_pages_with_the_security_headers(
    engine: Engine, portal: Portal
) -> None:
    client = portal(Role.ANALYST)
    missing = client.get("/portaal/bestaat-niet")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Niet gevonden" in missing.text
    assert "Uitloggen" in missing.text  # still shows who is signed in
    refused = client.get("/portaal/accounts")
    assert refused.status_code == 403
    assert "Geen toegang" in refused.text
    for response in (missing, refused):
        for header in HEADERS:
            assert header in response.headers
        assert "'self'" in response.headers["content-security-policy"]
    # the API keeps its problem+json
    api = client.get("/api/v1/bestaat-niet")
    assert api.headers["content-type"] == "application/problem+json"


def test_an_unexpected_error_is_a_page_without_details(engine: Engine, portal: Portal) -> None:
    app = create_app(engine)

    def broken() -> None:
        raise RuntimeError("geheime-details-uit-de-database")

    app.add_api_route("/portaal/kapot", broken)
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/portaal/kapot")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "Er ging iets mis" in page.text
    assert "geheime-details" not in page.text
    assert "Traceback" not in page.text
    assert "RuntimeError" not in page.text
    for header in HEADERS:
        assert header in page.headers


def test_assets_come_from_the_package_and_no_inline_script(engine: Engine, portal: Portal) -> None:
    client = portal(Role.ADMINISTRATOR)
    html = client.get("/portaal/accounts").text
    sources = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert sources
    assert all(s.startswith("/") for s in sources), sources  # nothing from elsewhere
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    assert " style=" not in html
    assert not re.search(r" on[a-z]+=", html)
    for path in (
        "/portaal/static/vendor/htmx.min.js",
        "/portaal/static/vendor/utrecht-component-library.css",
        "/portaal/static/theme.css",
        "/portaal/static/portal.css",
    ):
        assert path in html
        assert client.get(path).status_code == 200


def test_a_page_without_a_declared_permission_stops_the_app() -> None:
    router = APIRouter()

    @router.get("/portaal/open")
    def open_page() -> str:
        return "open"

    with pytest.raises(RuntimeError, match="without a declared permission"):
        check_pages(router.routes)


def test_every_page_of_the_portal_declares_its_permission() -> None:
    from fastapi.routing import APIRoute

    from terugkeer.web import portal
    from terugkeer.web.auth import route_permissions

    pages = [r for m in portal._modules for r in m.router.routes if isinstance(r, APIRoute)]
    assert len(pages) > 20  # the check looks at the pages themselves
    assert all(route_permissions(r) for r in pages)
    assert not any(r.include_in_schema for r in pages)  # not API operations
