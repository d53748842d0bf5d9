"""Arguments and steps shared by the subcommands: the model, overrides, backends, output."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crosssim.errors import InvalidModelError, UsageError
from crosssim.model import Model, apply_overrides, load_model, parse_override

DEFAULT_MODEL = "two_cells"
DEFAULT_REPORTS = Path("reports")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL (file or built-in name), ``--set PATH=VALUE`` and ``--param KEY=VALUE``."""
    parser.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, metavar="MODEL",
        help="a model file (.toml) or a built-in model name (default: two_cells; "
        "see 'crosssim models')")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
        help="override a model field, e.g. cells.a.e_leak_mV=-80, gap_junctions.0.g_uS=0.02, "
        "discretization.cvs_per_cell=11 (repeatable)")
    parser.add_argument(
        "--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
        help="parameter of a built-in network generator, e.g. n_cells=1000 (repeatable)")


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """``--backend arbor|neuron|all`` (comma-separated lists allowed)."""
    parser.add_argument(
        "--backend", default="all", metavar="NAME",
        help="arbor, neuron, or all (default); a comma-separated list is allowed")


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` (default: reports/<model name>)."""
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: reports/<model name>)")


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, value = parse_override(item)
        params[key] = value
    return params


def resolve_model(args: argparse.Namespace) -> Model:
    """Load the model named by ``args.model`` (file or built-in) with its overrides applied."""
    spec: str = args.model
    path = Path(spec)
    params = _parse_params(getattr(args, "params", []) or [])
    if path.suffix.lower() == ".toml" or path.exists() or "/" in spec:
        if params:
            raise UsageError("--param applies to built-in network models, not to model files")
        model = load_model(path)
        source = str(path)
    else:
        from crosssim.builtin import builtin_model

        model = builtin_model(spec, params)
        source = f"<built-in {spec}>"
    overrides = getattr(args, "overrides", []) or []
    if overrides:
        source = f"{source} --set"
        model = apply_overrides(model, overrides, source=source)
    check_model_size(model, source)
    return model


def stiff_junction_note(model: Model) -> str | None:
    """One line for stderr when a junction is too strong for dt (see
    :meth:`Model.stiff_junctions`), else None."""
    stiff = model.stiff_junctions()
    if not stiff:
        return None
    index, cell, ratio = max(stiff, key=lambda item: item[2])
    dt = model.simulation.dt_ms
    more = f" (and {len(stiff) - 1} more)" if len(stiff) > 1 else ""
    return (f"note: gap_junctions.{index}{more}: g*dt/C = {ratio:.3g} > 1 at its CV on cell "
            f"{cell!r}; both simulators read the peer voltage once per step, so the two sites "
            f"overshoot each other every step and both simulators stay off the exact "
            f"solution unless dt_ms < {dt / ratio:.3g} (or the junction is weaker or the "
            f"CVs larger)")


def model_notes(model: Model, names: Sequence[str]) -> list[str]:
    """Lines for stderr that explain a deviation before it is seen: a junction too strong
    for dt, backends set to different numerical methods, clamps outside the run."""
    notes = []
    stiff = stiff_junction_note(model)
    if stiff:
        notes.append(stiff)
    order = model.backends.neuron.secondorder
    if order != 0 and "neuron" in names and "arbor" in names:
        notes.append(
            f"note: [backends.neuron] secondorder = {order} (Crank-Nicolson) while Arbor "
            "integrates with implicit Euler: arbor vs neuron then differs by the method's "
            "O(dt) error by design, not by a bug; compare each with the analytic solution")
    t_stop = model.simulation.t_stop_ms
    late = [i for i, stimulus in enumerate(model.stimuli)
            if stimulus.delay_ms >= t_stop or stimulus.duration_ms == 0]
    if late:
        listed = ", ".join(f"stimuli.{i}" for i in late[:5]) + (" ..." if len(late) > 5 else "")
        notes.append(f"note: {listed}: starts at or after t_stop_ms ({t_stop:g} ms) or lasts "
                     "0 ms, so it injects no current in this run")
    return notes


def check_model_size(model: Model, source: str) -> None:
    """Raise ResourceLimitError (exit 2, with the estimate) if running ``model`` would need
    more than 60% of this machine's memory; nothing large is allocated to find out.

    Built-in networks check their size before they are built; this catches model files and
    ``--set`` overrides (``discretization.cvs_per_cell=1000000`` on a 1000-cell ring).
    """
    from crosssim.builtin.networks import check_size

    n_cells = len(model.cells)
    total_cvs = sum(model.cvs(cell) for cell in model.cells)
    n_probes = len(model.probes) or n_cells
    check_size(n_cells, math.ceil(total_cvs / n_cells), n_probes, model.simulation.n_samples,
               what=source)


def selected_backends(text: str) -> list[str]:
    """Backend names from ``--backend`` (``all`` = every registered backend)."""
    from crosssim.backends.base import backend_spec, known_backends

    names = known_backends() if text.strip() == "all" else [
        name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--backend: give arbor, neuron or all")
    for name in names:
        try:
            backend_spec(name)
        except Exception as exc:  # BackendUnavailableError: unknown name
            raise UsageError(f"--backend: {exc}") from None
    return names


def output_dir(args: argparse.Namespace, model: Model) -> Path:
    """The output folder: ``--out`` or ``reports/<model name>``, checked to be usable.

    Model names never contain ``/`` and never start with ``.`` (see
    :data:`crosssim.model.NAME_PATTERN`), so the default stays inside ``reports/``.
    Raises UsageError (before anything runs) if the folder cannot be created or written.
    """
    out = getattr(args, "out", None)
    path = Path(out) if out is not None else DEFAULT_REPORTS / model.name
    check_writable(path, what="--out" if out is not None else "output folder", folder=True)
    return path


def check_writable(path: Path, *, what: str, folder: bool) -> None:
    """Raise UsageError if ``path`` (a folder, or a file when ``folder`` is False) cannot be
    written: it is the wrong kind of thing, or its nearest existing parent is not a
    writable folder.  Creates nothing."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise UsageError(f"{what} {path}: exists and is not a folder")
        if not folder and path.is_dir():
            raise UsageError(f"{what} {path}: is a folder; give a file name")
        target = path if folder else path.parent
        if not os.access(target, os.W_OK | os.X_OK):
            raise UsageError(f"{what} {path}: {target} is not writable")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot create it, {parent} is not writable")


class Progress:
    """Progress lines on stderr: ``[1/2] arbor: running ...`` then ``done in 0.41 s``."""

    def __init__(self, total: int, *, quiet: bool = False, stream=None) -> None:
        self.total = total
        self.count = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._started = 0.0

    def start(self, label: str) -> None:
        self.count += 1
        self._started = time.perf_counter()
        self._line(f"[{self.count}/{self.total}] {label}: running ...")

    def finish(self, label: str, outcome: str = "done") -> None:
        elapsed = time.perf_counter() - self._started
        self._line(f"[{self.count}/{self.total}] {label}: {outcome} in {elapsed:.2f} s")

    def _line(self, text: str) -> None:
        """One write per line: a Ctrl-C can then never cut a line from its newline, so the
        'interrupted' message always starts a line of its own."""
        if not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()


def run_sources(model: Model, names: Sequence[str], *, progress: Progress | None = None,
                runner: Callable[[str, Model], Any] | None = None):
    """Run each backend; return (results, failures) where failures maps name -> reason.

    One backend failing (missing, crashed, NaN) never stops the others.
    """
    from crosssim.backends.base import run_backend
    from crosssim.errors import BackendError, CrossSimError, raise_if_interrupted

    runner = runner or run_backend
    results = []
    failures: dict[str, str] = {}
    for name in names:
        if progress:
            progress.start(name)
        try:
            result = runner(name, model)
        except BackendError as exc:
            raise_if_interrupted(exc)
            failures[name] = exc.message
        except CrossSimError:
            raise  # invalid model or usage: not a backend failure
        except Exception as exc:  # noqa: BLE001 - any other failure is this backend's
            raise_if_interrupted(exc)
            failures[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if name in failures:
            if progress:
                progress.finish(name, f"FAILED ({failures[name]})")
            continue
        results.append(result)
        if progress:
            progress.finish(name)
    return results, failures


def ensure_valid_model_source(spec: str) -> None:
    """Raise InvalidModelError early for a model path that does not exist."""
    path = Path(spec)
    if path.suffix.lower() == ".toml" and not path.exists():
        raise InvalidModelError("file not found", source=spec)


def tolerance_mV(text: str) -> float | None:
    """argparse type: a tolerance in mV (finite, >= 0), or ``none``/``off`` for report only."""
    if text.strip().lower() in {"none", "off"}:
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of mV (or 'none')") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: a tolerance must be a finite number >= 0")
    return value


def time_ms(text: str) -> float:
    """argparse type: a time in ms (finite, >= 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time in ms") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: a time must be a finite number >= 0")
    return value


def add_tolerance_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tolerance-backends/-analytic/-lumped MV`` (absent = the model's values)."""
    parser.add_argument("--tolerance-backends", type=tolerance_mV, default=argparse.SUPPRESS,
                        metavar="MV", help="backend vs backend tolerance in mV")
    parser.add_argument("--tolerance-analytic", type=tolerance_mV, default=argparse.SUPPRESS,
                        metavar="MV", help="backend vs exact cable tolerance in mV")
    parser.add_argument("--tolerance-lumped", type=tolerance_mV, default=argparse.SUPPRESS,
                        metavar="MV", help="backend vs lumped tolerance in mV ('none': report)")

