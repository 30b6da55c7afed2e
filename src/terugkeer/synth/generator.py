"""The synthetic national year: one year of releases from Dutch detention, as the three feeds
(detention, IDV victims, Justid reconvictions) and a hidden ground truth.

Usage::

    summary = generate(Path("var/synth"), releases=35_000, seed=1, year=2024)

The same arguments always give byte-identical files: all randomness comes from ``seed``
(numpy ``default_rng`` streams spawned from one ``SeedSequence``, plus ``random.Random`` for
BSNs and the per-period loop), and the clock is never read. See ``docs/synth.md`` for what is
simulated and the sources of the figures; every number is in :mod:`terugkeer.synth.params`.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from terugkeer.domain.bsn import generate_bsn
from terugkeer.domain.codes import Sex
from terugkeer.domain.refdata import RefData, refdata
from terugkeer.synth import clock
from terugkeer.synth import params as P
from terugkeer.synth.events import (
    K_GRANT,
    K_INTAKE,
    K_LSTART,
    K_RDS,
    K_RELEASE,
    K_TITLE,
    K_TRANSFER,
    KINDS,
    RANK,
    DetentionEvents,
    build_events,
)
from terugkeer.synth.messy import Messifier, MessyRates
from terugkeer.synth.model import (
    CATEGORIES,
    DECISIONS,
    GROUP_KEYS,
    RELEASE_KINDS,
    T_JUVENILE,
    T_PRE_TRIAL,
    T_PRISON,
    T_REPLACEMENT,
    TITLES,
    Population,
    build_population,
    completed_years,
)
from terugkeer.synth.outcomes import Reconvictions, Victims, build_reconvictions, build_victims
from terugkeer.synth.places import Places, load_places
from terugkeer.synth.series import NEVER, History

__all__ = ["History", "MessyRates", "SynthSummary", "generate", "generate_years"]

ProgressCallback = Callable[[int], None]
CHUNK = 50_000
FILES = ("detention.jsonl", "victims.jsonl", "reconvictions.jsonl", "truth.csv")


@dataclass
class SynthSummary:
    releases: int
    periods: int
    events: int
    events_by_kind: dict[str, int]
    persons: int
    victims: int
    reconvictions: int
    files: dict[str, Path]
    seed: int
    year: int
    messy: dict[str, int] = field(default_factory=dict)  # lines made messy, by type


class _Progress:
    """Spreads exactly ``total`` units over the phases, in proportion to their weights."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.callback = callback
        self.done = 0

    def phase(self, start: float, end: float, size: int) -> ProgressCallback:
        def report(k: int) -> None:
            frac = start + (end - start) * (min(k, size) / max(size, 1))
            self.advance_to(round(self.total * frac))

        return report

    def advance_to(self, target: int) -> None:
        if self.callback is not None and target > self.done:
            self.callback(target - self.done)
            self.done = target

    def finish(self) -> None:
        self.advance_to(self.total)


