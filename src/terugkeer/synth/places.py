"""Where people live and where they are detained.

Residence is drawn from the real CBS municipality list (``domain/data/municipalities.csv``)
with a weight that is a rough population proxy, because the list carries no populations:

* the 50 or so largest municipalities get their approximate population in thousands
  (rounded, about 2024, from memory of CBS StatLine; ASSUMPTION, good to roughly 10 %),
* every other municipality gets 30 (thousand): 17.9 million inhabitants minus the listed ones,
  spread over the rest, comes to about that,
* detention is more urban than population, so the four largest cities get a factor 1.6 and the
  other listed cities 1.2 (ASSUMPTION).

A code in the table that is missing from the list (after a future merger) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from terugkeer.domain.codes import InstitutionType
from terugkeer.domain.refdata import RefData

# code: approximate population in thousands (ASSUMPTION, see module doc)
POPULATION_PROXY: dict[str, int] = {
    "GM0363": 930,  # Amsterdam
    "GM0599": 670,  # Rotterdam
    "GM0518": 560,  # 's-Gravenhage
    "GM0344": 375,  # Utrecht
    "GM0772": 245,  # Eindhoven
    "GM0014": 240,  # Groningen
    "GM0855": 228,  # Tilburg
    "GM0034": 225,  # Almere
    "GM0758": 188,  # Breda
    "GM0268": 182,  # Nijmegen
    "GM0200": 167,  # Apeldoorn
    "GM0202": 167,  # Arnhem
    "GM0392": 164,  # Haarlem
    "GM0394": 162,  # Haarlemmermeer
    "GM0153": 161,  # Enschede
    "GM0307": 160,  # Amersfoort
    "GM0479": 160,  # Zaanstad
    "GM0796": 160,  # 's-Hertogenbosch
    "GM0193": 132,  # Zwolle
    "GM0637": 128,  # Zoetermeer
    "GM0546": 127,  # Leiden
    "GM0080": 126,  # Leeuwarden
    "GM0935": 122,  # Maastricht
    "GM0228": 122,  # Ede
    "GM0505": 121,  # Dordrecht
    "GM0484": 115,  # Alphen aan den Rijn
    "GM1783": 113,  # Westland
    "GM0361": 111,  # Alkmaar
    "GM0114": 108,  # Emmen
    "GM0503": 105,  # Delft
    "GM0983": 103,  # Venlo
    "GM0150": 102,  # Deventer
    "GM0794": 93,  # Helmond
    "GM0828": 93,  # Oss
    "GM0439": 93,  # Purmerend
    "GM0362": 92,  # Amstelveen
    "GM0402": 92,  # Hilversum
    "GM1883": 91,  # Sittard-Geleen
    "GM1900": 91,  # Súdwest-Fryslân
    "GM1930": 87,  # Nissewaard
    "GM0917": 87,  # Heerlen
    "GM0164": 82,  # Hengelo
    "GM0606": 80,  # Schiedam
    "GM0995": 80,  # Lelystad
    "GM1674": 78,  # Roosendaal
    "GM1916": 78,  # Leidschendam-Voorburg
    "GM0513": 75,  # Gouda
    "GM0622": 75,  # Vlaardingen
    "GM0405": 74,  # Hoorn
    "GM0141": 74,  # Almelo
    "GM0502": 67,  # Capelle aan den IJssel
    "GM0400": 56,  # Den Helder
    "GM0718": 45,  # Vlissingen
}
OTHER_POPULATION = 30
BIG_FOUR = frozenset({"GM0363", "GM0599", "GM0518", "GM0344"})
BIG_FOUR_FACTOR = 1.6
CITY_FACTOR = 1.2


@dataclass(frozen=True, slots=True)
class Places:
    municipality_codes: list[str]
    municipality_weights: npt.NDArray[np.float64]  # sums to 1
    municipality_province: npt.NDArray[np.int64]  # province index per municipality
    provinces: list[str]
    institution_codes: list[str]  # places of detention first, then every other institution
    institution_type: list[InstitutionType]
    by_type: dict[InstitutionType, npt.NDArray[np.int64]]  # institution indices
    by_type_province: dict[tuple[InstitutionType, int], npt.NDArray[np.int64]]
    idv: int  # index of OM-IDV in institution_codes
    jd: int  # index of JUSTID-JD


def municipality_weight(code: str) -> float:
    if code in POPULATION_PROXY:
        factor = BIG_FOUR_FACTOR if code in BIG_FOUR else CITY_FACTOR
        return POPULATION_PROXY[code] * factor
    return float(OTHER_POPULATION)


def load_places(rd: RefData) -> Places:
    codes = sorted(rd.municipalities)
    weights = np.array([municipality_weight(c) for c in codes], dtype=np.float64)
    provinces = sorted({m.province for m in rd.municipalities.values()})
    prov_index = {p: i for i, p in enumerate(provinces)}
    muni_prov = np.array([prov_index[rd.municipalities[c].province] for c in codes], dtype=np.int64)

    detention = sorted(rd.places_of_detention(), key=lambda i: i.code)
    others = sorted(
        (i for i in rd.institutions.values() if i not in detention), key=lambda i: i.code
    )
    institutions = detention + others
    inst_codes = [i.code for i in institutions]
    inst_types = [i.type for i in institutions]
    by_type: dict[InstitutionType, npt.NDArray[np.int64]] = {}
    by_type_province: dict[tuple[InstitutionType, int], npt.NDArray[np.int64]] = {}
    for t in (InstitutionType.PI, InstitutionType.JJI, InstitutionType.TBS):
        idx = [k for k, i in enumerate(institutions) if i.type is t]
        if not idx:
            raise RuntimeError(f"reference data has no institution of type {t}")
        by_type[t] = np.array(idx, dtype=np.int64)
        for p, pi in prov_index.items():
            local = [
                k
                for k in idx
                if (
                    m := rd.municipalities.get(
                        rd.resolve_municipality(institutions[k].municipality) or ""
                    )
                )
                is not None
                and m.province == p
            ]
            if local:
                by_type_province[(t, pi)] = np.array(local, dtype=np.int64)
    return Places(
        municipality_codes=codes,
        municipality_weights=weights / weights.sum(),
        municipality_province=muni_prov,
        provinces=provinces,
        institution_codes=inst_codes,
        institution_type=inst_types,
        by_type=by_type,
        by_type_province=by_type_province,
        idv=inst_codes.index("OM-IDV"),
        jd=inst_codes.index("JUSTID-JD"),
    )
