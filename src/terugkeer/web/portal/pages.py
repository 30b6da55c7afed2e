"""What every portal page uses: templates, rendering, the permission a page needs, the
navigation, paging and the error pages. See docs/portal.md, "For developers".

A page is a FastAPI route on a module's ``router`` (``APIRouter``) that declares its permission
with ``Depends(page(Permission.X))`` (or ``Depends(public())`` for the sign-in pages), reads
its data through the same service and query functions as the API, and returns
``render(request, "folder/name.html", **context)``.

- Not signed in: a redirect (303) to ``/portaal/inloggen?volgende=<the page>``.
- Signed in without the permission: the "geen toegang" page, status 403.
- A form (POST) carries the session's CSRF token in the field ``csrf_token`` (the macro
  ``csrf()``), or htmx sends it in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from terugkeer.security.accounts import principal_for_session
from terugkeer.security.roles import ROLE_PERMISSIONS, Permission, Principal
from terugkeer.web.auth import CSRF_HEADER, SESSION_COOKIE, UNSAFE, engine_of
from terugkeer.web.portal import i18n
from terugkeer.web.portal.reasons import dutch_reason

PREFIX = "/portaal"
SIGN_IN = f"{PREFIX}/inloggen"
HOME = f"{PREFIX}/"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
PAGE_SIZE = 25
MAX_PAGE = 100_000
CSRF_FIELD = "csrf_token"

ROLE_NAMES = {
    "operator": "Functioneel beheerder Justid",
    "mayor_office": "OOV-adviseur (burgemeester)",
    "idv_officer": "Medewerker IDV",
    "caseworker": "Nazorgcoördinator",
    "analyst": "Analist",
    "auditor": "Functionaris gegevensbescherming",
    "administrator": "Applicatiebeheerder",
    "feed": "Aanleverend systeem",
}
i18n.register(
    {
        "Functioneel beheerder Justid": "Justid operator",
        "OOV-adviseur (burgemeester)": "Mayor's office",
        "Medewerker IDV": "IDV officer",
        "Nazorgcoördinator": "Caseworker",
        "Analist": "Analyst",
        "Functionaris gegevensbescherming": "Auditor (data protection officer)",
        "Applicatiebeheerder": "Administrator",
        "Aanleverend systeem": "Feed",
    }
)


# --- the navigation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    label: str  # Dutch; translated through the catalogue
    href: str
    permission: Permission
    order: int
    description: str  # one line for the home page
    roles: frozenset[str] | None = None  # only these roles (None: every role with permission)


NAVIGATION: list[NavItem] = []


def nav(
    label: str,
    href: str,
    permission: Permission,
    *,
    order: int = 50,
    description: str = "",
    roles: set[str] | None = None,
) -> None:
    """Add a page to the menu of every role that may open it (a page module calls this at
    import). ``roles`` narrows it to some roles that hold the permission."""
    if any(item.href == href for item in NAVIGATION):
        return
    NAVIGATION.append(
        NavItem(label, href, permission, order, description, frozenset(roles) if roles else None)
    )
    NAVIGATION.sort(key=lambda item: (item.order, item.href))


def menu(principal: Principal | None) -> list[NavItem]:
    """The pages this principal may open, in order."""
    if principal is None:
        return []
    return [
        item
        for item in NAVIGATION
        if item.permission in ROLE_PERMISSIONS[principal.role]
        and (item.roles is None or principal.role.value in item.roles)
    ]


# --- templates ----------------------------------------------------------------------------------


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        datum=pass_context(lambda c, v: i18n.format_date(v, c["lang"])),
        datumtijd=pass_context(lambda c, v: i18n.format_datetime(v, c["lang"])),
        getal=pass_context(lambda c, v, decimals=0: i18n.format_number(v, decimals, c["lang"])),
        bedrag=pass_context(lambda c, v: i18n.format_money(v, c["lang"])),
        reden=pass_context(lambda c, v: dutch_reason(v) if c["lang"] == "nl" else v),
    )
    return env


templates = _environment()


def url_with(request: Request, **changes: Any) -> str:
    """This page's address with some query parameters changed (None: removed)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    params.pop("lang", None)
    params.pop("bericht", None)  # a confirmation is shown once
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