def generate(
    out: Path,
    *,
    releases: int = P.DEFAULT_RELEASES,
    seed: int = 1,
    year: int = 2024,
    messy: MessyRates | None = None,
    progress: ProgressCallback | None = None,
    history: History | None = None,
) -> SynthSummary:
    """Write ``detention.jsonl``, ``victims.jsonl``, ``reconvictions.jsonl`` and ``truth.csv``
    into ``out`` for ``releases`` releases in calendar year ``year``.

    With ``history`` (:class:`~terugkeer.synth.series.History`), the year follows the years
    recorded there: identifiers continue after theirs, some persons are theirs coming back,
    and ``history`` is updated with this year. Without it (or with an empty one), the files
    are those of a single year."""
    if releases < 1:
        raise ValueError("releases must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rd = refdata()
    places = load_places(rd)
    seeds = np.random.SeedSequence(seed).spawn(6)
    rng_model = np.random.default_rng(seeds[0])
    rng_events = np.random.default_rng(seeds[1])
    rng_recon = np.random.default_rng(seeds[2])
    rng_victims = np.random.default_rng(seeds[3])
    py_model = random.Random(int(seeds[4].generate_state(1)[0]))
    py_ids = random.Random(int(seeds[5].generate_state(1)[0]))
    py_messy = random.Random(seed * 7919 + 13)
    prog = _Progress(releases, progress)

    pop = build_population(rng_model, py_model, places, releases=releases, year=year)
    prog.advance_to(round(releases * 0.05))
    ev = build_events(pop, places, rng_events, py_model, prog.phase(0.05, 0.45, pop.n))
    recon = build_reconvictions(pop, rng_recon)
    victims = build_victims(pop, rng_victims)

    n_persons = len(pop.p_risk)
    history = history if history is not None else History()
    bsn, prison_number = _identifiers(py_ids, pop.p_has_bsn, n_persons, *history.taken())
    returners = _returners(pop, history, bsn, prison_number, seed)
    first = history.periods
    refs = [f"DP{first + k:08d}" for k in pop.ref_number.tolist()]
    by_ref = np.argsort(pop.ref_number)

    def intake_time(ref: str) -> int | None:
        if not (ref.startswith("DP") and ref[2:].isdigit()):
            return None
        k = int(ref[2:]) - 1 - first
        return int(pop.t_in[by_ref[k]]) if 0 <= k < pop.n else None

    counts: Counter[str] = Counter()
    files = {name: out / name for name in FILES}
    det_lines = _detention_lines(
        pop, ev, places, refs, bsn, prison_number, prog.phase(0.45, 0.9, len(ev))
    )
    _write(files["detention.jsonl"], det_lines, messy, py_messy, rd, counts, intake_time)
    _write(
        files["victims.jsonl"],
        _victim_lines(pop, victims, places, refs, bsn, prison_number, history.victims),
        messy,
        py_messy,
        rd,
        counts,
        None,
    )
    serials = Counter(history.case_serials)
    _write(
        files["reconvictions.jsonl"],
        _reconviction_lines(pop, recon, places, bsn, prison_number, history.reconvictions, serials),
        messy,
        py_messy,
        rd,
        counts,
        None,
    )
    prog.advance_to(round(releases * 0.95))
    with files["truth.csv"].open("w", encoding="utf-8", newline="") as fh:
        _write_truth(fh, pop, ev, recon, victims, places, refs, bsn, prison_number)
    prog.finish()

    by_kind = Counter(
        {
            KINDS[k].value: int(c)
            for k, c in zip(*np.unique(ev.kind, return_counts=True), strict=True)
        }
    )
    by_kind["victim_registered"] = len(victims)
    by_kind["reconviction"] = len(recon)
    _record(history, pop, bsn, prison_number, returners, len(victims), len(recon), serials)
    return SynthSummary(
        releases=int((~pop.is_death).sum()),
        periods=pop.n,
        events=len(ev) + len(victims) + len(recon),
        events_by_kind=dict(sorted(by_kind.items())),
        persons=n_persons,
        victims=len(victims),
        reconvictions=len(recon),
        files=files,
        seed=seed,
        year=year,
        messy=dict(sorted(counts.items())),
    )


def generate_years(
    out: Path,
    *,
    years: int,
    first_year: int = 2024,
    releases: int = P.DEFAULT_RELEASES,
    seed: int = 1,
    messy: MessyRates | None = None,
    progress: ProgressCallback | None = None,
) -> list[SynthSummary]:
    """Write ``years`` consecutive years into ``out/<year>/`` (see
    :mod:`terugkeer.synth.series`); their summaries, in order.

    Year ``i`` (from 0) uses seed ``seed + i``, so the first year's files are byte-identical
    to ``generate(out, releases=releases, seed=seed, year=first_year)``."""
    if years < 1:
        raise ValueError("years must be at least 1")
    history = History()
    return [
        generate(
            Path(out) / str(first_year + i),
            releases=releases,
            seed=seed + i,
            year=first_year + i,
            messy=messy,
            progress=progress,
            history=history,
        )
        for i in range(years)
    ]


def _identifiers(
    rng: random.Random,
    has_bsn: np.ndarray,
    n: int,
    taken_bsn: set[str] | None = None,
    taken_numbers: set[str] | None = None,
) -> tuple[list[str | None], list[str]]:
    """BSNs (11-proef, test range 9xxxxxxxx, unique) and prison numbers (unique, everyone),
    none of them ``taken`` (by earlier years of a series)."""
    seen: set[str] = set(taken_bsn or ())
    bsn: list[str | None] = []
    for has in has_bsn.tolist():
        if not has:
            bsn.append(None)
            continue
        while True:
            b = generate_bsn(rng)
            if b not in seen:
                seen.add(b)
                bsn.append(b)
                break
    # prison numbers: distinct 8-digit numbers, drawn without replacement
    draw = np.random.default_rng(rng.getrandbits(64))
    numbers = [f"DJ{10_000_000 + int(x):08d}" for x in draw.choice(90_000_000, n, replace=False)]
    if taken_numbers:  # a series: a number an earlier year used is drawn again
        used = set(numbers)
        for j, number in enumerate(numbers):
            if number not in taken_numbers:
                continue
            while number in taken_numbers or number in used:
                number = f"DJ{10_000_000 + int(draw.integers(90_000_000)):08d}"
            used.add(number)
            numbers[j] = number
    return bsn, numbers


def _returners(
    pop: Population,
    history: History,
    bsn: list[str | None],
    prison_number: list[str],
    seed: int,
) -> dict[int, int]:
    """Make some of this year's persons people of earlier years who come back (their
    identifiers and birth day; ages at release follow); which person is which earlier one."""
    if not history.persons:
        return {}
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(7)[6])
    first_intake = np.full(len(pop.p_risk), NEVER, dtype=np.int64)
    np.minimum.at(first_intake, pop.person, pop.t_in)
    matches = history.match(
        rng,
        female=pop.p_female,
        has_bsn=pop.p_has_bsn,
        birth_day=pop.p_birth_day,
        first_intake=first_intake,
    )
    for j, i in matches.items():
        bsn[j], prison_number[j] = history.bsn[i], history.prison_number[i]
        pop.p_birth_day[j] = history.birth_day[i]
    if matches:
        pop.age_at_release = completed_years(pop.p_birth_day[pop.person], pop.day_out)
    return matches


