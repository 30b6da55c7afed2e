"""Consecutive synthetic years: a store that keeps years of history.

Each year of a series is a national year as :func:`terugkeer.synth.generate` writes it, with
three differences that let the years be ingested one after the other into one store:

- its identifiers continue where the earlier years stopped: period references, event ids of
  the victims' and reconvictions' feeds, victim references and case references never repeat;
- new persons get a BSN and a prison number no earlier year used;
- some persons are people of earlier years who come back (:data:`params.RETURNING_SHARE`):
  the same BSN (or prison number), birth date and sex, a new period whose intake comes at
  least a week after their last release. Nobody who died comes back.

:class:`History` carries what the next year needs from the earlier ones; it is updated by
each :func:`~terugkeer.synth.generate` call that is given it.
:func:`~terugkeer.synth.generate_years` writes a whole series, one folder per year.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from terugkeer.synth import params as P
from terugkeer.synth.clock import DAY

I64 = npt.NDArray[np.int64]
B8 = npt.NDArray[np.bool_]
NEVER = np.iinfo(np.int64).max  # free_from of a person who died: never back


@dataclass
class History:
    """What the earlier years of a series left behind (empty: the first year).

    Counters of the identifiers used, and every person seen with what a return needs: the
    identifiers, birth day, sex, whether they have a BSN, and from when (UTC seconds) they
    could be taken in again."""

    years: int = 0
    periods: int = 0  # DP numbers used
    victims: int = 0  # IDV-, SLO- numbers used
    reconvictions: int = 0  # JD- numbers used
    case_serials: Counter[int] = field(default_factory=Counter)  # per public prosecutor's office
    bsn: list[str | None] = field(default_factory=list)
    prison_number: list[str] = field(default_factory=list)
    birth_day: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    female: B8 = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    free_from: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    returned: int = 0  # persons of later years who were people of earlier ones

    @property
    def persons(self) -> int:
        return len(self.prison_number)

    def taken(self) -> tuple[set[str], set[str]]:
        """The BSNs and prison numbers earlier years used (a new person gets neither)."""
        return {b for b in self.bsn if b}, set(self.prison_number)

    def match(
        self,
        rng: np.random.Generator,
        *,
        female: B8,
        has_bsn: B8,
        birth_day: I64,
        first_intake: I64,
        share: float = P.RETURNING_SHARE,
    ) -> dict[int, int]:
        """Which of this year's persons (index) are which earlier person (index): about
        ``share`` of them, each matched to an earlier person of the same sex, with or without a
        BSN alike, born within :data:`params.RETURN_BIRTH_DAYS` days, free (released, alive)
        a week before the first intake this year. A person without such a match stays new."""
        n = len(female)
        chosen = np.nonzero(rng.random(n) < share)[0] if self.persons else np.zeros(0, np.int64)
        out: dict[int, int] = {}
        if len(chosen) == 0:
            return out
        pools: dict[tuple[bool, bool], tuple[list[int], list[int]]] = {}
        has = np.array([b is not None for b in self.bsn], dtype=np.bool_)
        for key in ((f, b) for f in (False, True) for b in (False, True)):
            idx = np.nonzero((self.female == key[0]) & (has == key[1]))[0]
            idx = idx[np.argsort(self.birth_day[idx], kind="stable")]
            pools[key] = (idx.tolist(), self.birth_day[idx].tolist())
        used: set[int] = set()
        free = self.free_from.tolist()
        gap = P.RETURN_GAP_DAYS * DAY
        for j in rng.permutation(chosen).tolist():
            people, births = pools[(bool(female[j]), bool(has_bsn[j]))]
            born, limit = int(birth_day[j]), int(first_intake[j]) - gap
            found = _nearest(people, births, born, used, free, limit)
            if found is not None:
                out[j] = found
                used.add(found)
        return out

    def add_year(
        self,
        *,
        bsn: list[str | None],
        prison_number: list[str],
        birth_day: I64,
        female: B8,
        free_from: I64,
        returners: dict[int, int],
        periods: int,
        victims: int,
        reconvictions: int,
        case_serials: Counter[int],
    ) -> None:
        """Record a generated year: its counters, its new persons, and when its returners
        are free again."""
        new = np.array([j not in returners for j in range(len(prison_number))], dtype=np.bool_)
        for j, i in returners.items():
            self.free_from[i] = free_from[j]
        self.bsn.extend(b for b, keep in zip(bsn, new.tolist(), strict=True) if keep)
        self.prison_number.extend(
            pn for pn, keep in zip(prison_number, new.tolist(), strict=True) if keep
        )
        self.birth_day = np.concatenate([self.birth_day, birth_day[new]])
        self.female = np.concatenate([self.female, female[new]])
        self.free_from = np.concatenate([self.free_from, free_from[new]])
        self.periods += periods
        self.victims += victims
        self.reconvictions += reconvictions
        self.case_serials = case_serials
        self.returned += len(returners)
        self.years += 1


def _nearest(
    people: list[int], births: list[int], born: int, used: set[int], free: list[int], limit: int
) -> int | None:
    """The person born nearest to ``born`` (within RETURN_BIRTH_DAYS, among the nearest
    RETURN_SEARCH) not ``used`` yet and free by ``limit``."""
    right = int(np.searchsorted(births, born))
    left = right - 1
    for _ in range(P.RETURN_SEARCH):
        if left >= 0 and (right >= len(births) or born - births[left] <= births[right] - born):
            k, left = left, left - 1
        elif right < len(births):
            k, right = right, right + 1
        else:
            return None
        if abs(births[k] - born) > P.RETURN_BIRTH_DAYS:
            return None
        person = people[k]
        if person not in used and free[person] <= limit:
            return person
    return None
