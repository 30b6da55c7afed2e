"""Parse and validate one feed message (JSON Lines or a flat CSV row).

The contract is ``feed-v1.schema.json`` (shipped beside this module, documented in
``docs/feed.md``). Validation is hand-written for precise errors: each :class:`FeedError`
names the field, the value and the rule broken. A test checks that the schema and this module
agree.

Each field rule (:class:`Check`) exists twice from one definition: as Python code (the
*reference* validator, :func:`validate_message`) and as a msgspec type with the same
constraints. :func:`parse_line` first decodes a line with msgspec into typed structs built
from those types (several times faster) and applies the few checks msgspec cannot express
(code lists, the 11-proef, timestamps). Only a message that passes is taken from this fast
path; any message it rejects is validated again by the reference validator, which gives the
error. A differential test keeps the two in agreement.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Union

import msgspec

from terugkeer.domain.bsn import is_valid_bsn, normalise_bsn
from terugkeer.domain.codes import (
    CaseDecision,
    DetentionTitle,
    EventKind,
    OffenceCategory,
    ReleaseKind,
    Sex,
    VictimRelation,
)
from terugkeer.domain.events import KIND_RANK, FeedError, FeedEvent, short_value
from terugkeer.domain.refdata import RefData, refdata

FEED_VERSION = 1
MAX_ID_LENGTH = 100
MAX_REF_LENGTH = 64
# Dates and timestamps outside these years are refused: both stores and every deadline
# computed from a date (a week before a release, a day after an intake) can hold them.
FIRST_YEAR = 1800
LAST_YEAR = 2999

# Characters no store can hold in a text column: NUL (PostgreSQL refuses it) and lone
# surrogates (not encodable as UTF-8). A surrogate U+DC80..U+DCFF is how Python keeps an
# undecodable byte read from a file.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0 or 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code & 0xFF:02x}"
    return f"\\u{code:04x}"


def storable(text: str) -> str:
    """``text`` as both stores can hold it, for raw lines and error details in quarantine:
    NUL becomes ``\\x00``, an undecodable byte (a surrogate U+DC80..U+DCFF) ``\\xNN``, any
    other lone surrogate its JSON escape ``\\udNNN``. Text without them is returned as is."""
    return _UNSTORABLE.sub(_visible, text) if _UNSTORABLE.search(text) else text


def _storable_json(body: str) -> str:
    """A message body (valid JSON) as both stores can hold it: a lone surrogate, which can
    only stand in a string, becomes its JSON escape, so the body still means the same. (A
    valid JSON text has no literal NUL.)"""
    if not _SURROGATE.search(body):
        return body
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)


# ---------------------------------------------------------------------------------------------
# field checkers: (value, field name, refdata) -> normalised value, or raise FeedError

Checker = Callable[[Any, str, RefData], Any]


@dataclass(frozen=True, slots=True)
class Check:
    """One field rule. ``run`` is the reference check. The fast decoder reads the value as
    ``fast`` (a msgspec type enforcing the same constraints) and then applies ``post``."""

    run: Checker
    fast: Any
    post: Checker | None = None


def _enum(enum: type[Any]) -> Check:
    allowed = {e.value for e in enum}

    def check(value: Any, name: str, _rd: RefData) -> Any:
        if not isinstance(value, str) or value not in allowed:
            raise FeedError(
                "invalid_value",
                f"field [{name}] must be one of {sorted(allowed)}, got {short_value(value)}",
                field=name,
                value=value,
            )
        return enum(value)

    return Check(check, enum)


def _int(minimum: int, maximum: int) -> Check:
    def check(value: Any, name: str, _rd: RefData) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FeedError(
                "invalid_type", f"field [{name}] must be an integer", field=name, value=value
            )
        if not minimum <= value <= maximum:
            raise FeedError(
                "invalid_value",
                f"field [{name}] must be between {minimum} and {maximum}, got {value}",
                field=name,
                value=value,
            )
        return value

    return Check(check, Annotated[int, msgspec.Meta(ge=minimum, le=maximum)])


def _bool(value: Any, name: str, _rd: RefData) -> bool:
    if not isinstance(value, bool):
        raise FeedError(
            "invalid_type", f"field [{name}] must be true or false", field=name, value=value
        )
    return value


def _in_range(value: date | datetime, name: str, raw: str) -> None:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise FeedError(
            "invalid_value",
            f"field [{name}] must lie in the years {FIRST_YEAR}-{LAST_YEAR}, got {raw}",
            field=name,
            value=raw,
        )


def _text(max_length: int) -> Check:
    def check(value: Any, name: str, _rd: RefData) -> str:
        if not isinstance(value, str) or not value.strip():
            raise FeedError(
                "invalid_type",
                f"field [{name}] must be a non-empty string",
                field=name,
                value=value,
            )
        if len(value) > max_length:
            raise FeedError(
                "invalid_value",
                f"field [{name}] is longer than {max_length} characters",
                field=name,
                value=value,
            )
        bad = _UNSTORABLE.search(value)
        if bad is not None:
            raise FeedError(
                "invalid_value",
                f"field [{name}] holds a character no store can hold"
                f" ({storable(bad.group())} at position {bad.start()})",
                field=name,
                value=storable(value),
            )
        return value

    # non-empty after stripping: regex \S and str.strip() agree on what whitespace is. (A
    # NUL never reaches the fast path, see parse_fast; msgspec refuses lone surrogates.)
    return Check(
        check, Annotated[str, msgspec.Meta(min_length=1, max_length=max_length, pattern=r"\S")]
    )


def _date(value: Any, name: str, _rd: RefData) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise FeedError(
            "invalid_type", f"field [{name}] must be a date YYYY-MM-DD", field=name, value=value
        )
    try:
        parsed = date.fromisoformat(value)
    except ValueError as e:
        raise FeedError(
            "invalid_type", f"field [{name}] is not a valid date: {e}", field=name, value=value
        ) from e
    _in_range(parsed, name, value)
    return parsed


def _timestamp(value: Any, name: str, _rd: RefData) -> datetime:
    if not isinstance(value, str):
        raise FeedError(
            "invalid_type",
            f"field [{name}] must be an RFC 3339 timestamp string",
            field=name,
            value=value,
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise FeedError(
            "invalid_type", f"field [{name}] is not a valid timestamp: {e}", field=name, value=value
        ) from e
    if parsed.tzinfo is None:
        raise FeedError(
            "naive_timestamp",
            f"field [{name}] has no timezone offset; write e.g. {value}+01:00 or {value}Z",
            field=name,
            value=value,
        )
    _in_range(parsed, name, value)
    return parsed.astimezone(UTC)


def _municipality(value: Any, name: str, rd: RefData) -> str:
    if not isinstance(value, str):
        raise FeedError(
            "invalid_type", f"field [{name}] must be a code GMnnnn", field=name, value=value
        )
    resolved = rd.resolve_municipality(value)
    if resolved is None:
        raise FeedError(
            "unknown_municipality",
            f"unknown municipality code [{value}] in field [{name}]",
            field=name,
            value=value,
        )
    return resolved


def _institution(value: Any, name: str, rd: RefData) -> str:
    if not isinstance(value, str) or value not in rd.institutions:
        raise FeedError(
            "unknown_institution",
            f"unknown institution code [{short_value(value)}] in field [{name}]",
            field=name,
            value=value,
        )
    return value


def _offences(value: Any, name: str, rd: RefData) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise FeedError(
            "invalid_type", f"field [{name}] must be a non-empty list", field=name, value=value
        )
    out = []
    for i, item in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(item, dict):
            raise FeedError(
                "invalid_type", f"field [{where}] must be an object", field=where, value=item
            )
        out.append(_object(item, OFFENCE_FIELDS, where, rd))
    return out


def _contact(value: Any, name: str, rd: RefData) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FeedError("invalid_type", f"field [{name}] must be an object", field=name, value="…")
    return _object(value, CONTACT_FIELDS, name, rd)


@dataclass(frozen=True, slots=True)
class Spec:
    check: Check
    required: bool = True


def _object(
    obj: Mapping[str, Any], specs: Mapping[str, Spec], prefix: str, rd: RefData
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        value = obj.get(name)
        where = f"{prefix}.{name}" if prefix else name
        if value is None:
            if spec.required:
                raise FeedError(
                    "missing_field", f"required field [{where}] is missing", field=where
                )
            continue
        out[name] = spec.check.run(value, where, rd)
    return out


def _struct_field_types(specs: Mapping[str, Spec]) -> list[tuple[str, Any] | tuple[str, Any, Any]]:
    """msgspec field definitions: the fast type of each field; optional ones default to None."""
    return [
        (n, spec.check.fast) if spec.required else (n, spec.check.fast | None, None)
        for n, spec in specs.items()
    ]


def _struct(name: str, specs: Mapping[str, Spec]) -> type[msgspec.Struct]:
    return msgspec.defstruct(name, _struct_field_types(specs), kw_only=True)


def _struct_fields(value: Any, specs: Mapping[str, Spec], rd: RefData) -> dict[str, Any]:
    """The fields of a decoded struct as the reference validator returns them: present
    fields only, each through its check's ``post`` step."""
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        v = getattr(value, name)
        if v is not None:
            post = spec.check.post
            out[name] = v if post is None else post(v, name, rd)
    return out