def _record(
    history: History,
    pop: Population,
    bsn: list[str | None],
    prison_number: list[str],
    returners: dict[int, int],
    victims: int,
    reconvictions: int,
    serials: Counter[int],
) -> None:
    """This year into ``history``: when each person may be taken in again (never after a
    death)."""
    free_from = np.zeros(len(prison_number), dtype=np.int64)
    np.maximum.at(free_from, pop.person, pop.t_out)
    free_from[pop.person[pop.is_death]] = NEVER
    history.add_year(
        bsn=bsn,
        prison_number=prison_number,
        birth_day=pop.p_birth_day,
        female=pop.p_female,
        free_from=free_from,
        returners=returners,
        periods=pop.n,
        victims=victims,
        reconvictions=reconvictions,
        case_serials=serials,
    )


def _write(
    path: Path,
    lines: Iterable[str],
    messy: MessyRates | None,
    rng: random.Random,
    rd: RefData,
    counts: Counter[str],
    intake_time: Callable[[str], int | None] | None,
) -> None:
    if messy is not None:
        lines = Messifier(messy, rng, rd, counts, intake_time=intake_time).run(lines)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= CHUNK:
                fh.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            fh.write("\n".join(batch) + "\n")


def _person_json(bsn: str | None, pn: str, *, both: bool) -> str:
    if bsn is None:
        return f'{{"prison_number":"{pn}"}}'
    if both:
        return f'{{"bsn":"{bsn}","prison_number":"{pn}"}}'
    return f'{{"bsn":"{bsn}"}}'