# messages shown once after an action (a redirect with ?bericht=<key>); only known keys
MESSAGES: dict[str, str] = {"uitgelogd": "U bent uitgelogd."}
i18n.register({"U bent uitgelogd.": "You have signed out."})
i18n.register(
    {
        "Deze pagina is er niet: de lijst heeft": "This page does not exist: the list has",
        "pagina's.": "pages.",
        "pagina.": "page.",
        "Naar de laatste pagina": "To the last page",
    }
)


def messages(entries: Mapping[str, str]) -> None:
    """Register the confirmations a page module shows after an action (key -> Dutch)."""
    MESSAGES.update(entries)


def render(
    request: Request,
    template_name: str,
    /,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The template ``template_name`` (under ``web/portal/templates``) as the response, with what every
    page needs in its context: ``request``, ``principal``, ``csrf_token``, ``lang``, ``_``
    (translate), ``menu``, ``url_with`` and the filters ``datum``, ``datumtijd``, ``getal``
    and ``bedrag``."""
    lang = i18n.language(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    bericht = request.query_params.get("bericht")
    values: dict[str, Any] = {
        "request": request,
        "principal": principal,
        "role_name": ROLE_NAMES.get(principal.role.value, "") if principal else "",
        "csrf_token": getattr(request.state, "csrf", ""),
        "lang": lang,
        "_": lambda text: i18n.translate(text, lang),
        "menu": menu(principal),
        "url_with": lambda **changes: url_with(request, **changes),
        "flash": MESSAGES.get(bericht) if bericht else None,
        "title": "",
        "errors": {},
    }
    values.update(context)
    template = templates.get_template(template_name)
    html = template.render(values)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="strict",
            path="/",
        )
    return response


def see_other(url: str, bericht: str | None = None) -> RedirectResponse:
    """After a form: go to ``url`` (303), optionally with a registered confirmation."""
    if bericht is not None:
        if bericht not in MESSAGES:
            raise KeyError(f"no message [{bericht}] registered")
        url += ("&" if "?" in url else "?") + urlencode({"bericht": bericht})
    return RedirectResponse(url, status_code=303)


# --- paging -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pager:
    """Page ``number`` of a listing of ``total`` rows, ``size`` per page."""

    number: int
    size: int
    total: int

    @property
    def limit(self) -> int:
        return self.size

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.offset + self.size)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def past_end(self) -> bool:
        """A page beyond the last (a link kept while the list shrank, a typed number)."""
        return self.total > 0 and self.number > self.pages

    def with_total(self, total: int) -> Pager:
        return Pager(self.number, self.size, total)


def pager(pagina: int = 1, size: int = PAGE_SIZE, total: int = 0) -> Pager:
    """The page asked for (``?pagina=``, from 1); give it the total once known."""
    return Pager(max(1, min(pagina, MAX_PAGE)), size, total)


# --- who may open a page ------------------------------------------------------------------------


class SignInNeeded(HTTPException):
    """Not signed in (or the session ended): the portal sends the visitor to sign in."""

    def __init__(self) -> None:
        super().__init__(401, "sign in")


def _session(engine: Engine, token: str) -> tuple[Principal, str] | None:
    with engine.begin() as conn:
        return principal_for_session(conn, token)


async def signed_in(request: Request) -> tuple[Principal, str] | None:
    """The session's principal and CSRF token, or None; put on ``request.state``."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    found = await run_in_threadpool(_session, engine_of(request), token)
    if found is not None:
        request.state.principal, request.state.csrf = found
    return found


async def check_csrf(request: Request, expected: str) -> None:
    """A form that changes something carries the session's CSRF token (field or header)."""
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "csrf")


Dependency = Callable[[Request], Coroutine[Any, Any, Principal]]


