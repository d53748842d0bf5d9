"""Broken environments and interrupted runs, with real ``crosssim`` processes.

* no C++ compiler / no ``nrnivmodl``: exit 3 and one line saying what to install;
* a simulator that cannot be imported, a NEURON child that segfaults or is SIGKILLed while it
  runs: that source is an error outcome (exit 3, verdict ``error``), never a pass, and every
  comparison among the remaining sources is still reported;
* NaN/inf in real simulator traces: recorded as each source's failure with the reason;
* Ctrl-C / SIGTERM during a run: exit 130 / 143 with one line, the NEURON child is gone, and
  the output folder holds no half-written ``traces.csv`` and no temporary file.

(Two processes compiling the MOD cache at once: tests/test_backends.py,
``test_mechanism_cache_concurrent_first_use``.)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import CORE, pinned, requires_arbor, requires_neuron

#: The NEURON child's command line names its worker (run as a module or by path).
WORKER = re.compile(r"crosssim[./]backends[./]neuron[./]worker")
SOURCES = ("arbor", "neuron", "analytic", "lumped", "semidiscrete", "discrete")
PROBES = ("a_gj", "b_gj")  # of the built-in two_cells
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="finds the NEURON child through /proc (Linux)")


def _command() -> list[str]:
    """The installed ``crosssim`` console script (what the README runs), else ``-m``.

    Interrupt tests use the console script: ``python -m crosssim`` stopped by SIGINT
    sometimes ends by re-raising SIGINT (return code -2) after printing its message and
    returning 130, while the console script never does (0 of 30 vs 5 of 40 runs here);
    the cause lies in CPython's ``-m`` start-up, not found yet (see the issue note)."""
    script = Path(sys.executable).with_name("crosssim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "crosssim"]


def _env(**changes: str | None) -> dict[str, str]:
    env = {**os.environ}
    env.pop("CROSSSIM_DEBUG", None)
    env.pop("CROSSSIM_TEST_CRASH", None)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def crosssim(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
             python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "crosssim", *pinned(args)], capture_output=True,
                          text=True,
                          env=env or _env(), cwd=cwd, timeout=300, check=False)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def _hide(tmp_path: Path, package: str) -> str:
    """A PYTHONPATH whose ``package`` raises ImportError, shadowing the installed one."""
    fake = tmp_path / "hide" / package
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f'raise ImportError("{package} hidden by a test")\n')
    return os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])


# No compiler, no nrnivmodl ------------------------------------------------------------------


@requires_neuron
def test_no_cxx_compiler_exits_3_saying_what_to_install(tmp_path):
    """A fresh MOD cache and a PATH without c++/g++/clang++ (nrnivmodl is still found next
    to the Python executable, as in a venv)."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    out = tmp_path / "out"
    done = crosssim("run", "--backend", "neuron", "--out", str(out), "--quiet",
                    env=_env(PATH=str(empty), CXX=None,
                             CROSSSIM_CACHE_DIR=str(tmp_path / "cache")))
    assert done.returncode == 3, done.stderr
    line = _one_line(done.stderr)
    assert "neuron: no C++ compiler" in line and "apt-get install build-essential" in line
    assert not out.exists()
    assert not list((tmp_path / "cache").glob("mod-*"))  # no half-built cache entry


@requires_neuron
def test_no_nrnivmodl_exits_3_saying_what_to_install(tmp_path):
    """The same Python, started through a symlink in a folder without ``nrnivmodl``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.symlink_to(os.path.realpath(sys.executable))
    path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    out = tmp_path / "out"
    done = crosssim("run", "--backend", "neuron", "--out", str(out), "--quiet",
                    python=str(python),
                    env=_env(PATH=str(tmp_path / "empty"), PYTHONPATH=path, CXX=None,
                             CROSSSIM_CACHE_DIR=str(tmp_path / "cache")))
    assert done.returncode == 3, done.stderr
    line = _one_line(done.stderr)
    assert "neuron: nrnivmodl not found" in line and "pip install neuron" in line
    assert not out.exists()


# A source missing, crashing or killed: an error, never a pass, the rest still compared -------


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can see."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        table[int(entry.name)] = (parent, cmdline)
    return table