def _detention_lines(
    pop: Population,
    ev: DetentionEvents,
    places: Places,
    refs: list[str],
    bsn: list[str | None],
    prison_number: list[str],
    progress: ProgressCallback,
) -> Iterator[str]:
    rank = np.array(RANK, dtype=np.int64)[ev.kind]
    order = np.lexsort((ev.seq, ev.period, rank, ev.t))
    inst = places.institution_codes
    muni = places.municipality_codes
    titles = [t.value for t in TITLES]
    rkinds = [r.value for r in RELEASE_KINDS]
    kinds = [k.value for k in KINDS]
    cats = [c.value for c in CATEGORIES]
    days = clock.DayCache()
    person = pop.person.tolist()
    persons = [_person_json(b, pn, both=True) for b, pn in zip(bsn, prison_number, strict=True)]
    sexes = [Sex.FEMALE.value if f else Sex.MALE.value for f in pop.p_female.tolist()]
    births = pop.p_birth_day.tolist()
    residence = pop.p_residence.tolist()
    sentenced_titles = {T_PRISON, T_REPLACEMENT, T_JUVENILE}
    n_off = pop.n_off.tolist()
    off_cat = pop.off_cat.tolist()
    off_max = pop.off_max.tolist()
    sentence = pop.sentence.tolist()
    planned_in = ev.planned_in_intake.tolist()
    ret_in = ev.return_in_intake.tolist()

    def intake_fields(p: int, title: int) -> str:
        offences = ",".join(
            f'{{"category":"{cats[off_cat[p][j]]}","statutory_max_years":{off_max[p][j]}}}'
            for j in range(n_off[p])
        )
        s = f',"title":"{titles[title]}","offences":[{offences}]'
        if title in sentenced_titles and sentence[p] > 0:
            s += f',"sentence_days":{sentence[p]}'
        per = person[p]
        if residence[per] >= 0:
            s += f',"residence_municipality":"{muni[residence[per]]}"'
        if ret_in[p] >= 0:
            s += f',"return_municipality":"{muni[ret_in[p]]}"'
        if planned_in[p] >= 0:
            s += f',"planned_release_date":"{days(planned_in[p])}"'
        return s + f',"birth_date":"{days(births[per])}","sex":"{sexes[per]}"'

    total = len(order)
    for start in range(0, total, CHUNK):
        idx = order[start : start + CHUNK]
        stamps = clock.iso_array(ev.t[idx])
        grants = idx[ev.kind[idx] == K_GRANT]
        leave_from = dict(zip(grants.tolist(), clock.iso_array(ev.a[grants]), strict=True))
        leave_until = dict(zip(grants.tolist(), clock.iso_array(ev.b[grants]), strict=True))
        picked = (ev.period, ev.kind, ev.seq, ev.src, ev.a, ev.b, ev.c)
        cols = zip(idx.tolist(), stamps, *(col[idx].tolist() for col in picked), strict=True)
        for e, ts, p, k, seq, src, a, b, c in cols:
            ref = refs[p]
            if k == K_INTAKE:
                fields = intake_fields(p, a)
            elif k == K_RDS:
                fields = f',"planned_release_date":"{days(a)}"'
                if c >= 0:
                    fields += f',"return_municipality":"{muni[c]}"'
            elif k == K_GRANT:
                fields = (
                    f',"leave_from":"{leave_from[e]}","leave_until":"{leave_until[e]}"'
                    f',"leave_municipality":"{muni[c]}"'
                )
            elif k == K_LSTART:
                fields = f',"leave_municipality":"{muni[c]}"'
            elif k == K_TRANSFER:
                fields = f',"to_institution":"{inst[a]}"'
            elif k == K_TITLE:
                fields = f',"title":"{titles[a]}"'
                if b > 0:
                    fields += f',"sentence_days":{b}'
            elif k == K_RELEASE:
                fields = f',"release_kind":"{rkinds[a]}"'
                if c >= 0:
                    fields += f',"return_municipality":"{muni[c]}"'
            else:
                fields = ""
            yield (
                f'{{"feed_version":1,"event_id":"{ref}-{seq:02d}","source":"{inst[src]}",'
                f'"occurred_at":"{ts}","kind":"{kinds[k]}","person":{persons[person[p]]},'
                f'"period":"{ref}"{fields}}}'
            )
        progress(min(start + CHUNK, total))


