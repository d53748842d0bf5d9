"""Child-process entry point of the NEURON backend.

``python -m crosssim.backends.neuron.worker REQUEST.json RESULT.npz``

The request holds the resolved model (``Model.to_dict(resolved=True)``), the run options and
the compiled-mechanism folder.  The child loads the mechanisms (it never compiles), builds
and runs the model (:mod:`crosssim.backends.neuron.simulator`) and writes plain arrays to
``RESULT.npz`` (no pickles; ``info`` is a JSON string).  Any failure is a traceback on stderr
and a non-zero exit code; the parent turns it into a ``BackendError``.

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


def main(argv: list[str] | None = None) -> int:
    """Run one request; returns the exit code (0 on success)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m crosssim.backends.neuron.worker REQUEST.json RESULT.npz",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    request = json.loads(Path(args[0]).read_text(encoding="utf-8"))

    import numpy as np

    from crosssim.backends.neuron.mechanisms import load_mechanisms
    from crosssim.backends.neuron.simulator import simulate
    from crosssim.model import model_from_dict

    model = model_from_dict(request["model"], source="<neuron worker request>")
    load_mechanisms(Path(request["mechanisms"]))
    import_load_s = time.perf_counter() - started
    # from the parent's spawn call to here: process start, imports, mechanism loading
    startup_s = time.time() - float(request.get("spawned_at", time.time()))
    _test_hook()

    output = simulate(model, secondorder=int(request["secondorder"]),
                      nthread=int(request["nthread"]))
    info = dict(output.info)
    info["child_import_load_s"] = import_load_s
    info["child_startup_s"] = startup_s
    np.savez(
        args[1],
        times_ms=np.asarray(output.times_ms, dtype=float),
        values_mV=np.asarray(output.values_mV, dtype=float),
        build_s=np.float64(output.build_s),
        run_s=np.float64(output.run_s),
        info_json=np.str_(json.dumps(info)),
    )
    return 0


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: destroying NEURON's sections one by one costs seconds for
    # large models and nothing is left to clean up (the result file is closed).
    os._exit(exit_code)
