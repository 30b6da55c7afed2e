"""Sign in and out (sessies). OpenID Connect is a later step: it will add a route here that
ends in the same ``set_session_cookie``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from terugkeer.security.accounts import SESSION_HOURS, SignInError, sign_in_awaiting, sign_out
from terugkeer.security.roles import Permission
from terugkeer.web.auth import SESSION_COOKIE, requires, set_session_cookie

router = APIRouter(tags=["sessies"])
Public = Annotated[None, Depends(requires(Permission.HEALTH_READ))]


class SignIn(BaseModel):
    # printable characters only (no NUL, no control characters): a name is recorded as such
    naam: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    wachtwoord: str = Field(min_length=1, max_length=1000)
    code: str | None = Field(
        default=None,
        max_length=10,
        pattern=r"^[0-9 ]*$",
        description="one-time code (TOTP); for operator, IDV and administrator",
    )


class SessionRead(BaseModel):
    naam: str
    rol: str
    gemeente: str | None
    csrf_token: str


@router.post(
    "/sessies",
    response_model=SessionRead,
    status_code=201,
    summary="Sign in",
    responses={
        401: {"description": "wrong name, password or one-time code (one answer for each)"},
        429: {"description": "too many failed attempts: wait before trying again"},
    },
)
async def create_session(
    request: Request, response: Response, body: SignIn, _: Public
) -> SessionRead:
    address = request.client.host if request.client else "unknown"
    try:  # an account's delay after failures is awaited: it holds no server thread
        session = await sign_in_awaiting(
            request.app.state.engine, body.naam, body.wachtwoord, address, body.code
        )
    except SignInError as e:  # one message for a wrong name, password or code
        raise HTTPException(429 if e.reason == "throttled" else 401, str(e)) from e
    set_session_cookie(response, session.token, SESSION_HOURS * 3600)
    p = session.principal
    return SessionRead(
        naam=p.name, rol=p.role.value, gemeente=p.municipality, csrf_token=session.csrf_token
    )


@router.delete("/sessies/huidige", status_code=204, summary="Sign out")
def delete_session(request: Request, response: Response, _: Public) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        sign_out(request.app.state.engine, token)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.status_code = 204
    return response