DATE = Check(_date, str, _date)
TIMESTAMP = Check(_timestamp, str, _timestamp)
MUNICIPALITY = Check(_municipality, str, _municipality)
INSTITUTION = Check(_institution, str, _institution)
BOOL = Check(_bool, bool)

OFFENCE_FIELDS = {
    "category": Spec(_enum(OffenceCategory)),
    "statutory_max_years": Spec(_int(0, 99)),
}
CONTACT_FIELDS = {
    "name": Spec(_text(200)),
    "email": Spec(_text(200), required=False),
    "phone": Spec(_text(40), required=False),
    "address": Spec(_text(400), required=False),
}
_OffenceStruct = _struct("Offence", OFFENCE_FIELDS)
_ContactStruct = _struct("Contact", CONTACT_FIELDS)
OFFENCES = Check(
    _offences,
    Annotated[list[_OffenceStruct], msgspec.Meta(min_length=1)],  # type: ignore[valid-type]
    lambda value, _name, rd: [_struct_fields(o, OFFENCE_FIELDS, rd) for o in value],
)
CONTACT = Check(
    _contact, _ContactStruct, lambda value, _name, rd: _struct_fields(value, CONTACT_FIELDS, rd)
)

KIND_FIELDS: dict[EventKind, dict[str, Spec]] = {
    EventKind.INTAKE: {
        "title": Spec(_enum(DetentionTitle)),
        "offences": Spec(OFFENCES),
        "sentence_days": Spec(_int(1, 36_500), required=False),
        "residence_municipality": Spec(MUNICIPALITY, required=False),
        "return_municipality": Spec(MUNICIPALITY, required=False),
        "planned_release_date": Spec(DATE, required=False),
        "birth_date": Spec(DATE, required=False),
        "sex": Spec(_enum(Sex), required=False),
    },
    EventKind.RELEASE_DATE_SET: {
        "planned_release_date": Spec(DATE),
        "return_municipality": Spec(MUNICIPALITY, required=False),
    },
    EventKind.LEAVE_GRANTED: {
        "leave_from": Spec(TIMESTAMP),
        "leave_until": Spec(TIMESTAMP),
        "leave_municipality": Spec(MUNICIPALITY),
    },
    EventKind.LEAVE_START: {"leave_municipality": Spec(MUNICIPALITY)},
    EventKind.LEAVE_END: {},
    EventKind.ESCAPE: {},
    EventKind.RECAPTURE: {},
    EventKind.TRANSFER: {"to_institution": Spec(INSTITUTION)},
    EventKind.TITLE_CHANGE: {
        "title": Spec(_enum(DetentionTitle)),
        "sentence_days": Spec(_int(1, 36_500), required=False),
    },
    EventKind.RELEASE: {
        "release_kind": Spec(_enum(ReleaseKind)),
        "return_municipality": Spec(MUNICIPALITY, required=False),
    },
    EventKind.DEATH: {},
    EventKind.CORRECTION: {"withdraws": Spec(_text(MAX_ID_LENGTH))},
    EventKind.VICTIM_REGISTERED: {
        "victim_ref": Spec(_text(MAX_REF_LENGTH)),
        "relation": Spec(_enum(VictimRelation)),
        "spoke_in_court": Spec(BOOL),
        "wants_information": Spec(BOOL),
        "contact": Spec(CONTACT),
    },
    EventKind.RECONVICTION: {
        "case_ref": Spec(_text(MAX_REF_LENGTH)),
        "offence_date": Spec(DATE),
        "category": Spec(_enum(OffenceCategory)),
        "statutory_max_years": Spec(_int(0, 99)),
        "decision": Spec(_enum(CaseDecision)),
        "custodial": Spec(BOOL),
    },
}

