"""Throughput of the comparison layer: align + all metrics for one pair of sources.

Default case: 2 sources x 1,000 probes x 20,000 samples (the required floor is 50 M samples/s,
counting the samples of both sources).  One source has T/dt + 1 samples with rounding drift
(NEURON style), the other T/dt samples (Arbor style), so alignment does real work.

    python benchmarks/compare_throughput.py [--probes 1000] [--samples 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crosssim.compare import compare_results
from crosssim.result import RunResult

REQUIRED_SAMPLES_PER_S = 50e6


def make_sources(n_probes: int, n_samples: int, dt: float = 0.025) -> tuple[RunResult, RunResult]:
    """Two synthetic sources: ``n_samples + 1`` drifting times vs ``n_samples`` exact times."""
    rng = np.random.default_rng(0)
    times = np.arange(n_samples + 1) * dt
    drifting = np.cumsum(np.full(n_samples + 1, dt)) - dt  # accumulated t += dt
    base = -70.0 + 10.0 * np.sin(times[None, :] / 7.0 + rng.uniform(0, 6, (n_probes, 1)))
    probes = [f"p{i}" for i in range(n_probes)]
    neuron = RunResult("neuron", probes, drifting, base)
    arbor = RunResult("arbor", probes, times[:-1],
                      base[:, :-1] + rng.normal(0, 1e-9, (n_probes, n_samples)))
    return arbor, neuron


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    arbor, neuron = make_sources(args.probes, args.samples)
    compare_results(arbor, neuron, kind="backends", tolerance_mV=1e-6)  # warm up
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        comparisons = compare_results(arbor, neuron, kind="backends", tolerance_mV=1e-6)
        best = min(best, time.perf_counter() - started)
    n_compared = comparisons[0].n_samples
    total = 2 * args.probes * n_compared
    rate = total / best
    verdict = "OK" if rate >= REQUIRED_SAMPLES_PER_S else "BELOW FLOOR"
    print(f"2 sources x {args.probes} probes x {n_compared} common samples: best of "
          f"{args.repeat} = {best * 1e3:.1f} ms -> {rate / 1e6:.1f} M samples/s "
          f"({rate / 2e6:.1f} M sample pairs/s); floor {REQUIRED_SAMPLES_PER_S / 1e6:.0f} M "
          f"samples/s: {verdict}")


if __name__ == "__main__":
    main()
