"""API of the portal inbox: notices (meldingen) for a recipient organisation, read and
acknowledge.

Identity: until the security issue brings real authentication, the caller names themself in
the ``X-Terugkeer-User`` header; it is required for reading and acknowledging and recorded as
who acknowledged. It is not authentication and does not limit what a caller sees.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from terugkeer.notify import inbox
from terugkeer.notify.inbox import NoticeList, NoticeRead

router = APIRouter(tags=["meldingen"])

PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"description": "the request is not valid", **PROBLEM},
    401: {"description": "the X-Terugkeer-User header is missing", **PROBLEM},
    404: {"description": "no delivered notice with this reference", **PROBLEM},
    409: {"description": "the notice cannot be acknowledged now", **PROBLEM},
}

User = Annotated[
    str | None,
    Header(
        alias="X-Terugkeer-User",
        description="who is calling (temporary, until authentication; see docs/operations.md)",
    ),
]
NoticeId = Annotated[int, Path(description="the reference (kenmerk) of the notice", ge=1)]


class AcknowledgementCreate(BaseModel):
    note: str | None = Field(
        default=None,
        max_length=inbox.MAX_NOTE,
        description="how and when the victim was informed (required for victim notices)",
    )


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _user(user: str | None) -> str:
    if user is None or not user.strip():
        raise HTTPException(401, "the X-Terugkeer-User header is required")
    return user.strip()


def _fail(error: inbox.InboxError) -> HTTPException:
    if isinstance(error, inbox.NoticeNotFound):
        return HTTPException(404, str(error))
    if isinstance(error, inbox.NoticeConflict):
        return HTTPException(409, str(error))
    return HTTPException(400, str(error))


@router.get(
    "/meldingen",
    response_model=NoticeList,
    summary="The notices in a recipient organisation's inbox, newest first",
    responses={400: ERRORS[400]},
)
def list_notices(
    request: Request,
    ontvanger_soort: Annotated[
        str, Query(description="recipient kind: mayor, idv or nazorg", max_length=16)
    ],
    ontvanger: Annotated[
        str, Query(description="recipient: a municipality code (GM0363) or OM-IDV", max_length=64)
    ],
    ongelezen: Annotated[bool, Query(description="only notices not yet read")] = False,
    onbevestigd: Annotated[
        bool, Query(description="only notices awaiting acknowledgement")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> NoticeList:
    try:
        with _engine(request).connect() as conn:
            return inbox.list_notices(
                conn,
                ontvanger_soort,
                ontvanger,
                unread=ongelezen,
                unacknowledged=onbevestigd,
                limit=limit,
                offset=offset,
            )
    except inbox.InboxError as e:
        raise _fail(e) from e


@router.get(
    "/meldingen/{melding_id}",
    response_model=NoticeRead,
    summary="One notice, with its deliveries",
    responses={404: ERRORS[404]},
)
def get_notice(request: Request, melding_id: NoticeId) -> NoticeRead:
    try:
        with _engine(request).connect() as conn:
            return inbox.get_notice(conn, melding_id)
    except inbox.InboxError as e:
        raise _fail(e) from e


@router.post(
    "/meldingen/{melding_id}/lezen",
    response_model=NoticeRead,
    summary="Mark a notice as read",
    responses={401: ERRORS[401], 404: ERRORS[404]},
)
def read_notice(request: Request, melding_id: NoticeId, user: User = None) -> NoticeRead:
    _user(user)
    try:
        return inbox.mark_read(_engine(request), melding_id)
    except inbox.InboxError as e:
        raise _fail(e) from e


@router.post(
    "/meldingen/{melding_id}/bevestigingen",
    response_model=NoticeRead,
    status_code=201,
    summary="Acknowledge a notice (for a victim notice: say how the victim was informed)",
    responses=ERRORS,
)
def acknowledge_notice(
    request: Request,
    melding_id: NoticeId,
    body: AcknowledgementCreate | None = None,
    user: User = None,
) -> NoticeRead:
    by = _user(user)
    try:
        return inbox.acknowledge(
            _engine(request), melding_id, by, body.note if body is not None else None
        )
    except inbox.InboxError as e:
        raise _fail(e) from e
