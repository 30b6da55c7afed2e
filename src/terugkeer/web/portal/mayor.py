"""The inbox of notices (meldingen) for the mayor's office, and for every role with an inbox
(the IDV, the caseworker's nazorg notices): the same data and functions as
``/api/v1/meldingen`` (``notify.delivery.inbox``, scoped by ``web.api.notices``), every read
and acknowledgement audited by the inbox itself."""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from terugkeer.notify.delivery import inbox
from terugkeer.notify.delivery.inbox import NoticeRead
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.api.notices import PURPOSE, organisations, scope
from terugkeer.web.params import MAX_ID
from terugkeer.web.portal import i18n
from terugkeer.web.portal.pages import messages, nav, page, pager, render, see_other

router = APIRouter()
Reader = Annotated[Principal, Depends(page(Permission.NOTICES_READ))]
Acknowledger = Annotated[Principal, Depends(page(Permission.NOTICES_ACKNOWLEDGE))]
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID)]
Pagina = Annotated[int, Query(ge=1, le=100_000)]
INBOX = "/portaal/meldingen"

nav(
    "Meldingen",
    INBOX,
    Permission.NOTICES_READ,
    order=10,
    description="De meldingen voor uw organisatie: lezen en de ontvangst bevestigen.",
)
messages({"bevestigd": "De ontvangst van de melding is bevestigd."})