def _neuron_children(ancestor: int) -> list[int]:
    """The NEURON worker processes below ``ancestor``."""
    table = _processes()
    found = []
    for pid, (_, cmdline) in table.items():
        if not WORKER.search(cmdline):
            continue
        up = pid
        while up in table and up not in (0, 1):
            up = table[up][0]
            if up == ancestor:
                found.append(pid)
                break
    return found


def _stop(process: subprocess.Popen) -> None:
    """Kill ``process`` and any NEURON child below it (a failed test leaves no orphan that
    would otherwise sleep for an hour under CROSSSIM_TEST_CRASH=hang)."""
    if process.poll() is None and Path("/proc/self/stat").exists():
        for child in _neuron_children(process.pid):
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
    process.kill()
    process.wait()


def _wait_for_neuron_child(process: subprocess.Popen, timeout: float = 60) -> int:
    """The pid of ``process``'s NEURON child once it runs; kills ``process`` and raises if
    none appears (so a test fails at once instead of waiting for a hung run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        children = _neuron_children(process.pid)
        if children:
            return children[0]
        time.sleep(0.05)
    _stop(process)
    raise AssertionError("the NEURON child process never started")


def _check_killing_the_neuron_child(tmp_path: Path) -> tuple[int, dict]:
    """``crosssim check`` while a thread SIGKILLs its NEURON child mid-run."""
    process = subprocess.Popen(
        [sys.executable, "-m", "crosssim", "check", "--format", "json", "--quiet", *CORE],
        cwd=tmp_path, env=_env(CROSSSIM_TEST_CRASH="hang"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    killed: list[int] = []

    def kill_child() -> None:
        # the first child may be the one started before the model loaded, killed before it
        # got its run: the check then starts a fresh one, which is killed too
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            for child in _neuron_children(process.pid):
                if child not in killed:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                    killed.append(child)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_child, daemon=True)
    killer.start()
    try:
        stdout, stderr = process.communicate(timeout=120)
    finally:
        _stop(process)
    killer.join(5)
    assert killed, "no NEURON child was found to kill:\n" + stderr
    return process.returncode, {"stdout": stdout, "stderr": stderr}


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("broken, reason", [
    ("hide-arbor", "arbor hidden by a test"),
    ("hide-neuron", "neuron hidden by a test"),
    ("segv-neuron", "killed by SIGSEGV"),
    pytest.param("kill-neuron", "killed by SIGKILL", marks=needs_proc),
])
def test_check_reports_a_broken_source_as_error_and_compares_the_rest(tmp_path, broken, reason):
    action, name = broken.split("-")
    if action == "kill":
        returncode, streams = _check_killing_the_neuron_child(tmp_path)
        stdout = streams["stdout"]
    else:
        env = (_env(PYTHONPATH=_hide(tmp_path, name)) if action == "hide"
               else _env(CROSSSIM_TEST_CRASH="segv"))
        done = crosssim("check", "--format", "json", "--quiet", "--junit", "check.xml",
                        env=env, cwd=tmp_path)
        returncode, stdout = done.returncode, done.stdout
    assert returncode == 3, stdout
    document = json.loads(stdout)
    assert document["verdict"] == "error"
    assert [error["source"] for error in document["errors"]] == [name]
    assert reason in document["errors"][0]["reason"]
    remaining = [source for source in SOURCES if source != name]
    pairs = {(a, b) for i, a in enumerate(remaining) for b in remaining[i + 1:]}
    reported = {(c["a"], c["b"], c["probe"]) for c in document["comparisons"]}
    assert reported == {(a, b, probe) for a, b in pairs for probe in PROBES}
    if action != "kill":  # the JUnit file shows the source as an error, not a pass
        xml = (tmp_path / "check.xml").read_text()
        assert f'name="source {name}"' in xml and 'errors="1"' in xml


@requires_neuron
def test_run_without_arbor_still_runs_neuron_and_exits_3(tmp_path):
    out = tmp_path / "out"
    done = crosssim("run", "--out", str(out), "--no-plot", "--quiet",
                    env=_env(PYTHONPATH=_hide(tmp_path, "arbor")))
    assert done.returncode == 3, done.stderr
    line = _one_line(done.stderr)
    assert "arbor" in line and "arbor hidden by a test" in line
    rows = (out / "traces.csv").read_text().splitlines()
    assert rows[0] == "backend,probe,t_ms,v_mV"
    assert {row.split(",")[0] for row in rows[1:]} == {"neuron"} and len(rows) == 1 + 2 * 501


@requires_arbor
@requires_neuron
def test_non_finite_traces_are_each_sources_failure_never_a_pass(tmp_path):
    """A 1e308 nA clamp overflows every source to inf/NaN: each is recorded with the first
    non-finite sample, the verdict is error (exit 3), nothing passes."""
    model = tmp_path / "overflow.toml"
    done = crosssim("models", "two_cells")
    model.write_text(done.stdout + '\n[[stimuli]]\ncell = "a"\nx = 0.5\ndelay_ms = 0.0\n'
                     "duration_ms = 5.0\namplitude_nA = 1e308\n")
    done = crosssim("check", str(model), "--format", "json", "--quiet", "--backend", "arbor,neuron")
    assert done.returncode == 3, done.stderr
    document = json.loads(done.stdout)
    assert document["verdict"] == "error" and document["comparisons"] == []
    reasons = {error["source"]: error["reason"] for error in document["errors"]}
    assert set(reasons) == set(SOURCES)
    assert all("non-finite voltage" in reason and "t = " in reason for reason in reasons.values())


@requires_arbor
def test_nan_in_one_real_trace_keeps_the_other_comparisons(seed_model):
    """The real Arbor and reference traces, NEURON's replaced by one with a NaN sample."""
    import numpy as np

    from crosssim.check import check
    from crosssim.result import RunResult
    from crosssim.sources import run_source

    def runner(name, model):
        if name != "neuron":
            return run_source(name, model)
        arbor = run_source("arbor", model)
        values = arbor.values_mV.copy()
        values[1, 250] = np.nan
        return RunResult("neuron", arbor.probes, arbor.times_ms, values)

    outcome = check(seed_model, runner=runner, backends=["arbor", "neuron"],
                    references=["analytic", "lumped"])
    assert outcome.verdict == "error" and outcome.exit_code == 3
    assert "non-finite voltage (nan) at probe 'b_gj', t = 2.5 ms" in outcome.failures["neuron"]
    assert {(c.a, c.b) for c in outcome.comparisons} == {
        ("arbor", "analytic"), ("arbor", "lumped"), ("analytic", "lumped")}


