"""Whole commands as a user times them: crosssim against hand-written scripts, and the fixed
costs of ``crosssim run`` / ``check`` / ``sweep`` / model loading.

Every figure is a whole process (start-up, imports, model file, run, outputs, exit), timed
from outside with ``time.perf_counter`` around ``subprocess.run``; its peak memory is the
largest resident set of that process and its children (``resource.getrusage(
RUSAGE_CHILDREN).ru_maxrss`` read in a fresh wrapper process per run).  A and B are
interleaved (A B, B A, ...) after one warm-up each; medians; ratios from the same run.

Cases (``--case``, comma-separated, default all):

* ``ring-arbor`` / ``ring-neuron``: ``crosssim run ring1000.toml --backend X --no-analytic``
  (a TOML file listing 1,000 cells and 1,000 junctions, 11 CVs, 50 ms, dt 0.025, 10 probes;
  CSV + plot) against ``handwritten/{arbor,neuron}_ring_command.py`` doing the same work
  (recipe or sections, run, the same CSV, a plot).  Targets: ratio <= 1.10, memory <= 1.2x.
* ``example``: ``crosssim run`` and ``crosssim check`` on the built-in example, with every
  installed default simulator (Jaxley too, when installed) and with ``--backend
  arbor,neuron`` (targets: run <= 1.2 s, run / check <= 1.3, check <= 0.6 s).
* ``sweep`` / ``sweep1000``: a 4-point sweep (every default source) and a 1,000-point sweep
  (Arbor only, no references) served entirely from the results cache (targets 1.0 s and
  2 s; filling the cache for 1,000 points takes a few minutes, once per run of this script).
* ``load``: loading and validating a 10,000-cell TOML model (target 1 s, whole process).
* ``cold``: ``crosssim run`` with an empty cache folder (compiles the MOD files) against a
  warm one (run once: ``--repeat`` applies to the warm side only).

    python benchmarks/commands.py [--quick] [--repeat 7] [--case ring-arbor,example]
        [--baseline OTHER_CHECKOUT]

``--quick``: 3 rounds and no 1,000-point sweep.  Files go to a temporary folder.  The
commands run with Python's bytecode cache on, as a user's do (``PYTHONDONTWRITEBYTECODE``
is removed from their environment), in the temporary folder; the crosssim timed is the one
this script imports (its folder is put first on their ``PYTHONPATH``): run it with
``PYTHONPATH=/path/to/tree`` to time a checkout other than the installed one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import HANDWRITTEN, child_env

#: Run in a fresh wrapper process: the command's wall seconds and its peak RSS (KiB).
_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,"
    " stderr=subprocess.PIPE)\n"
    "wall = time.perf_counter() - started\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'wall': wall, 'peak_kib': peak, 'code': done.returncode,"
    " 'stderr': done.stderr.decode()[-500:]}))\n"
)


#: The folder the timed commands run in (set by main: the temporary folder).
_CWD: list[str] = []
#: ``--baseline TREE``: crosssim's commands are also timed from that tree, interleaved.
_BASELINE: list[str] = []


def _with_baseline(commands: dict[str, list[str]]) -> dict[str, list[str]]:
    """``commands`` plus, with ``--baseline``, each crosssim command run from the baseline
    tree (``NAME@baseline``), to be interleaved with them."""
    if not _BASELINE:
        return commands
    extra = {f"{name}@baseline": ["env", f"PYTHONPATH={_BASELINE[0]}", *command]
             for name, command in commands.items() if command[1:3] == ["-m", "crosssim"]}
    return {**commands, **extra}


def _baseline_note(runs: dict[str, list[dict]], *names: str) -> str:
    """``; against the baseline: NAME 0.91 (this tree / baseline)`` for each of ``names``."""
    if not _BASELINE:
        return ""
    return "; this tree / baseline: " + ", ".join(
        f"{name} {med(runs[name + '@baseline'], 'wall'):.2f} -> {med(runs[name], 'wall'):.2f} s"
        f" ({ratio(runs[name], runs[name + '@baseline']):.2f})" for name in names)


def measure(command: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> dict:
    """One run of ``command``: wall seconds, peak RSS; exits if its code is not in ``ok``."""
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *command], env=env,
                         cwd=_CWD[0] if _CWD else None, capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout)
    if result["code"] not in ok:
        raise SystemExit(f"{' '.join(command)} failed ({result['code']}): {result['stderr']}")
    return result


def interleaved(commands: dict[str, list[str]], repeat: int, env: dict[str, str],
                ok: tuple[int, ...] = (0,)) -> dict[str, list[dict]]:
    names = list(commands)
    for name in names:  # warm-up: file caches, the MOD cache, .pyc files
        measure(commands[name], env, ok)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for index in range(repeat):
        for name in names if index % 2 == 0 else names[::-1]:
            runs[name].append(measure(commands[name], env, ok))
    return runs


def med(runs: list[dict], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def ratio(a: list[dict], b: list[dict], key: str = "wall") -> float:
    """Median of the pairwise ratios (round i of A over round i of B)."""
    return float(statistics.median(x[key] / y[key] for x, y in zip(a, b)))


def _crosssim(*args: str) -> list[str]:
    return [sys.executable, "-m", "crosssim", *args]


def _write_models(folder: Path) -> None:
    from crosssim.builtin import builtin_model
    from crosssim.model import dumps_model

    for n in (1000, 10000):
        model = builtin_model("ring", {"n_cells": n, "cvs_per_cell": 11, "t_stop_ms": 50,
                                       "dt_ms": 0.025})
        (folder / f"ring{n}.toml").write_text(dumps_model(model), encoding="utf-8")


def case_ring(backend: str, folder: Path, repeat: int, env: dict[str, str]) -> None:
    a = _crosssim("run", str(folder / "ring1000.toml"), "--backend", backend, "--no-analytic",
                  "--quiet", "--out", str(folder / f"crosssim-{backend}"))
    if backend == "arbor":
        b = [sys.executable, str(HANDWRITTEN / "arbor_ring_command.py"), "1000",
             str(folder / "hand-arbor")]
    else:
        from crosssim.backends.neuron.mechanisms import ensure_mechanisms, mechanism_library

        library = str(mechanism_library(ensure_mechanisms()))
        b = [sys.executable, str(HANDWRITTEN / "neuron_ring_command.py"), library, "1000",
             str(folder / "hand-neuron")]
    runs = interleaved(_with_baseline({"crosssim": a, "hand": b}), repeat, env)
    same = ((folder / f"crosssim-{backend}" / "traces.csv").read_bytes()
            == (folder / f"hand-{backend}" / "traces.csv").read_bytes())
    print(f"ring1000.toml, {backend}: crosssim run {med(runs['crosssim'], 'wall'):.2f} s / "
          f"{med(runs['crosssim'], 'peak_kib') / 1024:.0f} MiB, hand-written "
          f"{med(runs['hand'], 'wall'):.2f} s / {med(runs['hand'], 'peak_kib') / 1024:.0f} MiB;"
          f" time ratio {ratio(runs['crosssim'], runs['hand']):.2f} (<= 1.10), memory ratio "
          f"{ratio(runs['crosssim'], runs['hand'], 'peak_kib'):.2f} (<= 1.2); "
          f"traces.csv identical: {same}{_baseline_note(runs, 'crosssim')}")


def case_example(folder: Path, repeat: int, env: dict[str, str]) -> None:
    """``run`` and ``check`` on the built-in example, with every installed default simulator
    (Jaxley too, when installed) and with Arbor and NEURON only."""
    for label, backend in (("default simulators", []),
                           ("--backend arbor,neuron", ["--backend", "arbor,neuron"])):
        runs = interleaved(_with_baseline({
            "run": _crosssim("run", *backend, "--quiet", "--out", str(folder / "ex-run")),
            "check": _crosssim("check", *backend, "--quiet")}), repeat, env)
        print(f"built-in example, {label}: crosssim run {med(runs['run'], 'wall'):.2f} s "
              f"(<= 1.2), crosssim check {med(runs['check'], 'wall'):.2f} s (<= 0.6), "
              f"run / check {ratio(runs['run'], runs['check']):.2f} (<= 1.3)"
              + _baseline_note(runs, "run", "check"))


def case_sweep(folder: Path, repeat: int, env: dict[str, str], points: int) -> None:
    """A sweep whose every run is in the results cache: the 4-point sweep of every default
    source over the junction conductance, or ``points`` conductances with Arbor only (no
    references).  The cache is filled by one run first (not timed)."""
    env = {**env, "CROSSSIM_CACHE_DIR": str(folder / "sweep-cache")}
    if points == 4:
        label, target = "4 points, every default source", "1.0"
        grid = ["--grid", "gap_junctions.0.g_uS=0.005,0.01,0.02,0.04"]
    else:
        label, target = f"{points:,} points, Arbor only", "2"
        values = ",".join(f"{0.001 * (k + 1):g}" for k in range(points))
        grid = ["--grid", f"gap_junctions.0.g_uS={values}", "--backend", "arbor",
                "--references", "none"]
    command = _crosssim("sweep", *grid, "--quiet", "--out", str(folder / f"sweep{points}"))
    # exit 1 (a point exceeds a tolerance) is a sweep's result, not a failure here
    measure(command, env, ok=(0, 1))  # fills the cache
    runs = interleaved(_with_baseline({"cached": command}), repeat, env,
                       ok=(0, 1, 4) if _BASELINE else (0, 1))
    print(f"sweep, {label}, every run from the cache: {med(runs['cached'], 'wall'):.2f} s, "
          f"{med(runs['cached'], 'peak_kib') / 1024:.0f} MiB (<= {target} s)"
          + _baseline_note(runs, "cached"))


def case_load(folder: Path, repeat: int, env: dict[str, str]) -> None:
    code = (f"from crosssim.model import load_model; "
            f"load_model({str(folder / 'ring10000.toml')!r})")
    runs = interleaved({"load": [sys.executable, "-c", code]}, repeat, env)
    print(f"10,000-cell TOML model, load + validate, whole process: "
          f"{med(runs['load'], 'wall'):.2f} s (<= 1)")


def case_cold(folder: Path, repeat: int, env: dict[str, str]) -> None:
    cold_env = {**env, "CROSSSIM_CACHE_DIR": str(folder / "cold-cache")}
    cold = measure(_crosssim("run", "--quiet", "--out", str(folder / "cold")), cold_env)
    warm = interleaved({"warm": _crosssim("run", "--quiet", "--out", str(folder / "cold"))},
                       repeat, cold_env)
    print(f"crosssim run on the built-in example, empty cache (compiles the MOD files): "
          f"{cold['wall']:.2f} s once; warm median {med(warm['warm'], 'wall'):.2f} s; "
          f"stderr said: {cold['stderr'].splitlines()[0] if cold['stderr'] else '(nothing)'}")


CASES = ("ring-arbor", "ring-neuron", "example", "sweep", "sweep1000", "load", "cold")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, no 1,000-point sweep")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--case", default=",".join(CASES))
    parser.add_argument("--baseline", default=None, metavar="TREE",
                        help="also time crosssim's commands from this checkout (e.g. a "
                        "'git worktree' of main), interleaved: before -> after in one run")
    args = parser.parse_args()
    if args.baseline:
        _BASELINE[:] = [str(Path(args.baseline).resolve())]
    repeat = args.repeat or (3 if args.quick else 7)
    cases = [name.strip() for name in args.case.split(",") if name.strip()]
    env = child_env()
    # as a user runs it: Python caches the bytecode of crosssim's modules (a tree run with
    # PYTHONDONTWRITEBYTECODE=1 would recompile them in every process, 0.1-0.3 s)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    folder = Path(tempfile.mkdtemp(prefix="crosssim-commands-"))
    # time the crosssim this script imports, whatever the current folder ('python -m' puts
    # the current folder first on sys.path): its tree first on PYTHONPATH, commands run in
    # the temporary folder
    import crosssim

    root = str(Path(crosssim.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    _CWD[:] = [str(folder)]
    try:
        _write_models(folder)
        print(f"crosssim from {root}; whole processes, {repeat} interleaved rounds after a "
              f"warm-up, medians; {os.cpu_count()} cores, load average {_load()}")
        for case in cases:
            if case in ("ring-arbor", "ring-neuron"):
                case_ring(case.split("-")[1], folder, repeat, env)
            elif case == "example":
                case_example(folder, repeat, env)
            elif case == "sweep":
                case_sweep(folder, repeat, env, 4)
            elif case == "sweep1000":
                if not args.quick:
                    case_sweep(folder, repeat, env, 1000)
            elif case == "load":
                case_load(folder, repeat, env)
            elif case == "cold":
                case_cold(folder, repeat, env)
            else:
                raise SystemExit(f"unknown case {case!r}; allowed: {', '.join(CASES)}")
        print(f"load average at the end: {_load()}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _load() -> str:
    """The 1, 5 and 15 minute load averages (a busy machine slows both sides of a ratio)."""
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    raise SystemExit(main())
