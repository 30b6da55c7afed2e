"""API of the portal inbox: notices (meldingen) for a recipient organisation, read and
acknowledge.

Who may see what: a mayor's office sees its own municipality's mayor notices, a caseworker
(nazorgcoördinator) its municipality's nazorg notices, the IDV its own notices and the victim
notices. The scope is part of every query: a notice outside it does not exist for the caller
(404). Every read and acknowledgement is written to the audit log, by the inbox's actions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, false, or_

from terugkeer.notify.delivery import inbox
from terugkeer.notify.delivery.inbox import NoticeList, NoticeRead
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal, Role
from terugkeer.web.auth import engine_of, requires
from terugkeer.web.params import MAX_ID, Limit, Offset

router = APIRouter(tags=["meldingen"])

PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"description": "the request is not valid", **PROBLEM},
    401: {"description": "not signed in", **PROBLEM},
    403: {"description": "not allowed for this role or organisation", **PROBLEM},
    404: {"description": "no delivered notice with this reference for you", **PROBLEM},
    409: {"description": "the notice cannot be acknowledged now", **PROBLEM},
}
PURPOSE = "portal inbox"

NoticeId = Annotated[
    int, Path(description="the reference (kenmerk) of the notice", ge=1, le=MAX_ID)
]
Reader = Annotated[Principal, Depends(requires(Permission.NOTICES_READ))]
Acknowledger = Annotated[Principal, Depends(requires(Permission.NOTICES_ACKNOWLEDGE))]


class AcknowledgementCreate(BaseModel):
    note: str | None = Field(
        default=None,
        max_length=inbox.MAX_NOTE,
        description="how and when the victim was informed (required for victim notices)",
    )


def organisations(principal: Principal) -> list[tuple[str, str]]:
    """The inboxes a principal may open: (recipient kind, recipient reference)."""
    if principal.role is Role.MAYOR_OFFICE and principal.municipality:
        return [("mayor", principal.municipality)]
    if principal.role is Role.CASEWORKER and principal.municipality:
        return [("nazorg", principal.municipality)]
    if principal.role is Role.IDV_OFFICER:
        return [("idv", inbox.IDV_REF)]
    return []


def scope(principal: Principal) -> ColumnElement[bool]:
    filters = [inbox.organisation_filter(kind, ref) for kind, ref in organisations(principal)]
    return or_(*filters) if filters else false()


def _fail(error: inbox.InboxError) -> HTTPException:
    if isinstance(error, inbox.NoticeNotFound):
        return HTTPException(404, str(error))
    if isinstance(error, inbox.NoticeConflict):
        return HTTPException(409, str(error))
    return HTTPException(400, str(error))


@router.get(
    "/meldingen",
    response_model=NoticeList,
    summary="The notices in your organisation's inbox, newest first",
    responses={k: ERRORS[k] for k in (400, 401, 403)},
)
def list_notices(
    request: Request,
    principal: Reader,
    ontvanger_soort: Annotated[
        str | None,
        Query(
            alias="ontvangerSoort",
            description="recipient kind: mayor, idv or nazorg",
            max_length=16,
        ),
    ] = None,
    ontvanger: Annotated[
        str | None, Query(description="a municipality code (GM0363) or OM-IDV", max_length=64)
    ] = None,
    ongelezen: Annotated[bool, Query(description="only notices not yet read")] = False,
    onbevestigd: Annotated[
        bool, Query(description="only notices awaiting acknowledgement")
    ] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> NoticeList:
    own = organisations(principal)
    if not own:
        raise HTTPException(403, "your role has no inbox")
    kind, ref = own[0]
    if (ontvanger_soort or kind, ontvanger or ref) not in own:
        raise HTTPException(403, "this is not your organisation's inbox")
    try:
        with engine_of(request).begin() as conn:
            result = inbox.list_notices(
                conn,
                ontvanger_soort or kind,
                ontvanger or ref,
                actor=Actor.web(principal, PURPOSE),
                unread=ongelezen,
                unacknowledged=onbevestigd,
                limit=limit,
                offset=offset,
            )
            return result
    except inbox.InboxError as e:
        raise _fail(e) from e


@router.get(
    "/meldingen/{melding_id}",
    response_model=NoticeRead,
    summary="One notice, with its deliveries",
    responses={k: ERRORS[k] for k in (401, 403, 404)},
)
def get_notice(request: Request, melding_id: NoticeId, principal: Reader) -> NoticeRead:
    try:
        with engine_of(request).begin() as conn:
            return inbox.get_notice(
                conn, melding_id, scope(principal), actor=Actor.web(principal, PURPOSE)
            )
    except inbox.InboxError as e:
        raise _fail(e) from e


@router.post(
    "/meldingen/{melding_id}/lezen",
    response_model=NoticeRead,
    summary="Mark a notice as read",
    responses={k: ERRORS[k] for k in (401, 403, 404)},
)
def read_notice(request: Request, melding_id: NoticeId, principal: Reader) -> NoticeRead:
    try:
        notice = inbox.mark_read(
            engine_of(request),
            melding_id,
            scope=scope(principal),
            actor=Actor.web(principal, PURPOSE),
        )
    except inbox.InboxError as e:
        raise _fail(e) from e
    return notice


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
    principal: Acknowledger,
    body: AcknowledgementCreate | None = None,
) -> NoticeRead:
    try:
        notice = inbox.acknowledge(
            engine_of(request),
            melding_id,
            principal.name,
            body.note if body is not None else None,
            scope=scope(principal),
            actor=Actor.web(principal, PURPOSE),
        )
    except inbox.InboxError as e:
        raise _fail(e) from e
    return notice