def page(permission: Permission) -> Dependency:
    """The dependency of a page that needs ``permission``: the signed-in principal, or the
    sign-in redirect (401) or the "geen toegang" page (403)."""

    async def dependency(request: Request) -> Principal:
        found = await signed_in(request)
        if found is None:
            raise SignInNeeded()
        principal, csrf = found
        if request.method in UNSAFE:
            await check_csrf(request, csrf)
        if not principal.can(permission):
            raise HTTPException(403, f"role [{principal.role}] may not do this ({permission})")
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def page_any() -> Dependency:
    """The dependency of a page every signed-in user may open (the home page, signing out):
    the principal, or the sign-in redirect."""

    async def dependency(request: Request) -> Principal:
        found = await signed_in(request)
        if found is None:
            raise SignInNeeded()
        principal, csrf = found
        if request.method in UNSAFE:
            await check_csrf(request, csrf)
        return principal

    dependency.permission = Permission.HEALTH_READ  # type: ignore[attr-defined]
    return dependency


def public() -> Callable[[Request], Coroutine[Any, Any, Principal | None]]:
    """The dependency of a page anyone may open (sign-in): the principal when signed in."""

    async def dependency(request: Request) -> Principal | None:
        found = await signed_in(request)
        return found[0] if found is not None else None

    dependency.permission = Permission.HEALTH_READ  # type: ignore[attr-defined]
    return dependency


# --- error pages --------------------------------------------------------------------------------

ERRORS = {
    400: (
        "De vraag klopt niet",
        "Er ging iets mis met wat u invulde of koos. Ga terug en probeer het opnieuw.",
    ),
    403: (
        "Geen toegang",
        "U mag deze pagina niet zien met uw rol. Denkt u dat dit niet klopt? Neem contact op met de beheerder.",
    ),
    404: ("Niet gevonden", "Deze pagina bestaat niet, of u mag hem niet zien."),
    409: ("Dat kan nu niet", "Deze actie kan nu niet worden uitgevoerd."),
    413: (
        "Te groot",
        "Wat u stuurde is te groot. Maak de tekst korter of kies een kleiner bestand.",
    ),
    429: (
        "Te veel pogingen",
        "U heeft het te vaak geprobeerd. Wacht een kwartier en probeer het dan opnieuw.",
    ),
    500: (
        "Er ging iets mis",
        "Er ging bij ons iets mis. Wij hebben de fout vastgelegd. Probeer het later opnieuw.",
    ),
}
i18n.register(
    {
        "De vraag klopt niet": "The request is not valid",
        "Te groot": "Too large",
        "Wat u stuurde is te groot. Maak de tekst korter of kies een kleiner bestand.": (
            "What you sent is too large. Shorten the text or choose a smaller file."
        ),
        "Er ging iets mis met wat u invulde of koos. Ga terug en probeer het opnieuw.": (
            "Something was wrong with what you entered or chose. Go back and try again."
        ),
        "Geen toegang": "No access",
        "U mag deze pagina niet zien met uw rol. Denkt u dat dit niet klopt? Neem contact op met de beheerder.": (
            "Your role may not see this page. If you think this is wrong, contact the administrator."
        ),
        "Niet gevonden": "Not found",
        "Deze pagina bestaat niet, of u mag hem niet zien.": (
            "This page does not exist, or you may not see it."
        ),
        "Dat kan nu niet": "That is not possible now",
        "Deze actie kan nu niet worden uitgevoerd.": "This action cannot be done now.",
        "Te veel pogingen": "Too many attempts",
        "U heeft het te vaak geprobeerd. Wacht een kwartier en probeer het dan opnieuw.": (
            "You tried too often. Wait a quarter of an hour and try again."
        ),
        "Er ging bij ons iets mis. Wij hebben de fout vastgelegd. Probeer het later opnieuw.": (
            "Something went wrong on our side. We have logged the error. Try again later."
        ),
        "Uw formulier was verlopen. Probeer het opnieuw.": (
            "Your form had expired. Please try again."
        ),
    }
)


def error_page(request: Request, status: int, message: str | None = None) -> HTMLResponse:
    """The error page for ``status`` (never a stack trace or an internal message)."""
    title, text = ERRORS.get(status, ERRORS[500] if status >= 500 else ERRORS[400])
    return render(
        request,
        "error.html",
        status_code=status,
        title=title,
        message=message or text,
        status=status,
    )


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{SIGN_IN}?{urlencode({'volgende': target})}", status_code=303)