SUBJECTS = {
    "release": "Einde detentie",
    "leave": "Verlof",
    "escape": "Ontvluchting",
    "recapture": "Wederopname na ontvluchting",
    "death": "Overlijden",
    "intake": "Insluiting",
}
NOTICE_KINDS = {
    "notice": "Melding",
    "change": "Wijzigingsbericht",
    "correction": "Correctiebericht",
    "reminder": "Herinnering",
}
RECIPIENTS = {
    "mayor": "Burgemeester",
    "idv": "Informatiepunt Detentieverloop",
    "nazorg": "Nazorgcoördinator",
    "victim": "Slachtoffer of nabestaande",
}
FACT_LABELS = {
    "categories": "Delictcategorie",
    "planned_release_date": "Geplande datum einde detentie",
    "planned_date": "Geplande datum",
    "status": "Stand van de detentie",
    "title": "Titel van detentie",
    "scope": "Waarom u deze melding krijgt",
    "intake_at": "Insluiting op",
    "released_at": "Einde detentie op",
    "release_kind": "Soort einde detentie",
    "leave_from": "Verlof vanaf",
    "leave_until": "Verlof tot",
    "event": "Gebeurtenis",
    "occurred_at": "Gebeurd op",
}
FACT_VALUES = {
    "in_custody": "In detentie",
    "on_leave": "Met verlof",
    "escaped": "Ontvlucht",
    "released": "Einde detentie",
    "deceased": "Overleden",
    "prison_sentence": "Gevangenisstraf",
    "pre_trial": "Voorlopige hechtenis",
    "juvenile_detention": "Jeugddetentie",
    "pij": "Pij-maatregel",
    "tbs": "Tbs",
    "replacement_detention": "Vervangende hechtenis",
    "zeden": "zeden",
    "zwaar_geweld": "zwaar geweld",
    "overig_geweld": "overig geweld",
    "vermogen": "vermogen",
    "opiumwet": "Opiumwet",
    "overig": "overig",
    "end_of_sentence": "Einde straf",
    "conditional_release": "Voorwaardelijke invrijheidstelling",
    "court_order": "Op last van de rechter",
    "into_tbs": "Overgang naar tbs-kliniek",
    "escape": "Ontvluchting",
    "recapture": "Wederopname na ontvluchting",
}
# why a rule included the period (notify/rules/evaluate.py in_scope), in Dutch
SCOPE_PATTERNS = (
    (re.compile(r"^offence category (.+)$"), "delictcategorie {0}"),
    (re.compile(r"^title (.+)$"), "titel {0}"),
    (
        re.compile(r"^(\d+) victim\(s\) who want information and have the right$"),
        "{0} slachtoffer(s) die informatie willen en daar recht op hebben",
    ),
    (
        re.compile(r"^adult with a stay that may exceed 10 days$"),
        "meerderjarig, met een verblijf dat langer dan 10 dagen kan duren",
    ),
)
i18n.register(
    {
        "Meldingen": "Notices",
        "De meldingen voor uw organisatie: lezen en de ontvangst bevestigen.": (
            "Your organisation's notices: read them and acknowledge receipt."
        ),
        "De ontvangst van de melding is bevestigd.": "The notice's receipt is acknowledged.",
        "Einde detentie": "End of detention",
        "Verlof": "Leave",
        "Ontvluchting": "Escape",
        "Wederopname na ontvluchting": "Recapture after escape",
        "Overlijden": "Death",
        "Insluiting": "Intake",
        "Melding": "Notice",
        "Wijzigingsbericht": "Change notice",
        "Correctiebericht": "Correction notice",
        "Herinnering": "Reminder",
        "Burgemeester": "Mayor",
        "Informatiepunt Detentieverloop": "Detention information point (IDV)",
        "Slachtoffer of nabestaande": "Victim or surviving relative",
        "Delictcategorie": "Offence category",
        "Geplande datum einde detentie": "Planned end of detention",
        "Geplande datum": "Planned date",
        "Stand van de detentie": "Detention status",
        "Titel van detentie": "Detention title",
        "Waarom u deze melding krijgt": "Why you receive this notice",
        "In detentie": "In detention",
        "Met verlof": "On leave",
        "Ontvlucht": "Escaped",
        "Gevangenisstraf": "Prison sentence",
        "Voorlopige hechtenis": "Pre-trial detention",
        "Tbs": "Hospital order (tbs)",
        "Insluiting op": "Intake on",
        "Einde detentie op": "End of detention on",
        "Soort einde detentie": "Kind of release",
        "Verlof vanaf": "Leave from",
        "Verlof tot": "Leave until",
        "Gebeurtenis": "Event",
        "Gebeurd op": "Happened on",
        "Overleden": "Deceased",
        "Jeugddetentie": "Juvenile detention",
        "Pij-maatregel": "Juvenile placement order (pij)",
        "Vervangende hechtenis": "Replacement detention",
        "zwaar geweld": "serious violence",
        "overig geweld": "other violence",
        "vermogen": "property",
        "Opiumwet": "Opium Act",
        "overig": "other",
        "Einde straf": "End of sentence",
        "Voorwaardelijke invrijheidstelling": "Conditional release",
        "Op last van de rechter": "By court order",
        "Overgang naar tbs-kliniek": "Into a tbs clinic",
        "zeden": "sexual offences",
        "geweld": "violence",
        "Nieuw": "New",
        "Te bevestigen": "To acknowledge",
        "Ontvangst bevestigd": "Acknowledged",
        "Ingetrokken": "Withdrawn",
        "Wordt bijgewerkt": "Being updated",
        "Te laat verzonden": "Sent late",
        "Alle meldingen": "All notices",
        "Nieuwe meldingen": "New notices",
        "Nog te bevestigen": "Still to acknowledge",
        "Toon": "Show",
        "Postvak van": "Inbox of",
        "Volgorde": "Order",
        "Eerst wat nog bevestigd moet worden": "Awaiting acknowledgement first",
        "Nieuwste eerst": "Newest first",
        "Kenmerk": "Reference",
        "Onderwerp": "Subject",
        "Soort": "Kind",
        "Ontvangen": "Received",
        "Uiterlijk gemeld": "Due",
        "Er zijn geen meldingen.": "There are no notices.",
        "Er zijn geen meldingen die hieraan voldoen.": "No notices match.",
        "Wie": "Who",
        "Wat": "What",
        "Wanneer": "When",
        "Regel": "Rule",
        "versie": "version",
        "Detentieperiode (kenmerk)": "Detention period (reference)",
        "Ontvanger": "Recipient",
        "Verzendingen": "Deliveries",
        "Kanaal": "Channel",
        "Versie": "Version",
        "Afgeleverd": "Delivered",
        "Gelezen": "Read",
        "Ontvangst bevestigen": "Acknowledge receipt",
        "Notitie": "Note",
        "Notitie (niet verplicht)": "Note (optional)",
        "Bevestigd door": "Acknowledged by",
        "Bevestigd op": "Acknowledged at",
        "Reden van intrekking": "Reason for withdrawal",
        "Feiten": "Facts",
        "Terug naar de meldingen": "Back to the notices",
        "Waarom te laat": "Why late",
        "Nagezonden (na een controle op volledigheid)": "Sent afterwards (after a completeness check)",
        "Deze melding kan nu niet worden bevestigd.": "This notice cannot be acknowledged now.",
        "Hoe en wanneer is het slachtoffer geïnformeerd?": "How and when was the victim informed?",
        "Vul in hoe en wanneer u het slachtoffer heeft geïnformeerd.": (
            "Say how and when you informed the victim."
        ),
        "De notitie is te lang (ten hoogste 2000 tekens).": (
            "The note is too long (at most 2000 characters)."
        ),
        "Gepland voor": "Planned for",
        "portaal": "portal",
        "e-mail": "e-mail",
        "webhook": "webhook",
    }
)

