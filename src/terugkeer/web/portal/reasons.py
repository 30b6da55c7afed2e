"""The importers' reasons in Dutch, for the caseworker's import report in the portal.

The importers (:mod:`terugkeer.reintegration.importing`, with the parsers of
:mod:`~terugkeer.reintegration.values`, the checks of :mod:`~terugkeer.reintegration.service`
and :mod:`~terugkeer.reintegration.safety`, and the file reader of
:mod:`~terugkeer.reintegration.sheets`) give each bad row a reason in English: that is the
language of the command line, of the ``.errors.csv`` file and of the API, and the tests and
scripts that read them. A caseworker reads Dutch, so the portal's page "Bestand importeren"
shows each reason in Dutch (the Jinja filter ``reden``; English with ``?lang=en``).

:data:`PATTERNS` holds one (regular expression over the whole English message, Dutch template)
pair per message the importers can produce. The variable parts (row numbers, codes, dates,
lists of allowed codes, municipality codes, column names) are named groups of the expression
and go into the template unchanged, with two exceptions:

- a group named ``reden`` (``reden2``, ...) is itself an English reason (a service's message
  inside a case's, Python's reason why a date does not exist) and is translated in turn;
- a group named ``getal`` is a number written with English thousands separators
  (``10,000``) and is written the Dutch way (``10.000``).

A reason that matches no pattern is returned as it is: nothing is lost, only left in English
(the test ``tests/web/portal/test_import_reasons.py`` imports messy files and fails on any
reason left untranslated, so a new message of an importer needs its pattern here).

The words are those of ``docs/glossary.md``: dossier, dossiernummer, detentiekenmerk,
detentieperiode, toestemming, basisvoorwaarde, moment, binnenkomst, ontslag, aanbieder,
financier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_LIST = r"(?P<lijst>.+)"  # a list of allowed codes, carried over as it is
_GM = r"(?P<gemeente>\S+)"  # a municipality code
_ROW = r"(?P<regel>\d+)"  # a row number
_DATE = r"\d{2}-\d{2}-\d{4}"  # a date as the importers write it (dd-mm-jjjj)


def _p(pattern: str, template: str) -> tuple[re.Pattern[str], str]:
    return re.compile(pattern, re.DOTALL), template


# (English message, whole; Dutch template with the groups by name). The first that matches
# the whole message is used: a specific pattern comes before a general one.
PATTERNS: Sequence[tuple[re.Pattern[str], str]] = (
    # --- the file as a whole (reintegration/sheets.py, importing/shared.py) ------------------
    _p(r"no such file: (?P<pad>.+)", "bestand niet gevonden: {pad}"),
    _p(
        r"unsupported file type \[(?P<soort>.*)\]: use \.csv or \.xlsx",
        "bestandssoort [{soort}] wordt niet ondersteund: gebruik .csv of .xlsx",
    ),
    _p(
        r"unknown column \[(?P<kolom>.*)\]; known columns: (?P<kolommen>.*)",
        "onbekende kolom [{kolom}]; bekende kolommen: {kolommen}",
    ),
    _p(r"column \[(?P<kolom>.*)\] appears twice", "kolom [{kolom}] staat er twee keer in"),
    _p(r"missing column\(s\): (?P<kolommen>.+)", "deze kolom(men) ontbreken: {kolommen}"),
    _p(
        r"the file is neither UTF-8 nor Windows-1252: (?P<reden>.+)",
        "het bestand is geen UTF-8 en ook geen Windows-1252: {reden}",
    ),
    _p(r"not a readable CSV file: (?P<reden>.+)", "geen leesbaar CSV-bestand: {reden}"),
    _p(
        r"row (?P<regel>\d+) has (?P<cellen>\d+) cells, the header (?P<kop>\d+)",
        "regel {regel} heeft {cellen} cellen, de kopregel {kop}",
    ),
    _p(
        r"the file is empty or its first row \(the header\) is empty",
        "het bestand is leeg, of de eerste regel (de kopregel) is leeg",
    ),
    _p(
        r"reading XLSX needs the openpyxl package, which is not installed",
        "een XLSX-bestand kan hier niet worden gelezen (het pakket openpyxl ontbreekt): "
        "gebruik een CSV-bestand",
    ),
    _p(r"not a readable XLSX file: (?P<fout>.+)", "geen leesbaar XLSX-bestand: {fout}"),
    _p(r"the sheet is empty", "het werkblad is leeg"),
    _p(
        r"row (?P<regel>\d+) has values beyond the header's columns",
        "regel {regel} heeft waarden rechts van de kolommen van de kopregel",
    ),
    _p(r"unknown municipality code \[(?P<code>.*)\]", "onbekende gemeentecode [{code}]"),
    _p(
        r"the file needs a column detentiekenmerk or bsn",
        "het bestand moet een kolom detentiekenmerk of bsn hebben",
    ),
    # why a file cannot be decoded or read (Python's words, inside the reasons above)
    _p(r"invalid start byte", "ongeldige eerste byte van een teken"),
    _p(r"invalid continuation byte", "ongeldige vervolgbyte van een teken"),
    _p(r"unexpected end of data", "onverwacht einde van de gegevens"),
    _p(r"character maps to <undefined>", "een teken dat niet bestaat in deze codering"),
    _p(
        r"field larger than field limit \((?P<grens>\d+)\)",
        "een cel is groter dan de grens ({grens} tekens)",
    ),
    # --- values (reintegration/values.py) ------------------------------------------------------
    _p(r"a date without a time of day is expected", "een datum zonder tijdstip verwacht"),
    _p(
        r"not a date: write dd-mm-jjjj, for example (?P<voorbeeld>\S+)",
        "geen datum: schrijf dd-mm-jjjj, bijvoorbeeld {voorbeeld}",
    ),
    _p(
        r"year (?P<jaar>-?\d+) is out of range",
        "jaar {jaar} kan niet (alleen 1900 tot en met 2100)",
    ),
    _p(r"no such date \((?P<reden>.+)\)", "deze datum bestaat niet ({reden})"),
    _p(r"day is out of range for month", "die dag bestaat niet in die maand"),
    _p(r"month must be in 1\.\.12", "de maand moet 1 tot en met 12 zijn"),
    _p(
        r"day (?P<dag>\d+) must be in range 1\.\.(?P<laatste>\d+) for month (?P<maand>\d+)"
        r"(?: in year (?P<jaar>\d+))?",
        "dag {dag} bestaat niet: maand {maand} heeft dagen 1 tot en met {laatste}",
    ),
    _p(r"not a number", "geen getal"),
    _p(r"a number is expected", "een getal verwacht"),
    _p(
        r"ambiguous number: write a decimal comma \(1,234\) or no thousands point \(1234\)",
        "getal is niet eenduidig: schrijf een decimale komma (1,234) of geen punt voor de "
        "duizendtallen (1234)",
    ),
    _p(
        r"not a number: write for example (?P<voorbeeld>\S+)",
        "geen getal: schrijf bijvoorbeeld {voorbeeld}",
    ),
    _p(r"a negative number is not allowed", "een negatief getal mag niet"),
    _p(r"at most (?P<aantal>\d+) decimals", "hoogstens {aantal} cijfers achter de komma"),
    _p(r"more than the maximum of (?P<getal>\S+)", "meer dan het maximum van {getal}"),
    _p(r"unknown code; allowed: " + _LIST, "onbekende code; toegestaan: {lijst}"),
    _p(r"not a valid BSN \(9 digits, 11-proef\)", "geen geldig BSN (9 cijfers, 11-proef)"),
    # --- spreadsheet safety (reintegration/safety.py) ------------------------------------------
    _p(
        r"starts with = \+ - @ or a tab: a spreadsheet would read it as a formula",
        "begint met = + - @ of een tab: een spreadsheet zou het als formule lezen",
    ),
    _p(
        r"a BSN is not a municipal reference: give the municipality's own number",
        "een BSN is geen kenmerk van de gemeente: geef het eigen nummer van de gemeente",
    ),
    # --- cases (importing/cases.py) -------------------------------------------------------------
    _p(
        r"the municipality's case reference is required",
        "het dossiernummer van de gemeente is verplicht",
    ),
    _p(r"longer than (?P<aantal>\d+) characters", "langer dan {aantal} tekens"),
    _p(
        r"give the detention reference \(detentiekenmerk\) or the BSN",
        "vul het detentiekenmerk of het BSN in",
    ),
    _p(r"the date of the consent is required", "de datum van de toestemming is verplicht"),
    _p(
        r"a moment is required with condition statuses",
        "bij de status van een basisvoorwaarde hoort een moment",
    ),
    _p(
        r"a moment without any condition status",
        "een moment zonder de status van een basisvoorwaarde",
    ),
    _p(
        r"no case for this detention period in " + _GM,
        "geen dossier voor deze detentieperiode in {gemeente}",
    ),
    _p(
        r"does not match the person of the detention period",
        "hoort niet bij de persoon van de detentieperiode",
    ),
    _p(r"no case for this person in " + _GM, "geen dossier voor deze persoon in {gemeente}"),
    _p(
        r"the person has (?P<aantal>\d+) cases in " + _GM + r": give the detention reference "
        r"\(detentiekenmerk\)",
        "de persoon heeft {aantal} dossiers in {gemeente}: vul het detentiekenmerk in",
    ),
    _p(
        r"is already the reference of case (?P<kenmerk>.+)",
        "is al het dossiernummer van het dossier met detentiekenmerk {kenmerk}",
    ),
    _p(
        r"this case already has the reference \[(?P<nummer>.*)\]",
        "dit dossier heeft al het dossiernummer [{nummer}]",
    ),
    _p(
        r"the same case has reference \[(?P<nummer>.*)\] above",
        "hetzelfde dossier heeft hierboven het dossiernummer [{nummer}]",
    ),
    _p(
        r"is the reference of another case on row " + _ROW,
        "is het dossiernummer van een ander dossier, op regel {regel}",
    ),
    _p(r"no consent given to withdraw", "er is geen gegeven toestemming om in te trekken"),
    _p(
        r"condition statuses need consent given for registration "
        r"\(give it in this row or an earlier one\)",
        "voor de status van de basisvoorwaarden is toestemming voor registratie nodig (vul die "
        "in op deze regel of op een regel erboven)",
    ),
    _p(
        r"this case and moment are already on row " + _ROW,
        "dit dossier en dit moment staan al op regel {regel}",
    ),
    # a case's moment (reintegration/service.py: plan_conditions, implausible_date)
    _p(
        r"case \[(?P<dossier>[^\]]*)\]: moment (?P<moment>\S+) needs a release into society",
        "dossier [{dossier}]: moment {moment} kan pas na ontslag in de samenleving",
    ),
    _p(
        r"case \[(?P<dossier>[^\]]*)\]: no release date known: give the date for (?P<moment>\S+)",
        "dossier [{dossier}]: de ontslagdatum is niet bekend: vul de datum voor {moment} in",
    ),
    _p(r"case \[(?P<dossier>[^\]]*)\]: (?P<reden>.+)", "dossier [{dossier}]: {reden}"),
    _p(
        rf"date (?P<datum>{_DATE}) is implausible for (?P<moment>\S+) \((?P<naam>.*?)\): "
        rf"expected between (?P<van>{_DATE}) and (?P<tot>{_DATE}) "
        rf"\(intake (?P<binnen>{_DATE}), release (?P<ontslag>{_DATE})\)",
        "datum {datum} is niet aannemelijk voor {moment} ({naam}): verwacht tussen {van} en "
        "{tot} (binnenkomst {binnen}, ontslag {ontslag})",
    ),
    _p(
        rf"date (?P<datum>{_DATE}) is implausible for (?P<moment>\S+) \((?P<naam>.*?)\): "
        rf"expected between (?P<van>{_DATE}) and (?P<tot>{_DATE}) \(intake (?P<binnen>{_DATE})\)",
        "datum {datum} is niet aannemelijk voor {moment} ({naam}): verwacht tussen {van} en "
        "{tot} (binnenkomst {binnen})",
    ),
    # consent (service.check_consent)
    _p(r"must be given, refused or withdrawn", "moet gegeven, geweigerd of ingetrokken zijn"),
    _p(r"lies in the future", "ligt in de toekomst"),
    _p(r"unknown scope (?P<lijst>.+)", "onbekende reikwijdte {lijst}"),
    _p(r"consent given needs a scope", "bij gegeven toestemming hoort een reikwijdte"),
    # conditions (service.check_conditions)
    _p(r"unknown moment; allowed: " + _LIST, "onbekend moment; toegestaan: {lijst}"),
    _p(r"no condition given", "geen basisvoorwaarde ingevuld"),
    _p(r"unknown condition", "onbekende basisvoorwaarde"),
    _p(r"unknown status; allowed: " + _LIST, "onbekende status; toegestaan: {lijst}"),
    _p(r"unknown care need; allowed: " + _LIST, "onbekende zorgbehoefte; toegestaan: {lijst}"),
    _p(r"care needs without care", "een zorgbehoefte zonder status van zorg"),
    _p(r"care is not needed", "een zorgbehoefte, maar zorg is niet nodig"),
    # --- activities (importing/activity_checks.py, importing/activities.py, service.py) -------
    _p(
        r"no case with this reference in " + _GM,
        "geen dossier met dit dossiernummer in {gemeente}",
    ),
    _p(r"the case reference is required", "het dossiernummer is verplicht"),
    _p(
        r"the case has no consent for registration",
        "het dossier heeft geen toestemming voor registratie",
    ),
    _p(
        r"unknown activity type; allowed: " + _LIST,
        "onbekende soort activiteit; toegestaan: {lijst}",
    ),
    _p(r"a provider is required", "de aanbieder is verplicht"),
    _p(r"a start date is required", "de startdatum is verplicht"),
    _p(
        r"implausible: (?P<dagen>\d+) days before the intake of the case \(at most (?P<max>\d+)\)",
        "niet aannemelijk: {dagen} dagen voor de binnenkomst van het dossier (hoogstens {max})",
    ),
    _p(
        rf"start date (?P<datum>{_DATE}) is implausible: more than (?P<dagen>\d+) days before "
        rf"the intake \((?P<binnen>{_DATE})\)",
        "startdatum {datum} is niet aannemelijk: meer dan {dagen} dagen voor de binnenkomst "
        "({binnen})",
    ),
    _p(r"before the start date", "ligt voor de startdatum"),
    _p(r"out of range 0-(?P<getal>[\d,]+) euros", "niet tussen 0 en {getal} euro"),
    _p(r"out of range 0-(?P<getal>[\d,]+)", "niet tussen 0 en {getal}"),
    _p(r"unknown funder; allowed: " + _LIST, "onbekende financier; toegestaan: {lijst}"),
    _p(
        r"a cost needs its funder \((?P<lijst>.+)\)",
        "bij kosten hoort een financier ({lijst})",
    ),
    _p(r"a cost needs its funder", "bij kosten hoort een financier"),
    _p(r"the same activity is on row " + _ROW, "dezelfde activiteit staat al op regel {regel}"),
    # --- screenings (importing/screenings.py) ---------------------------------------------------
    _p(r"the detention reference is required", "het detentiekenmerk is verplicht"),
    _p(r"care needs without care needed", "een zorgbehoefte, maar zorg is niet nodig"),
    _p(
        r"no detention period with this reference",
        "geen detentieperiode met dit detentiekenmerk",
    ),
    _p(
        r"this period is already on row " + _ROW,
        "deze detentieperiode staat al op regel {regel}",
    ),
    _p(
        rf"implausible for this period \(intake (?P<binnen>{_DATE}), release "
        rf"(?P<ontslag>{_DATE})\): a screening lies between (?P<dagen>\d+) days before the "
        r"intake and the release",
        "niet aannemelijk voor deze detentieperiode (binnenkomst {binnen}, ontslag {ontslag}): "
        "een screening ligt tussen {dagen} dagen voor de binnenkomst en het ontslag",
    ),
    _p(
        rf"implausible for this period \(intake (?P<binnen>{_DATE})\): a screening lies "
        r"between (?P<dagen>\d+) days before the intake and the release",
        "niet aannemelijk voor deze detentieperiode (binnenkomst {binnen}): een screening "
        "ligt tussen {dagen} dagen voor de binnenkomst en het ontslag",
    ),
)


def _dutch_number(text: str) -> str:
    """``10,000,000`` -> ``10.000.000`` (and a decimal point becomes a comma)."""
    return text.translate(str.maketrans(",.", ".,"))


def _group(name: str, value: str | None) -> str:
    if value is None:
        return ""
    if name.startswith("reden"):
        return dutch_reason(value)
    if name == "getal":
        return _dutch_number(value)
    return value


def match(reason: str) -> int | None:
    """The position in :data:`PATTERNS` of the pattern ``reason`` is translated by, or None."""
    for i, (pattern, _) in enumerate(PATTERNS):
        if pattern.fullmatch(reason):
            return i
    return None


def dutch_reason(reason: str) -> str:
    """The Dutch text of an importer's reason; the reason as it is when no pattern knows it."""
    text = reason.strip()
    for pattern, template in PATTERNS:
        m = pattern.fullmatch(text)
        if m is not None:
            return template.format(
                **{name: _group(name, value) for name, value in m.groupdict().items()}
            )
    return reason
