"""Child-process entry point of the NEURON backend.

``python <this folder>/worker.py REQUEST.npz RESULT.npz``  (one process, or one per MPI rank
under ``mpiexec -n R``); ``worker.py --wait`` imports numpy and NEURON first, then reads the
two paths from stdin, one per line (started before its model was known; nothing on stdin:
exit 0)

Run by path, not with ``-m``: the child then imports only the standard library, numpy,
NEURON and its sibling ``simulator.py``, never the ``crosssim`` package (whose model layer
imports pydantic, about 0.2 s per process: the largest part of crosssim's overhead over a
hand-written NEURON script).  ``python -m crosssim.backends.neuron.worker`` works too.

The request holds the lowered model (:class:`simulator.Plan` arrays) and ``options_json``:
the run options and the compiled mechanism library.  The child loads the library (it never
compiles), builds and runs the plan and writes plain arrays (no pickles; ``info`` is a JSON
string) to ``RESULT.npz``, or ``RESULT.rank<k>.npz`` for MPI rank ``k``.  Any failure is a
traceback on stderr and a non-zero exit code; the parent turns it into a ``BackendError``.

Test hook: ``CROSSSIM_TEST_CRASH`` = ``segv`` (the child kills itself with SIGSEGV after
loading NEURON), ``error`` (raises), ``hang`` (sleeps, for timeouts).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

if __package__:  # python -m crosssim.backends.neuron.worker
    from crosssim.backends.neuron import simulator
else:  # python .../worker.py: the sibling module, without importing the crosssim package
    import simulator  # type: ignore[import-not-found,no-redef]

#: Environment variable of the crash test hook.
CRASH_HOOK = "CROSSSIM_TEST_CRASH"


def _test_hook() -> None:
    action = os.environ.get(CRASH_HOOK, "")
    if action == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif action == "error":
        raise RuntimeError(f"simulated failure ({CRASH_HOOK}=error)")
    elif action == "hang":
        time.sleep(3600)


def result_path(base: str | Path, rank: int, nhost: int) -> Path:
    """Where rank ``rank`` of ``nhost`` writes its result (``base`` itself for one rank)."""
    base = Path(base)
    return base if nhost == 1 else base.with_name(f"{base.stem}.rank{rank}{base.suffix}")


def _load_library(library: str, mechanism: str) -> None:
    from neuron import h

    if not hasattr(h, mechanism):  # loading the same library twice fails
        h.nrn_load_dll(library)
    if not hasattr(h, mechanism):
        raise RuntimeError(f"{library} did not define {mechanism}")


def main(argv: list[str] | None = None) -> int:
    """Run one request; returns the exit code (0 on success)."""
    args = sys.argv[1:] if argv is None else argv
    started = time.perf_counter()
    if args == ["--wait"]:  # started early: import now, then read the two paths from stdin
        import numpy  # noqa: F401
        from neuron import h  # noqa: F401

        args = sys.stdin.read().split("\n")[:2]
        if len(args) < 2 or not all(args):
            return 0  # the parent had no run for it
        started = time.perf_counter()
    if len(args) != 2:
        print("usage: python worker.py REQUEST.npz RESULT.npz | --wait", file=sys.stderr)
        return 2
    import numpy as np

    with np.load(args[0], allow_pickle=False) as data:
        options = json.loads(str(data["options_json"]))
        plan = simulator.Plan.from_child_arrays(data)
    mpi = int(options.get("mpi_ranks", 1)) > 1
    if mpi:
        import mpi4py.MPI  # initialises MPI before NEURON looks for it
        from neuron import h

        h.nrnmpi_init()
        if int(h.ParallelContext().nhost()) < 2:
            raise RuntimeError(f"NEURON sees one MPI rank under mpiexec (mpi4py "
                               f"{mpi4py.MPI.Get_library_version().splitlines()[0]}): "
                               "is NEURON's MPI support the same MPI as mpi4py's?")
    from neuron import h

    _load_library(options["library"], options["mechanism"])
    import_load_s = time.perf_counter() - started
    # from the parent's spawn call to here: process start, imports, mechanism loading
    startup_s = time.time() - float(options.get("spawned_at", time.time()))
    _test_hook()

    output = simulator.simulate(plan, mechanism=options["mechanism"],
                                secondorder=int(options["secondorder"]),
                                nthread=int(options["nthread"]),
                                celsius=float(options.get("celsius", 6.3)),
                                hh_tables=bool(options.get("hh_tables", False)))
    pc = h.ParallelContext()
    info = dict(output.info)
    info["child_import_load_s"] = import_load_s
    info["child_startup_s"] = startup_s
    # what the child imported of the heavy layers it should not need (expected: none)
    info["child_imported"] = sorted(name for name in ("crosssim", "pydantic", "pandas")
                                    if name in sys.modules)
    np.savez(
        result_path(args[1], int(pc.id()), int(pc.nhost())),
        times_ms=np.asarray(output.times_ms, dtype=float),
        record_rows=output.record_rows,
        nodes_mV=np.asarray(output.nodes_mV, dtype=float),
        build_s=np.float64(output.build_s),
        run_s=np.float64(output.run_s),
        info_json=np.str_(json.dumps(info)),
    )
    if mpi:
        pc.barrier()
        from mpi4py import MPI

        if not MPI.Is_finalized():  # mpi4py initialised MPI, so it finalises it; os._exit
            MPI.Finalize()           # below would skip its exit hook and mpiexec would fail
    return 0


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: destroying NEURON's sections one by one costs seconds for
    # large models and nothing is left to clean up (the result file is closed).
    os._exit(exit_code)