Show = Literal["alle", "nieuw", "te-bevestigen"]
Order = Literal["urgent", "nieuwste"]


def status_of(notice: NoticeRead) -> tuple[str, str]:
    """The notice's state for its reader: (Dutch label, badge kind)."""
    if notice.status == "voided":
        return "Ingetrokken", "danger"
    if notice.status == "acknowledged":
        return "Ontvangst bevestigd", "success"
    if notice.status != "delivered":
        return "Wordt bijgewerkt", "neutral"
    return ("Te bevestigen", "neutral") if notice.read else ("Nieuw", "warning")


def kind_of(notice: NoticeRead) -> str:
    """What the last message about it was: a notice, a change or a correction."""
    delivered = [d for d in notice.deliveries if d.status == "delivered"]
    last = delivered[-1].notice if delivered else "notice"
    return NOTICE_KINDS.get(last, last)


def _value(key: str, value: object) -> str | date | datetime:
    """A fact's value for its reader: a moment or a date as such, codes in Dutch."""
    if isinstance(value, list):
        return ", ".join(FACT_VALUES.get(str(v), str(v)) for v in value)
    text = str(value)
    if key == "scope":
        for pattern, dutch in SCOPE_PATTERNS:
            found = pattern.match(text)
            if found:
                codes = [
                    ", ".join(FACT_VALUES.get(c.strip(), c.strip()) for c in group.split(","))
                    for group in found.groups()
                ]
                return dutch.format(", ".join(codes))
        return text
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    if re.match(r"\d{4}-\d{2}-\d{2}T", text):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(text)
    return FACT_VALUES.get(text, text)


def facts_of(notice: NoticeRead) -> list[tuple[str, str | date | datetime]]:
    """The facts the rule used, labelled in Dutch; dates and moments as such (the template
    formats them), known codes in Dutch."""
    return [
        (FACT_LABELS.get(key, key), _value(key, value))
        for key, value in sorted(notice.facts.items())
        if value not in (None, "", [])
    ]


def labels() -> dict[str, Any]:
    """What the notice templates need to label a notice."""
    return {
        "subjects": SUBJECTS,
        "kinds": NOTICE_KINDS,
        "recipients": RECIPIENTS,
        "status_of": status_of,
        "kind_of": kind_of,
        "facts_of": facts_of,
    }


def _inbox(principal: Principal) -> tuple[str, str]:
    own = organisations(principal)
    if not own:
        raise HTTPException(403, "your role has no inbox")
    return own[0]


