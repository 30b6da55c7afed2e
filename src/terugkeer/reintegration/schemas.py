"""The shapes of reintegration data, one per direction (``XCreate`` in, ``XRead`` out). The
services build the ``Read`` models and the API returns them as they are, so a later web page
and the JSON cannot drift apart."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from terugkeer.reintegration.codes import InOrder


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- in ---------------------------------------------------------------------------------


class ConsentCreate(_Model):
    status: str = Field(description="given, refused or withdrawn")
    date: dt.date
    scope: list[str] = Field(
        default_factory=lambda: ["registration"],
        description="registration, exchange_prison, exchange_partners",
    )


class ConditionsCreate(_Model):
    moment: str = Field(
        description="intake, before_release, release, month_1, month_6, month_12, month_24"
    )
    statuses: dict[str, str] = Field(
        description="condition (id, housing, income, debts, care) -> status code"
    )
    care_needs: list[str] = Field(
        default_factory=list, description="mental_health, addiction, intellectual_disability"
    )
    as_of: date | None = Field(
        default=None, description="the date the statuses hold on; default from the moment"
    )


class ActivityCreate(_Model):
    municipal_ref: str | None = Field(default=None, max_length=64)
    type: str
    provider: str = Field(max_length=120)
    start_date: date
    end_date: date | None = None
    hours: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    cost_eur: Decimal = Field(default=Decimal(0), ge=0, decimal_places=2)
    funder: str | None = Field(default=None, description="municipality, central_government, other")
    programme: str | None = Field(default=None, max_length=100)


# --- out --------------------------------------------------------------------------------


class PeriodSignal(_Model):
    """What detention knows: the release signal that every case holds, with or without consent."""

    period_ref: str
    institution: str
    title: str
    intake_date: date
    planned_release_date: date | None
    release_date: date | None
    release_kind: str | None
    bsn: str | None
    prison_number: str | None
    birth_date: date | None
    sex: str | None


class ConsentRead(_Model):
    status: str
    date: dt.date
    scope: list[str]
    recorded_at: datetime
    recorded_by: str
    source: str


class FactRead(_Model):
    condition: str
    moment: str
    status: str
    label: str
    in_order: InOrder
    detail: str | None
    as_of: date
    recorded_at: datetime
    recorded_by: str
    source: str


class MomentRead(_Model):
    moment: str
    label: str  # Dutch: "bij ontslag"
    in_order: InOrder  # all five together
    complete: bool  # all five recorded
    conditions: dict[str, FactRead | None]


class CaseRead(_Model):
    id: int
    municipality: str
    municipal_ref: str | None
    status: str
    consent: str
    consent_scope: list[str]
    opened_at: datetime
    period: PeriodSignal
    registration_allowed: bool
    # None without consent for registration: the case then holds only the release signal
    moments: list[MomentRead] | None
    activities: int | None
    cost_eur: Decimal | None


class CaseSummary(_Model):
    id: int
    municipal_ref: str | None
    status: str
    consent: str
    period_ref: str
    release_date: date | None


class ActivityRead(_Model):
    id: int
    municipal_ref: str | None
    type: str
    label: str
    condition: str
    provider: str
    start_date: date
    end_date: date | None
    hours: Decimal | None
    cost_eur: Decimal
    funder: str | None
    programme: str | None
    recorded_at: datetime
    recorded_by: str
    source: str


class FormField(_Model):
    name: str
    label: str
    required: bool
    value: str | None  # the pre-filled value, if any
    prefilled_from: str | None
    choices: list[str] | None = None


class RegistrationForm(_Model):
    """A complete registration of one moment: what the caseworker sees and what they type."""

    case_id: int
    moment: str
    fields: list[FormField]
    to_type: int  # required fields without a pre-filled value: the burden


class UpcomingReturn(_Model):
    case_id: int
    municipal_ref: str | None
    period_ref: str
    institution: str
    planned_release_date: date
    days_until: int
    consent: str
    status: str = "planned"  # returned: looking back from a date, a case that has come back


class NotInOrder(_Model):
    case_id: int
    municipal_ref: str | None
    period_ref: str
    release_date: date | None
    not_in_order: list[str]
    unknown: list[str]


class CostLine(_Model):
    condition: str
    programme: str | None
    activities: int
    cases: int
    hours: Decimal
    cost_eur: Decimal


class MomentCompleteness(_Model):
    moment: str
    due: int  # cases with consent for which the moment has come
    recorded: int  # of those, with all five conditions recorded at the moment
    share: float | None


class Completeness(_Model):
    municipality: str
    name: str
    cases: int
    returned: int
    with_consent: int
    moments: list[MomentCompleteness]