# A reconviction is about a person, not a detention period; a correction names the period of
# the event it withdraws, if that event has one.
PERIOD_OPTIONAL = frozenset({EventKind.RECONVICTION, EventKind.CORRECTION})
ENVELOPE = frozenset(
    {"feed_version", "event_id", "source", "occurred_at", "kind", "person", "period"}
)
_KINDS = {k.value: k for k in EventKind}


def body_hash(body: str) -> str:
    return hashlib.blake2b(body.encode("utf-8"), digest_size=16).hexdigest()


_BSN_FORM = re.compile(r"[0-9]{8,9}")
_Decoded = dict[type, tuple[EventKind, dict[str, Spec]]]


def _fast_decoder() -> tuple[msgspec.json.Decoder[Any], _Decoded]:
    """One msgspec decoder for every kind: a union of structs tagged by ``kind``, with the
    envelope's fields and the kind's own."""
    person = msgspec.defstruct(
        "Person",
        [
            (
                "bsn",
                Annotated[str, msgspec.Meta(pattern=f"\\A{_BSN_FORM.pattern}\\Z")] | None,
                None,
            ),
            ("prison_number", _text(32).fast | None, None),
        ],
        kw_only=True,
    )
    period = _text(MAX_REF_LENGTH).fast
    structs: _Decoded = {}
    for kind, specs in KIND_FIELDS.items():
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
            ("feed_version", Literal[1], FEED_VERSION),
            ("event_id", _text(MAX_ID_LENGTH).fast),
            ("source", str),
            ("occurred_at", str),
            ("person", person),
            ("period", period | None, None) if kind in PERIOD_OPTIONAL else ("period", period),
            *_struct_field_types(specs),
        ]
        struct = msgspec.defstruct(
            f"Message{kind.name.title()}", fields, kw_only=True, tag_field="kind", tag=kind.value
        )
        structs[struct] = (kind, specs)
    return msgspec.json.Decoder(Union[tuple(structs)]), structs  # noqa: UP007 - built at run time


