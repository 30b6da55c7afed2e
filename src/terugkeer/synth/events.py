"""Detention events per period, as compact columns.

Each period's events are laid out on its stay so that every sequence is one that
:func:`terugkeer.detention.periods.apply_event` accepts:

* intake at the start; release (or death) at the end, strictly after everything else;
* release_date_set shortly after the intake of a sentenced person (or the planned date in the
  intake itself), and after the judgment for a pre-trial one; sometimes a later change;
* title_change at the trial for pre-trial periods that end in a sentence;
* transfers in 5-45 % of the stay, a custody escape (and its recapture) in 46-59 %, leaves in
  the last part of the stay (from 60 %, after the judgment, at most the last year), each in its
  own slot: leave_granted 7-21 days before leave_start, then leave_end, or, for a non-return,
  an escape after the leave ends and a recapture before release.

These windows never overlap, so no transfer happens while on leave or escaped and no leave is
granted while escaped. The loop is plain Python over periods (about 10 µs each); the columns
are ``array`` objects, not lists of objects, to keep 1,000,000 releases within memory.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from terugkeer.domain.codes import DETENTION_KINDS, EventKind
from terugkeer.domain.events import KIND_RANK
from terugkeer.synth import clock
from terugkeer.synth import params as P
from terugkeer.synth.clock import DAY, HOUR, I64
from terugkeer.synth.model import (
    B8,
    R_INTO_TBS,
    T_JUVENILE,
    T_PRISON,
    T_REPLACEMENT,
    Group,
    Population,
)
from terugkeer.synth.places import Places

KINDS = tuple(k for k in EventKind if k in DETENTION_KINDS)  # in EventKind's order, as below
(
    K_INTAKE,
    K_RDS,
    K_GRANT,
    K_LSTART,
    K_LEND,
    K_ESCAPE,
    K_RECAPTURE,
    K_TRANSFER,
    K_TITLE,
    K_RELEASE,
    K_DEATH,
) = range(len(KINDS))
RANK = tuple(KIND_RANK[k] for k in KINDS)
MINUTE = 60


@dataclass
class DetentionEvents:
    t: I64  # UTC seconds
    period: I64
    kind: I64
    seq: I64  # position within the period (for the event id)
    src: I64  # institution index
    a: I64  # kind-specific: title / planned day / leave_from / to_institution / release kind
    b: I64  # kind-specific: sentence days / leave_until
    c: I64  # municipality index or -1
    planned_in_intake: I64  # per period: planned release day written in the intake, or -1
    return_in_intake: I64  # per period: return municipality written in the intake, or -1
    leaves: I64  # per period
    escapes: I64
    transfers: I64
    leave_muni: I64
    date_changes: I64  # per period: 1 when the planned release date changed later

    def __len__(self) -> int:
        return len(self.t)


def build_events(
    pop: Population,
    places: Places,
    rng: np.random.Generator,
    pyrng: random.Random,
    progress: Callable[[int], None] | None = None,
) -> DetentionEvents:
    """The detention events of every period: the per-period draws (numpy), then each period's
    events laid out on its stay (plain Python, in period order)."""
    draws = _draw_per_period(pop, places, rng)
    layout = _Layout(pop, places, draws, pyrng)
    n = pop.n
    step = max(1, n // 200)
    for i in range(n):
        layout.period(i)
        if progress is not None and (i + 1) % step == 0:
            progress(i + 1)
    if progress is not None:
        progress(n)
    return layout.result()


@dataclass
class _Draws:
    """What :func:`build_events` draws per period before laying out the events."""

    n_leaves: I64
    non_return: B8  # the last leave ends in an escape
    escape: B8  # a custody escape
    n_tr: I64  # transfers
    sentenced_at_intake: B8
    in_intake: B8  # the planned release day is written in the intake
    change: B8  # the planned release day changes later
    planned0: I64  # the first planned release day
    late_change: B8  # the change comes in the last week
    end_rds: B8  # forensic: a release date set near the end
    ret: I64  # return municipality
    leave_muni: I64
    ret_in_intake: I64


def _draw_per_period(pop: Population, places: Places, rng: np.random.Generator) -> _Draws:
    n = pop.n
    g = pop.group
    stay = pop.stay_days
    death = pop.is_death

    lam = np.zeros(n, dtype=np.float64)
    long_sentence = np.isin(g, [Group.PT_SENTENCE, Group.SENTENCE])
    lam = np.where(long_sentence & (stay >= 180), P.LEAVES_LONG_SENTENCE, lam)
    lam = np.where(long_sentence & (stay >= 365), P.LEAVES_VERY_LONG_SENTENCE, lam)
    lam = np.where((g == Group.JJI_DET) & (stay >= 90), P.LEAVES_JUVENILE, lam)
    lam = np.where(g == Group.PIJ, P.LEAVES_PIJ, lam)
    lam = np.where(g == Group.TBS, P.LEAVES_TBS, lam)
    lam = np.where(death, 0.0, lam)
    n_leaves = np.minimum(rng.poisson(lam), P.MAX_LEAVES)
    non_return = (n_leaves > 0) & (rng.random(n) < P.NON_RETURN_FROM_LEAVE)
    escape = ~death & (stay >= 7) & (rng.random(n) < P.ESCAPE_FROM_CUSTODY)
    u = rng.random(n)
    n_tr = np.where((stay > 30) & (u < P.TRANSFER_OVER_30_DAYS), 1, 0)
    n_tr = np.where((stay > 180) & (u < P.TRANSFER_OVER_180_DAYS), 1, n_tr)
    n_tr = n_tr + ((stay > 365) & (rng.random(n) < P.SECOND_TRANSFER_OVER_365_DAYS))
    forensic_or_young = np.isin(g, [Group.TBS, Group.PIJ, Group.JJI_PT, Group.JJI_DET])
    n_tr = np.where(forensic_or_young, (stay > 60) & (u < 0.1), n_tr).astype(np.int64)

    sentenced_at_intake = np.isin(pop.title_in, [T_PRISON, T_REPLACEMENT, T_JUVENILE])
    has_planned = pop.planned_day >= 0
    in_intake = sentenced_at_intake & has_planned & (rng.random(n) < P.PLANNED_DATE_IN_INTAKE)
    early = pop.planned_day != pop.day_out  # fine paid, death: no later correction to the date
    change = has_planned & ~early & (stay >= 30) & (rng.random(n) < P.RELEASE_DATE_CHANGE)
    delta = rng.integers(3, 61, n) * np.where(rng.random(n) < 0.5, -1, 1)
    planned0 = np.where(change, pop.planned_day + delta, pop.planned_day)
    planned0 = np.where(change, np.maximum(planned0, pop.day_in + 1), planned0)
    change &= planned0 != pop.planned_day
    late_change = rng.random(n) < P.RELEASE_DATE_LATE_CHANGE
    end_rds = np.isin(g, [Group.TBS, Group.PIJ]) & ~death & (rng.random(n) < 0.6)

    res = pop.p_residence[pop.person]
    ret = pop.return_muni
    n_muni = len(places.municipality_codes)
    anywhere = rng.choice(n_muni, size=n, p=places.municipality_weights)
    leave_muni = np.where(ret >= 0, ret, np.where(res >= 0, res, anywhere))
    ret_in_intake = np.where((ret >= 0) & (ret != res) & ~pop.return_changed_later, ret, -1)
    return _Draws(
        n_leaves=n_leaves,
        non_return=non_return,
        escape=escape,
        n_tr=n_tr,
        sentenced_at_intake=sentenced_at_intake,
        in_intake=in_intake,
        change=change,
        planned0=planned0,
        late_change=late_change,
        end_rds=end_rds,
        ret=ret,
        leave_muni=leave_muni,
        ret_in_intake=ret_in_intake,
    )


_Loc = Callable[[int, float], int]
_LocalDay = Callable[[int], int]
_Office = Callable[[int, int], int]


def _local_clock(pop: Population, rnd: Callable[[], float]) -> tuple[_Loc, _LocalDay, _Office]:
    """Three conversions over the days of the population's stays (with 40 days' margin):
    ``loc(day, sec)``, the UTC moment of a local day and second; ``lday(t)``, the local day of
    a UTC moment; ``office(t, limit)``, ``t`` moved into office hours (uses ``rnd``)."""
    d_lo = int(min(pop.day_in.min(initial=0), pop.day_out.min(initial=0))) - 40
    d_hi = int(max(pop.day_in.max(initial=0), pop.day_out.max(initial=0))) + 40
    day_off: list[int] = [
        int(x) for x in clock.day_offsets(np.arange(d_lo, d_hi + 1, dtype=np.int64)).tolist()
    ]

    def loc(day: int, sec: float) -> int:
        return day * DAY + int(sec) - day_off[day - d_lo]

    def lday(t: int) -> int:
        return (t + day_off[t // DAY - d_lo]) // DAY

    def office(t: int, limit: int) -> int:
        """``t`` moved forward into office hours (08:00-18:00 local) if that stays before
        ``limit``; administrative messages are not typed at night."""
        local = t + day_off[t // DAY - d_lo]
        sec = local % DAY
        if 8 * HOUR <= sec < 18 * HOUR:
            return t
        day = local // DAY + (1 if sec >= 18 * HOUR else 0)
        moved = loc(day, 8 * HOUR + rnd() * 2 * HOUR)
        return moved if moved < limit else t

    return loc, lday, office


_Event = tuple[int, int, int, int, int, int]  # (t, rank, kind, a, b, c)


class _Layout:
    """Lays out the events of one period after another on its stay and appends them to the
    columns; :meth:`result` gives the columns and the per-period counts."""

    def __init__(
        self, pop: Population, places: Places, draws: _Draws, pyrng: random.Random
    ) -> None:
        n = pop.n
        self.draws = draws
        self.pyrng = pyrng
        self.rnd = pyrng.random
        self.loc, self.lday, self.office = _local_clock(pop, self.rnd)
        self.types = places.institution_type
        self.same_type = {t: places.by_type[t].tolist() for t in places.by_type}

        self.col_t = array("q")
        self.col_p = array("q")
        self.col_k = array("b")
        self.col_seq = array("h")
        self.col_s = array("h")
        self.col_a = array("q")
        self.col_b = array("q")
        self.col_c = array("i")
        self.escapes_out = np.zeros(n, dtype=np.int64)
        self.leaves_out = np.zeros(n, dtype=np.int64)
        self.transfers_out = np.zeros(n, dtype=np.int64)
        self.changed_out = draws.change.astype(np.int64)
        self.intake_planned = np.where(draws.in_intake, draws.planned0, -1)

        self.L_t_in = pop.t_in.tolist()
        self.L_t_out = pop.t_out.tolist()
        self.L_t_tc = pop.t_tc.tolist()
        self.L_tc = pop.has_tc.tolist()
        self.L_death = pop.is_death.tolist()
        self.L_title_in = pop.title_in.tolist()
        self.L_title_out = pop.title_out.tolist()
        self.L_sentence = pop.sentence.tolist()
        self.L_kind = pop.release_kind.tolist()
        self.L_inst = pop.institution.tolist()
        self.L_ret = draws.ret.tolist()
        self.L_changed = pop.return_changed_later.tolist()
        self.L_planned = pop.planned_day.tolist()
        self.L_day_out = pop.day_out.tolist()
        self.L_planned0 = draws.planned0.tolist()
        self.L_in_intake = draws.in_intake.tolist()
        self.L_sent_in = draws.sentenced_at_intake.tolist()
        self.L_change = draws.change.tolist()
        self.L_late = draws.late_change.tolist()
        self.L_end_rds = draws.end_rds.tolist()
        self.L_leaves = draws.n_leaves.tolist()
        self.L_nonret = draws.non_return.tolist()
        self.L_escape = draws.escape.tolist()
        self.L_ntr = draws.n_tr.tolist()
        self.L_lmuni = draws.leave_muni.tolist()

    def period(self, i: int) -> None:
        """Period ``i``'s events, in the order of the module's docstring, into the columns."""
        tin = self.L_t_in[i]
        tout = self.L_t_out[i]
        ev: list[_Event] = []
        tr_t, tr_to = self._transfers(i, tin, tout, ev)
        self.transfers_out[i] = len(tr_t)
        ev.append((tin, RANK[K_INTAKE], K_INTAKE, self.L_title_in[i], 0, -1))
        self._release_dates(i, tin, tout, ev)
        self._custody_escape(i, tin, tout, ev)
        self._leaves(i, tin, tout, ev)
        if self.L_death[i]:
            ev.append((tout, RANK[K_DEATH], K_DEATH, 0, 0, -1))
        else:
            rk = self.L_kind[i]
            ev.append(
                (tout, RANK[K_RELEASE], K_RELEASE, rk, 0, self.L_ret[i] if rk != R_INTO_TBS else -1)
            )
        ev.sort()
        if ev[-1][2] not in (K_RELEASE, K_DEATH) or ev[0][2] != K_INTAKE:  # pragma: no cover
            raise AssertionError(f"period {i}: events outside the stay: {ev}")
        self._append(i, ev, tr_t, tr_to)

    def _transfers(
        self, i: int, tin: int, tout: int, ev: list[_Event]
    ) -> tuple[list[int], list[int]]:
        """Transfers between 5 % and 45 % of the stay, daytime: their moments and the
        institutions they go to."""
        pyrng, rnd, lday = self.pyrng, self.rnd, self.lday
        span = tout - tin
        inst0 = self.L_inst[i]
        tr_t: list[int] = []
        tr_to: list[int] = []
        if self.L_ntr[i]:
            lo_d = lday(tin + span // 20) + 1
            hi_d = lday(tin + span * 45 // 100) - 1
            if hi_d >= lo_d:
                cur = inst0
                pool = self.same_type[self.types[inst0]]
                for d in sorted({pyrng.randint(lo_d, hi_d) for _ in range(self.L_ntr[i])}):
                    if len(pool) < 2:
                        break
                    dest = cur
                    while dest == cur:
                        dest = pool[int(rnd() * len(pool))]
                    tt = self.loc(d, 9 * HOUR + rnd() * 6 * HOUR)
                    if not tin < tt < tout:
                        continue
                    tr_t.append(tt)
                    tr_to.append(dest)
                    ev.append((tt, RANK[K_TRANSFER], K_TRANSFER, dest, 0, -1))
                    cur = dest
        return tr_t, tr_to

    def _release_dates(self, i: int, tin: int, tout: int, ev: list[_Event]) -> None:
        """The planned release date after the intake (or in it) or after the judgment, a
        forensic one near the end, and a later change of it."""
        rnd, office = self.rnd, self.office
        span = tout - tin
        planned = self.L_planned[i]
        ret_c = self.L_ret[i] if self.L_changed[i] else -1
        first_rds = -1
        first_pos = -1
        if planned >= 0 and self.L_sent_in[i]:
            if self.L_in_intake[i]:
                first_rds = tin
            else:
                first_rds = tin + int(30 * MINUTE + rnd() * min(30 * HOUR, span * 0.3))
                first_rds = office(first_rds, tin + span // 2)
                first_pos = len(ev)
                ev.append((first_rds, RANK[K_RDS], K_RDS, self.L_planned0[i], 0, ret_c))
                ret_c = -1
        if self.L_tc[i]:
            ttc = self.L_t_tc[i]
            title_out = self.L_title_out[i]
            sent = self.L_sentence[i] if title_out != self.L_title_in[i] else 0
            ev.append((ttc, RANK[K_TITLE], K_TITLE, title_out, sent, -1))
            if planned >= 0:
                first_rds = ttc + int(10 * MINUTE + rnd() * min(26 * HOUR, (tout - ttc) * 0.4))
                first_rds = office(first_rds, ttc + (tout - ttc) // 2)
                first_pos = len(ev)
                ev.append((first_rds, RANK[K_RDS], K_RDS, self.L_planned0[i], 0, ret_c))
                ret_c = -1
        if self.L_end_rds[i]:
            t_rds = max(tin + HOUR, tout - int((14 + rnd() * 76) * DAY))
            t_rds = office(t_rds, tout - DAY)
            ev.append((t_rds, RANK[K_RDS], K_RDS, self.L_day_out[i], 0, ret_c))
            ret_c = -1
        if self.L_change[i] and first_rds >= 0:
            if self.L_late[i]:
                lo, hi = tout - int(6.9 * DAY), tout - DAY
            else:
                lo, hi = first_rds + HOUR, tout - 8 * DAY
            lo = max(lo, first_rds + 10 * MINUTE)
            if hi > lo:
                t_change = office(lo + int(rnd() * (hi - lo)), hi)
                ev.append((t_change, RANK[K_RDS], K_RDS, planned, 0, ret_c))
            else:  # no room for a later change: the first date was right after all
                self.changed_out[i] = 0
                if first_pos >= 0:
                    t0, r0, k0, _a, b0, c0 = ev[first_pos]
                    ev[first_pos] = (t0, r0, k0, planned, b0, c0)
                else:
                    self.intake_planned[i] = planned

    def _custody_escape(self, i: int, tin: int, tout: int, ev: list[_Event]) -> None:
        """An escape from custody between 46 % and 59 % of the stay, and the recapture."""
        if self.L_escape[i]:
            rnd = self.rnd
            span = tout - tin
            te = tin + int(span * (0.46 + 0.06 * rnd()))
            latest = tin + int(span * 0.59)
            tr = te + int(min(2 * DAY * self.pyrng.lognormvariate(0, 1), latest - te))
            if tr > te + 10 * MINUTE:
                ev.append((te, RANK[K_ESCAPE], K_ESCAPE, 0, 0, -1))
                ev.append((tr, RANK[K_RECAPTURE], K_RECAPTURE, 0, 0, -1))
                self.escapes_out[i] += 1

    def _leaves(self, i: int, tin: int, tout: int, ev: list[_Event]) -> None:
        """Leaves in the last part of the stay, after the judgment, one slot each; the last
        one may end in an escape (not returned) and a recapture."""
        k = self.L_leaves[i]
        if not k:
            return
        pyrng, rnd, loc, lday = self.pyrng, self.rnd, self.loc, self.lday
        span = tout - tin
        ws = tin + int(span * 0.6)
        if self.L_tc[i]:
            ws = max(ws, self.L_t_tc[i] + DAY)
        ws = max(ws, tout - 365 * DAY)
        we = tout - DAY
        k = min(k, max(0, (we - ws) // (12 * DAY)))
        lm = self.L_lmuni[i]
        slot = (we - ws) // k if k else 0
        made = 0
        for j in range(k):
            s0 = ws + j * slot
            lead = pyrng.randint(7, min(21, max(7, slot // DAY - 4)))
            nights = 0 if rnd() < P.DAY_LEAVE_SHARE else pyrng.randint(1, 3)
            first_day = lday(s0) + lead + 1
            last_day = lday(s0 + slot) - nights - 1
            if last_day < first_day:
                continue
            d = pyrng.randint(first_day, last_day)
            lf = loc(d, 9 * HOUR + rnd() * 2 * HOUR)
            if nights:
                lu = loc(d + nights, 17 * HOUR + rnd() * 2 * HOUR)
            else:
                lu = lf + int(8 * HOUR + rnd() * 4 * HOUR)
            grant = loc(d - lead, 10 * HOUR + rnd() * 6 * HOUR)
            if not (s0 <= grant < lf and lu < s0 + slot):
                continue
            ev.append((grant, RANK[K_GRANT], K_GRANT, lf, lu, lm))
            ev.append((lf + int(rnd() * 30 * MINUTE), RANK[K_LSTART], K_LSTART, 0, 0, lm))
            made += 1
            if j == k - 1 and self.L_nonret[i]:
                te = lu + int(HOUR + rnd() * 5 * HOUR)
                tr = te + int(4 * DAY * pyrng.lognormvariate(0, 1))
                tr = min(tr, tout - 2 * HOUR)
                ev.append((te, RANK[K_ESCAPE], K_ESCAPE, 0, 0, -1))
                ev.append((tr, RANK[K_RECAPTURE], K_RECAPTURE, 0, 0, -1))
                self.escapes_out[i] += 1
            else:
                back = lu - int(rnd() * 2 * HOUR) if rnd() < 0.95 else lu + int(rnd() * HOUR)
                ev.append((back, RANK[K_LEND], K_LEND, 0, 0, -1))
        self.leaves_out[i] = made

    def _append(self, i: int, ev: list[_Event], tr_t: list[int], tr_to: list[int]) -> None:
        """The sorted events of period ``i`` into the columns, each with the institution the
        person is in at that moment (a transfer comes from the institution the person
        leaves)."""
        src = self.L_inst[i]
        nt = 0
        for seq, (t, _rank, kind, a, b, c) in enumerate(ev):
            while nt < len(tr_t) and tr_t[nt] < t:
                src = tr_to[nt]
                nt += 1
            self.col_t.append(t)
            self.col_p.append(i)
            self.col_k.append(kind)
            self.col_seq.append(seq)
            self.col_s.append(src)
            self.col_a.append(a)
            self.col_b.append(b)
            self.col_c.append(c)

    def result(self) -> DetentionEvents:
        def np64(col: array[int]) -> I64:
            return np.frombuffer(col, dtype=f"i{col.itemsize}").astype(np.int64)

        columns = (self.col_t, self.col_p, self.col_k, self.col_seq, self.col_s, self.col_a,
                   self.col_b, self.col_c)  # fmt: skip
        t, period, kind, seq, src, a, b, c = (np64(col) for col in columns)
        per_period = (self.intake_planned, self.draws.ret_in_intake, self.leaves_out,
                      self.escapes_out, self.transfers_out, self.draws.leave_muni,
                      self.changed_out)  # fmt: skip
        return DetentionEvents(t, period, kind, seq, src, a, b, c, *per_period)
