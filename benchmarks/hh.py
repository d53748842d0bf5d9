"""What Hodgkin-Huxley costs: ns per CV per step with hh next to the passive cable, and the
whole ``crosssim check hh_ring --param n_cells=1000`` command.

1. **Cost per CV per step.**  The built-in ``hh_ring`` (every CV carries hh) and the passive
   ``ring`` of the same size (N cells x 11 CVs, the same junction layout, dt 0.025 ms, the
   same number of steps, 10 probes sampled every 1 ms), run through crosssim on each backend;
   integration time only (Arbor ``simulation.run``, NEURON ``psolve`` in the child, Jaxley
   the compiled run) divided by CVs x steps.  hh and passive alternate (A B, B A, ...), so
   ``hh / passive`` is a ratio from one run; quote it rather than the nanoseconds on a busy
   machine.  NEURON runs hh a second time with its rate tables on (``hh_tables = true``,
   NEURON's own default; crosssim's is off, see ``tests/test_hh_backends.py``).
2. **The whole command.**  ``crosssim check hh_ring --param n_cells=1000`` (205 ms of
   simulated time, 11,000 CVs, both simulators and, when installed, Jaxley) timed from
   outside, process start to exit.  With ``farm-bench`` on PATH it does the timing (median
   wall, user + system CPU and peak memory over ``--repeat`` runs, against the same command
   on the passive ring as ``--vs``); without it, interleaved ``subprocess`` runs.

    python benchmarks/hh.py [--quick] [--cells 100,1000] [--repeat 3] [--backend arbor,neuron]
        [--no-command]

``--quick``: N = 100 and 1,000 with fewer steps, one round, the command once per side.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import child_env, median, print_table

#: The passive ring's junctions sit where the hh ring's do (x = 1 of cell i to x = 0 of i+1).
CVS_PER_CELL = 11
DT_MS = 0.025


def models(n_cells: int, steps: int):
    """(hh_ring, ring) of ``n_cells`` cells run for ``steps`` steps."""
    from crosssim.builtin import builtin_model

    t_stop = steps * DT_MS
    common = {"n_cells": n_cells, "cvs_per_cell": CVS_PER_CELL, "t_stop_ms": t_stop,
              "dt_ms": DT_MS, "n_probes": min(10, n_cells), "sample_dt_ms": 1.0}
    return (builtin_model("hh_ring", common),
            builtin_model("ring", {**common, "g_uS": 0.05}))


def cost_per_cv(cells: list[int], backends: list[str], repeat: int, steps: int) -> None:
    from crosssim.backends import run_backend

    rows = []
    for n_cells in cells:
        hh, passive = models(n_cells, steps)
        total = n_cells * CVS_PER_CELL
        for name in backends:
            cases = [("hh", hh), ("passive", passive)]
            if name == "neuron":
                tables = hh.backends.model_copy(update={"neuron": hh.backends.neuron.model_copy(
                    update={"hh_tables": True})})
                cases.append(("tables", hh.replace(backends=tables)))
            seconds: dict[str, list[float]] = {label: [] for label, _ in cases}
            for _, model in cases:  # warm-up: caches, Jaxley's compilation
                run_backend(name, model)
            for round_index in range(repeat):
                for label, model in cases if round_index % 2 == 0 else cases[::-1]:
                    seconds[label].append(float(run_backend(name, model).info["run_s"]))
            ns = {label: median(values) / (total * steps) * 1e9
                  for label, values in seconds.items()}
            ratios = [a / b for a, b in zip(seconds["hh"], seconds["passive"])]
            rows.append((name, n_cells, total, steps, f"{ns['passive']:.1f}",
                         f"{ns['hh']:.1f}", f"{median(ratios):.2f}",
                         f"{ns['tables']:.1f}" if "tables" in ns else "-"))
            print(f"  done: {name}, N={n_cells}", file=sys.stderr, flush=True)
    print_table(("backend", "N cells", "CVs", "steps", "passive ns/CV/step",
                 "hh ns/CV/step", "hh / passive", "hh, NEURON's tables ns/CV/step"), rows)


def _command(model: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "crosssim", "check", model, "--param", "n_cells=1000",
            "--quiet", *extra]


def whole_command(repeat: int, backend_arguments: list[str]) -> None:
    hh = _command("hh_ring", *backend_arguments)
    # the passive ring over the same simulated time, no references: the yardstick
    passive = _command("ring", "--param", "t_stop_ms=205", "--param", "g_uS=0.05",
                       "--references", "none", *backend_arguments)
    print(f"\nA: {' '.join(hh[1:])}\nB: {' '.join(passive[1:])}\n")
    farm = shutil.which("farm-bench")
    if farm is not None:
        subprocess.run([farm, "-n", str(repeat), "--warmup", "1", "--timeout",
                        str(min(3600, 120 * (2 * repeat + 2))), "--vs",
                        " ".join(passive), "--", *hh], check=False, env=child_env())
        return
    seconds: dict[str, list[float]] = {"A": [], "B": []}
    for round_index in range(repeat):
        pair = (("A", hh), ("B", passive))
        for label, command in pair if round_index % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False, env=child_env())
            seconds[label].append(time.perf_counter() - started)
    print_table(("command", "median wall s", "runs"),
                [(label, f"{median(values):.2f}", len(values))
                 for label, values in seconds.items()])
    print(f"A / B: {median([a / b for a, b in zip(seconds['A'], seconds['B'])]):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cells", default="100,1000")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--backend", default=None,
                        help="comma-separated (default: arbor, neuron and, when installed, "
                        "jaxley)")
    parser.add_argument("--no-command", action="store_true",
                        help="skip timing the whole crosssim check command")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    if args.backend is None:
        args.backend = "arbor,neuron" + (",jaxley" if importlib.util.find_spec("jaxley")
                                         else "")
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]
    cells = [int(n) for n in args.cells.split(",")]
    cost_per_cv(cells, backends, repeat, steps=800 if args.quick else 4000)
    if not args.no_command:
        explicit = ["--backend", args.backend] if args.backend else []
        whole_command(1 if args.quick else max(3, repeat), explicit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
