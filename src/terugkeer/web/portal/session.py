"""Sign in and out of the portal, on the API's sessions (``security/accounts.py``: the same
throttling, audit rows and session cookie, so a signed-in browser may also call the API).

``/portaal/inloggen`` is one form: name, password and, for an account with a second factor
(operator, IDV officer, administrator), the one-time code. All three are checked together, as
the API checks them, so the answer never says which was wrong, whether the name exists, or
whether it has a second factor (a first step that went on to a code page only for accounts
with one would say both). An account's delay after failures is awaited, holding no thread.

The form carries a sign-in CSRF token (a random value in a cookie and in the form, compared).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from terugkeer.config import get_settings
from terugkeer.security.accounts import SESSION_HOURS, SignInError, sign_in_awaiting, sign_out
from terugkeer.security.roles import Principal
from terugkeer.web.auth import SESSION_COOKIE, set_session_cookie
from terugkeer.web.portal import i18n
from terugkeer.web.portal.pages import (
    HOME,
    PREFIX,
    SIGN_IN,
    page_any,
    public,
    render,
    see_other,
)

router = APIRouter()
SIGN_OUT = f"{PREFIX}/uitloggen"
FORM_COOKIE = "terugkeer_signin_form"

Visitor = Annotated[Principal | None, Depends(public())]
SignedIn = Annotated[Principal, Depends(page_any())]

REFUSED = "Inloggen is niet gelukt. Controleer uw naam, wachtwoord en code."
THROTTLED = "U heeft het te vaak geprobeerd. Wacht een kwartier en probeer het dan opnieuw."
EXPIRED = "Het inloggen duurde te lang. Begin opnieuw."
i18n.register(
    {
        REFUSED: "Sign-in failed. Check your name, password and code.",
        EXPIRED: "Signing in took too long. Start again.",
        "Inloggen bij terugkeer": "Sign in to terugkeer",
        "Code": "Code",
        "Alleen als uw account een tweede stap heeft (beheer, IDV, applicatiebeheer): de code "
        "uit de app op uw telefoon (6 cijfers).": (
            "Only when your account has a second step (operations, IDV, administration): the "
            "code from the app on your phone (6 digits)."
        ),
        "Uw gebruikersnaam": "Your user name",
        "Doorgaan": "Continue",
        "Vul uw naam in.": "Enter your name.",
        "Vul uw wachtwoord in.": "Enter your password.",
    }
)


def _secure() -> bool:
    return get_settings().environment != "development"


def _form_token(request: Request) -> str:
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)


def _with_form_cookie(response: Response, token: str) -> Response:
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=_secure(),
        samesite="strict",
        path=PREFIX,
    )
    return response


def _form_ok(request: Request, given: str | None) -> bool:
    expected = request.cookies.get(FORM_COOKIE, "")
    return bool(expected and given) and hmac.compare_digest(
        expected.encode(), (given or "").encode()
    )


def _next(volgende: str | None) -> str:
    """Where to go after signing in: a portal page of this site, else the home page."""
    if volgende and volgende.startswith(f"{PREFIX}/") and "//" not in volgende:
        return volgende
    return HOME


def _form(
    request: Request,
    *,
    volgende: str = "",
    error: str | None = None,
    errors: dict[str, str] | None = None,
    name: str = "",
    status_code: int = 200,
) -> Response:
    token = _form_token(request)
    response = render(
        request,
        "signin.html",
        status_code=status_code,
        title="Inloggen bij terugkeer",
        form_token=token,
        volgende=_next(volgende) if volgende else "",
        error=error,
        errors=errors or {},
        name=name,
    )
    return _with_form_cookie(response, token)


@router.get(SIGN_IN, response_class=HTMLResponse)
def sign_in_page(request: Request, visitor: Visitor, volgende: str = "") -> Response:
    if visitor is not None:
        return RedirectResponse(_next(volgende), status_code=303)
    return _form(request, volgende=volgende)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _signed_in(
    request: Request, name: str, password: str, code: str | None, volgende: str
) -> Response:
    """Sign in through the API's ``sign_in_awaiting``; the session cookie, or the form again
    with one answer for every cause."""
    try:
        session = await sign_in_awaiting(
            request.app.state.engine, name, password, _address(request), code
        )
    except SignInError as e:
        throttled = e.reason == "throttled"
        return _form(
            request,
            volgende=volgende,
            error=THROTTLED if throttled else REFUSED,
            name=name,
            status_code=429 if throttled else 200,
        )
    response = RedirectResponse(_next(volgende), status_code=303)
    set_session_cookie(response, session.token, SESSION_HOURS * 3600)
    return response


def _missing(**fields: str) -> dict[str, str]:
    texts = {"naam": "Vul uw naam in.", "wachtwoord": "Vul uw wachtwoord in."}
    return {field: texts[field] for field, value in fields.items() if not value.strip()}


@router.post(SIGN_IN, response_class=HTMLResponse)
async def sign_in_submit(
    request: Request,
    _visitor: Visitor,
    naam: Annotated[str, Form(max_length=100)] = "",
    wachtwoord: Annotated[str, Form(max_length=1000)] = "",
    code: Annotated[str, Form(max_length=10)] = "",
    form_token: Annotated[str | None, Form(max_length=100)] = None,
    volgende: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if not _form_ok(request, form_token):
        return _form(request, volgende=volgende, error=EXPIRED, name=naam)
    errors = _missing(naam=naam, wachtwoord=wachtwoord)
    if errors:
        return _form(request, volgende=volgende, errors=errors, name=naam)
    return await _signed_in(request, naam, wachtwoord, code.strip() or None, volgende)


@router.post(SIGN_OUT, response_class=HTMLResponse)
def sign_out_submit(request: Request, _principal: SignedIn) -> Response:
    """Sign out (a form with the CSRF token, checked by ``page_any``: nobody can sign you
    out from another site)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        sign_out(request.app.state.engine, token)
    response = see_other(SIGN_IN, bericht="uitgelogd")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get(HOME, response_class=HTMLResponse)
def home(request: Request, _principal: SignedIn) -> Response:
    """The role's home: its pages, each with what it is for."""
    return render(request, "home.html", title="Welkom")


@router.get("/", response_class=HTMLResponse)
def root(_visitor: Visitor) -> Response:
    return RedirectResponse(HOME, status_code=303)
