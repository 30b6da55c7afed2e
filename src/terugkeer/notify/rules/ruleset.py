"""The notification rule file: loaded, validated, versioned.

The default ships as ``default-rules.toml``; ``TERUGKEER_RULES_FILE`` may point at another.
Every obligation records the rule id and the rule-file version that produced it.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

RECIPIENTS = ("mayor", "idv", "victim", "nazorg")
SUBJECTS = ("leave", "release", "escape", "recapture", "death", "intake")
SCOPES = ("serious", "victims", "adult_stay")
MUNICIPALITIES = ("leave", "return", "residence_or_return")
TIMINGS = ("planned", "immediate", "after_stay")
# when a notice may go out: as soon as the obligation exists, or not before its due time
SENDS = ("when_created", "at_due")

# Facts the scopes use (documented in docs/rules.md).
SERIOUS_CATEGORIES = ("zeden", "zwaar_geweld")
SERIOUS_TITLES = ("tbs", "pij")
VICTIM_RIGHT_SENTENCE_DAYS = 8 * 365  # a sentence of at least 8 years
VICTIM_RIGHT_TITLES = ("tbs",)
ADULT_AGE = 18
MIN_STAY_DAYS = 10

# Subjects and the feed event kinds that bear on them.
SUBJECT_EVENTS: dict[str, tuple[str, ...]] = {
    "leave": ("leave_granted", "leave_start"),
    "release": ("intake", "release_date_set", "release"),
    "escape": ("escape",),
    "recapture": ("recapture",),
    "death": ("death",),
    "intake": ("intake",),
}


class RuleError(ValueError):
    """The rule file is not valid; the message says where."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    recipient: str
    subject: str
    scope: str
    municipality: str | None
    timing: str
    planned_notice_days: int
    late_within_hours: int
    ack_window_hours: int
    planned_moment_hour: int
    source: str
    send: str = "when_created"

    @property
    def events(self) -> tuple[str, ...]:
        return SUBJECT_EVENTS[self.subject]


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]
    sha256: str
    origin: str

    def for_event(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if kind in r.events]

    def get(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def _need(
    table: dict[str, Any], key: str, where: str, kind: type, choices: tuple[str, ...] = ()
) -> Any:
    if key not in table:
        raise RuleError(f"{where}: missing [{key}]")
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise RuleError(f"{where}: [{key}] must be {kind.__name__}, got {value!r}")
    if choices and value not in choices:
        raise RuleError(f"{where}: [{key}] must be one of {list(choices)}, got {value!r}")
    return value


def parse_rules(text: str, origin: str = "<text>") -> RuleSet:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"{origin}: not valid TOML: {e}") from e
    version = _need(data, "version", origin, str)
    defaults = data.get("defaults", {})
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("rules", [])):
        where = f"{origin}: rules[{i}]"
        rule_id = _need(raw, "id", where, str)
        where = f"{origin}: rule [{rule_id}]"
        if rule_id in seen:
            raise RuleError(f"{where}: duplicate id")
        seen.add(rule_id)
        unknown = set(raw) - {
            "id", "recipient", "subject", "scope", "municipality", "timing", "source",
            "planned_notice_days", "late_within_hours", "ack_window_hours", "planned_moment_hour",
            "send",
        }  # fmt: skip
        if unknown:
            raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
        recipient = _need(raw, "recipient", where, str, RECIPIENTS)
        municipality = raw.get("municipality")
        if recipient in ("mayor", "nazorg"):
            municipality = _need(raw, "municipality", where, str, MUNICIPALITIES)
        elif municipality is not None:
            raise RuleError(f"{where}: [municipality] only applies to mayor and nazorg rules")
        merged = {**defaults, **raw}
        rule = Rule(
            id=rule_id,
            recipient=recipient,
            subject=_need(raw, "subject", where, str, SUBJECTS),
            scope=_need(raw, "scope", where, str, SCOPES),
            municipality=municipality,
            timing=_need(raw, "timing", where, str, TIMINGS),
            planned_notice_days=_need(merged, "planned_notice_days", where, int),
            late_within_hours=_need(merged, "late_within_hours", where, int),
            ack_window_hours=_need(merged, "ack_window_hours", where, int),
            planned_moment_hour=_need(merged, "planned_moment_hour", where, int),
            source=_need(raw, "source", where, str),
            # a signal whose scope depends on time passing waits for its due time
            send=_need(
                {"send": "at_due" if raw.get("timing") == "after_stay" else "when_created"} | raw,
                "send",
                where,
                str,
                SENDS,
            ),
        )
        if rule.timing == "planned" and rule.subject not in ("leave", "release"):
            raise RuleError(f"{where}: only leave and release can be planned")
        if rule.timing == "after_stay" and rule.subject != "intake":
            raise RuleError(f"{where}: timing after_stay is for the intake signal")
        rules.append(rule)
    if not rules:
        raise RuleError(f"{origin}: no rules")
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return RuleSet(version=version, rules=tuple(rules), sha256=sha, origin=origin)


def load_rules(path: Path | None = None) -> RuleSet:
    if path is not None:
        try:
            text = path.read_text("utf-8")
        except OSError as e:
            raise RuleError(f"cannot read rule file {path}: {e}") from e
        return parse_rules(text, str(path))
    text = (
        resources.files("terugkeer.notify.rules").joinpath("default-rules.toml").read_text("utf-8")
    )
    return parse_rules(text, "default-rules.toml")


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The configured rule set (``TERUGKEER_RULES_FILE``, else the shipped default)."""
    from terugkeer.config import get_settings

    configured = get_settings().rules_file
    return load_rules(Path(configured) if configured else None)
