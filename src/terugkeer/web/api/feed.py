"""The detention feed over HTTP: a prison administration's system (the ``feed`` role, with an
API token) delivers events the moment they happen.

``POST /api/v1/detentiegebeurtenissen`` takes a batch of feed messages (docs/feed.md) and
applies it through :func:`terugkeer.intake.deliver`, the path of the file ingest: one
transaction with the notification rules and the reintegration cases, the same idempotency,
parking and quarantine. The answer says per message whether it was applied, a duplicate, or
quarantined with its reason; when it returns, the obligations and the notices they queue are
written (a notice due within the hour is in the outbox).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from terugkeer.config import get_settings
from terugkeer.intake import MessageOutcome, deliver
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.app import problem
from terugkeer.web.auth import requires

router = APIRouter(tags=["detentie"])

PATH = "/detentiegebeurtenissen"
PURPOSE = "detention feed delivery"
LIMIT_SETTING = "TERUGKEER_FEED_API_MAX_MESSAGES"

Sender = Annotated[Principal, Depends(requires(Permission.FEED_WRITE))]

PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"description": "the body is not a JSON array of messages, or it is empty", **PROBLEM},
    401: {"description": "no API token, or an unknown one", **PROBLEM},
    403: {"description": "not the feed role", **PROBLEM},
    413: {"description": f"more messages than {LIMIT_SETTING} allows", **PROBLEM},
    503: {
        "description": "the store is unavailable: send the batch again (idempotent)",
        **PROBLEM,
    },
}
# a store that is unavailable (a lost connection, a lock) is no message's fault
UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError)
RETRY_AFTER = "5"

MESSAGE_SCHEMA: dict[str, Any] = {
    "description": (
        "one feed message (docs/feed.md): a JSON object, or a string holding the message "
        "as a JSON line; anything else is quarantined as invalid_json"
    ),
    "oneOf": [{"type": "object"}, {"type": "string"}],
}
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "the messages of this delivery, in any order",
    "content": {
        "application/json": {
            "schema": {"type": "array", "minItems": 1, "items": MESSAGE_SCHEMA},
            "example": [
                {
                    "feed_version": 1,
                    "event_id": "PI-VUG:000124",
                    "source": "PI-VUG",
                    "occurred_at": "2025-03-04T09:30:00+01:00",
                    "kind": "escape",
                    "person": {"prison_number": "D000123"},
                    "period": "PI-VUG-2025-000123",
                }
            ],
        }
    },
}


class MessageResult(BaseModel):
    """What became of one message of the delivery."""

    index: int = Field(description="the message's position in the request, from 0")
    outcome: Literal["applied", "duplicate", "quarantined"]
    event_id: str | None = Field(default=None, description="as read from the message")
    reason: str | None = Field(
        default=None, description="quarantined: the reason code (docs/feed.md)"
    )
    field: str | None = Field(default=None, description="quarantined: the field at fault")
    value: str | None = Field(default=None, description="quarantined: the value (never a BSN)")
    message: str | None = Field(default=None, description="quarantined: what is wrong")
    waits_for: str | None = Field(
        default=None,
        description="parked: what it waits for; it is applied when that arrives",
    )


class DeliveryResult(BaseModel):
    """The answer to a delivery: the counts and one result per message, in request order."""

    origin: str = Field(
        description="where the quarantine keeps these messages (with line = index + 1)"
    )
    read: int
    applied: int
    duplicates: int
    quarantined: int
    unparked: int = Field(description="messages parked earlier that this delivery let apply")
    results: list[MessageResult]


def _text(value: str | None) -> str | None:
    """A string the JSON answer can carry (a lone surrogate escaped visibly)."""
    if value is None:
        return None
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _result(o: MessageOutcome) -> MessageResult:
    return MessageResult(
        index=o.index,
        outcome=o.status,
        event_id=_text(o.event_id),
        reason=o.reason,
        field=_text(o.field),
        value=_text(o.value),
        message=_text(o.message),
        waits_for=_text(o.waits_for),
    )


@router.post(
    PATH,
    response_model=DeliveryResult,
    summary="Deliver detention events (feed messages); the answer says per message what became of it",
    responses=ERRORS,
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def deliver_events(request: Request, principal: Sender) -> DeliveryResult | JSONResponse:
    try:
        messages = json.loads(await request.body())
    except ValueError as e:  # also undecodable bytes
        return problem(400, f"the body is not JSON: {type(e).__name__}")
    if not isinstance(messages, list):
        return problem(
            400, f"the body must be a JSON array of messages, not a {type(messages).__name__}"
        )
    if not messages:
        return problem(400, "the array holds no messages")
    limit = get_settings().feed_api_max_messages
    if len(messages) > limit:
        return problem(
            413,
            f"{len(messages)} messages in one request; at most {limit} ({LIMIT_SETTING}): "
            "send them in several requests",
            limit=limit,
            setting=LIMIT_SETTING,
        )
    origin = f"api:{principal.name}:{uuid.uuid4().hex}"
    engine = request.app.state.engine
    try:
        done = await run_in_threadpool(
            deliver, engine, messages, origin=origin, actor=Actor.web(principal, PURPOSE)
        )
    except UNAVAILABLE as e:
        response = problem(
            503,
            f"the store is unavailable ({type(e).__name__}): the batch was not applied, or only"
            " in part; send it again (a message applied before is answered as a duplicate)",
        )
        response.headers["Retry-After"] = RETRY_AFTER
        return response
    r = done.result
    return DeliveryResult(
        origin=_text(done.origin) or "",
        read=r.read,
        applied=r.applied,
        duplicates=r.duplicates,
        quarantined=r.quarantined,
        unparked=r.unparked,
        results=[_result(o) for o in done.outcomes],
    )
