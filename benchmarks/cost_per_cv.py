"""Cost per control volume (CV) per time step of each backend, beside this machine's memory
bandwidth.

For rings of N cells (crosssim's built-in ``ring``) with 1, 11 and 101 CVs per cell, run each
backend through crosssim and divide the integration time (Arbor: ``simulation.run``; NEURON:
``psolve`` inside the child; Jaxley: the compiled simulation, after its compilation) by
(CVs x steps); Jaxley runs when it is installed (``--backend`` chooses).  Build, process
start and sampling set-up (and Jaxley's compilation) are not part of this number (see
``overhead.py`` for end to end).  Only ``min(10, N)`` probes are sampled, every
``sample_dt`` = 1 ms, so sampling does not weigh on small models.

Bandwidth reference: numpy ``np.add(b, c, out=a)`` on float64 arrays (STREAM "add": 24 bytes
moved per element: two reads, one write) and ``np.copyto`` (16 bytes), once with arrays far
larger than the last-level cache (DRAM) and once with 4 MiB arrays (cache-resident).  Each
is turned into a floor for one CV-step with ``CV_RECORD_BYTES``: an implicit-Euler step of a
passive cable cannot move less than 80 bytes per CV: 10 float64 accesses: read and write the
voltage, write and read back the assembled diagonal and right-hand side, read the axial
coupling, the capacitance, the leak conductance and the leak reversal.  Real solvers move
more (indices, currents, two sweeps), so the floor is optimistic; where a model's state fits
in the cache the cache-resident floor is the relevant one.

    python benchmarks/cost_per_cv.py [--quick] [--repeat 3] [--plot cost_per_cv.png]

``--quick``: N = 2, 100, 1000, shorter runs, one repetition, smaller bandwidth arrays.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median, print_table

#: Bytes one CV-step must move at the very least (see the module docstring).
CV_RECORD_BYTES = 80


def bandwidth_gb_s(array_bytes: int, repeats: int) -> dict[str, float]:
    """Median bandwidth in GB/s of numpy ``add`` (24 B/element) and ``copy`` (16 B/element)."""
    n = array_bytes // 8
    a = np.zeros(n)
    b = np.ones(n)
    c = np.ones(n)
    result = {}
    for name, kernel, bytes_per_element in (
            ("add", lambda: np.add(b, c, out=a), 24),
            ("copy", lambda: np.copyto(a, b), 16)):
        kernel()
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            kernel()
            seconds.append(time.perf_counter() - started)
        result[name] = n * bytes_per_element / median(seconds) / 1e9
    return result


def steps_for(total_cvs: int, target_cv_steps: float, max_steps: int) -> int:
    """Steps so that CVs x steps is about ``target_cv_steps`` (at least 200, multiple of 40)."""
    steps = int(min(max_steps, max(200, target_cv_steps / total_cvs)))
    return max(40, steps // 40 * 40)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cells", default=None, help="comma-separated N (default 2,100,1000,"
                        "10000; quick 2,100,1000)")
    parser.add_argument("--cvs", default="1,11,101")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--dt", type=float, default=0.025)
    parser.add_argument("--backend", default=None,
                        help="comma-separated (default: arbor, neuron and, when installed, "
                        "jaxley)")
    parser.add_argument("--plot", type=Path, default=Path("cost_per_cv.png"))
    args = parser.parse_args()
    cells = [int(n) for n in (args.cells or ("2,100,1000" if args.quick
                                             else "2,100,1000,10000")).split(",")]
    cvs_list = [int(n) for n in args.cvs.split(",")]
    repeat = args.repeat or (1 if args.quick else 3)
    target = 1.5e7 if args.quick else 6e7
    max_steps = 20000 if args.quick else 40000
    if args.backend is None:
        import importlib.util

        args.backend = "arbor,neuron" + (",jaxley" if importlib.util.find_spec("jaxley")
                                         else "")
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]

    from crosssim.backends import run_backend
    from crosssim.builtin import builtin_model

    dram_bytes = (256 if args.quick else 1024) * 2**20
    dram = bandwidth_gb_s(dram_bytes, 5)
    cache = bandwidth_gb_s(4 * 2**20, 50)
    floors = {f"{where} {kernel}": CV_RECORD_BYTES / bandwidth[kernel]
              for where, bandwidth in (("DRAM", dram), ("cache", cache))
              for kernel in ("add", "copy")}

    rows = []
    measured: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for n_cells in cells:
        for cvs in cvs_list:
            total = n_cells * cvs
            steps = steps_for(total, target, max_steps)
            t_stop = steps * args.dt
            sample_dt = min(1.0, t_stop)
            params = {"n_cells": n_cells, "cvs_per_cell": cvs, "t_stop_ms": t_stop,
                      "dt_ms": args.dt, "n_probes": min(10, n_cells)}
            if _whole(t_stop, sample_dt):
                params["sample_dt_ms"] = sample_dt
            if n_cells == 2:  # a ring needs 3 cells: two cells are a chain of one junction
                model = builtin_model("chain", params)
            else:
                model = builtin_model("ring", params)
            seconds: dict[str, list[float]] = {name: [] for name in backends}
            for round_index in range(repeat):
                order = backends if round_index % 2 == 0 else backends[::-1]
                for name in order:
                    seconds[name].append(float(run_backend(name, model).info["run_s"]))
            for name in backends:
                ns = median(seconds[name]) / (total * model.simulation.n_steps) * 1e9
                measured.setdefault((name, cvs), []).append((total, ns))
                label = f"{n_cells} (chain)" if n_cells == 2 else n_cells
                rows.append((name, label, cvs, total, model.simulation.n_steps,
                             f"{median(seconds[name]):.3f}", f"{ns:.2f}",
                             f"{ns / floors['DRAM add']:.1f}"))
            print(f"  done: N={n_cells}, {cvs} CVs/cell", file=sys.stderr, flush=True)

    print(f"Memory bandwidth (numpy, median): DRAM ({dram_bytes // 2**20} MiB arrays) add "
          f"{dram['add']:.1f} GB/s, copy {dram['copy']:.1f} GB/s; cache-resident (4 MiB) add "
          f"{cache['add']:.1f} GB/s, copy {cache['copy']:.1f} GB/s")
    print(f"Floor for one CV-step ({CV_RECORD_BYTES} B): "
          + ", ".join(f"{name} {value:.2f} ns" for name, value in floors.items()))
    print()
    print_table(("backend", "N cells", "CVs/cell", "CVs", "steps", "run s", "ns/CV/step",
                 "x DRAM-add floor"), rows)
    _plot(measured, floors, args.plot)
    print(f"\nwrote {args.plot}")
    return 0


def _whole(value: float, unit: float) -> bool:
    ratio = value / unit
    return abs(ratio - round(ratio)) < 1e-9 * max(1.0, ratio)


def _plot(measured, floors, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    markers = {1: "o", 11: "s", 101: "^"}
    colours = {"arbor": "tab:blue", "neuron": "tab:orange", "jaxley": "tab:green"}
    for (name, cvs), points in sorted(measured.items()):
        points = sorted(points)
        axes.plot([p[0] for p in points], [p[1] for p in points],
                  marker=markers.get(cvs, "x"), color=colours.get(name),
                  label=f"{name}, {cvs} CVs/cell")
    for label, style in (("DRAM add", "--"), ("cache add", ":")):
        axes.axhline(floors[label], color="grey", linestyle=style,
                     label=f"floor, {label} bandwidth ({floors[label]:.1f} ns)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("control volumes in the model (N cells x CVs per cell)")
    axes.set_ylabel("ns per CV per step")
    axes.set_title("Integration cost per CV per step, gap-junction rings")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    raise SystemExit(main())
