"""The IDV officer's pages: the notices for victims (slachtoffers) in the IDV inbox, the ones
still to be told first (most overdue first); a victim's contact details, decrypted on one page
only and audited at every view (``detention.contacts.victim_contact``, as the API); recording
when and how the victim was told (the inbox's acknowledgement, with that as its note)."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from terugkeer.detention.contacts import victim_contact
from terugkeer.notify.delivery import inbox
from terugkeer.notify.delivery.inbox import NoticeRead
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.api.notices import PURPOSE, scope
from terugkeer.web.params import FIRST_DAY, LAST_DAY
from terugkeer.web.portal import i18n
from terugkeer.web.portal.mayor import NoticeId, Pagina, labels
from terugkeer.web.portal.pages import messages, nav, page, pager, render, see_other

router = APIRouter()
# every page here needs the IDV's permission, held only with the second factor
IdvOfficer = Annotated[Principal, Depends(page(Permission.VICTIM_CONTACT_READ))]
VICTIMS = "/portaal/slachtoffers"
CONTACT_PURPOSE = "informing the victim"
MAX_EXPLANATION = 1500

nav(
    "Slachtoffers",
    VICTIMS,
    Permission.VICTIM_CONTACT_READ,
    order=20,
    description="Meldingen voor slachtoffers: contactgegevens bekijken en vastleggen "
    "wanneer en hoe u het slachtoffer heeft geïnformeerd.",
)
messages({"geinformeerd": "Vastgelegd: het slachtoffer is geïnformeerd."})

HOW = [
    ("telefoon", "Telefonisch"),
    ("brief", "Per brief"),
    ("e-mail", "Per e-mail"),
    ("gesprek", "In een persoonlijk gesprek"),
    ("via-vertegenwoordiger", "Via advocaat, Slachtofferhulp of een andere vertegenwoordiger"),
]
CONTACT_LABELS = {
    "name": "Naam",
    "email": "E-mail",
    "phone": "Telefoon",
    "address": "Adres",
    "postal_code": "Postcode",
    "city": "Woonplaats",
    "language": "Taal",
    "representative": "Vertegenwoordiger",
}
i18n.register(
    {
        "Slachtoffers": "Victims",
        "Meldingen voor slachtoffers: contactgegevens bekijken en vastleggen wanneer en hoe "
        "u het slachtoffer heeft geïnformeerd.": (
            "Notices for victims: see contact details and record when and how you informed "
            "the victim."
        ),
        "Vastgelegd: het slachtoffer is geïnformeerd.": "Recorded: the victim has been informed.",
        "Telefonisch": "By phone",
        "Per brief": "By letter",
        "Per e-mail": "By e-mail",
        "In een persoonlijk gesprek": "In person",
        "Via advocaat, Slachtofferhulp of een andere vertegenwoordiger": (
            "Through a lawyer, Victim Support or another representative"
        ),
        "Naam": "Name",
        "E-mail": "E-mail",
        "Telefoon": "Phone",
        "Adres": "Address",
        "Postcode": "Postcode",
        "Woonplaats": "Town",
        "Taal": "Language",
        "Vertegenwoordiger": "Representative",
        "Meldingen voor slachtoffers": "Notices for victims",
        "Nog te informeren": "Still to inform",
        "Alle meldingen voor slachtoffers": "All notices for victims",
        "Slachtoffer (kenmerk)": "Victim (reference)",
        "Te laat": "Overdue",
        "Er zijn geen meldingen voor slachtoffers.": "There are no notices for victims.",
        "Er zijn geen slachtoffers meer te informeren.": "There are no victims left to inform.",
        "Contactgegevens tonen": "Show contact details",
        "Als u de contactgegevens opent, wordt dat vastgelegd in het logboek.": (
            "Opening the contact details is recorded in the audit log."
        ),
        "Contactgegevens van het slachtoffer": "The victim's contact details",
        "Deze gegevens zijn vertrouwelijk. Dat u ze heeft bekeken, is vastgelegd in het "
        "logboek.": "These details are confidential. That you viewed them is in the audit log.",
        "Er zijn geen contactgegevens bekend van dit slachtoffer.": (
            "No contact details are known for this victim."
        ),
        "Vastleggen dat het slachtoffer is geïnformeerd": "Record that the victim was informed",
        "Wanneer heeft u het slachtoffer geïnformeerd?": "When did you inform the victim?",
        "Hoe heeft u het slachtoffer geïnformeerd?": "How did you inform the victim?",
        "Toelichting (niet verplicht)": "Explanation (optional)",
        "Vastleggen": "Record",
        "Vul een datum in, niet in de toekomst.": "Enter a date, not in the future.",
        "Kies hoe u het slachtoffer heeft geïnformeerd.": "Choose how you informed the victim.",
        "De toelichting is te lang (ten hoogste 1500 tekens).": (
            "The explanation is too long (at most 1500 characters)."
        ),
        "Terug naar de slachtoffers": "Back to the victims",
        "Geïnformeerd": "Informed",
        "Melding voor een slachtoffer": "Notice for a victim",
    }
)

Show = Literal["te-informeren", "alle"]


def overdue(notice: NoticeRead, now: datetime) -> bool:
    """Still to be told, and its due time has passed."""
    due = notice.due_at if notice.due_at.tzinfo else notice.due_at.replace(tzinfo=UTC)
    return notice.status == "delivered" and due < now


@router.get(VICTIMS, response_class=HTMLResponse)
def victims_page(
    request: Request, principal: IdvOfficer, toon: Show = "te-informeren", pagina: Pagina = 1
) -> Response:
    p = pager(pagina)
    with request.app.state.engine.begin() as conn:
        result = inbox.list_notices(
            conn,
            "idv",
            inbox.IDV_REF,
            actor=Actor.web(principal, PURPOSE),
            unacknowledged=toon == "te-informeren",
            kinds=["victim"],
            urgent_first=True,
            limit=p.limit,
            offset=p.offset,
        )
    now = datetime.now(UTC)
    return render(
        request,
        "victims/list.html",
        title="Meldingen voor slachtoffers",
        notices=result.notices,
        pager=p.with_total(result.total),
        toon=toon,
        late={n.id for n in result.notices if overdue(n, now)},
        **labels(),
    )


def _victim_notice(request: Request, principal: Principal, melding_id: int) -> NoticeRead:
    try:
        with request.app.state.engine.begin() as conn:
            notice = inbox.get_notice(
                conn, melding_id, scope(principal), actor=Actor.web(principal, PURPOSE)
            )
    except inbox.NoticeNotFound as e:
        raise HTTPException(404, "no such notice") from e
    if notice.recipient_kind != "victim":
        raise HTTPException(404, "not a victim notice")
    return notice


@router.get(VICTIMS + "/{melding_id}", response_class=HTMLResponse)
def victim_notice_page(request: Request, principal: IdvOfficer, melding_id: NoticeId) -> Response:
    """The notice for a victim, without the contact details (those are one click away)."""
    notice = _victim_notice(request, principal, melding_id)
    return render(
        request,
        "victims/notice.html",
        title="Melding voor een slachtoffer",
        notice=notice,
        **labels(),
    )


def _contact_page(
    request: Request,
    principal: Principal,
    notice: NoticeRead,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The contact details (decrypted here only; the read is audited) and the form."""
    ref = notice.recipient_ref or ""
    try:
        contact: dict[str, Any] | None = victim_contact(
            request.app.state.engine, ref, actor=Actor.web(principal, CONTACT_PURPOSE)
        )
    except KeyError:
        contact = None
    shown = [
        (CONTACT_LABELS.get(key, key), value)
        for key, value in (contact or {}).items()
        if value not in (None, "", [], {})
    ]
    return render(
        request,
        "victims/contact.html",
        status_code=status_code,
        title="Contactgegevens van het slachtoffer",
        notice=notice,
        contact=shown,
        how=HOW,
        errors=errors or {},
        form=form
        or {"datum": datetime.now(i18n.ZONE).date().isoformat(), "hoe": "", "toelichting": ""},
        **labels(),
    )