def _victim_lines(
    pop: Population,
    v: Victims,
    places: Places,
    refs: list[str],
    bsn: list[str | None],
    prison_number: list[str],
    first: int = 0,
) -> Iterator[str]:
    order = np.lexsort((np.arange(len(v)), v.t_registered))
    stamps = clock.iso_array(v.t_registered[order])
    source = places.institution_codes[places.idv]
    person = pop.person.tolist()
    cols = zip(
        order.tolist(),
        stamps,
        v.period[order].tolist(),
        v.relation_survivor[order].tolist(),
        v.spoke_in_court[order].tolist(),
        v.wants_information[order].tolist(),
        strict=True,
    )
    for k, (_, ts, p, survivor, spoke, wants) in enumerate(cols, start=first + 1):
        per = person[p]
        who = _person_json(bsn[per], prison_number[per], both=False)
        relation = "surviving_relative" if survivor else "victim"
        contact = (
            f'{{"name":"Slachtoffer {k:06d}","email":"slachtoffer{k:06d}@example.org",'
            f'"phone":"0600{k:06d}","address":"Teststraat {1 + k % 199}, 1234 AB Voorbeeld"}}'
        )
        yield (
            f'{{"feed_version":1,"event_id":"IDV-{k:08d}","source":"{source}",'
            f'"occurred_at":"{ts}","kind":"victim_registered","person":{who},'
            f'"period":"{refs[p]}","victim_ref":"SLO-{k:07d}","relation":"{relation}",'
            f'"spoke_in_court":{"true" if spoke else "false"},'
            f'"wants_information":{"true" if wants else "false"},"contact":{contact}}}'
        )


def _reconviction_lines(
    pop: Population,
    r: Reconvictions,
    places: Places,
    bsn: list[str | None],
    prison_number: list[str],
    first: int = 0,
    serial: Counter[int] | None = None,
) -> Iterator[str]:
    """The reconvictions feed; JD numbers after ``first``, case serials per office going on
    from ``serial`` (updated)."""
    order = np.lexsort((np.arange(len(r)), r.t_registered))
    source = places.institution_codes[places.jd]
    cats = [c.value for c in CATEGORIES]
    decs = [d.value for d in DECISIONS]
    days = clock.DayCache()
    province = pop.p_province.tolist()
    serial = serial if serial is not None else Counter()
    for start in range(0, len(order), CHUNK):
        idx = order[start : start + CHUNK]
        stamps = clock.iso_array(r.t_registered[idx])
        reg_years = (
            clock.local_days(r.t_registered[idx])
            .astype("datetime64[D]")
            .astype("datetime64[Y]")
            .astype(np.int64)
            + 1970
        ) % 100
        picked = (r.person, r.offence_day, r.category, r.statutory_max, r.decision, r.custodial)
        cols = zip(
            range(first + start + 1, first + start + len(idx) + 1),
            stamps,
            *(col[idx].tolist() for col in picked),
            reg_years.tolist(),
            strict=True,
        )
        for k, ts, per, day, cat, smax, dec, cust, yy in cols:
            parket = 1 + (province[per] if province[per] >= 0 else 12)  # an office per province
            serial[parket] += 1
            who = _person_json(bsn[per], prison_number[per], both=False)
            yield (
                f'{{"feed_version":1,"event_id":"JD-{k:08d}","source":"{source}",'
                f'"occurred_at":"{ts}","kind":"reconviction","person":{who},'
                f'"case_ref":"{parket:02d}/{serial[parket]:06d}-{yy:02d}",'
                f'"offence_date":"{days(day)}","category":"{cats[cat]}",'
                f'"statutory_max_years":{smax},"decision":"{decs[dec]}",'
                f'"custodial":{"true" if cust else "false"}}}'
            )


