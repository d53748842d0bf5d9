"""Branched cells (section trees) beside today's rings: integration cost, the references and
the whole ``crosssim check tree`` command.

Three parts (``--part``, comma-separated, default all), every ratio measured in this run:

* ``cost``: ns per CV per step of Arbor and NEURON on a network of trees against a ring with
  the same number of CVs: ``tree`` (N cells x 20 sections x 5 CVs) against ``ring``
  (N cells x 100 CVs), N = 1,000 (``--quick``: 100), both sampled every 1 ms at 8-10
  probes, rounds interleaved (ring, tree, then tree, ring ...).  The time is the
  simulator's own integration (``RunResult.info["run_s"]``: Arbor's ``simulation.run`` in
  this process, NEURON's ``psolve`` in its child).  CPU: Arbor's run CPU seconds (the
  process's CPU time around each ``simulation.run`` call, all threads); NEURON's child as a
  whole (user + sys of the finished child process, start-up and build included) over its
  wall time: a share well below 1 says the loaded machine took the core away.  The tree
  has one zero-area point node per fork (``crosssim.cvgraph``) besides its CVs; ns/CV/step
  divides by the membrane CVs of both models.
* ``references``: ``analytic`` (the exact tree solution, Laplace domain, SuperLU per
  contour node), ``discrete`` (the implicit-Euler recurrence the simulators step) and
  ``lumped`` (one compartment per cell, a dense eigendecomposition) on the network that
  ``crosssim check tree --param n_cells=1000 --param sections_per_cell=20`` builds (10 ms,
  dt 0.025, every step sampled at 8 probes), interleaved with ``run_source("arbor")`` on
  the same model; wall and CPU seconds of each call in this process.
* ``command``: that whole command (``--format json --quiet``) in a fresh process, wall,
  CPU (user + sys of it and its children, the NEURON child included) and peak RSS, with the
  per-source breakdown from the check document's ``wall_time_s``; interleaved with the same
  command under ``OPENBLAS_NUM_THREADS=1`` (on two loaded cores OpenBLAS's second thread
  slows the lumped reference's dense eigendecomposition several-fold).

    python benchmarks/trees.py [--quick] [--part cost,references,command] [--repeat N]

``--quick`` (about a minute): 100 cells, shorter runs, fewer rounds.  The load average is
printed at the start and the end: on a shared machine quote the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import child_env, median, print_table

SECTIONS = 20
CVS_PER_SECTION = 5
RING_CVS = SECTIONS * CVS_PER_SECTION  # the same CVs per cell as a tree cell
PARTS = ("cost", "references", "command")

#: Run in a fresh wrapper process: wall seconds, CPU seconds (user + sys) and peak RSS
#: (KiB) of the command and every process it waited for, and the command's stdout.
_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True)\n"
    "wall = time.perf_counter() - started\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'wall': wall, 'cpu': usage.ru_utime + usage.ru_stime,"
    " 'peak_kib': usage.ru_maxrss, 'code': done.returncode,"
    " 'stdout': done.stdout.decode(), 'stderr': done.stderr.decode()[-800:]}))\n"
)


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# cost per CV per step ----------------------------------------------------------------------


class ArborRunCPU:
    """Adds the process CPU seconds spent inside Arbor's ``simulation.run`` (crosssim's
    ``_compat.run``, called once per sampling chunk) while active."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> ArborRunCPU:
        from crosssim.backends.arbor import _compat

        self._compat = _compat
        self._original = original = _compat.run

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - started

        _compat.run = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self._compat.run = self._original


def cost_models(n_cells: int, t_stop_ms: float) -> dict[str, Any]:
    from crosssim.builtin import builtin_model

    common = {"n_cells": n_cells, "t_stop_ms": t_stop_ms, "dt_ms": 0.025,
              "sample_dt_ms": 1.0}
    return {
        "ring": builtin_model("ring", {**common, "cvs_per_cell": RING_CVS}),
        "tree": builtin_model("tree", {**common, "sections_per_cell": SECTIONS,
                                       "cvs_per_section": CVS_PER_SECTION}),
    }


