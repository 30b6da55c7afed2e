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

from terugkeer.domain.codes import EventKind
from terugkeer.domain.events import KIND_RANK
from terugkeer.synth import clock
from terugkeer.synth import params as P
from terugkeer.synth.clock import DAY, HOUR, I64
from terugkeer.synth.model import (
    R_INTO_TBS,
    T_JUVENILE,
    T_PRISON,
    T_REPLACEMENT,
    Group,
    Population,
)
from terugkeer.synth.places import Places

KINDS = (
    EventKind.INTAKE,
    EventKind.RELEASE_DATE_SET,
    EventKind.LEAVE_GRANTED,
    EventKind.LEAVE_START,
    EventKind.LEAVE_END,
    EventKind.ESCAPE,
    EventKind.RECAPTURE,
    EventKind.TRANSFER,
    EventKind.TITLE_CHANGE,
    EventKind.RELEASE,
    EventKind.DEATH,
)
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
    n = pop.n
    g = pop.group
    stay = pop.stay_days
    death = pop.is_death

    # --- per-period draws -------------------------------------------------------------------
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

    types = places.institution_type
    same_type = {t: places.by_type[t].tolist() for t in places.by_type}

    col_t = array("q")
    col_p = array("q")
    col_k = array("b")
    col_seq = array("h")
    col_s = array("h")
    col_a = array("q")
    col_b = array("q")
    col_c = array("i")
    escapes_out = np.zeros(n, dtype=np.int64)
    leaves_out = np.zeros(n, dtype=np.int64)
    transfers_out = np.zeros(n, dtype=np.int64)
    changed_out = change.astype(np.int64)
    intake_planned = np.where(in_intake, planned0, -1)

    L_t_in = pop.t_in.tolist()
    L_t_out = pop.t_out.tolist()
    L_t_tc = pop.t_tc.tolist()
    L_tc = pop.has_tc.tolist()
    L_death = death.tolist()
    L_title_in = pop.title_in.tolist()
    L_title_out = pop.title_out.tolist()
    L_sentence = pop.sentence.tolist()
    L_kind = pop.release_kind.tolist()
    L_inst = pop.institution.tolist()
    L_ret = ret.tolist()
    L_changed = pop.return_changed_later.tolist()
    L_planned = pop.planned_day.tolist()
    L_day_out = pop.day_out.tolist()
    L_planned0 = planned0.tolist()
    L_in_intake = in_intake.tolist()
    L_sent_in = sentenced_at_intake.tolist()
    L_change = change.tolist()
    L_late = late_change.tolist()
    L_end_rds = end_rds.tolist()
    L_leaves = n_leaves.tolist()
    L_nonret = non_return.tolist()
    L_escape = escape.tolist()
    L_ntr = n_tr.tolist()
    L_lmuni = leave_muni.tolist()
    rnd = pyrng.random
    step = max(1, n // 200)

    for i in range(n):
        tin = L_t_in[i]
        tout = L_t_out[i]
        span = tout - tin
        inst0 = L_inst[i]
        ev: list[tuple[int, int, int, int, int, int]] = []  # (t, rank, kind, a, b, c)

        # transfers: between 5 % and 45 % of the stay, daytime
        tr_t: list[int] = []
        tr_to: list[int] = []
        if L_ntr[i]:
            lo_d = lday(tin + span // 20) + 1
            hi_d = lday(tin + span * 45 // 100) - 1
            if hi_d >= lo_d:
                cur = inst0
                pool = same_type[types[inst0]]
                for d in sorted({pyrng.randint(lo_d, hi_d) for _ in range(L_ntr[i])}):
                    if len(pool) < 2:
                        break
                    dest = cur
                    while dest == cur:
                        dest = pool[int(rnd() * len(pool))]
                    tt = loc(d, 9 * HOUR + rnd() * 6 * HOUR)
                    if not tin < tt < tout:
                        continue
                    tr_t.append(tt)
                    tr_to.append(dest)
                    ev.append((tt, RANK[K_TRANSFER], K_TRANSFER, dest, 0, -1))
                    cur = dest
        transfers_out[i] = len(tr_t)

        ev.append((tin, RANK[K_INTAKE], K_INTAKE, L_title_in[i], 0, -1))

        # release dates
        planned = L_planned[i]
        ret_c = L_ret[i] if L_changed[i] else -1
        first_rds = -1
        first_pos = -1
        if planned >= 0 and L_sent_in[i]:
            if L_in_intake[i]:
                first_rds = tin
            else:
                first_rds = tin + int(30 * MINUTE + rnd() * min(30 * HOUR, span * 0.3))
                first_rds = office(first_rds, tin + span // 2)
                first_pos = len(ev)
                ev.append((first_rds, RANK[K_RDS], K_RDS, L_planned0[i], 0, ret_c))
                ret_c = -1
        if L_tc[i]:
            ttc = L_t_tc[i]
            sent = L_sentence[i] if L_title_out[i] != L_title_in[i] else 0
            ev.append((ttc, RANK[K_TITLE], K_TITLE, L_title_out[i], sent, -1))
            if planned >= 0:
                first_rds = ttc + int(10 * MINUTE + rnd() * min(26 * HOUR, (tout - ttc) * 0.4))
                first_rds = office(first_rds, ttc + (tout - ttc) // 2)
                first_pos = len(ev)
                ev.append((first_rds, RANK[K_RDS], K_RDS, L_planned0[i], 0, ret_c))
                ret_c = -1
        if L_end_rds[i]:
            t_rds = max(tin + HOUR, tout - int((14 + rnd() * 76) * DAY))
            t_rds = office(t_rds, tout - DAY)
            ev.append((t_rds, RANK[K_RDS], K_RDS, L_day_out[i], 0, ret_c))
            ret_c = -1
        if L_change[i] and first_rds >= 0:
            if L_late[i]:
                lo, hi = tout - int(6.9 * DAY), tout - DAY
            else:
                lo, hi = first_rds + HOUR, tout - 8 * DAY
            lo = max(lo, first_rds + 10 * MINUTE)
            if hi > lo:
                t_change = office(lo + int(rnd() * (hi - lo)), hi)
                ev.append((t_change, RANK[K_RDS], K_RDS, planned, 0, ret_c))
                ret_c = -1
            else:  # no room for a later change: the first date was right after all
                changed_out[i] = 0
                if first_pos >= 0:
                    t0, r0, k0, _a, b0, c0 = ev[first_pos]
                    ev[first_pos] = (t0, r0, k0, planned, b0, c0)
                else:
                    intake_planned[i] = planned

        # custody escape: between 46 % and 59 % of the stay
        if L_escape[i]:
            te = tin + int(span * (0.46 + 0.06 * rnd()))
            latest = tin + int(span * 0.59)
            tr = te + int(min(2 * DAY * pyrng.lognormvariate(0, 1), latest - te))
            if tr > te + 10 * MINUTE:
                ev.append((te, RANK[K_ESCAPE], K_ESCAPE, 0, 0, -1))
                ev.append((tr, RANK[K_RECAPTURE], K_RECAPTURE, 0, 0, -1))
                escapes_out[i] += 1

        # leaves: in the last part of the stay, after the judgment, one slot each
        k = L_leaves[i]
        if k:
            ws = tin + int(span * 0.6)
            if L_tc[i]:
                ws = max(ws, L_t_tc[i] + DAY)
            ws = max(ws, tout - 365 * DAY)
            we = tout - DAY
            k = min(k, max(0, (we - ws) // (12 * DAY)))
            lm = L_lmuni[i]
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
                if j == k - 1 and L_nonret[i]:
                    te = lu + int(HOUR + rnd() * 5 * HOUR)
                    tr = te + int(4 * DAY * pyrng.lognormvariate(0, 1))
                    tr = min(tr, tout - 2 * HOUR)
                    ev.append((te, RANK[K_ESCAPE], K_ESCAPE, 0, 0, -1))
                    ev.append((tr, RANK[K_RECAPTURE], K_RECAPTURE, 0, 0, -1))
                    escapes_out[i] += 1
                else:
                    back = lu - int(rnd() * 2 * HOUR) if rnd() < 0.95 else lu + int(rnd() * HOUR)
                    ev.append((back, RANK[K_LEND], K_LEND, 0, 0, -1))
            leaves_out[i] = made

        if L_death[i]:
            ev.append((tout, RANK[K_DEATH], K_DEATH, 0, 0, -1))
        else:
            rk = L_kind[i]
            ev.append(
                (tout, RANK[K_RELEASE], K_RELEASE, rk, 0, L_ret[i] if rk != R_INTO_TBS else -1)
            )

        ev.sort()
        if ev[-1][2] not in (K_RELEASE, K_DEATH) or ev[0][2] != K_INTAKE:  # pragma: no cover
            raise AssertionError(f"period {i}: events outside the stay: {ev}")
        src = inst0
        nt = 0
        for seq, (t, _rank, kind, a, b, c) in enumerate(ev):
            while nt < len(tr_t) and tr_t[nt] < t:
                src = tr_to[nt]
                nt += 1
            col_t.append(t)
            col_p.append(i)
            col_k.append(kind)
            col_seq.append(seq)
            # the transfer itself comes from the institution the person leaves
            col_s.append(src)  # a transfer comes from the institution the person leaves
            col_a.append(a)
            col_b.append(b)
            col_c.append(c)
        if progress is not None and (i + 1) % step == 0:
            progress(i + 1)

    if progress is not None:
        progress(n)

    def np64(col: array[int]) -> I64:
        return np.frombuffer(col, dtype=f"i{col.itemsize}").astype(np.int64)

    return DetentionEvents(
        t=np64(col_t),
        period=np64(col_p),
        kind=np64(col_k),
        seq=np64(col_seq),
        src=np64(col_s),
        a=np64(col_a),
        b=np64(col_b),
        c=np64(col_c),
        planned_in_intake=intake_planned,
        return_in_intake=ret_in_intake,
        leaves=leaves_out,
        escapes=escapes_out,
        transfers=transfers_out,
        leave_muni=leave_muni,
        date_changes=changed_out,
    )
