"""Wall time of the analytic references (a benchmark, not a test).

    python benchmarks/analytic_speed.py            # the seed: 501 samples x 2 probes
    python benchmarks/analytic_speed.py --large    # also 10,000-cell ring and 100 x 100 grid

The brief's floor: the seed's exact cable solution in <= 2 s.
"""

from __future__ import annotations

import argparse
import time

from crosssim.analytic import exact_cable, lumped
from crosssim.builtin import SEED_CELL, builtin_model
from crosssim.model import Model, model_from_dict


def best_of(function, model: Model, repeat: int) -> float:
    """Smallest wall time in seconds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function(model)
        best = min(best, time.perf_counter() - started)
    return best


def network(kind: str, n_cells: int) -> Model:
    """A ring or a square grid of seed cells, alternating leak reversals, one clamp."""
    cells = [{"name": f"c{i}", **SEED_CELL, "e_leak_mV": -60.0 - 40.0 * (i % 2)}
             for i in range(n_cells)]
    if kind == "ring":
        pairs = [(i, (i + 1) % n_cells) for i in range(n_cells)]
    else:
        side = int(round(n_cells**0.5))
        pairs = [(r * side + c, r * side + c + 1) for r in range(side) for c in range(side - 1)]
        pairs += [(r * side + c, (r + 1) * side + c) for r in range(side - 1)
                  for c in range(side)]
    return model_from_dict({
        "name": f"{kind}_{n_cells}",
        "simulation": {"t_stop_ms": 50.0, "dt_ms": 0.025},
        "cells": cells,
        "gap_junctions": [{"cells": [f"c{a}", f"c{b}"], "x": [0.9, 0.1], "g_uS": 0.01}
                          for a, b in pairs],
        "probes": [{"cell": "c0", "x": 0.5}, {"cell": f"c{n_cells // 2}", "x": 0.5}],
        "stimuli": [{"cell": "c3", "x": 0.5, "delay_ms": 10.0, "duration_ms": 20.0,
                     "amplitude_nA": 0.1}],
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also time 10,000-cell networks")
    args = parser.parse_args()
    seed = builtin_model("two_cells")
    shape = exact_cable(seed).values_mV.shape
    print(f"seed exact_cable ({shape[1]} samples x {shape[0]} probes): "
          f"{best_of(exact_cable, seed, 7) * 1e3:.1f} ms (floor 2000 ms)")
    print(f"seed lumped: {best_of(lumped, seed, 7) * 1e3:.1f} ms")
    if args.large:
        for kind in ("ring", "grid"):
            model = network(kind, 10_000)
            for function in (lumped, exact_cable):
                result = function(model)
                method = result.info.get("solver", result.info["method"])
                print(f"{model.name} ({len(model.gap_junctions)} junctions, "
                      f"{result.times_ms.size} samples) {function.__name__}: "
                      f"{result.wall_time_s:.2f} s [{method}]")


if __name__ == "__main__":
    main()