# Interrupted runs ------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@requires_arbor
@requires_neuron
@needs_proc
@pytest.mark.parametrize("signum, code, word", [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),
])
def test_interrupt_during_the_neuron_run_leaves_no_output(tmp_path, signum, code, word):
    """Arbor has finished, NEURON is running: the signal stops everything, kills the child,
    and writes nothing (no half-written traces.csv, no temporary file)."""
    out = tmp_path / "out"
    process = subprocess.Popen(
        [*_command(), "run", "--out", str(out), *CORE],
        env=_env(CROSSSIM_TEST_CRASH="hang"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        child = _wait_for_neuron_child(process)  # started early, before the model loads
        seen = []
        while not seen or "neuron: running" not in seen[-1]:  # Arbor is done
            line = process.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
        time.sleep(0.3)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        _stop(process)
    assert process.returncode == code, stderr
    assert word in _one_line(stderr) and stdout == ""
    assert _leftovers(out) == []
    assert not WORKER.search(_processes().get(child, (0, ""))[1]), "the NEURON child lives on"


@requires_arbor
@requires_neuron
@pytest.mark.parametrize("after, delay_s", [
    ("arbor: running", 0.0),  # during the simulations
    ("neuron: done", 0.0),  # while traces.csv and traces.png are written
    ("neuron: done", 0.2),
], ids=["simulating", "writing", "writing-later"])
def test_interrupt_at_any_moment_leaves_complete_files_or_none(tmp_path, after, delay_s):
    """SIGINT at some moment of a run: exit 0 with complete files, or exit 130 with one
    line and no truncated file -- never a temporary file left in the output folder."""
    out = tmp_path / "out"
    process = subprocess.Popen(
        [*_command(), "run", "--out", str(out), *CORE], env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while not seen or after not in seen[-1]:
            line = process.stderr.readline()
            assert line, "".join(seen)  # the process ended before the moment came
            seen.append(line)
        time.sleep(delay_s)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        _stop(process)
    assert process.returncode in (0, 130), stderr
    files = _leftovers(out)
    assert not [name for name in files if name.startswith(".") or name.endswith(".tmp")], files
    if process.returncode == 130:
        assert "Traceback" not in stderr
        assert stderr.rstrip().splitlines()[-1] == ("crosssim run: interrupted; files being "
                                                    "written were discarded")
    else:
        assert files == ["traces.csv", "traces.png"]
    if "traces.csv" in files:
        rows = (out / "traces.csv").read_text().splitlines()
        assert rows[0] == "backend,probe,t_ms,v_mV" and len(rows) == 1 + 2 * 2 * 501
    if "traces.png" in files:
        png = (out / "traces.png").read_bytes()
        assert png.startswith(b"\x89PNG") and png.endswith(b"IEND\xaeB`\x82")


@requires_neuron
def test_interrupt_while_compiling_the_mod_cache_leaves_no_entry(tmp_path):
    """Ctrl-C while nrnivmodl runs: exit 130, no cache entry and no staging folder; the next
    run compiles and succeeds."""
    cache = tmp_path / "cache"
    env = _env(CROSSSIM_CACHE_DIR=str(cache))
    args = [sys.executable, "-m", "crosssim", "run", "--backend", "neuron", "--no-plot",
            "--quiet", "--out", str(tmp_path / "out")]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(cache.glob(".mod-*-*/mod")) and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
        time.sleep(0.2)  # nrnivmodl is running in the staging folder
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        _stop(process)
    assert process.returncode == 130, stderr
    announced, *rest = stderr.splitlines(keepends=True)  # the first use says it compiles
    assert announced.startswith("crosssim: compiling NEURON mechanisms"), stderr
    assert "interrupted" in _one_line("".join(rest))
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []  # no entry, no staging
    assert not (tmp_path / "out").exists()
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.returncode == 0, again.stderr
    assert len(list(cache.glob("mod-*/crosssim-mechanisms.json"))) == 1


def test_ctrl_c_wrapped_by_a_c_extension_still_stops_the_run(seed_model):
    """pybind11 turns a Ctrl-C during a module's initialisation into ``ImportError:
    initialization failed``; that must stop the run, not count as a backend failure."""
    from crosssim.check import check, run_sources
    from crosssim.errors import BackendUnavailableError

    def wrapped(name, model):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    def wrapped_twice(name, model):
        try:
            wrapped(name, model)
        except ImportError as exc:
            raise BackendUnavailableError(name, f"failed to import: {exc}") from exc

    for runner in (wrapped, wrapped_twice):
        with pytest.raises(KeyboardInterrupt):
            check(seed_model, backends=["arbor"], references=(), runner=runner)
        with pytest.raises(KeyboardInterrupt):
            run_sources(seed_model, ["arbor"], runner=runner)


@pytest.mark.parametrize("interrupt, code, word", [
    (KeyboardInterrupt, 130, "interrupted"),
    ("terminated", 143, "terminated (SIGTERM)"),
])
def test_an_interrupt_that_a_library_wrapped_is_still_an_interrupt(monkeypatch, capsys,
                                                                   interrupt, code, word):
    """Ctrl-C or SIGTERM while pydantic builds a class arrives as ``RuntimeError: Error
    calling __set_name__`` (its cause the interrupt): one line and 130 / 143, never an
    internal error."""
    from crosssim import cli
    from crosssim.commands import models

    kind = cli._Terminated if interrupt == "terminated" else interrupt

    def execute(args):
        try:
            raise kind()
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'PydanticDescriptorProxy'") from exc

    monkeypatch.setattr(models, "execute", execute)
    assert cli.main(["models"]) == code
    err = capsys.readouterr().err
    assert word in err and "internal error" not in err and err.count("\n") == 1
