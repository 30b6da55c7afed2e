"""Code lists of the detention domain. Values are the feed's wire values (English, snake case);
``docs/glossary.md`` gives the Dutch term for each."""

from __future__ import annotations

from enum import StrEnum


class InstitutionType(StrEnum):
    PI = "pi"  # penitentiaire inrichting
    JJI = "jji"  # justitiële jeugdinrichting
    TBS = "tbs"  # forensisch psychiatrisch centrum
    IDV = "idv"  # OM Informatiepunt Detentieverloop (a feed source, not a place of detention)
    JD = "jd"  # Justid justitiële documentatie (reconvictions)
    DJI = "dji"  # DJI central administration


class DetentionTitle(StrEnum):
    PRE_TRIAL = "pre_trial"  # voorlopige hechtenis
    PRISON_SENTENCE = "prison_sentence"  # gevangenisstraf
    JUVENILE_DETENTION = "juvenile_detention"  # jeugddetentie
    PIJ = "pij"  # plaatsing in een inrichting voor jeugdigen
    TBS = "tbs"  # terbeschikkingstelling
    REPLACEMENT_DETENTION = "replacement_detention"  # vervangende hechtenis


class OffenceCategory(StrEnum):
    ZEDEN = "zeden"  # sexual offences
    ZWAAR_GEWELD = "zwaar_geweld"  # serious violence
    OVERIG_GEWELD = "overig_geweld"  # other violence
    VERMOGEN = "vermogen"  # property
    OPIUMWET = "opiumwet"  # drugs
    OVERIG = "overig"  # other


class EventKind(StrEnum):
    INTAKE = "intake"  # insluiting
    RELEASE_DATE_SET = "release_date_set"  # (gewijzigde) geplande ontslagdatum
    LEAVE_GRANTED = "leave_granted"  # verlof verleend (planned leave)
    LEAVE_START = "leave_start"  # vertrek met verlof
    LEAVE_END = "leave_end"  # terugkeer van verlof
    ESCAPE = "escape"  # ontvluchting / onttrekking
    RECAPTURE = "recapture"  # wederopname na ontvluchting
    TRANSFER = "transfer"  # overplaatsing
    TITLE_CHANGE = "title_change"  # wijziging detentietitel
    RELEASE = "release"  # einde detentie
    DEATH = "death"  # overlijden
    CORRECTION = "correction"  # intrekking van een eerder bericht
    VICTIM_REGISTERED = "victim_registered"  # aanmelding slachtoffer bij het IDV
    RECONVICTION = "reconviction"  # nieuwe strafzaak


DETENTION_KINDS = frozenset(
    {
        EventKind.INTAKE,
        EventKind.RELEASE_DATE_SET,
        EventKind.LEAVE_GRANTED,
        EventKind.LEAVE_START,
        EventKind.LEAVE_END,
        EventKind.ESCAPE,
        EventKind.RECAPTURE,
        EventKind.TRANSFER,
        EventKind.TITLE_CHANGE,
        EventKind.RELEASE,
        EventKind.DEATH,
    }
)


class ReleaseKind(StrEnum):
    END_OF_SENTENCE = "end_of_sentence"  # einde straf
    CONDITIONAL_RELEASE = "conditional_release"  # voorwaardelijke invrijheidstelling (v.i.)
    COURT_ORDER = "court_order"  # invrijheidstelling op last van de rechter / OM
    INTO_TBS = "into_tbs"  # overgang naar tbs-kliniek: not a release into society


RELEASES_INTO_SOCIETY = frozenset(
    {ReleaseKind.END_OF_SENTENCE, ReleaseKind.CONDITIONAL_RELEASE, ReleaseKind.COURT_ORDER}
)


class PeriodStatus(StrEnum):
    IN_CUSTODY = "in_custody"  # gedetineerd
    ON_LEAVE = "on_leave"  # met verlof
    ESCAPED = "escaped"  # ontvlucht
    RELEASED = "released"  # detentie beëindigd
    DECEASED = "deceased"  # overleden
    WITHDRAWN = "withdrawn"  # insluiting ingetrokken


ENDED_STATUSES = frozenset({PeriodStatus.RELEASED, PeriodStatus.DECEASED})


class VictimRelation(StrEnum):
    VICTIM = "victim"  # slachtoffer
    SURVIVING_RELATIVE = "surviving_relative"  # nabestaande


class CaseDecision(StrEnum):
    CONVICTION = "conviction"  # veroordeling
    SETTLEMENT = "settlement"  # transactie / strafbeschikking
    POLICY_DISMISSAL = "policy_dismissal"  # beleidssepot
    ACQUITTAL = "acquittal"  # vrijspraak
    TECHNICAL_DISMISSAL = "technical_dismissal"  # technisch sepot


# WODC: acquittals and technical dismissals do not count as recidivism.
COUNTS_AS_RECIDIVISM = frozenset(
    {CaseDecision.CONVICTION, CaseDecision.SETTLEMENT, CaseDecision.POLICY_DISMISSAL}
)


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"
    OTHER = "X"
