"""Sweep scaling: the same 16-point sweep on 1 and on 2 local workers, measured in one run.

    python benchmarks/sweep_scaling.py            # 16 points (4 x 4), t_stop 5 ms, 3 rounds
    python benchmarks/sweep_scaling.py --quick    # 16 points, t_stop 1 ms, arbor only, 1 round

Each point is a full check (every backend plus the analytic and lumped references), every
simulation in its own process, the results cache off.  Prints both wall times, the speed-up
ratio (target >= 1.7 on two otherwise idle cores) and the per-task and per-point overhead
of the process isolation: the time of a trivial task (the lumped solution of a one-cell
model) run in a fresh process, minus the same task run in this process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

TARGET_RATIO = 1.7


def _model(t_stop_ms: float):
    from crosssim.builtin import builtin_model
    from crosssim.model import apply_overrides

    return apply_overrides(builtin_model("two_cells"),
                           [("simulation.t_stop_ms", t_stop_ms),
                            ("discretization.cvs_per_cell", 9)], source="<benchmark>")


def _sweep(model, grid, backends, workers: int) -> tuple[float, object]:
    from crosssim.study.cache import ResultsCache
    from crosssim.study.executors import LocalExecutor
    from crosssim.study.sweeps import sweep

    started = time.perf_counter()
    result = sweep(model, grid, backends=backends, executor=LocalExecutor(workers),
                   cache=ResultsCache(enabled=False))
    return time.perf_counter() - started, result


def _isolation_overhead(repeats: int) -> tuple[float, float]:
    """(seconds per trivial task in a fresh process, seconds for it in this process)."""
    from crosssim.check import run_source
    from crosssim.model import model_from_dict
    from crosssim.study.executors import SourceTask, run_isolated

    tiny = model_from_dict({
        "name": "tiny", "simulation": {"t_stop_ms": 0.1, "dt_ms": 0.05},
        "cells": [{"name": "a", "length_um": 10.0, "radius_um": 1.0, "cm_F_per_m2": 0.01,
                   "ra_ohm_cm": 100.0, "g_leak_S_per_cm2": 0.0001, "e_leak_mV": -65.0}]})
    payload = SourceTask("lumped", tiny).payload(environment=True)
    run_source("lumped", tiny)  # warm up imports in this process
    run_isolated(payload)  # start the fork server
    inside, isolated = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        run_source("lumped", tiny)
        inside.append(time.perf_counter() - started)
        started = time.perf_counter()
        reply = run_isolated(payload)
        isolated.append(time.perf_counter() - started)
        if not reply.get("ok"):
            raise SystemExit(f"trivial task failed: {reply.get('error')}")
    return statistics.median(isolated), statistics.median(inside)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="t_stop 1 ms and Arbor only (a few seconds)")
    parser.add_argument("--t-stop", type=float, default=None, metavar="MS",
                        help="simulated time per point (default 5 ms, --quick 1 ms)")
    parser.add_argument("--backend", default=None,
                        help="comma-separated backends (default: all; --quick: arbor)")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="rounds of (1 worker, 2 workers), interleaved; medians compared "
                        "(default 3, --quick 1)")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)

    from crosssim.backends.base import available_backends
    from crosssim.study.sweeps import parse_grid

    t_stop = args.t_stop or (1.0 if args.quick else 5.0)
    if args.backend:
        backends = [name.strip() for name in args.backend.split(",") if name.strip()]
    else:
        backends = ["arbor"] if args.quick else available_backends()
    grid = parse_grid(["gap_junctions.0.g_uS=log:1e-3:1e-1:4", "cells.b.length_um=50:200:4"])
    model = _model(t_stop)
    points = 16
    tasks_per_point = len(backends) + 2
    print(f"sweep_scaling: {points} points x {tasks_per_point} simulations "
          f"({', '.join(backends)}, analytic, lumped), t_stop {t_stop:g} ms, cache off")

    # Warm-up: compile NEURON's mechanisms, start the fork server, fill the OS file cache.
    _sweep(model, parse_grid(["gap_junctions.0.g_uS=0.01"]), backends, 1)

    # Interleaved rounds (1, 2, then 2, 1, ...) so a busy period of a shared machine hits
    # both alike; medians are compared.
    times: dict[int, list[float]] = {1: [], 2: []}
    for round_index in range(args.repeat):
        for workers in ((1, 2) if round_index % 2 == 0 else (2, 1)):
            seconds, result = _sweep(model, grid, backends, workers)
            times[workers].append(seconds)
            errors = [p.reason for p in result.points if p.verdict == "error"]
            if errors:
                print(f"warning: {len(errors)} point(s) errored, e.g. {errors[0]}",
                      file=sys.stderr)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    ratio = one / two
    isolated, inside = _isolation_overhead(5 if args.quick else 9)
    overhead = max(0.0, isolated - inside)
    rounds = f" (median of {args.repeat})" if args.repeat > 1 else ""
    print(f"1 worker : {one:7.2f} s{rounds}  ({one / points:.3f} s per point)")
    print(f"2 workers: {two:7.2f} s{rounds}  ({two / points:.3f} s per point)")
    print(f"speed-up 2 vs 1 workers: {ratio:.2f} (target >= {TARGET_RATIO})")
    print(f"process isolation overhead: {overhead * 1e3:.1f} ms per simulation "
          f"(trivial task {isolated * 1e3:.1f} ms in a fresh process, {inside * 1e3:.2f} ms "
          f"in-process), {overhead * tasks_per_point * 1e3:.0f} ms per point "
          f"({tasks_per_point} simulations; NEURON adds its own child process on top)")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
