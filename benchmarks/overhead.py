"""crosssim's overhead over minimal hand-written simulator scripts of the same model.

The model: crosssim's built-in ``ring`` (default 1,000 cells, 11 CVs each, 50 ms at
dt 0.025 ms, 10 probes sampled every step).  The references, in ``handwritten/``, are written
the way the simulators' tutorials write such a model and contain no crosssim code; the
script checks that they produce the very same traces as crosssim (printed as max |diff|).

What is timed, per backend (A and B interleaved, ``--repeat`` rounds, medians compared):

* Arbor, in this process: crosssim ``run_backend("arbor", model)`` (recipe, simulation,
  sampling, run, traces on the model's grid, checks) against ``handwritten/arbor_ring.run``
  (its recipe, simulation, sampling, run, traces as numpy arrays).
* Jaxley, in this process: crosssim ``run_backend("jaxley", model,
  compilation_cache=False)`` with its per-process cache of compiled structures emptied
  before every call (network, trace, compile, run, probes) against
  ``handwritten/jaxley_ring.run`` (``jx.Network``, ``connect``, ``record``, ``jx.integrate``
  in ``jax.jit``: network, trace, compile, run).  Both pay the full build and compile every
  round; JAX's in-process caches of small eager operations are warm for both after the
  warm-up round.  No persistent compilation cache on either side (crosssim's default
  persistent cache would make its side cheaper for a reason that is not overhead).
* NEURON, each in a fresh process: crosssim ``run_backend("neuron", model)`` (lowering,
  MOD-cache lookup, request file, child process: start, imports, build, run, result file,
  traces) against ``python handwritten/neuron_ring.py`` started as a child process that
  writes its traces to an ``.npy`` file which is then loaded (start, imports, build, run).

The model object is built once, outside the timings (``model -> traces``); building it
(``builtin_model("ring", ...)``, pydantic validation) is reported on its own line.

    python benchmarks/overhead.py [--quick] [--cells 1000] [--repeat 7] [--check]

``--quick``: 3 rounds instead of 7 (same model).  ``--check``: exit 1 if a ratio is over 1.10.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import HANDWRITTEN, child_env, interleaved, median

LIMIT = 1.10


def _time_arbor(model, args, repeat: int):
    """Interleaved timings of crosssim's Arbor backend and ``handwritten/arbor_ring.run``."""
    from crosssim.backends import run_backend

    sys.path.insert(0, str(HANDWRITTEN))
    import arbor_ring

    outputs: dict[str, np.ndarray] = {}

    def crosssim_arbor() -> None:
        outputs["crosssim"] = run_backend("arbor", model).values_mV

    def hand_arbor() -> None:
        outputs["hand"] = arbor_ring.run(args.cells, args.cvs, args.t_stop, args.dt,
                                         len(model.probes))[1]

    return interleaved({"crosssim": crosssim_arbor, "hand": hand_arbor}, repeat), outputs


def _time_jaxley(model, args, repeat: int):
    """Interleaved timings of crosssim's Jaxley backend and ``handwritten/jaxley_ring.run``."""
    from crosssim.backends import run_backend
    from crosssim.backends.jaxley import network

    sys.path.insert(0, str(HANDWRITTEN))
    import jaxley_ring

    outputs: dict[str, np.ndarray] = {}

    def crosssim_jaxley() -> None:
        network.clear_cache()
        outputs["crosssim"] = run_backend("jaxley", model, compilation_cache=False).values_mV

    def hand_jaxley() -> None:
        outputs["hand"] = jaxley_ring.run(args.cells, args.cvs, args.t_stop, args.dt,
                                          len(model.probes))[1]

    return interleaved({"crosssim": crosssim_jaxley, "hand": hand_jaxley}, repeat), outputs


def _time_neuron(model, args, repeat: int):
    """Interleaved timings of crosssim's NEURON backend and ``python neuron_ring.py``."""
    from crosssim.backends import run_backend
    from crosssim.backends.neuron.mechanisms import ensure_mechanisms, mechanism_library

    library = str(mechanism_library(ensure_mechanisms()))
    scratch = Path(tempfile.mkdtemp(prefix="crosssim-overhead-"))
    out = scratch / "hand.npy"
    command = [sys.executable, str(HANDWRITTEN / "neuron_ring.py"), library, str(args.cells),
               "--cvs", str(args.cvs), "--t-stop", str(args.t_stop), "--dt", str(args.dt),
               "--probes", str(len(model.probes)), "--out", str(out)]
    env = child_env()
    outputs: dict[str, np.ndarray] = {}

    def crosssim_neuron() -> None:
        outputs["crosssim"] = run_backend("neuron", model).values_mV

    def hand_neuron() -> None:
        subprocess.run(command, env=env, check=True, stdin=subprocess.DEVNULL)
        outputs["hand"] = np.load(out)

    return interleaved({"crosssim": crosssim_neuron, "hand": hand_neuron}, repeat), outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds (CI)")
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--cvs", type=int, default=11)
    parser.add_argument("--t-stop", type=float, default=50.0)
    parser.add_argument("--dt", type=float, default=0.025)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--backend", default=None,
                        help="comma-separated (default: arbor, neuron and, when installed, "
                        "jaxley)")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 if a ratio is over {LIMIT}")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 7)
    if args.backend is None:
        import importlib.util

        args.backend = "arbor,neuron" + (",jaxley" if importlib.util.find_spec("jaxley")
                                         else "")
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]

    from crosssim.builtin import builtin_model

    params = {"n_cells": args.cells, "cvs_per_cell": args.cvs, "t_stop_ms": args.t_stop,
              "dt_ms": args.dt}
    started = time.perf_counter()
    model = builtin_model("ring", params)
    model_s = time.perf_counter() - started
    print(f"model: ring of {args.cells} cells x {args.cvs} CVs, {args.t_stop:g} ms at dt "
          f"{args.dt:g} ms, {len(model.probes)} probes sampled every step; "
          f"{repeat} interleaved rounds, medians")
    print(f"building the model object (not timed below): {model_s:.3f} s")

    failed = False
    for backend in backends:
        if backend == "arbor":
            seconds, outputs = _time_arbor(model, args, repeat)
        elif backend == "neuron":
            seconds, outputs = _time_neuron(model, args, repeat)
        elif backend == "jaxley":
            seconds, outputs = _time_jaxley(model, args, repeat)
        else:
            raise SystemExit(f"unknown backend {backend!r}; allowed: arbor, neuron, jaxley")
        difference = float(np.max(np.abs(outputs["crosssim"] - outputs["hand"])))
        a, b = median(seconds["crosssim"]), median(seconds["hand"])
        ratio = a / b
        verdict = "ok" if ratio <= LIMIT else f"OVER {LIMIT}"
        failed |= ratio > LIMIT
        print(f"{backend:>6}: crosssim {a:.3f} s, hand-written {b:.3f} s, "
              f"ratio {ratio:.3f} (<= {LIMIT}: {verdict}); same traces: max |diff| = "
              f"{difference:.3g} mV")
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