@router.get(VICTIMS + "/{melding_id}/contactgegevens", response_class=HTMLResponse)
def contact_page(request: Request, principal: IdvOfficer, melding_id: NoticeId) -> Response:
    notice = _victim_notice(request, principal, melding_id)
    return _contact_page(request, principal, notice)


def _check(datum: str, hoe: str, toelichting: str) -> tuple[dict[str, str], date | None]:
    errors: dict[str, str] = {}
    day = None
    with contextlib.suppress(ValueError):
        day = date.fromisoformat(datum.strip())
    if day is None or not FIRST_DAY <= day <= min(LAST_DAY, datetime.now(i18n.ZONE).date()):
        errors["datum"] = "Vul een datum in, niet in de toekomst."
    if hoe not in dict(HOW):
        errors["hoe"] = "Kies hoe u het slachtoffer heeft geïnformeerd."
    if len(toelichting.strip()) > MAX_EXPLANATION:
        errors["toelichting"] = "De toelichting is te lang (ten hoogste 1500 tekens)."
    return errors, day


@router.post(VICTIMS + "/{melding_id}/geinformeerd", response_class=HTMLResponse)
def informed_submit(
    request: Request,
    principal: IdvOfficer,
    melding_id: NoticeId,
    datum: Annotated[str, Form(max_length=20)] = "",
    hoe: Annotated[str, Form(max_length=40)] = "",
    toelichting: Annotated[str, Form(max_length=4 * MAX_EXPLANATION)] = "",
) -> Response:
    """Record when and how the victim was told: the victim notice's acknowledgement, with
    that as its note (audited by the inbox)."""
    notice = _victim_notice(request, principal, melding_id)
    form = {"datum": datum, "hoe": hoe, "toelichting": toelichting}
    errors, day = _check(datum, hoe, toelichting)
    if errors or day is None:
        return _contact_page(request, principal, notice, status_code=400, errors=errors, form=form)
    note = f"Geïnformeerd op {i18n.format_date(day)}: {dict(HOW)[hoe].lower()}."
    if toelichting.strip():
        note += f" {toelichting.strip()}"
    try:
        inbox.acknowledge(
            request.app.state.engine,
            melding_id,
            principal.name,
            note,
            scope=scope(principal),
            actor=Actor.web(principal, PURPOSE),
        )
    except inbox.NoticeNotFound as e:
        raise HTTPException(404, "no such notice") from e
    except inbox.InboxError as e:
        raise HTTPException(409, "cannot be acknowledged now") from e
    return see_other(f"{VICTIMS}/{melding_id}", bericht="geinformeerd")
