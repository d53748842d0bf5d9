"""Build time, run time and peak memory of large gap-junction rings, per backend.

Each (backend, N) runs in a fresh Python process: build the model
(``builtin_model("ring", n_cells=N, ...)``, "model s", after the imports), then
``run_backend(backend, model)`` ("run_backend s", of which "build s" and "run s" are the
simulator's build and integration), and report the peak resident memory (``getrusage`` max
RSS) of that process and, for NEURON, of its child (where NEURON itself runs).  Memory linear
in N shows as a constant "MB per 1000 cells" of the simulator's process between sizes.

    python benchmarks/scale.py [--quick] [--cells 1000,2500,5000,10000] [--t-stop 50]
        [--probes 10]

``--quick``: N = 500, 1000, 2000.  Defaults: 11 CVs per cell, dt 0.025 ms, 50 ms, 10 probes
sampled every step (``--probes N`` samples every cell's middle).

Jaxley (``--backend jaxley``, needs ``pip install 'crosssim[jaxley]'``) runs twice per N, in
fresh processes sharing a fresh ``CROSSSIM_CACHE_DIR``: "cold" (JAX compiles everything, as
on a first run) and "warm" (JAX's persistent compilation cache, which crosssim keeps under
that folder, answers the compile steps).  Its "build s" is the Jaxley network and "compile
s" the XLA compilation of the simulation; "total s" is the whole process: imports, model,
``run_backend``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import child_env, print_table

_MEASURE = r"""
import json, resource, sys, time
started = time.perf_counter()
from crosssim.builtin import builtin_model
from crosssim.backends import run_backend
imported = time.perf_counter()
params = json.loads(sys.argv[2])
model = builtin_model("ring", params)
built = time.perf_counter()
result = run_backend(sys.argv[1], model)
finished = time.perf_counter()
info = result.info
print(json.dumps({
    "import_s": imported - started, "model_s": built - imported,
    "build_s": info["build_s"], "run_s": info["run_s"], "compile_s": info.get("compile_s"),
    "backend_s": finished - built,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def measure(backend: str, params: dict, cache_dir: str | None = None) -> dict:
    env = child_env()
    if cache_dir is not None:
        env["CROSSSIM_CACHE_DIR"] = cache_dir
    done = subprocess.run([sys.executable, "-c", _MEASURE, backend, json.dumps(params)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{backend} N={params['n_cells']} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cells", default=None)
    parser.add_argument("--cvs", type=int, default=11)
    parser.add_argument("--t-stop", type=float, default=50.0)
    parser.add_argument("--dt", type=float, default=0.025)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--backend", default="arbor,neuron")
    args = parser.parse_args()
    sizes = [int(n) for n in (args.cells or ("500,1000,2000" if args.quick
                                             else "1000,2500,5000,10000")).split(",")]
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]
    rows = []
    for backend in backends:
        previous = None
        for n_cells in sizes:
            params = {"n_cells": n_cells, "cvs_per_cell": args.cvs, "t_stop_ms": args.t_stop,
                      "dt_ms": args.dt, "n_probes": min(args.probes, n_cells)}
            runs = [(backend, measure(backend, params))]
            if backend == "jaxley":
                cache_dir = tempfile.mkdtemp(prefix="crosssim-scale-")
                runs = [(f"{backend} ({state})", measure(backend, params, cache_dir))
                        for state in ("cold", "warm")]
                os.environ.get("CROSSSIM_KEEP_SCALE_CACHE") or _remove(cache_dir)
            for label, m in runs:
                # the process where the simulator runs: this one or the child (NEURON)
                peak = m["child_rss_mb"] if backend == "neuron" else m["rss_mb"]
                slope = ""
                if previous is not None and previous[2] == label:
                    slope = f"{(peak - previous[1]) / (n_cells - previous[0]) * 1000:.1f}"
                compile_s = "-" if m["compile_s"] is None else f"{m['compile_s']:.2f}"
                total = m["import_s"] + m["model_s"] + m["backend_s"]
                rows.append((label, n_cells, f"{m['model_s']:.2f}", f"{m['build_s']:.2f}",
                             compile_s, f"{m['run_s']:.2f}", f"{m['backend_s']:.2f}",
                             f"{total:.2f}", f"{m['rss_mb']:.0f}",
                             f"{m['child_rss_mb']:.0f}" if backend == "neuron" else "-", slope))
            previous = (n_cells, peak, runs[-1][0])
            print(f"  done: {backend} N={n_cells}", file=sys.stderr, flush=True)
    print(f"ring, {args.cvs} CVs/cell, {args.t_stop:g} ms at dt {args.dt:g} ms, "
          f"{args.probes} probes sampled every step; one fresh process per row")
    print_table(("backend", "N cells", "model s", "build s", "compile s", "run s",
                 "run_backend s", "total s", "peak RSS MB", "NEURON child MB",
                 "simulator MB per 1000 cells (vs previous)"), rows)
    return 0


def _remove(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