def run_cost(n_cells: int, t_stop_ms: float, repeat: int) -> None:
    from crosssim.backends import run_backend
    from crosssim.cvgraph import cv_graph

    models = cost_models(n_cells, t_stop_ms)
    graphs = {name: cv_graph(model) for name, model in models.items()}
    cvs = {name: graph.n_cvs for name, graph in graphs.items()}
    assert cvs["ring"] == cvs["tree"] == n_cells * RING_CVS, cvs
    steps = models["ring"].simulation.n_steps
    assert models["tree"].simulation.n_steps == steps

    def measure(backend: str, model) -> dict[str, float]:
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        children_started = children_cpu_s()
        if backend == "arbor":
            with ArborRunCPU() as arbor_cpu:
                result = run_backend("arbor", model)
            run_cpu = arbor_cpu.seconds
            share = run_cpu / float(result.info["run_s"])
        else:
            result = run_backend("neuron", model)
            run_cpu = float("nan")
            share = (children_cpu_s() - children_started) / float(result.info["process_s"])
        return {"run_s": float(result.info["run_s"]), "run_cpu_s": run_cpu,
                "build_s": float(result.info["build_s"]), "share": share,
                "call_s": time.perf_counter() - wall_started,
                "call_cpu_s": time.process_time() - cpu_started}

    cases = [(backend, name) for backend in ("arbor", "neuron") for name in ("ring", "tree")]
    for backend, name in cases:  # warm-up: imports, the MOD cache, page cache
        measure(backend, models[name])
    runs: dict[tuple[str, str], list[dict[str, float]]] = {case: [] for case in cases}
    for round_index in range(repeat):
        for backend, name in cases if round_index % 2 == 0 else cases[::-1]:
            runs[(backend, name)].append(measure(backend, models[name]))
        print(f"  cost: round {round_index + 1}/{repeat} done", file=sys.stderr, flush=True)

    rows = []
    for backend, name in cases:
        found = runs[(backend, name)]
        run_s = median([r["run_s"] for r in found])
        ns = run_s / (cvs[name] * steps) * 1e9
        cpu = median([r["run_cpu_s"] for r in found])
        points = graphs[name].n_nodes - cvs[name]
        rows.append((backend, name, f"{cvs[name]:,}", f"{points:,}", steps, f"{run_s:.3f}",
                     "-" if np.isnan(cpu) else f"{cpu:.3f}", f"{ns:.1f}",
                     "-" if np.isnan(cpu) else f"{cpu / (cvs[name] * steps) * 1e9:.1f}",
                     f"{median([r['share'] for r in found]):.2f}",
                     f"{median([r['build_s'] for r in found]):.2f}"))
    print(f"\n(a) cost per CV per step: {n_cells} cells, ring {RING_CVS} CVs per cell, tree "
          f"{SECTIONS} sections x {CVS_PER_SECTION} CVs; {steps} steps of 0.025 ms; "
          f"{repeat} interleaved rounds, medians")
    print_table(("backend", "model", "CVs", "point nodes", "steps", "run s", "run CPU s",
                 "ns/CV/step", "CPU ns/CV/step", "CPU share", "build s"), rows)
    for backend in ("arbor", "neuron"):
        ratios = [t["run_s"] / r["run_s"]
                  for t, r in zip(runs[(backend, "tree")], runs[(backend, "ring")])]
        text = f"{backend}: tree / ring run time {median(ratios):.2f} (per round: " + \
            ", ".join(f"{x:.2f}" for x in ratios) + ")"
        if backend == "arbor":
            cpu_ratios = [t["run_cpu_s"] / r["run_cpu_s"] for t, r in
                          zip(runs[(backend, "tree")], runs[(backend, "ring")])]
            text += f"; in CPU time {median(cpu_ratios):.2f}"
        print(text)
    neuron_over_arbor = [n["run_s"] / a["run_s"] for name in ("ring", "tree")
                         for n, a in zip(runs[("neuron", name)], runs[("arbor", name)])]
    print(f"NEURON / Arbor run time over both models: {median(neuron_over_arbor):.2f}")
    print("CPU share: Arbor run CPU / run wall; NEURON child CPU / child wall (whole child)")


# references ------------------------------------------------------------------------------


def run_references(n_cells: int, repeat: int) -> None:
    from crosssim.builtin import builtin_model
    from crosssim.sources import run_source

    model = builtin_model("tree", {"n_cells": n_cells, "sections_per_cell": SECTIONS})
    names = ("arbor", "analytic", "discrete", "lumped")
    results: dict[str, Any] = {}

    def call(name: str) -> Callable[[], tuple[float, float]]:
        def timed() -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = run_source(name, model)
            return time.perf_counter() - wall, time.process_time() - cpu
        return timed

    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_index in range(repeat):
        for name in names if round_index % 2 == 0 else names[::-1]:
            runs[name].append(call(name)())
        print(f"  references: round {round_index + 1}/{repeat} done", file=sys.stderr,
              flush=True)
    arbor = results["arbor"].values_mV
    rows = []
    for name in names:
        wall = median([w for w, _ in runs[name]])
        cpu = median([c for _, c in runs[name]])
        ratios = [w / a for (w, _), (a, _) in zip(runs[name], runs["arbor"])]
        deviation = float(np.max(np.abs(results[name].values_mV - arbor)))
        rows.append((name, f"{wall:.2f}", f"{cpu:.2f}", f"{cpu / wall:.2f}",
                     f"{median(ratios):.2f}", f"{deviation:.3g}"))
    info = results["analytic"].info
    print(f"\n(b) references on the {n_cells}-cell x {SECTIONS}-section tree network "
          f"({model.cvs(model.cells[0]) * n_cells:,} CVs, {len(model.gap_junctions)} "
          f"junctions, {model.simulation.n_steps} steps, {results['arbor'].times_ms.size} "
          f"samples x {len(results['arbor'].probes)} probes); {repeat} interleaved rounds, "
          "medians, in this process")
    print_table(("source", "wall s", "CPU s", "CPU / wall", "wall / Arbor's",
                 "max |source - arbor| mV"), rows)
    details = {key: info[key] for key in ("solver", "method", "contour_nodes", "nodes",
                                          "unknowns") if key in info}
    if details:
        print("analytic: " + ", ".join(f"{key} {value}" for key, value in details.items()))


