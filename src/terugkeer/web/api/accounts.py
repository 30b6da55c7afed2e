"""Account administration for the administrator: API tokens (list, revoke, grant victims'
contact details), users (disable, a new second factor) and sessions (end). Each change is an
action of ``security/accounts.py`` that writes its audit row in its own transaction, in the
administrator's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel

from terugkeer.security import accounts
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.auth import requires

router = APIRouter(tags=["beheer"])
Administrator = Annotated[Principal, Depends(requires(Permission.USERS_ADMIN))]
UserName = Annotated[str, Path(min_length=1, max_length=100, description="the user's name")]
TokenName = Annotated[str, Path(min_length=1, max_length=100, description="the token's name")]
PURPOSE = "account administration"
T = TypeVar("T")


class TokenRead(BaseModel):
    naam: str
    gebruiker: str
    aangemaakt: str
    verloopt: str
    laatst_gebruikt: str | None
    ingetrokken: str | None
    contactgegevens: bool


class Ended(BaseModel):
    sessies_beeindigd: int


class SecondFactor(BaseModel):
    totp_uri: str  # to enrol the new second factor; shown once


def _do(run: Callable[[], T]) -> T:
    try:
        return run()
    except accounts.AccountNotFound as e:
        raise HTTPException(404, str(e)) from e
    except accounts.AccountError as e:
        raise HTTPException(409, str(e)) from e


def _actor(principal: Principal) -> Actor:
    return Actor.web(principal, PURPOSE)


@router.get("/tokens", response_model=list[TokenRead], summary="The API tokens (never a token)")
def list_tokens(request: Request, principal: Administrator) -> list[TokenRead]:
    return [
        TokenRead(
            naam=t.name,
            gebruiker=t.user,
            aangemaakt=t.created_at.isoformat(),
            verloopt=t.expires_at.isoformat(),
            laatst_gebruikt=t.last_used_at.isoformat() if t.last_used_at else None,
            ingetrokken=t.revoked_at.isoformat() if t.revoked_at else None,
            contactgegevens=t.contact_details,
        )
        for t in accounts.list_tokens(request.app.state.engine)
    ]


@router.delete("/tokens/{token}", status_code=204, summary="Revoke an API token")
def revoke_token(request: Request, token: TokenName, principal: Administrator) -> Response:
    engine = request.app.state.engine
    _do(lambda: accounts.revoke_token(engine, token, actor=_actor(principal)))
    return Response(status_code=204)


@router.put(
    "/tokens/{token}/contactgegevens",
    status_code=204,
    summary="Grant an IDV system's token victims' contact details (audited)",
)
def grant_contacts(request: Request, token: TokenName, principal: Administrator) -> Response:
    engine = request.app.state.engine
    _do(lambda: accounts.grant_contact_details(engine, token, True, actor=_actor(principal)))
    return Response(status_code=204)


@router.delete(
    "/tokens/{token}/contactgegevens",
    status_code=204,
    summary="Withdraw a token's grant of victims' contact details",
)
def withdraw_contacts(request: Request, token: TokenName, principal: Administrator) -> Response:
    engine = request.app.state.engine
    _do(lambda: accounts.grant_contact_details(engine, token, False, actor=_actor(principal)))
    return Response(status_code=204)


@router.post(
    "/gebruikers/{naam}/uitschakeling",
    response_model=Ended,
    summary="Disable a user: no sign-in, sessions end, tokens stop working",
)
def disable_user(request: Request, naam: UserName, principal: Administrator) -> Any:
    engine = request.app.state.engine
    ended = _do(lambda: accounts.disable_user(engine, naam, actor=_actor(principal)))
    return Ended(sessies_beeindigd=ended)


@router.post(
    "/gebruikers/{naam}/tweede-factor",
    response_model=SecondFactor,
    summary="A new second factor for a user (the old one stops working; sessions end)",
)
def reset_second_factor(request: Request, naam: UserName, principal: Administrator) -> Any:
    engine = request.app.state.engine
    renewed = _do(lambda: accounts.reset_second_factor(engine, naam, actor=_actor(principal)))
    assert renewed.totp_uri is not None  # noqa: S101 - a role with a second factor
    return SecondFactor(totp_uri=renewed.totp_uri)


@router.delete(
    "/gebruikers/{naam}/sessies",
    response_model=Ended,
    summary="End every live session of a user",
)
def end_sessions(request: Request, naam: UserName, principal: Administrator) -> Any:
    engine = request.app.state.engine
    ended = _do(lambda: accounts.end_sessions(engine, naam, actor=_actor(principal)))
    return Ended(sessies_beeindigd=ended)
