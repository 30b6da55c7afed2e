"""Benchmark: the Monte Carlo analysis of one cost-benefit scenario (a 120-month model),
vectorised over draws in numpy, against a straightforward per-draw Python loop of the same
model (``terugkeer.mkba.reference``) in the same run, on the first draws of the same stream
and scaled to all draws. Both must give the same results for the same draws.

    python bench/mkba.py [--draws N] [--loop-draws K] [--scenario NAME] [--seed S]

Target (issue 16): 100,000 draws in under 2 s on a 2-core machine, ratio at least 50. The last
line is the contract JSON; ``value`` the vectorised time (best of ``--repeat``), ``ratio`` the
loop's scaled time over it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import common  # noqa: F401  (sets the environment the product asks for)
from terugkeer.mkba import analysis, reference, scenario
from terugkeer.mkba.model import PERSPECTIVES


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=100_000)
    parser.add_argument("--loop-draws", type=int, default=300)
    parser.add_argument("--scenario", default="pit-amsterdam")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    prep = analysis.prepare(scenario.load(args.scenario))
    assert prep.setup.horizon_months == 120  # noqa: S101 - the issue's model size
    analysis.monte_carlo(prep, 1000, args.seed)  # warm up (imports, first allocations)
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        mc = analysis.monte_carlo(prep, args.draws, args.seed)
        times.append(time.perf_counter() - started)
    ours = min(times)

    k = min(args.loop_draws, args.draws)
    started = time.perf_counter()
    loop = np.array(
        [
            [
                reference.simulate_one({n: float(v[i]) for n, v in mc.inputs.items()}, prep.setup)[
                    p
                ]
                for p in PERSPECTIVES
            ]
            for i in range(k)
        ]
    )
    per_draw = (time.perf_counter() - started) / k
    baseline = per_draw * args.draws
    scale = float(np.abs(loop).max())
    diff = float(np.abs(mc.net[:k] - loop).max())
    identical = diff <= 1e-9 * scale
    society = mc.summary()["society"]
    print(
        f"{args.scenario}: {args.draws:,} draws of a {prep.setup.horizon_months}-month model in "
        f"{ours:.3f} s (best of {args.repeat}: {', '.join(f'{t:.3f}' for t in times)}); per-draw "
        f"loop {per_draw * 1000:.2f} ms a draw over {k} draws, {baseline:.1f} s scaled; ratio "
        f"{baseline / ours:.0f}; largest difference on the same draws {diff:.2e} (of {scale:,.0f}); "
        f"society NPV mean {society['mean']:,.0f}, P(B>C) {society['p_benefits_exceed_costs']:.3f}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "mkba",
                "value": round(ours, 3),
                "unit": f"s per {args.draws:,} Monte Carlo draws (120 months)",
                "baseline": f"per-draw Python loop of the same model ({k} draws, scaled)",
                "baseline_value": round(baseline, 3),
                "ratio": round(baseline / ours, 1),
                "n": args.draws,
                "store": "none",
                "identical": identical,
                "max_difference": diff,
                "seed": args.seed,
            }
        )
    )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