_DECODER, _STRUCTS = _fast_decoder()


class _NotFast(Exception):
    """The fast path does not decide this message: the reference validator will."""


def parse_fast(line: str, line_no: int, origin: str, rd: RefData) -> FeedEvent:
    # A NUL can only enter a decoded string as the escape \u0000 (a raw one is not JSON);
    # msgspec refuses a lone surrogate (escaped or raw). So no value on the fast path holds
    # a character the store cannot hold, and the body needs no escaping.
    if "\\u0000" in line:
        raise _NotFast
    try:
        msg = _DECODER.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeEncodeError) as e:
        raise _NotFast from e
    kind, specs = _STRUCTS[type(msg)]
    person = msg.person
    bsn, prison_number = person.bsn, person.prison_number
    if bsn is None:
        if prison_number is None:
            raise _NotFast
    elif not is_valid_bsn(bsn):
        raise _NotFast
    return _event(
        kind,
        _struct_fields(msg, specs, rd),
        line.strip(),
        line_no,
        origin,
        event_id=msg.event_id,
        source=_institution(msg.source, "source", rd),
        occurred_at=_timestamp(msg.occurred_at, "occurred_at", rd),
        bsn=bsn,
        prison_number=prison_number,
        period_ref=msg.period,
    )


def _event(
    kind: EventKind,
    fields: dict[str, Any],
    body: str,
    line_no: int,
    origin: str,
    *,
    event_id: str,
    source: str,
    occurred_at: datetime,
    bsn: str | None,
    prison_number: str | None,
    period_ref: str | None,
) -> FeedEvent:
    """The event of a message whose fields passed their checks, after the checks across
    fields; an 8-digit BSN gets its leading zero, the hash and sort rank are derived."""
    _cross_checks(kind, fields, event_id)
    return FeedEvent(
        event_id=event_id,
        source=source,
        occurred_at=occurred_at,
        kind=kind,
        bsn=None if bsn is None else normalise_bsn(bsn),
        prison_number=prison_number,
        period_ref=period_ref,
        fields=fields,
        body=body,
        body_hash=body_hash(body),
        line_no=line_no,
        origin=origin,
        sort_rank=KIND_RANK[kind],
    )


def parse_line(
    line: str, line_no: int = 0, origin: str = "", rd: RefData | None = None
) -> FeedEvent:
    """Parse one JSON Lines message; raise :class:`FeedError` when it is not valid."""
    rd = rd or refdata()
    try:
        return parse_fast(line, line_no, origin, rd)
    except (_NotFast, FeedError):
        return parse_line_reference(line, line_no, origin, rd)


