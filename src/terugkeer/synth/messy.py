"""Make a clean feed messy, the way real deliveries are: duplicates, lines out of order and
malformed lines.

The transformation streams: it keeps at most ``2 * max_distance`` lines in memory, so it works
on files of any size. Every clean line is still delivered (once or more); malformed lines are
*extra* lines, so an ingest of the messy file should end in the same state as one of the clean
file, with exactly the malformed lines quarantined.

* duplicate: an exact copy of a line, placed 1 to ``max_distance`` lines later;
* out of order: a line moved 1 to ``max_distance`` lines earlier or later (log-uniform
  distance, so most moves are short);
* malformed: an extra line derived from the current one, of one of :data:`MALFORMED_TYPES`.
  All but ``release_before_intake`` fail :func:`terugkeer.detention.parse.parse_line`; that one is
  well formed but dated before its period's intake, so folding the period fails.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from terugkeer.detention.parse import KIND_FIELDS
from terugkeer.domain.bsn import is_valid_bsn
from terugkeer.domain.codes import EventKind
from terugkeer.domain.refdata import RefData
from terugkeer.synth import clock

MALFORMED_TYPES = (
    "truncated_json",
    "unknown_kind",
    "missing_field",
    "invalid_bsn",
    "unknown_municipality",
    "naive_timestamp",
    "release_before_intake",
)
# Fail parse_line; release_before_intake is the one that parses.
FAILS_PARSE = frozenset(MALFORMED_TYPES) - {"release_before_intake"}
_MUNICIPALITY_FIELDS = ("residence_municipality", "return_municipality", "leave_municipality")
_ADDABLE_MUNICIPALITY = {
    "intake": "residence_municipality",
    "release_date_set": "return_municipality",
    "release": "return_municipality",
}
# kinds whose period is optional (about a person, not a period)
_PERIOD_OPTIONAL = frozenset({EventKind.RECONVICTION, EventKind.CORRECTION})
_UNKNOWN_KINDS = ("vrijlating", "release_planned", "Release", "verlof_start", "insluiting")
_CANDIDATE_BAD_CODES = ("GM9999", "GM0000", "GM8888", "GM0001", "GM7777")


@dataclass
class MessyRates:
    """Fractions of lines: each clean line is duplicated, moved and followed by a malformed
    variant with these probabilities (independently)."""

    duplicates: float = 0.02
    out_of_order: float = 0.05
    malformed: float = 0.005


IntakeLookup = Callable[[str], int | None]


class Messifier:
    def __init__(
        self,
        rates: MessyRates,
        rng: random.Random,
        rd: RefData,
        counts: Counter[str],
        *,
        max_distance: int = 5_000,
        intake_time: IntakeLookup | None = None,
    ) -> None:
        self.rates = rates
        self.rng = rng
        self.counts = counts
        self.max_distance = max(1, max_distance)
        self.intake_time = intake_time
        self.bad_codes = [c for c in _CANDIDATE_BAD_CODES if rd.resolve_municipality(c) is None]
        self._serial = 0

    def _distance(self) -> int:
        return max(1, int(math.exp(self.rng.random() * math.log(self.max_distance))))

    def run(self, lines: Iterable[str]) -> Iterator[str]:
        heap: list[tuple[float, int, str]] = []
        counter = 0
        rates = self.rates
        rnd = self.rng.random
        for i, line in enumerate(lines):
            key: float = i
            if rnd() < rates.out_of_order:
                d = self._distance()
                key = i + d if rnd() < 0.5 else i - d
                self.counts["out_of_order"] += 1
            heapq.heappush(heap, (key, counter, line))
            counter += 1
            if rnd() < rates.duplicates:
                heapq.heappush(heap, (i + self._distance(), counter, line))
                counter += 1
                self.counts["duplicate"] += 1
            if rnd() < rates.malformed:
                kind, bad = self.malformed(line)
                heapq.heappush(heap, (i + 0.5, counter, bad))
                counter += 1
                self.counts["malformed"] += 1
                self.counts[f"malformed.{kind}"] += 1
            limit = i - self.max_distance
            while heap and heap[0][0] < limit:
                yield heapq.heappop(heap)[2]
        while heap:
            yield heapq.heappop(heap)[2]

    # -- malformed lines -------------------------------------------------------------------
    def malformed(self, line: str) -> tuple[str, str]:
        """A malformed variant of ``line``: (type, text)."""
        obj: dict[str, Any] = json.loads(line)
        start = self.rng.randrange(len(MALFORMED_TYPES))
        for k in range(len(MALFORMED_TYPES)):
            kind = MALFORMED_TYPES[(start + k) % len(MALFORMED_TYPES)]
            bad = self._make(kind, line, dict(obj))
            if bad is not None:
                return kind, bad
        raise AssertionError("truncated_json always applies")  # pragma: no cover

    def _new_id(self, obj: dict[str, Any]) -> None:
        self._serial += 1
        obj["event_id"] = f"{obj.get('event_id', 'X')}-m{self._serial}"

    def _make(self, kind: str, line: str, obj: dict[str, Any]) -> str | None:
        rng = self.rng
        if kind == "truncated_json":
            return line[: rng.randrange(1, max(2, len(line) - 1))]
        self._new_id(obj)
        if kind == "unknown_kind":
            obj["kind"] = rng.choice(_UNKNOWN_KINDS)
        elif kind == "missing_field":
            ev_kind = EventKind(obj["kind"])
            names = ["event_id", "source", "occurred_at", "kind", "person"]
            if ev_kind not in _PERIOD_OPTIONAL:
                names.append("period")
            names += [n for n, spec in KIND_FIELDS[ev_kind].items() if spec.required]
            del obj[rng.choice(names)]
        elif kind == "invalid_bsn":
            person = dict(obj["person"])
            person["bsn"] = _invalid_bsn(person.get("bsn"), rng)
            obj["person"] = person
        elif kind == "unknown_municipality":
            present = [f for f in _MUNICIPALITY_FIELDS if f in obj]
            target = rng.choice(present) if present else _ADDABLE_MUNICIPALITY.get(obj["kind"])
            if target is None or not self.bad_codes:
                return None
            obj[target] = rng.choice(self.bad_codes)
        elif kind == "naive_timestamp":
            obj["occurred_at"] = obj["occurred_at"][:19]
        elif kind == "release_before_intake":
            period = obj.get("period")
            if self.intake_time is None or not isinstance(period, str):
                return None
            t_in = self.intake_time(period)
            if t_in is None:
                return None
            before = t_in - rng.randrange(clock.HOUR, 30 * clock.DAY)
            obj = {
                "feed_version": 1,
                "event_id": obj["event_id"],
                "source": obj["source"],
                "occurred_at": clock.iso(before),
                "kind": "release",
                "person": obj["person"],
                "period": period,
                "release_kind": "end_of_sentence",
            }
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _invalid_bsn(valid: Any, rng: random.Random) -> str:
    if isinstance(valid, str) and len(valid) == 9 and valid.isdigit():
        bad = valid[:8] + str((int(valid[8]) + 1) % 10)
        if not is_valid_bsn(bad):
            return bad
    while True:
        bad = "9" + "".join(str(rng.randrange(10)) for _ in range(8))
        if not is_valid_bsn(bad):
            return bad