# the whole command -----------------------------------------------------------------------


def measure_command(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *command], env=env,
                         capture_output=True, text=True, check=True)
    run = json.loads(out.stdout)
    if run["code"] != 0:
        raise SystemExit(f"{' '.join(command)} failed ({run['code']}): {run['stderr']}")
    run["document"] = json.loads(run.pop("stdout"))
    return run


def run_command(n_cells: int, repeat: int) -> None:
    command = [sys.executable, "-m", "crosssim", "check", "tree", "--param",
               f"n_cells={n_cells}", "--param", f"sections_per_cell={SECTIONS}",
               "--format", "json", "--quiet"]
    env = child_env()
    variants = {"default": env, "OPENBLAS_NUM_THREADS=1": {**env, "OPENBLAS_NUM_THREADS": "1"}}
    for variant_env in variants.values():  # warm-up
        measure_command(command, variant_env)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(repeat):
        for name in names if round_index % 2 == 0 else names[::-1]:
            runs[name].append(measure_command(command, variants[name]))
        print(f"  command: round {round_index + 1}/{repeat} done", file=sys.stderr, flush=True)

    print(f"\n(c) crosssim check tree --param n_cells={n_cells} --param "
          f"sections_per_cell={SECTIONS} (whole process, --format json --quiet); {repeat} "
          "interleaved rounds after a warm-up, medians")
    rows = []
    for name in names:
        found = runs[name]
        wall = median([r["wall"] for r in found])
        cpu = median([r["cpu"] for r in found])
        verdicts = {r["document"]["verdict"] for r in found}
        rows.append((name, f"{wall:.1f}", f"{cpu:.1f}", f"{cpu / wall:.2f}",
                     f"{median([r['peak_kib'] for r in found]) / 1024:.0f}",
                     ",".join(sorted(verdicts))))
    print_table(("environment", "wall s", "CPU s", "CPU / wall", "peak RSS MiB", "verdict"),
                rows)
    sources = [s for s in runs["default"][0]["document"]["wall_time_s"]]
    rows = []
    for source in sources:
        cells = [source]
        for name in names:
            values = [r["document"]["wall_time_s"].get(source, float("nan"))
                      for r in runs[name]]
            shares = [v / r["wall"] for v, r in zip(values, runs[name])]
            cells += [f"{median(values):.2f}", f"{100 * median(shares):.0f} %"]
        rows.append(cells)
    rest = ["rest (start-up, model, comparisons, output)"]
    for name in names:
        values = [r["wall"] - sum(r["document"]["wall_time_s"].values()) for r in runs[name]]
        rest += [f"{median(values):.2f}",
                 f"{100 * median([v / r['wall'] for v, r in zip(values, runs[name])]):.0f} %"]
    rows.append(rest)
    headers = ["source (check's wall_time_s)"]
    for name in names:
        headers += [f"{name} s", "share"]
    print_table(headers, rows)
    ratios = [b["wall"] / a["wall"] for a, b in zip(runs["default"],
                                                     runs["OPENBLAS_NUM_THREADS=1"])]
    print(f"OPENBLAS_NUM_THREADS=1 / default, whole command: {median(ratios):.2f} "
          f"(per round: {', '.join(f'{x:.2f}' for x in ratios)})")
    lumped = [b["document"]["wall_time_s"]["lumped"] / a["document"]["wall_time_s"]["lumped"]
              for a, b in zip(runs["default"], runs["OPENBLAS_NUM_THREADS=1"])]
    print(f"OPENBLAS_NUM_THREADS=1 / default, lumped reference: {median(lumped):.2f}")
    notes = runs["default"][0]["document"].get("notes", [])
    for note in notes:
        print(f"note: {note.get('subject')}: {note.get('message')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 cells, shorter runs, fewer rounds (about a minute)")
    parser.add_argument("--part", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)} (default all)")
    parser.add_argument("--cells", type=int, default=None,
                        help="cells in every network (default 1,000; quick 100)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="interleaved rounds (default cost 5, others 3; quick 2)")
    args = parser.parse_args()
    parts = [part.strip() for part in args.part.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}; allowed: {', '.join(PARTS)}")
    n_cells = args.cells or (100 if args.quick else 1000)
    t_stop = 5.0 if args.quick else 20.0
    print(f"start: {load_text()}; Python {sys.version.split()[0]}")
    if "cost" in parts:
        run_cost(n_cells, t_stop, args.repeat or (2 if args.quick else 5))
    if "references" in parts:
        run_references(n_cells, args.repeat or (2 if args.quick else 3))
    if "command" in parts:
        run_command(n_cells, args.repeat or (2 if args.quick else 3))
    print(f"\nend: {load_text()}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    raise SystemExit(main())
