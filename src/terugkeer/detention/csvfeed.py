"""Flat CSV rows of feed version 1, turned into the same message objects as JSON Lines.

Columns are the JSON field names; the person is given as ``bsn`` and/or ``prison_number``;
offences as ``category:statutory_max_years`` pairs separated by ``|`` (``zeden:8|vermogen:4``);
a victim's contact as ``contact_name``, ``contact_email``, ``contact_phone``, ``contact_address``.
An empty cell means the field is absent.
"""

from __future__ import annotations

from typing import Any

from terugkeer.domain.events import FeedError

_INT_FIELDS = frozenset({"sentence_days", "statutory_max_years", "feed_version"})
_BOOL_FIELDS = frozenset({"spoke_in_court", "wants_information", "custodial"})
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "ja": True, "nee": False}


def _coerce(name: str, text: str) -> Any:
    if name in _INT_FIELDS:
        try:
            return int(text)
        except ValueError as e:
            raise FeedError(
                "invalid_type", f"column [{name}] must be an integer", field=name, value=text
            ) from e
    if name in _BOOL_FIELDS:
        try:
            return _BOOLS[text.strip().lower()]
        except KeyError as e:
            raise FeedError(
                "invalid_type", f"column [{name}] must be true or false", field=name, value=text
            ) from e
    return text


def _offences(text: str) -> list[dict[str, Any]]:
    out = []
    for i, part in enumerate(text.split("|")):
        category, sep, years = part.strip().partition(":")
        if not sep:
            raise FeedError(
                "invalid_value",
                f"column [offences] item {i + 1} must be category:years, got [{part}]",
                field="offences",
                value=text,
            )
        out.append(
            {"category": category, "statutory_max_years": _coerce("statutory_max_years", years)}
        )
    return out


def row_to_message(row: dict[str, str | None]) -> dict[str, Any]:
    """One CSV row (header → cell) as a feed message object."""
    message: dict[str, Any] = {}
    person: dict[str, str] = {}
    contact: dict[str, str] = {}
    for name, cell in row.items():
        if name is None or cell is None:
            raise FeedError("invalid_value", "row has more cells than the header has columns")
        text = cell.strip()
        if not text:
            continue
        if name in ("bsn", "prison_number"):
            person[name] = text
        elif name.startswith("contact_"):
            contact[name.removeprefix("contact_")] = text
        elif name == "offences":
            message["offences"] = _offences(text)
        else:
            message[name] = _coerce(name, text)
    if person:
        message["person"] = person
    if contact:
        message["contact"] = contact
    return message
