"""Reference data shipped with the package: municipalities (CBS), their merger successors and
the institutions that send feeds. See ``data/SOURCES.md`` for where each list comes from."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources

from terugkeer.domain.codes import InstitutionType


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str
    name: str
    province: str


@dataclass(frozen=True, slots=True)
class Institution:
    code: str
    name: str
    type: InstitutionType
    municipality: str


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("terugkeer.domain").joinpath("data", name).read_text("utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if line.strip()))


class RefData:
    """Lookup tables; build once with :func:`refdata`."""

    def __init__(self) -> None:
        self.municipalities: dict[str, Municipality] = {
            r["code"]: Municipality(r["code"], r["name"], r["province"])
            for r in _rows("municipalities.csv")
        }
        self._successor: dict[str, str] = {}
        self.successor_valid_until: dict[str, date] = {}
        for r in _rows("municipality_successors.csv"):
            self._successor[r["old_code"]] = r["new_code"]
            self.successor_valid_until[r["old_code"]] = date.fromisoformat(r["valid_until"])
        self.institutions: dict[str, Institution] = {
            r["code"]: Institution(
                r["code"], r["name"], InstitutionType(r["type"]), r["municipality"]
            )
            for r in _rows("institutions.csv")
        }
        self._resolved: dict[str, str | None] = {}

    def resolve_municipality(self, code: str) -> str | None:
        """The current code for ``code``: itself, its successor after mergers, or None if unknown."""
        try:
            return self._resolved[code]
        except KeyError:
            pass
        current: str | None = code
        seen: set[str] = set()
        while current is not None and current not in self.municipalities:
            if current in seen:  # a cycle in the data file would be a bug; treat as unknown
                current = None
                break
            seen.add(current)
            current = self._successor.get(current)
        self._resolved[code] = current
        return current

    def places_of_detention(self) -> list[Institution]:
        detention_types = {InstitutionType.PI, InstitutionType.JJI, InstitutionType.TBS}
        return [i for i in self.institutions.values() if i.type in detention_types]


@lru_cache(maxsize=1)
def refdata() -> RefData:
    return RefData()
