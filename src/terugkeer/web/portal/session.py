"""Sign in and out of the portal, on the API's sessions (``security/accounts.py``: the same
throttling, audit rows and session cookie, so a signed-in browser may also call the API).

1. ``/portaal/inloggen``: name and password. For an account without a second factor this is
   the sign-in. For an account with one (operator, IDV officer, administrator) the portal
   asks the one-time code on a second page first; the password is checked together with the
   code, so that a wrong password and a wrong code get the same answer. In between, the name
   and password wait for at most five minutes, encrypted, in a cookie of that page only.
2. ``/portaal/tweede-factor``: the one-time code (TOTP).

Both forms carry a sign-in CSRF token (a random value in a cookie and in the form, compared).
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from terugkeer.config import get_settings
from terugkeer.security.accounts import SESSION_HOURS, SignInError, sign_in, sign_out
from terugkeer.security.crypto import DecryptError, field_cipher
from terugkeer.security.roles import Principal
from terugkeer.security.tables import users
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
SECOND_FACTOR = f"{PREFIX}/tweede-factor"
SIGN_OUT = f"{PREFIX}/uitloggen"
PENDING_COOKIE = "terugkeer_signin_pending"
FORM_COOKIE = "terugkeer_signin_form"
PENDING_SECONDS = 300
PENDING_CONTEXT = "portal:sign-in-pending"

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
        "Tweede stap: code": "Second step: code",
        "Vul de code in uit de app op uw telefoon (6 cijfers).": (
            "Enter the code from the app on your phone (6 digits)."
        ),
        "Uw gebruikersnaam": "Your user name",
        "Doorgaan": "Continue",
        "Vul uw naam in.": "Enter your name.",
        "Vul uw wachtwoord in.": "Enter your password.",
        "Vul de code in.": "Enter the code.",
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
    template: str,
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
        template,
        status_code=status_code,
        title="Inloggen bij terugkeer" if template == "signin.html" else "Tweede stap: code",
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
    return _form(request, "signin.html", volgende=volgende)


def _needs_second_factor(request: Request, name: str) -> bool:
    with request.app.state.engine.connect() as conn:
        secret = conn.execute(
            select(users.c.totp_secret).where(users.c.name == name, users.c.active)
        ).first()
    return secret is not None and secret.totp_secret is not None


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signed_in(
    request: Request, name: str, password: str, code: str | None, volgende: str
) -> Response:
    """Sign in through the API's ``sign_in``; the session cookie, or the form again."""
    try:
        session = sign_in(request.app.state.engine, name, password, _address(request), code)
    except SignInError as e:
        throttled = e.reason == "throttled"
        response = _form(
            request,
            "signin.html",
            volgende=volgende,
            error=THROTTLED if throttled else REFUSED,
            name=name,
            status_code=429 if throttled else 200,
        )
        response.delete_cookie(PENDING_COOKIE, path=SECOND_FACTOR)
        return response
    response = RedirectResponse(_next(volgende), status_code=303)
    set_session_cookie(response, session.token, SESSION_HOURS * 3600)
    response.delete_cookie(PENDING_COOKIE, path=SECOND_FACTOR)
    return response


def _missing(**fields: str) -> dict[str, str]:
    texts = {
        "naam": "Vul uw naam in.",
        "wachtwoord": "Vul uw wachtwoord in.",
        "code": "Vul de code in.",
    }
    return {field: texts[field] for field, value in fields.items() if not value.strip()}


@router.post(SIGN_IN, response_class=HTMLResponse)
def sign_in_submit(
    request: Request,
    _visitor: Visitor,
    naam: Annotated[str, Form(max_length=100)] = "",
    wachtwoord: Annotated[str, Form(max_length=1000)] = "",
    form_token: Annotated[str | None, Form(max_length=100)] = None,
    volgende: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if not _form_ok(request, form_token):
        return _form(request, "signin.html", volgende=volgende, error=EXPIRED, name=naam)
    errors = _missing(naam=naam, wachtwoord=wachtwoord)
    if errors:
        return _form(request, "signin.html", volgende=volgende, errors=errors, name=naam)
    if not naam.isprintable() or not _needs_second_factor(request, naam):
        return _signed_in(request, naam, wachtwoord, None, volgende)
    pending = json.dumps({"naam": naam, "wachtwoord": wachtwoord, "at": time.time()})
    response = see_other(f"{SECOND_FACTOR}?{urlencode({'volgende': _next(volgende)})}")
    response.set_cookie(
        PENDING_COOKIE,
        field_cipher().encrypt(pending, PENDING_CONTEXT),
        max_age=PENDING_SECONDS,
        httponly=True,
        secure=_secure(),
        samesite="strict",
        path=SECOND_FACTOR,
    )
    return response


def _pending(request: Request) -> tuple[str, str] | None:
    stored = request.cookies.get(PENDING_COOKIE)
    if not stored:
        return None
    try:
        found = json.loads(field_cipher().decrypt(stored, PENDING_CONTEXT))
    except (DecryptError, ValueError):
        return None
    if time.time() - float(found["at"]) > PENDING_SECONDS:
        return None
    return str(found["naam"]), str(found["wachtwoord"])


@router.get(SECOND_FACTOR, response_class=HTMLResponse)
def second_factor_page(request: Request, _visitor: Visitor, volgende: str = "") -> Response:
    if _pending(request) is None:
        return _form(request, "signin.html", volgende=volgende, error=EXPIRED)
    return _form(request, "second_factor.html", volgende=volgende)


@router.post(SECOND_FACTOR, response_class=HTMLResponse)
def second_factor_submit(
    request: Request,
    _visitor: Visitor,
    code: Annotated[str, Form(max_length=10)] = "",
    form_token: Annotated[str | None, Form(max_length=100)] = None,
    volgende: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    pending = _pending(request)
    if pending is None or not _form_ok(request, form_token):
        return _form(request, "signin.html", volgende=volgende, error=EXPIRED)
    errors = _missing(code=code)
    if errors or not code.strip().isdigit():
        return _form(
            request,
            "second_factor.html",
            volgende=volgende,
            errors=errors or {"code": "Vul de code in."},
        )
    return _signed_in(request, pending[0], pending[1], code.strip(), volgende)


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
