"""Wall time of the discretized references against Arbor's own run (a benchmark, not a test).

    python benchmarks/discretized_speed.py            # 10,000-cell ring, 11 CVs, 50 ms at dt 0.025
    python benchmarks/discretized_speed.py --quick    # 1,000 cells, fewer rounds, no semidiscrete

``discrete`` (the recurrence the simulators step) and ``run_source("arbor", ...)`` run
interleaved in this process, medians; the target is ``discrete <= 2 x Arbor``.  The
``semidiscrete`` reference (exact in time) on the same network is timed once.  Building
the model object is outside every timing.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import interleaved, median, print_table

from crosssim.analytic.discretized import discrete, semidiscrete
from crosssim.builtin import builtin_model
from crosssim.sources import run_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 cells, 3 rounds, semidiscrete skipped (under a minute)")
    parser.add_argument("--cells", type=int, default=None, help="ring size (default 10,000)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds")
    args = parser.parse_args()
    n_cells = args.cells or (1_000 if args.quick else 10_000)
    repeats = args.repeats or 3
    model = builtin_model("ring", {"n_cells": n_cells, "cvs_per_cell": 11, "dt_ms": 0.025,
                                   "t_stop_ms": 50.0})
    steps = model.simulation.n_steps
    print(f"ring of {n_cells} cells x 11 CVs, {steps} steps of 0.025 ms, "
          f"{len(model.effective_probes())} probes; {repeats} interleaved rounds")
    results: dict[str, object] = {}

    def run_discrete():
        results["discrete"] = discrete(model)

    def run_arbor():
        results["arbor"] = run_source("arbor", model)

    seconds = interleaved({"discrete": run_discrete, "arbor": run_arbor}, repeats,
                          warmup=not args.quick)
    worst = float(np.max(np.abs(results["discrete"].values_mV - results["arbor"].values_mV)))
    cvs = n_cells * 11
    rows = [[name, f"{median(times):.2f}", f"{median(times) / (cvs * steps) * 1e9:.1f}"]
            for name, times in seconds.items()]
    print_table(["source", "median s", "ns per CV per step"], rows)
    ratio = median(seconds["discrete"]) / median(seconds["arbor"])
    print(f"discrete / arbor = {ratio:.2f} (target <= 2); max |arbor - discrete| = "
          f"{worst:.2g} mV")
    if not args.quick:
        result = semidiscrete(model)
        stepping = np.max(np.abs(result.values_mV - results["discrete"].values_mV))
        print(f"semidiscrete: {result.wall_time_s:.1f} s [{result.info['method']}, "
              f"{result.info.get('contour_nodes', 0)} contour nodes]; max |discrete - "
              f"semidiscrete| = {stepping:.3g} mV (the time-stepping part)")


if __name__ == "__main__":
    main()