def parse_line_reference(
    line: str, line_no: int = 0, origin: str = "", rd: RefData | None = None
) -> FeedEvent:
    """:func:`parse_line` through the reference validator only (gives every error)."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise FeedError("invalid_json", f"not valid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise FeedError("invalid_json", "a message must be a JSON object", value=obj)
    return validate_message(obj, line.strip(), line_no, origin, rd)


def validate_message(
    obj: Mapping[str, Any],
    body: str,
    line_no: int = 0,
    origin: str = "",
    rd: RefData | None = None,
) -> FeedEvent:
    """Validate a decoded message (from JSON or CSV) against feed version 1."""
    rd = rd or refdata()
    version = obj.get("feed_version", FEED_VERSION)
    if version != FEED_VERSION:
        raise FeedError(
            "invalid_value",
            f"field [feed_version] must be {FEED_VERSION}, got {short_value(version)}",
            field="feed_version",
            value=version,
        )
    kind_value = obj.get("kind")
    if kind_value is None:
        raise FeedError("missing_field", "required field [kind] is missing", field="kind")
    kind = _KINDS.get(kind_value) if isinstance(kind_value, str) else None
    if kind is None:
        raise FeedError(
            "unknown_kind",
            f"unknown event kind [{short_value(kind_value)}]; known kinds: {sorted(_KINDS)}",
            field="kind",
            value=kind_value,
        )
    event_id = obj.get("event_id")
    if event_id is None:
        raise FeedError("missing_field", "required field [event_id] is missing", field="event_id")
    event_id = _text(MAX_ID_LENGTH).run(event_id, "event_id", rd)
    source_value = obj.get("source")
    if source_value is None:
        raise FeedError("missing_field", "required field [source] is missing", field="source")
    source = _institution(source_value, "source", rd)
    occurred = obj.get("occurred_at")
    if occurred is None:
        raise FeedError(
            "missing_field", "required field [occurred_at] is missing", field="occurred_at"
        )
    occurred_at = _timestamp(occurred, "occurred_at", rd)

    person = obj.get("person")
    if person is None:
        raise FeedError("missing_field", "required field [person] is missing", field="person")
    if not isinstance(person, dict):
        raise FeedError(
            "invalid_type", "field [person] must be an object", field="person", value="…"
        )
    bsn = person.get("bsn")
    prison_number = person.get("prison_number")
    if bsn is None and prison_number is None:
        raise FeedError(
            "missing_field",
            "field [person] needs [bsn] or [prison_number]",
            field="person",
        )
    if bsn is not None and (
        not isinstance(bsn, str) or not _BSN_FORM.fullmatch(bsn) or not is_valid_bsn(bsn)
    ):
        # The value is not echoed: even an invalid BSN may be personal data.
        raise FeedError(
            "invalid_bsn",
            "field [person.bsn] fails the 11-proef or is not 9 digits",
            field="person.bsn",
        )
    if prison_number is not None:
        prison_number = _text(32).run(prison_number, "person.prison_number", rd)

    period = obj.get("period")
    if kind in PERIOD_OPTIONAL:
        period_ref = None if period is None else _text(MAX_REF_LENGTH).run(period, "period", rd)
    else:
        if period is None:
            raise FeedError("missing_field", "required field [period] is missing", field="period")
        period_ref = _text(MAX_REF_LENGTH).run(period, "period", rd)

    return _event(
        kind,
        _object(obj, KIND_FIELDS[kind], "", rd),
        _storable_json(body),
        line_no,
        origin,
        event_id=event_id,
        source=source,
        occurred_at=occurred_at,
        bsn=bsn,
        prison_number=prison_number,
        period_ref=period_ref,
    )


def _cross_checks(kind: EventKind, fields: dict[str, Any], event_id: str) -> None:
    if kind is EventKind.CORRECTION and fields["withdraws"] == event_id:
        # it would wait for itself in quarantine for ever (unknown_event)
        raise FeedError(
            "invalid_value",
            "field [withdraws] names this correction itself",
            field="withdraws",
            value=event_id,
        )
    if kind is EventKind.LEAVE_GRANTED and fields["leave_until"] <= fields["leave_from"]:
        raise FeedError(
            "invalid_value",
            "field [leave_until] must be after [leave_from]",
            field="leave_until",
            value=fields["leave_until"].isoformat(),
        )


def json_schema() -> dict[str, Any]:
    """The JSON Schema of feed version 1, as shipped in the package."""
    from importlib import resources

    text = resources.files("terugkeer.detention").joinpath("feed-v1.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result