TRUTH_COLUMNS = (
    "period",
    "person_key",
    "group",
    "institution_type",
    "title",
    "end",
    "release_kind",
    "intake_date",
    "end_date",
    "stay_days",
    "pretrial_days",
    "sex",
    "birth_date",
    "age_at_release",
    "latent_risk",
    "serious",
    *(f"{c}_{when}" for c in P.CONDITIONS for when in ("intake", "release")),
    "leaves",
    "escapes",
    "transfers",
    "release_date_changed",
    "victims",
    "reconvicted_2y",
    "first_offence_date",
    "custodial_2y",
    "second_release_of",
)


def _write_truth(
    fh: TextIO,
    pop: Population,
    ev: DetentionEvents,
    recon: Reconvictions,
    victims: Victims,
    places: Places,
    refs: list[str],
    bsn: list[str | None],
    prison_number: list[str],
) -> None:
    """One row per period, in order of the period reference (that is, of intake)."""
    days = clock.DayCache()
    order = np.argsort(pop.ref_number)
    person = pop.person[order]
    death = pop.is_death[order]
    keys = [f"bsn:{b}" if b else f"pn:{pn}" for b, pn in zip(bsn, prison_number, strict=True)]
    itypes = [t.value for t in places.institution_type]
    rkinds = [k.value for k in RELEASE_KINDS]
    titles = [t.value for t in TITLES]
    pretrial = np.where(
        pop.title_in == T_PRE_TRIAL, np.where(pop.has_tc, pop.pt_days, pop.stay_days), 0
    )

    def ints(a: np.ndarray) -> list[int]:
        return [int(x) for x in np.asarray(a)[order].astype(np.int64).tolist()]

    def dates(a: np.ndarray) -> list[str]:
        return [days(d) if d >= 0 else "" for d in np.asarray(a).tolist()]

    conds: list[list[int] | list[int | str]] = []
    for j in range(len(P.CONDITIONS)):
        conds.append(ints(pop.cond_in[:, j]))
        conds.append(
            ["" if d else v for d, v in zip(death.tolist(), ints(pop.cond_out[:, j]), strict=True)]
        )
    second = pop.second_of[order]
    columns: list[Sequence[object]] = [
        [refs[p] for p in order.tolist()],
        [keys[p] for p in person.tolist()],
        [GROUP_KEYS[g] for g in ints(pop.group)],
        [itypes[i] for i in ints(pop.institution)],
        [titles[t] for t in ints(pop.title_out)],
        ["death" if d else "release" for d in death.tolist()],
        ["" if k < 0 else rkinds[k] for k in ints(pop.release_kind)],
        dates(pop.day_in[order]),
        dates(pop.day_out[order]),
        ints(pop.stay_days),
        ints(pretrial),
        ["F" if f else "M" for f in pop.p_female[person].tolist()],
        dates(pop.p_birth_day[person]),
        ints(pop.age_at_release),
        [f"{r:.4f}" for r in pop.p_risk[person].tolist()],
        ints(pop.serious & pop.into_society),
        *conds,
        ints(ev.leaves),
        ints(ev.escapes),
        ints(ev.transfers),
        ints(ev.date_changes),
        ints(victims.per_period),
        ints(recon.reconvicted_2y),
        dates(recon.first_offence_day[order]),
        ints(recon.custodial_2y),
        [refs[q] if q >= 0 else "" for q in second.tolist()],
    ]
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(TRUTH_COLUMNS)
    w.writerows(zip(*columns, strict=True))
