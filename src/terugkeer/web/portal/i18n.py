"""Dutch first, English on request: the portal's message catalogue and number and date formats.

Templates write the Dutch text and wrap it: ``{{ _("Meldingen") }}``. Dutch is the text
itself; the English translation comes from this catalogue (a Dutch text without an English
entry is shown in Dutch). Page modules add their own entries with :func:`register`.

The language: ``?lang=en`` or ``?lang=nl`` (remembered in the ``terugkeer_lang`` cookie), else
that cookie, else English only when the browser's first language (``Accept-Language``) is
English and it does not ask for Dutch at all; otherwise Dutch.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from starlette.requests import Request

LANG_COOKIE = "terugkeer_lang"
LANGUAGES = ("nl", "en")
DEFAULT = "nl"
ZONE = ZoneInfo("Europe/Amsterdam")

MONTHS = {
    "nl": [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}

# Dutch text -> English text
CATALOGUE: dict[str, str] = {}


def register(entries: dict[str, str]) -> None:
    """Add Dutch -> English entries (a page module calls this at import)."""
    for dutch, english in entries.items():
        known = CATALOGUE.get(dutch)
        if known is not None and known != english:
            raise ValueError(f"two English texts for [{dutch}]: [{known}] and [{english}]")
        CATALOGUE[dutch] = english


def translate(text: str, lang: str) -> str:
    return CATALOGUE.get(text, text) if lang == "en" else text


def _accept_language(header: str) -> str | None:
    tags = [part.split(";")[0].strip().lower() for part in header.split(",") if part.strip()]
    if not tags or any(t.split("-")[0] == "nl" for t in tags):
        return None
    return "en" if tags[0].split("-")[0] == "en" else None


def language(request: Request) -> str:
    """The language of this request's page (see the module's description)."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return cookie
    return _accept_language(request.headers.get("accept-language", "")) or DEFAULT


def local(moment: datetime) -> datetime:
    """A stored moment (UTC, or naive UTC from SQLite) in Dutch time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZONE)


def format_date(value: date | datetime | None, lang: str = DEFAULT) -> str:
    """``5 december 2026`` (English: ``5 December 2026``); a moment in Dutch time."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local(value).date()
    return f"{value.day} {MONTHS[lang][value.month - 1]} {value.year}"


def format_datetime(value: datetime | None, lang: str = DEFAULT) -> str:
    """``5 december 2026, 14:05`` in Dutch time (English: ``5 December 2026, 14:05``)."""
    if value is None:
        return ""
    moment = local(value)
    return f"{format_date(moment.date(), lang)}, {moment:%H:%M}"


def format_number(
    value: int | float | Decimal | None, decimals: int = 0, lang: str = DEFAULT
) -> str:
    """``1.234,56`` in Dutch (English: ``1,234.56``)."""
    if value is None:
        return ""
    text = f"{value:,.{decimals}f}"
    if lang == "en":
        return text
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def format_money(value: int | float | Decimal | None, lang: str = DEFAULT) -> str:
    """``€ 1.234,56``."""
    if value is None:
        return ""
    return f"€ {format_number(value, 2, lang)}"


register(
    {
        "Naar de inhoud": "Skip to content",
        "Hoofdmenu": "Main menu",
        "Uitloggen": "Sign out",
        "Inloggen": "Sign in",
        "Ingelogd als": "Signed in as",
        "Start": "Home",
        "Taal": "Language",
        "English": "English",
        "Nederlands": "Nederlands",
        "Vorige": "Previous",
        "Volgende": "Next",
        "Paginering": "Pagination",
        "Pagina": "Page",
        "van": "of",
        "Resultaat": "Result",
        "Er zijn geen resultaten.": "There are no results.",
        "Filteren": "Filter",
        "Filters wissen": "Clear filters",
        "Er ging iets mis": "Something went wrong",
        "Controleer het formulier": "Check the form",
        "Opslaan": "Save",
        "Annuleren": "Cancel",
        "Ja": "Yes",
        "Nee": "No",
        "Naam": "Name",
        "Wachtwoord": "Password",
        "Code": "Code",
        "Rol": "Role",
        "Gemeente": "Municipality",
        "Datum": "Date",
        "Status": "Status",
        "Details": "Details",
        "Terug": "Back",
        "Wat kunt u hier doen?": "What can you do here?",
        "Welkom": "Welcome",
        "Maak een keuze": "Choose",
        "Naar de startpagina": "To the home page",
        "terugkeer in de maatschappij na detentie": "return into society after detention",
        "Voor uw rol zijn er (nog) geen pagina's in het portaal.": (
            "There are no pages in the portal for your role (yet)."
        ),
    }
)
