"""The MOD compile cache: on a fresh cache folder the first NEURON run compiles the
mechanisms once, every later run compiles nothing.

Each step runs ``crosssim run two_cells --backend neuron`` as a separate process (what a
user does twice in a row) with ``CROSSSIM_CACHE_DIR`` set to a new empty folder, and counts
``nrnivmodl`` invocations with ``crosssim.backends.neuron.mechanisms.compile_count`` (one
line per invocation in ``<cache>/compiles.log``).  Wall times are printed for information.

    python benchmarks/mod_cache.py [--quick] [--runs 3]

Exits 1 if the first run does not compile exactly once or a later run compiles at all.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs (CI)")
    parser.add_argument("--runs", type=int, default=None, help="runs in all (default 3)")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 3)

    from crosssim.backends.neuron.mechanisms import compile_count

    ok = True
    with tempfile.TemporaryDirectory(prefix="crosssim-modcache-") as folder:
        cache = Path(folder) / "cache"
        env = {**os.environ, "CROSSSIM_CACHE_DIR": str(cache),
               "NEURON_MODULE_OPTIONS": "-nogui"}
        command = [sys.executable, "-m", "crosssim", "run", "two_cells", "--backend", "neuron",
                   "--no-plot", "--quiet", "--out", str(Path(folder) / "out")]
        print(f"fresh CROSSSIM_CACHE_DIR={cache}")
        seconds = []
        for run in range(1, runs + 1):
            before = compile_count(cache)
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            seconds.append(time.perf_counter() - started)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                print(f"run {run}: crosssim failed with exit code {done.returncode}")
                return 1
            compiled = compile_count(cache) - before
            expected = 1 if run == 1 else 0
            verdict = "ok" if compiled == expected else f"WRONG (expected {expected})"
            ok &= compiled == expected
            print(f"run {run}: nrnivmodl invocations {compiled} ({verdict}), "
                  f"{seconds[-1]:.2f} s")
        later = sorted(seconds[1:])[len(seconds[1:]) // 2]
        print(f"first run / later run wall time: {seconds[0] / later:.2f} "
              f"(compiling costs {seconds[0] - later:.2f} s once)")
    print("MOD cache:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
