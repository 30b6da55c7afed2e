"""The auditor's pages: the audit log (logboek) searched by actor, subject (record type and id)
and period, newest first (``security.audit.search_entries``: the search itself is an entry),
and the check of the hash chain (``security.audit.verify``, as ``/api/v1/auditlog/verificatie``)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from terugkeer.security import audit
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.params import FIRST_DAY, LAST_DAY
from terugkeer.web.portal import i18n
from terugkeer.web.portal.pages import nav, page, pager, render

router = APIRouter()
Auditor = Annotated[Principal, Depends(page(Permission.AUDIT_READ))]
Pagina = Annotated[int, Query(ge=1, le=100_000)]
Text = Annotated[str, Query(max_length=100)]
LOG = "/portaal/auditlog"
CHECK = LOG + "/verificatie"

nav(
    "Logboek",
    LOG,
    Permission.AUDIT_READ,
    order=10,
    description="Zoek in het logboek wie welke gegevens heeft bekeken of gewijzigd, en wanneer.",
)
nav(
    "Controle van het logboek",
    CHECK,
    Permission.AUDIT_READ,
    order=11,
    description="Controleer dat niemand regels in het logboek heeft gewijzigd of verwijderd.",
)
RECORD_TYPES = [
    ("", "Alle soorten"),
    ("notice", "Melding"),
    ("victim_contact", "Contactgegevens slachtoffer"),
    ("reintegration_case", "Nazorgdossier"),
    ("activity", "Activiteit"),
    ("user", "Gebruiker"),
    ("api_token", "API-sleutel"),
    ("audit_log", "Logboek"),
    ("job", "Batchtaak"),
    ("route", "Pagina of API-adres"),
]
i18n.register(
    {
        "Logboek": "Audit log",
        "Zoek in het logboek wie welke gegevens heeft bekeken of gewijzigd, en wanneer.": (
            "Search the audit log for who saw or changed which data, and when."
        ),
        "Controle van het logboek": "Audit log check",
        "Controleer dat niemand regels in het logboek heeft gewijzigd of verwijderd.": (
            "Check that nobody changed or removed entries of the audit log."
        ),
        "Alle soorten": "All kinds",
        "Contactgegevens slachtoffer": "Victim's contact details",
        "Nazorgdossier": "Case",
        "Activiteit": "Activity",
        "Gebruiker": "User",
        "API-sleutel": "API token",
        "Batchtaak": "Batch job",
        "Pagina of API-adres": "Page or API address",
        "Wie (naam)": "Who (name)",
        "Soort gegeven": "Kind of record",
        "Kenmerk van het gegeven": "Record reference",
        "Van (datum)": "From (date)",
        "Tot en met (datum)": "To (date, inclusive)",
        "Zoeken": "Search",
        "Nummer": "Number",
        "Tijd": "Time",
        "Wie": "Who",
        "Handeling": "Action",
        "Doel": "Purpose",
        "Er zijn geen regels in het logboek die hieraan voldoen.": "No entries match.",
        "Vul een geldige datum in.": "Enter a valid date.",
        "De datum 'tot en met' ligt voor de datum 'van'.": "The 'to' date is before the 'from' date.",
        "Gebruik bijvoorbeeld de naam van een gebruiker, zoals j.jansen.": (
            "For example a user's name, such as j.jansen."
        ),
        "Logboekregels": "Audit log entries",
        "Controleer nu": "Check now",
        "De controle leest het hele logboek. Bij een groot logboek duurt dat even.": (
            "The check reads the whole log. With a large log this takes a while."
        ),
        "Het logboek is in orde.": "The audit log is intact.",
        "Het logboek is NIET in orde.": "The audit log is NOT intact.",
        "Aantal gecontroleerde regels": "Entries checked",
        "Eerste regel die niet klopt": "First entry that does not fit",
        "Wat er niet klopt": "What is wrong",
        "Laatste controlepunt (regel)": "Last checkpoint (entry)",
        "Let op": "Note",
        "Bekijk deze regel": "See this entry",
    }
)


def _day(text: str) -> date | None:
    """A date from a date field (YYYY-MM-DD), None when empty; ValueError when not a date."""
    if not text.strip():
        return None
    day = date.fromisoformat(text.strip())
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(text)
    return day


def _moment(day: date) -> datetime:
    """The start of a Dutch day as a moment."""
    return datetime.combine(day, time(), tzinfo=i18n.ZONE)


def _period(van: str, tot: str) -> tuple[dict[str, str], datetime | None, datetime | None]:
    errors: dict[str, str] = {}
    since = until = None
    start = end = None
    try:
        start = _day(van)
    except ValueError:
        errors["van"] = "Vul een geldige datum in."
    try:
        end = _day(tot)
    except ValueError:
        errors["tot"] = "Vul een geldige datum in."
    if start and end and end < start:
        errors["tot"] = "De datum 'tot en met' ligt voor de datum 'van'."
    if start:
        since = _moment(start)
    if end:
        until = _moment(end + timedelta(days=1)) if end < LAST_DAY else None
    return errors, since, until


@router.get(LOG, response_class=HTMLResponse)
def log_page(
    request: Request,
    principal: Auditor,
    wie: Text = "",
    soort: Annotated[str, Query(max_length=40)] = "",
    kenmerk: Text = "",
    van: Annotated[str, Query(max_length=20)] = "",
    tot: Annotated[str, Query(max_length=20)] = "",
    pagina: Pagina = 1,
) -> Response:
    p = pager(pagina)
    errors, since, until = _period(van, tot)
    entries: list[object] = []
    if not errors:
        with request.app.state.engine.begin() as conn:
            found = audit.search_entries(
                conn,
                principal,
                actor=wie.strip() or None,
                record_type=soort.strip() or None,
                record_id=kenmerk.strip() or None,
                since=since,
                until=until,
                limit=p.limit,
                offset=p.offset,
            )
        entries, p = list(found.items), p.with_total(found.total)
    return render(
        request,
        "auditor/log.html",
        status_code=400 if errors else 200,
        title="Logboek",
        entries=entries,
        pager=p,
        errors=errors,
        form={"wie": wie, "soort": soort, "kenmerk": kenmerk, "van": van, "tot": tot},
        record_types=RECORD_TYPES,
        type_names=dict(RECORD_TYPES),
    )


@router.get(CHECK, response_class=HTMLResponse)
def check_page(
    request: Request,
    principal: Auditor,
    nu: Annotated[str, Query(max_length=1)] = "",
) -> Response:
    """The chain check runs when asked (it reads the whole log)."""
    report = audit.verify(request.app.state.engine) if nu == "1" else None
    return render(
        request,
        "auditor/check.html",
        title="Controle van het logboek",
        report=report,
        problem=chain_text(report.problem, i18n.language(request)) if report else None,
        warning=chain_text(report.warning, i18n.language(request)) if report else None,
    )


# The chain check's findings (security/audit.py, in English for the command line and the API),
# in plain Dutch for this page; English on request. A finding not listed stays as it is.
_CHAIN_DUTCH = [
    (
        r"does not follow the entry before it \(removed or inserted rows\)",
        "sluit niet aan op de regel ervoor: er zijn regels weggehaald of tussengevoegd",
    ),
    (r"content does not match its hash \(changed\)", "de inhoud past niet bij de hash: gewijzigd"),
    (
        r"has no key mark after marked entries \(rewritten\)",
        "heeft geen sleutelmerk, terwijl eerdere regels er een hebben: herschreven",
    ),
    (
        r"key mark does not match its hash \(rewritten\)",
        "het sleutelmerk past niet bij de hash: herschreven",
    ),
    (
        r"the log lacks entry (\d+) of the checkpoint of (.+) \((\d+) entries then, (\d+) now\):"
        r" entries were removed",
        r"het logboek mist regel \1 van het controlepunt van \2 (\3 regels toen, \4 nu):"
        r" er zijn regels weggehaald",
    ),
    (
        r"differs from the checkpoint of (.+) \(rewritten or removed entries\)",
        r"wijkt af van het controlepunt van \1: regels herschreven of weggehaald",
    ),
    (
        r"marked under a key no longer configured, after the checkpoint",
        "gemerkt met een sleutel die niet meer is ingesteld, na het controlepunt",
    ),
    (
        r"audit checkpoint file \[(.+)\] cannot be read: (.+)",
        r"het bestand met controlepunten [\1] is niet te lezen: \2",
    ),
    (
        r"audit checkpoint file \[(.+)\] line (\d+) is not JSON",
        r"regel \2 van het bestand met controlepunten [\1] is geen JSON",
    ),
    (
        r"audit checkpoint file \[(.+)\]: the last checkpoint is malformed",
        r"het laatste controlepunt in [\1] is onvolledig of beschadigd",
    ),
    (
        r"the last audit checkpoint in \[(.+)\] is signed with key \[(.*)\], which is not"
        r" configured",
        r"het laatste controlepunt in [\1] is ondertekend met sleutel [\2], die niet is"
        r" ingesteld",
    ),
    (
        r"the last audit checkpoint in \[(.+)\] has a wrong signature",
        r"het laatste controlepunt in [\1] heeft een verkeerde handtekening",
    ),
    (
        r"no checkpoint: a removed tail or an emptied log cannot be told from a short one",
        "er is geen controlepunt: een weggehaald laatste deel of een leeggemaakt logboek is niet"
        " te onderscheiden van een kort logboek",
    ),
    (
        r"; the newest (\d+) entries are marked under a key no longer configured, with no newer"
        r" entry to vouch for them",
        r"; de nieuwste \1 regels zijn gemerkt met een sleutel die niet meer is ingesteld, en"
        r" geen nieuwere regel staat ervoor in",
    ),
]


def chain_text(text: str | None, lang: str) -> str | None:
    """A finding of the chain check as this page shows it: in Dutch, unless English was
    asked for."""
    if text is None or lang == "en":
        return text
    for english, dutch in _CHAIN_DUTCH:
        text = re.sub(english, dutch, text)
    return text
