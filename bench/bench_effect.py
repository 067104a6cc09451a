"""治理成效: how honest are the before/after figures on staggered signings with growing effects?

Draws the simulated panels of tests/analytics/effect_simulation.py (80 compounds, 20 never
signed, 60 signing two a month over 30 months, effect −0.6 per month since signing up to 12
months, ticket-weighted) and prints, for the robust estimator (never-signed and not-yet-signed
controls) and the plain two-way fixed-effects figure: the mean truth, mean bias (and as a share
of the truth), how often the 95% interval covers the truth, the mean interval width, and the
same coverage with no effect planted.

    .venv/bin/python bench/bench_effect.py [--draws 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from govdash.analytics.metrics.effect import (
    NEVER,
    NOT_YET,
    Estimate,
    difference_in_differences,
    robust_effect,
)
from tests.analytics.effect_simulation import (
    WINDOW,
    staggered_panel,
    true_average_effect,
)

METHODS = {
    "robust (never-signed controls)": lambda panel: robust_effect(
        panel, "outcome", WINDOW, "tickets", NEVER, with_events=False
    ).estimate,
    "robust (not-yet-signed controls)": lambda panel: robust_effect(
        panel, "outcome", WINDOW, "tickets", NOT_YET, with_events=False
    ).estimate,
    "plain TWFE (comparison)": lambda panel: difference_in_differences(
        panel, "outcome", WINDOW, "tickets"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="first seed; draws use seed…")
    args = parser.parse_args()
    rows = []
    seconds = dict.fromkeys(METHODS, 0.0)
    for seed in range(args.seed, args.seed + args.draws):
        panel = staggered_panel(seed)
        truth = true_average_effect(panel)
        null = panel.assign(outcome=panel["outcome"] - panel["effect"])
        for name, estimate_of in METHODS.items():
            started = time.perf_counter()
            found: Estimate = estimate_of(panel)
            zero: Estimate = estimate_of(null)
            seconds[name] += time.perf_counter() - started
            rows.append(
                {
                    "method": name,
                    "truth": truth,
                    "bias": found.estimate - truth,
                    "covered": found.low <= truth <= found.high,
                    "width": found.high - found.low,
                    "covers_zero": zero.low <= 0 <= zero.high,
                }
            )
    frame = pd.DataFrame(rows)
    summary = frame.groupby("method", sort=False).agg(
        truth=("truth", "mean"),
        bias=("bias", "mean"),
        coverage=("covered", "mean"),
        width=("width", "mean"),
        null_coverage=("covers_zero", "mean"),
    )
    summary["bias_share"] = summary["bias"] / summary["truth"].abs()
    print(f"{args.draws} draws, seeds {args.seed}–{args.seed + args.draws - 1}, window {WINDOW}")
    print(
        "| method | mean truth | mean bias | bias ÷ truth | 95% coverage | "
        "mean width | coverage of 0, no effect | s per fit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in summary.iterrows():
        print(
            f"| {name} | {row['truth']:.2f} | {row['bias']:+.3f} | {row['bias_share']:+.1%} | "
            f"{row['coverage']:.1%} | {row['width']:.2f} | {row['null_coverage']:.1%} | "
            f"{seconds[str(name)] / (2 * args.draws):.2f} |"
        )
    errors = frame.groupby("method", sort=False)["bias"].agg(lambda b: np.sqrt(np.mean(b**2)))
    print("root mean squared error:", ", ".join(f"{k} {v:.3f}" for k, v in errors.items()))


if __name__ == "__main__":
    main()
