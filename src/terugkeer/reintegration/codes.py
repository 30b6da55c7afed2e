"""Code lists of reintegration registration, and the rule that says whether a basic condition
is *in order*. Pure: no database. ``docs/conditions.md`` documents every list and rule and how
it lines up with the WODC Monitor Nazorg; a test keeps the two in agreement.

Codes are English snake case (like the feed); every code has the Dutch label users know, and
the import also accepts a few Dutch spellings (``ALIASES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Condition(StrEnum):
    """The five basic conditions (*basisvoorwaarden*)."""

    ID = "id"  # identiteitsbewijs
    HOUSING = "housing"  # onderdak
    INCOME = "income"  # werk en inkomen
    DEBTS = "debts"  # schulden
    CARE = "care"  # zorg


CONDITIONS: tuple[Condition, ...] = tuple(Condition)


class Moment(StrEnum):
    """When a condition is recorded. The Monitor Nazorg measures before detention, at release
    and 1, 6, 12 and 24 months after; the intake screening stands for "before detention"."""

    INTAKE = "intake"  # intake (screening bij binnenkomst)
    BEFORE_RELEASE = "before_release"  # voor ontslag
    RELEASE = "release"  # bij ontslag
    MONTH_1 = "month_1"  # 1 maand na ontslag
    MONTH_6 = "month_6"  # 6 maanden na ontslag
    MONTH_12 = "month_12"  # 12 maanden na ontslag
    MONTH_24 = "month_24"  # 24 maanden na ontslag


MOMENTS: tuple[Moment, ...] = tuple(Moment)

# The Dutch names users know (docs/conditions.md, docs/glossary.md): shown in text output and
# accepted wherever a code is (the import, the API, the command line).
CONDITION_LABELS: dict[str, str] = {
    Condition.ID: "identiteitsbewijs",
    Condition.HOUSING: "onderdak",
    Condition.INCOME: "werk en inkomen",
    Condition.DEBTS: "schulden",
    Condition.CARE: "zorg",
    "general": "algemeen",
}
MOMENT_LABELS: dict[str, str] = {
    Moment.INTAKE: "bij binnenkomst (screening)",
    Moment.BEFORE_RELEASE: "voor ontslag",
    Moment.RELEASE: "bij ontslag",
    Moment.MONTH_1: "1 maand na ontslag",
    Moment.MONTH_6: "6 maanden na ontslag",
    Moment.MONTH_12: "12 maanden na ontslag",
    Moment.MONTH_24: "24 maanden na ontslag",
}
MONTHS_AFTER_RELEASE = {
    Moment.MONTH_1: 1,
    Moment.MONTH_6: 6,
    Moment.MONTH_12: 12,
    Moment.MONTH_24: 24,
}


class InOrder(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Status:
    code: str
    label: str  # Dutch
    in_order: InOrder


# Per condition: its statuses in display order. ``unknown`` is on every list: a caseworker may
# record that a condition could not be established (lost contact); it is not "in order".
STATUSES: dict[Condition, tuple[Status, ...]] = {
    Condition.ID: (
        Status("valid", "geldig identiteitsbewijs", InOrder.YES),
        Status("expired", "verlopen", InOrder.NO),
        Status("none", "geen", InOrder.NO),
        Status("applied_for", "aangevraagd", InOrder.NO),
        Status("unknown", "onbekend", InOrder.UNKNOWN),
    ),
    Condition.HOUSING: (
        Status("own_or_rented", "eigen woning of huurwoning", InOrder.YES),
        Status("family_or_friends", "bij familie of vrienden", InOrder.YES),
        Status("institution", "instelling (kliniek, beschermd wonen)", InOrder.YES),
        Status("shelter", "maatschappelijke opvang", InOrder.NO),
        Status("homeless", "dakloos", InOrder.NO),
        Status("postal_address_only", "alleen een briefadres", InOrder.NO),
        Status("unknown", "onbekend", InOrder.UNKNOWN),
    ),
    Condition.INCOME: (
        Status("work", "werk", InOrder.YES),
        Status("education", "opleiding", InOrder.YES),
        Status("benefit", "uitkering", InOrder.YES),
        Status("applied_for", "uitkering aangevraagd", InOrder.NO),
        Status("none", "geen werk, opleiding of inkomen", InOrder.NO),
        Status("unknown", "onbekend", InOrder.UNKNOWN),
    ),
    Condition.DEBTS: (
        Status("none", "geen schulden", InOrder.YES),
        Status("with_plan", "schulden met een plan of in schuldhulpverlening", InOrder.YES),
        Status("without_plan", "schulden zonder plan", InOrder.NO),
        Status("unknown_amount", "schulden, omvang onbekend", InOrder.NO),
        Status("unknown", "onbekend", InOrder.UNKNOWN),
    ),
    Condition.CARE: (
        Status("not_needed", "geen zorg nodig", InOrder.YES),
        Status("arranged", "zorg nodig en geregeld", InOrder.YES),
        Status("not_arranged", "zorg nodig en niet geregeld", InOrder.NO),
        Status("unknown", "onbekend", InOrder.UNKNOWN),
    ),
}


class CareNeed(StrEnum):
    """What care is needed (the detail of a care status other than ``not_needed``)."""

    MENTAL_HEALTH = "mental_health"  # ggz
    ADDICTION = "addiction"  # verslavingszorg
    INTELLECTUAL_DISABILITY = "intellectual_disability"  # licht verstandelijke beperking (lvb)


CARE_NEED_LABELS = {
    CareNeed.MENTAL_HEALTH: "ggz",
    CareNeed.ADDICTION: "verslavingszorg",
    CareNeed.INTELLECTUAL_DISABILITY: "lvb",
}

_BY_CODE: dict[Condition, dict[str, Status]] = {
    c: {s.code: s for s in statuses} for c, statuses in STATUSES.items()
}


def status_codes(condition: Condition) -> tuple[str, ...]:
    return tuple(s.code for s in STATUSES[condition])


def is_status(condition: Condition, code: str) -> bool:
    return code in _BY_CODE[condition]


def in_order(condition: Condition, code: str | None) -> InOrder:
    """The rule: is ``condition`` in order with status ``code``? Nothing recorded: unknown."""
    if code is None:
        return InOrder.UNKNOWN
    try:
        return _BY_CODE[condition][code].in_order
    except KeyError as e:
        raise ValueError(f"unknown status [{code}] for condition [{condition}]") from e


def all_in_order(values: dict[Condition, InOrder]) -> InOrder:
    """All five together: yes when each is yes, no when any is no, else unknown."""
    found = [values.get(c, InOrder.UNKNOWN) for c in CONDITIONS]
    if any(v is InOrder.NO for v in found):
        return InOrder.NO
    if all(v is InOrder.YES for v in found):
        return InOrder.YES
    return InOrder.UNKNOWN


# --- consent --------------------------------------------------------------------------------


class ConsentStatus(StrEnum):
    NONE = "none"  # (nog) niet gevraagd
    GIVEN = "given"  # gegeven
    REFUSED = "refused"  # geweigerd
    WITHDRAWN = "withdrawn"  # ingetrokken


CONSENT_LABELS: dict[str, str] = {
    ConsentStatus.NONE: "niet gevraagd",
    ConsentStatus.GIVEN: "gegeven",
    ConsentStatus.REFUSED: "geweigerd",
    ConsentStatus.WITHDRAWN: "ingetrokken",
}
CASE_STATUS_LABELS: dict[str, str] = {
    "planned": "ontslag gepland",
    "returned": "teruggekeerd",
    "cancelled": "vervallen",
}


class ConsentScope(StrEnum):
    REGISTRATION = "registration"  # registratie en verwerking van re-integratiegegevens
    EXCHANGE_PRISON = "exchange_prison"  # uitwisseling met de inrichting (D&R-plan)
    EXCHANGE_PARTNERS = "exchange_partners"  # uitwisseling met reclassering en zorgaanbieders


# --- activities -----------------------------------------------------------------------------

GENERAL = "general"  # an activity that serves every condition (case management)


@dataclass(frozen=True, slots=True)
class ActivityType:
    code: str
    label: str
    condition: str  # a Condition value, or GENERAL


ACTIVITY_TYPES: tuple[ActivityType, ...] = (
    ActivityType("apply_id", "aanvragen identiteitsbewijs", Condition.ID),
    ActivityType("postal_address", "briefadres regelen", Condition.HOUSING),
    ActivityType("housing_support", "ondersteuning bij huisvesting", Condition.HOUSING),
    ActivityType("shelter", "maatschappelijke opvang", Condition.HOUSING),
    ActivityType("supported_housing", "begeleid of beschermd wonen", Condition.HOUSING),
    ActivityType("apply_benefit", "aanvragen uitkering", Condition.INCOME),
    ActivityType("work_placement", "werktraject of plaatsing", Condition.INCOME),
    ActivityType("education", "opleiding of scholing", Condition.INCOME),
    ActivityType("debt_counselling", "schuldhulpverlening", Condition.DEBTS),
    ActivityType("budget_management", "budgetbeheer", Condition.DEBTS),
    ActivityType("referral_mental_health", "verwijzing naar ggz", Condition.CARE),
    ActivityType("referral_addiction", "verwijzing naar verslavingszorg", Condition.CARE),
    ActivityType("referral_disability", "ondersteuning lvb", Condition.CARE),
    ActivityType("case_management", "casemanagement / trajectbegeleiding", GENERAL),
)
ACTIVITY_TYPE = {t.code: t for t in ACTIVITY_TYPES}


class Funder(StrEnum):
    MUNICIPALITY = "municipality"  # gemeente
    CENTRAL_GOVERNMENT = "central_government"  # Rijk
    OTHER = "other"  # overig (zorgverzekeraar, fonds, ...)


FUNDER_LABELS: dict[str, str] = {
    Funder.MUNICIPALITY: "gemeente",
    Funder.CENTRAL_GOVERNMENT: "rijk",
    Funder.OTHER: "overig",
}


# --- Dutch spellings the import accepts -----------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").replace("-", " ").split())


def _aliases() -> dict[str, dict[str, str]]:
    """Per list name: normalised spelling -> code."""
    out: dict[str, dict[str, str]] = {}
    for condition, statuses in STATUSES.items():
        table = out.setdefault(condition.value, {})
        for s in statuses:
            table[_norm(s.code)] = s.code
            table[_norm(s.label)] = s.code
    extra = {
        "id": {"ja": "valid", "nee": "none", "geldig": "valid", "geen id": "none"},
        "housing": {
            "eigen woning": "own_or_rented",
            "huurwoning": "own_or_rented",
            "woning": "own_or_rented",
            "familie": "family_or_friends",
            "vrienden": "family_or_friends",
            "familie of vrienden": "family_or_friends",
            "instelling": "institution",
            "opvang": "shelter",
            "briefadres": "postal_address_only",
            "geen": "homeless",
            "thuisloos": "homeless",
        },
        "income": {"uitkering": "benefit", "aangevraagd": "applied_for", "geen": "none"},
        "debts": {
            "geen": "none",
            "met plan": "with_plan",
            "schuldhulpverlening": "with_plan",
            "zonder plan": "without_plan",
            "omvang onbekend": "unknown_amount",
        },
        "care": {
            "niet nodig": "not_needed",
            "geen": "not_needed",
            "geregeld": "arranged",
            "niet geregeld": "not_arranged",
        },
        "consent": {
            "gegeven": "given",
            "ja": "given",
            "geweigerd": "refused",
            "nee": "refused",
            "ingetrokken": "withdrawn",
            "niet gevraagd": "none",
        },
        "scope": {
            "registratie": "registration",
            "inrichting": "exchange_prison",
            "dji": "exchange_prison",
            "partners": "exchange_partners",
            "ketenpartners": "exchange_partners",
        },
        "care_need": {
            "ggz": "mental_health",
            "psychisch": "mental_health",
            "verslaving": "addiction",
            "verslavingszorg": "addiction",
            "lvb": "intellectual_disability",
            "licht verstandelijke beperking": "intellectual_disability",
        },
        "funder": {
            "gemeente": "municipality",
            "rijk": "central_government",
            "rijksoverheid": "central_government",
            "overig": "other",
            "anders": "other",
        },
        "moment": {
            "binnenkomst": "intake",
            "bij binnenkomst": "intake",
            "screening": "intake",
            "voor ontslag": "before_release",
            "ontslag": "release",
            "bij ontslag": "release",
            "1 maand": "month_1",
            "6 maanden": "month_6",
            "12 maanden": "month_12",
            "24 maanden": "month_24",
        },
    }
    for name, mapping in extra.items():
        table = out.setdefault(name, {})
        for spelling, code in mapping.items():
            table.setdefault(_norm(spelling), code)
    for name, values in (
        ("consent", [c.value for c in ConsentStatus]),
        ("scope", [c.value for c in ConsentScope]),
        ("care_need", [c.value for c in CareNeed]),
        ("funder", [c.value for c in Funder]),
        ("moment", [m.value for m in Moment]),
    ):
        for v in values:
            out[name][_norm(v)] = v
    out["care_need"].update({_norm(label): need.value for need, label in CARE_NEED_LABELS.items()})
    out["moment"].update({_norm(label): str(m) for m, label in MOMENT_LABELS.items()})
    names = out.setdefault("condition", {})
    for c in CONDITIONS:
        names[_norm(c.value)] = c.value
        names[_norm(CONDITION_LABELS[c])] = c.value
    names.update({"id": "id", "werk": "income", "inkomen": "income", "werk inkomen": "income"})
    activity = out.setdefault("activity_type", {})
    for t in ACTIVITY_TYPES:
        activity[_norm(t.code)] = t.code
        activity[_norm(t.label)] = t.code
    return out


ALIASES = _aliases()


def label(list_name: str, code: str) -> str:
    """The Dutch label of ``code`` on list ``list_name`` (as :func:`lookup` names lists, plus
    ``condition`` and ``case_status``); the code itself when it has none."""
    if list_name in {c.value for c in CONDITIONS}:
        for s in STATUSES[Condition(list_name)]:
            if s.code == code:
                return s.label
        return code
    table: dict[str, str] = {
        "condition": CONDITION_LABELS,
        "moment": MOMENT_LABELS,
        "consent": CONSENT_LABELS,
        "case_status": CASE_STATUS_LABELS,
        "funder": FUNDER_LABELS,
        "care_need": {str(k): v for k, v in CARE_NEED_LABELS.items()},
        "activity_type": {t.code: t.label for t in ACTIVITY_TYPES},
    }.get(list_name, {})
    return table.get(code, code)


def allowed(list_name: str) -> str:
    """The codes of a list with their Dutch labels, for an error message:
    ``valid (geldig identiteitsbewijs), expired (verlopen), …``."""
    codes_ = list(dict.fromkeys(ALIASES[list_name].values()))
    return ", ".join(
        f"{c} ({label(list_name, c)})" if label(list_name, c) != c else c for c in codes_
    )


def lookup(list_name: str, text: str) -> str | None:
    """The code for a spelling on list ``list_name`` (a condition value, ``consent``, ``scope``,
    ``care_need``, ``funder``, ``moment``, ``activity_type``), or None."""
    return ALIASES[list_name].get(_norm(text))
