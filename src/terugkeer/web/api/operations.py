"""API of the operator (Justid functioneel beheer), under /api/v1/beheer: the same data and
actions as the portal's operator pages and the operator's commands.

Reading needs ``operations:read``, acting ``operations:act`` (both the operator's). Each action
is the existing one (burst decision, quarantine replay, dead-letter retry, reconciliation,
backfill, a feed message naming a municipality) with the signed-in user as its actor: the
audit rows come from the actions. Errors are application/problem+json.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from terugkeer.detention.quarantine import list_quarantine
from terugkeer.domain import render
from terugkeer.intake import Delivery, deliver, replay_quarantine
from terugkeer.notify.assurance import overview
from terugkeer.notify.assurance.backfill import backfill, check
from terugkeer.notify.assurance.reconcile import AMSTERDAM
from terugkeer.notify.assurance.watch import BurstDecision, BurstError, decide_burst
from terugkeer.notify.delivery.dispatch import RetryError, retry_dead
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.auth import engine_of, requires
from terugkeer.web.params import MAX_ID, Day, Limit, Offset

router = APIRouter(prefix="/beheer", tags=["beheer"])

PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"description": "the request is not valid", **PROBLEM},
    401: {"description": "not signed in", **PROBLEM},
    403: {"description": "not allowed for this role", **PROBLEM},
    404: {"description": "not found", **PROBLEM},
    409: {"description": "not possible in the record's current state", **PROBLEM},
}
PURPOSE = "operator oversight"

Reader = Annotated[Principal, Depends(requires(Permission.OPERATIONS_READ))]
Operator = Annotated[Principal, Depends(requires(Permission.OPERATIONS_ACT))]
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="the id")]


def actor(principal: Principal, purpose: str = PURPOSE) -> Actor:
    return Actor.web(principal, purpose)


def _page(page: Any, key: str, items: list[Any]) -> dict[str, Any]:
    return {**page.meta(), key: items}


# --- the actions (the portal calls these too) -------------------------------------------------


def decide(engine: Engine, alert_id: int, confirm: bool, principal: Principal) -> BurstDecision:
    """An operator's decision on a held burst, recorded in their name."""
    try:
        return decide_burst(
            engine,
            alert_id,
            confirm=confirm,
            by=principal.name,
            actor=actor(principal, "burst brake decision"),
        )
    except BurstError as e:
        status = 404 if str(e).startswith("no burst") else 409
        raise HTTPException(status, str(e)) from e


def replay_one(engine: Engine, quarantine_id: int, principal: Principal) -> dict[str, Any]:
    """Apply one open quarantined message again; its outcome (applied, duplicate, or still
    quarantined with its reason)."""
    result = replay_quarantine(
        engine, ids=[quarantine_id], actor=actor(principal, "feed quarantine handling")
    )
    if result.read == 0:
        raise HTTPException(404, f"no open quarantined message with id [{quarantine_id}]")
    return result.as_json()


def name_municipality(
    engine: Engine, obligation_id: int, municipality: str, principal: Principal
) -> Delivery:
    """Name the return municipality of an unresolved obligation's period with a Justid feed
    message, applied as every message is (``docs/rules.md``): the period's obligations get
    their recipient and their notices go out."""
    with engine.connect() as conn:
        try:
            message = overview.naming_message(conn, obligation_id, municipality)
        except overview.NamingError as e:
            raise HTTPException(409, str(e)) from e
    origin = f"portal:{principal.name}:naming:{obligation_id}"[:100]
    done = deliver(engine, [message], origin=origin, actor=actor(principal, "naming a recipient"))
    outcome = done.outcomes[0]
    if outcome.status == "quarantined":
        raise HTTPException(409, f"the message was quarantined: {outcome.message}")
    return done


def retry(engine: Engine, delivery_id: int, principal: Principal) -> int:
    try:
        return retry_dead(engine, delivery_id, actor=actor(principal, "delivery repair"))
    except RetryError as e:
        raise HTTPException(404 if str(e).startswith("no delivery") else 409, str(e)) from e


def since_day(day: date) -> datetime:
    return datetime.combine(day, time(0), AMSTERDAM)


# --- feeds, bursts, quarantine ------------------------------------------------------------------


@router.get("/bronnen", responses=ERRORS, summary="Feed health per place of detention")
def get_feeds(request: Request, _: Reader) -> dict[str, Any]:
    with engine_of(request).connect() as conn:
        rows = overview.feed_health(conn)
    return {"bronnen": [render.as_json(r) for r in rows]}


@router.get("/pieken", responses=ERRORS, summary="Bursts of releases held for a decision")
def get_bursts(request: Request, _: Reader) -> dict[str, Any]:
    with engine_of(request).connect() as conn:
        rows = overview.open_bursts(conn)
    return {"pieken": [render.as_json(r) for r in rows]}


@router.post(
    "/pieken/{piek}/bevestiging",
    responses=ERRORS,
    summary="The releases are real: send the held notices",
)
def confirm_burst(request: Request, piek: Id, principal: Operator) -> dict[str, Any]:
    return render.as_json(decide(engine_of(request), piek, True, principal))


@router.post(
    "/pieken/{piek}/vervallenverklaring",
    responses=ERRORS,
    summary="The releases are false: void the held notices (corrections where told)",
)
def void_burst(request: Request, piek: Id, principal: Operator) -> dict[str, Any]:
    return render.as_json(decide(engine_of(request), piek, False, principal))


