"""Benchmark: Kaplan-Meier curves for many groups at once (issue 15).

    python bench/km.py [--releases N] [--groups G] [--seed S] [--repeat R] [--fractional]

N synthetic releases (default 1,000,000) in G groups (default 100): follow-up in whole days
up to five years (a data cut-off), time to reconviction exponential with a hazard per group,
censored at the cut-off. ``terugkeer.monitor.survival.km_many`` computes every group's curve
at once; the baseline, in the same run, is a loop of ``lifelines.KaplanMeierFitter`` over the
groups (the members of each group selected beforehand, outside the timing). Both are timed as
the best of R runs. The results must be equal: survival, interval and numbers at risk of every
group to 1e-9, or the benchmark fails.

The ratio is lifelines' time over km_many's (issue 15: at least 20). ``--fractional`` draws
fractional times instead of whole days (km_many then sorts instead of counting on a grid).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from typing import Any

import numpy as np
from lifelines import KaplanMeierFitter

from terugkeer.monitor.survival import km_many

TOL = 1e-9


def make_releases(
    n: int, groups: int, seed: int, fractional: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow-up time (days), event (reconvicted before the cut-off) and group per release."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, n)
    yearly = rng.uniform(0.15, 0.6, groups)  # chance of reconviction in the first year
    hazard = -np.log(1 - yearly) / 365.25
    to_event = rng.exponential(1 / hazard[group])
    cutoff = rng.uniform(0, 5 * 365.25, n)
    event = to_event <= cutoff
    follow = np.minimum(to_event, cutoff)
    if not fractional:
        follow = np.ceil(follow)
    return follow, event, group


def _best(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fractional", action="store_true")
    args = parser.parse_args()

    follow, event, group = make_releases(args.releases, args.groups, args.seed, args.fractional)
    split = [(follow[group == g], event[group == g]) for g in range(args.groups)]
    print(
        f"{args.releases:,} releases in {args.groups} groups (seed {args.seed}), "
        f"{int(event.sum()):,} reconvicted, "
        f"{'fractional' if args.fractional else 'whole-day'} times",
        file=sys.stderr,
    )
    ours, result = _best(lambda: km_many(follow, event, group), args.repeat)

    def loop() -> list[KaplanMeierFitter]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' notices from inside lifelines
            return [KaplanMeierFitter().fit(t, e) for t, e in split]

    theirs, fitted = _best(loop, max(1, min(args.repeat, 2)))

    worst = 0.0
    for g, kmf in enumerate(fitted):
        curve = result.curve(g)
        expected = kmf.survival_function_.iloc[:, 0].loc[curve.time].to_numpy()
        bounds = kmf.confidence_interval_.loc[curve.time].to_numpy()
        at_risk = kmf.event_table["at_risk"].loc[curve.time].to_numpy()
        if not np.array_equal(at_risk, curve.at_risk):
            print(f"group {g}: numbers at risk differ", file=sys.stderr)
            return 1
        worst = max(
            worst,
            float(np.abs(expected - curve.survival).max()),
            float(np.abs(bounds[:, 0] - curve.lower).max()),
            float(np.abs(bounds[:, 1] - curve.upper).max()),
        )
    equal = worst <= TOL
    ratio = theirs / ours
    print(
        f"km_many {ours:.3f} s; lifelines loop {theirs:.3f} s; ratio {ratio:.1f} "
        f"(target ≥ 20); largest difference {worst:.1e} ({'equal' if equal else 'NOT EQUAL'})",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "km",
                "value": round(ours, 4),
                "unit": "s for all curves",
                "baseline": "a loop of lifelines.KaplanMeierFitter per group",
                "baseline_value": round(theirs, 4),
                "ratio": round(ratio, 1),
                "n": args.releases,
                "groups": args.groups,
                "rows": int(result.time.size),
                "fractional": args.fractional,
                "seed": args.seed,
                "max_abs_difference": worst,
                "equal": equal,
            }
        )
    )
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