@router.get(INBOX, response_class=HTMLResponse)
def inbox_page(
    request: Request,
    principal: Reader,
    toon: Show = "alle",
    volgorde: Order = "urgent",
    pagina: Pagina = 1,
) -> Response:
    kind, ref = _inbox(principal)
    p = pager(pagina)
    with request.app.state.engine.begin() as conn:
        result = inbox.list_notices(
            conn,
            kind,
            ref,
            actor=Actor.web(principal, PURPOSE),
            unread=toon == "nieuw",
            unacknowledged=toon == "te-bevestigen",
            urgent_first=volgorde == "urgent",
            limit=p.limit,
            offset=p.offset,
        )
    return render(
        request,
        "mayor/inbox.html",
        title="Meldingen",
        notices=result.notices,
        pager=p.with_total(result.total),
        toon=toon,
        volgorde=volgorde,
        inbox_ref=ref,
        **labels(),
    )


def _detail(
    request: Request,
    principal: Principal,
    notice: NoticeRead,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    note: str = "",
    problem: str | None = None,
) -> Response:
    return render(
        request,
        "mayor/notice.html",
        status_code=status_code,
        title="Melding",
        notice=notice,
        errors=errors or {},
        note=note,
        problem=problem,
        max_note=inbox.MAX_NOTE,
        may_acknowledge=principal.can(Permission.NOTICES_ACKNOWLEDGE),
        **labels(),
    )


@router.get(INBOX + "/{melding_id}", response_class=HTMLResponse)
def notice_page(request: Request, principal: Reader, melding_id: NoticeId) -> Response:
    """One notice; opening it marks it read (both audited by the inbox)."""
    actor = Actor.web(principal, PURPOSE)
    try:
        with request.app.state.engine.begin() as conn:
            notice = inbox.get_notice(conn, melding_id, scope(principal), actor=actor)
            if not notice.read and notice.status == "delivered":
                notice = inbox.mark_read(conn, melding_id, scope=scope(principal), actor=actor)
    except inbox.NoticeNotFound as e:
        raise HTTPException(404, "no such notice") from e
    return _detail(request, principal, notice)


@router.post(INBOX + "/{melding_id}/bevestigen", response_class=HTMLResponse)
def acknowledge_submit(
    request: Request,
    principal: Acknowledger,
    melding_id: NoticeId,
    notitie: Annotated[str, Form(max_length=4 * inbox.MAX_NOTE)] = "",
) -> Response:
    """Acknowledge the notice, with a note (required for a victim notice)."""
    actor = Actor.web(principal, PURPOSE)
    engine = request.app.state.engine
    note = notitie.strip()
    errors: dict[str, str] = {}
    if len(note) > inbox.MAX_NOTE:
        errors["notitie"] = "De notitie is te lang (ten hoogste 2000 tekens)."
    if not errors:
        try:
            inbox.acknowledge(
                engine,
                melding_id,
                principal.name,
                note or None,
                scope=scope(principal),
                actor=actor,
            )
            return see_other(f"{INBOX}/{melding_id}", bericht="bevestigd")
        except inbox.NoticeNotFound as e:
            raise HTTPException(404, "no such notice") from e
        except inbox.NoticeConflict:
            problem = "Deze melding kan nu niet worden bevestigd."
            return _reshow(request, principal, melding_id, 409, {}, note, problem)
        except inbox.InvalidRequest:
            errors["notitie"] = "Vul in hoe en wanneer u het slachtoffer heeft geïnformeerd."
    return _reshow(request, principal, melding_id, 400, errors, note, None)


def _reshow(
    request: Request,
    principal: Principal,
    melding_id: int,
    status_code: int,
    errors: dict[str, str],
    note: str,
    problem: str | None,
) -> Response:
    try:
        with request.app.state.engine.begin() as conn:
            notice = inbox.get_notice(
                conn, melding_id, scope(principal), actor=Actor.web(principal, PURPOSE)
            )
    except inbox.NoticeNotFound as e:
        raise HTTPException(404, "no such notice") from e
    return _detail(
        request,
        principal,
        notice,
        status_code=status_code,
        errors=errors,
        note=note,
        problem=problem,
    )