@router.get("/quarantaine", responses=ERRORS, summary="Quarantined messages with their reason")
def get_quarantine(
    request: Request,
    principal: Reader,
    status: Annotated[str, Query(pattern="^(open|applied|all)$")] = "open",
    reden: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    page = list_quarantine(
        engine_of(request),
        actor=actor(principal, "feed quarantine handling"),
        status=status,
        reason=reden,
        limit=limit,
        offset=offset,
        # a raw line may hold a BSN or a victim's contact details: a session with the second
        # factor shows them; an API token (no second factor) gets reason, field and message
        with_raw=principal.second_factor,
    )
    return _page(page, "berichten", [e.as_json() for e in page.items])


@router.post(
    "/quarantaine/{bericht}/herverwerking",
    responses=ERRORS,
    summary="Apply a quarantined message again, after a fix",
)
def replay_message(request: Request, bericht: Id, principal: Operator) -> dict[str, Any]:
    return replay_one(engine_of(request), bericht, principal)


# --- obligations, recipients, dead letters --------------------------------------------------------


@router.get("/verplichtingen", responses=ERRORS, summary="Obligations overdue or due soon")
def get_due(
    request: Request,
    principal: Reader,
    venster: Annotated[str, Query(pattern="^(overdue|soon)$")] = "overdue",
    uren: Annotated[int, Query(ge=1, le=24 * 90)] = 48,
    ontvanger: Annotated[str | None, Query(pattern="^(mayor|idv|victim|nazorg)$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    with engine_of(request).begin() as conn:
        page = overview.due_obligations(
            conn,
            actor=actor(principal),
            window=venster,
            hours=uren,
            recipient_kind=ontvanger,
            limit=limit,
            offset=offset,
        )
    return _page(page, "verplichtingen", [render.to_json(r) for r in page.items])


@router.get(
    "/onbekende-ontvangers", responses=ERRORS, summary="Obligations without a known municipality"
)
def get_unresolved(
    request: Request, principal: Reader, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    with engine_of(request).begin() as conn:
        page = overview.unresolved_recipients(
            conn, actor=actor(principal), limit=limit, offset=offset
        )
    return _page(page, "verplichtingen", [render.to_json(r) for r in page.items])


class Naming(BaseModel):
    gemeente: str = Field(pattern=r"^GM\d{4}$", description="the CBS code of the municipality")


@router.post(
    "/onbekende-ontvangers/{verplichting}/gemeente",
    responses=ERRORS,
    summary="Name the return municipality of an unresolved obligation's period",
)
def post_naming(
    request: Request, verplichting: Id, body: Naming, principal: Operator
) -> dict[str, Any]:
    done = name_municipality(engine_of(request), verplichting, body.gemeente, principal)
    return {"origin": done.origin, "event_id": done.outcomes[0].event_id, **done.result.as_json()}


@router.get("/onbestelbaar", responses=ERRORS, summary="Dead letters: notices given up on")
def get_dead(
    request: Request,
    principal: Reader,
    kanaal: Annotated[str | None, Query(pattern="^(portal|email|webhook)$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    with engine_of(request).begin() as conn:
        page = overview.dead_letters(
            conn, actor=actor(principal), channel=kanaal, limit=limit, offset=offset
        )
    return _page(page, "bezorgingen", [render.to_json(r) for r in page.items])


@router.post(
    "/onbestelbaar/{bezorging}/herzending",
    responses=ERRORS,
    summary="Send a dead letter again, after its cause is fixed",
)
def post_retry(request: Request, bezorging: Id, principal: Operator) -> dict[str, Any]:
    return {"queued": retry(engine_of(request), bezorging, principal)}


# --- reconciliation and backfill ------------------------------------------------------------------


@router.get("/controle", responses=ERRORS, summary="The reconciliation's open gaps and last run")
def get_reconcile(request: Request, _: Reader) -> dict[str, Any]:
    with engine_of(request).connect() as conn:
        return render.as_json(overview.reconcile_status(conn))


@router.get("/controle/tekorten", responses=ERRORS, summary="The reconciliation's open gaps")
def get_gaps(
    request: Request,
    principal: Reader,
    soort: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    try:
        with engine_of(request).begin() as conn:
            page = overview.gap_alerts(
                conn, actor=actor(principal), kind=soort, limit=limit, offset=offset
            )
            items = [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "message": r.message,
                    "raised_at": r.raised_at.isoformat(),
                }
                for r in page.items
            ]
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    return _page(page, "tekorten", items)


@router.post("/controle", responses=ERRORS, summary="Run the reconciliation now")
def post_reconcile(request: Request, principal: Operator) -> dict[str, Any]:
    report = check(engine_of(request), actor=actor(principal, "completeness check"), shown=50)
    return {"ok": report.ok, "counts": report.counts, "required": report.required}


@router.get(
    "/aanvulling", responses=ERRORS, summary="Preview: what a backfill since a day would create"
)
def get_backfill(
    request: Request,
    _: Reader,
    sinds: Annotated[Day | None, Query(description="a day (none: every missing one)")] = None,
) -> dict[str, Any]:
    since = None if sinds is None else since_day(sinds)
    with engine_of(request).connect() as conn:
        preview = overview.backfill_preview(conn, since, datetime.now(UTC))
    return render.as_json(preview)


class BackfillCreate(BaseModel):
    sinds: Day = Field(description="backfill what happened since this day (Amsterdam)")


@router.post(
    "/aanvulling",
    responses=ERRORS,
    summary="Create and send the missing obligations since a day, marked late",
)
def post_backfill(request: Request, body: BackfillCreate, principal: Operator) -> dict[str, Any]:
    report = backfill(
        engine_of(request), since_day(body.sinds), actor=actor(principal, "completeness repair")
    )
    return report.as_json()
