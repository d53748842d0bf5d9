"""Arguments and steps shared by the subcommands: the model, overrides, backends, output."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosssim.errors import InvalidModelError, UsageError
from crosssim.report.progress import Progress as Progress  # re-exported for commands/check.py

if TYPE_CHECKING:  # pragma: no cover - the model layer (pydantic) loads with the model
    from crosssim.model import Model

DEFAULT_MODEL = "two_cells"
DEFAULT_REPORTS = Path("reports")


def add_model_arguments(parser: argparse.ArgumentParser, *, several: bool = False) -> None:
    """MODEL (file or built-in name), ``--set PATH=VALUE`` and ``--param KEY=VALUE``.

    ``several``: MODEL may be given any number of times (``args.models``, a list), each a
    file, a glob, a built-in name or a suite file (:mod:`crosssim.suite`)."""
    if several:
        parser.add_argument(
            "models", nargs="*", default=[], metavar="MODEL",
            help="model files (.toml), globs of them (quoted), built-in model names or suite "
            "files listing models with their settings (default: two_cells; see "
            "'crosssim models' and README 'Several models in CI')")
    else:
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


def add_backend_argument(parser: argparse.ArgumentParser, *, references: bool = True) -> None:
    """``--backend NAMES`` and (with ``references``) ``--references NAMES``: comma-separated
    source names, ``all`` (default: every installed default source of that kind) or, for
    references, ``none``."""
    parser.add_argument(
        "--backend", default="all", metavar="NAMES",
        help="simulators to run, comma-separated, or all (default: every installed one; "
        "see 'crosssim sources')")
    if references:
        parser.add_argument(
            "--references", default="all", metavar="NAMES",
            help="references to compare with, comma-separated, all (default: every default "
            "reference), none, or +NAME to add one to the defaults (see 'crosssim sources')")


def add_traces_argument(parser: argparse.ArgumentParser) -> None:
    """``--traces FILE`` (repeatable): traces from other tools as sources."""
    parser.add_argument(
        "--traces", action="append", default=[], type=Path, metavar="FILE",
        help="traces from a file as a source (repeatable): a long-form CSV/Parquet table "
        "(probe, t_ms, v_mV, optional backend and kind columns) or a TOML descriptor of "
        "per-probe column files; see README 'Traces from other tools'")


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` (default: reports/<model name>)."""
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: reports/<model name>)")


def add_format_argument(parser: argparse.ArgumentParser, text: str = "text table") -> None:
    """``--format text|json``: ``text`` (the default; ``text`` says what it prints) or one
    JSON document on stdout."""
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help=f"{text} (default) or one JSON document on stdout")


def resolve_model(args: argparse.Namespace) -> Model:
    """Load the model named by ``args.model`` (file or built-in) with its overrides applied."""
    from crosssim.suite import load_model_spec, parse_params

    model, source = load_model_spec(args.model,
                                    params=parse_params(getattr(args, "params", []) or []),
                                    overrides=getattr(args, "overrides", []) or [])
    check_model_size(model, source)
    return model


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


def _names(text: str, option: str) -> list[str] | None:
    """Source names of ``--backend``/``--references``: None for ``all``, [] for ``none``."""
    text = text.strip()
    if text.lower() == "all":
        return None
    if text.lower() in ("", "none"):
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    from crosssim.sources import source_spec

    for name in names:
        try:
            source_spec(name.removeprefix("+"))
        except Exception as exc:  # BackendUnavailableError: unknown name
            raise UsageError(f"{option}: {exc}") from None
    return names


def selected_sources(args: argparse.Namespace) -> tuple[list[str] | None, list[str] | None]:
    """(simulators, references) chosen by ``--backend``/``--references``; None = defaults
    (see :func:`crosssim.check.select_sources`)."""
    backends = _names(args.backend, "--backend")
    if backends == []:
        from crosssim.sources import SIMULATOR, known_sources

        raise UsageError(f"--backend: give {', '.join(known_sources(SIMULATOR))} or all "
                         "(see 'crosssim sources')")
    references = _names(getattr(args, "references", "all"), "--references")
    return backends, references


def prestart_children(args: argparse.Namespace) -> None:
    """Start the child processes of the simulators ``--backend`` names (``all``: the
    default ones) now, before the model loads, so that their start-up overlaps it (see
    :func:`crosssim.sources.prestart_sources`; a child no run takes is stopped at exit)."""
    from crosssim.sources import prestart_sources

    option = getattr(args, "backend", "all")
    prestart_sources(None if option == "all" else [name.strip() for name in option.split(",")])


def selected_backends(args: argparse.Namespace) -> list[str]:
    """The simulators of ``--backend`` as names (every installed default one for ``all``),
    for commands that run simulators only (``run``, ``converge``).  A default simulator
    left out (not installed) is said on stderr in one line, with how to add it."""
    from crosssim.check import select_sources
    from crosssim.report.text import render_notes

    backends, _ = selected_sources(args)
    kinds, notes = select_sources(backends, [])
    for line in render_notes(notes):  # shown even with --quiet: it explains the output
        print(line, file=sys.stderr)
    return list(kinds)


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


def check_writable(path: Path, *, what: str, folder: bool, hint: str = "") -> None:
    """Raise UsageError if ``path`` (a folder, or a file when ``folder`` is False) cannot be
    written: it is the wrong kind of thing, or its nearest existing parent is not a
    writable folder (tried with a temporary file, removed at once: permission bits say
    nothing on a read-only file system or for root).  ``hint`` ends the message."""
    path = Path(path)
    suffix = f"; {hint}" if hint else ""
    if path.exists():
        if folder and not path.is_dir():
            raise UsageError(f"{what} {path}: exists and is not a folder{suffix}")
        if not folder and path.is_dir():
            raise UsageError(f"{what} {path}: is a folder; give a file name")
        target = path if folder else path.parent
        if not _can_write_in(target):
            raise UsageError(f"{what} {path}: {target} is not writable{suffix}")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: {parent} is not a folder{suffix}")
    if not _can_write_in(parent):
        raise UsageError(f"{what} {path}: cannot create it, {parent} is not writable{suffix}")


def _can_write_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried, then removed)."""
    import tempfile

    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".crosssim-probe."):
            return True
    except OSError:
        return False


def check_cache_writable(args: argparse.Namespace) -> None:
    """Refuse (UsageError, before anything runs) when the results cache is on and its
    folder (``CROSSSIM_CACHE_DIR``) cannot be written."""
    if getattr(args, "no_cache", False):
        return
    from crosssim.study.cache import cache_root

    check_writable(cache_root(), what="results cache (CROSSSIM_CACHE_DIR)", folder=True,
                   hint="set CROSSSIM_CACHE_DIR to a writable folder, or --no-cache")


def window_start(args: argparse.Namespace, model: Model) -> float | None:
    """``--window-start`` in ms, checked by :func:`crosssim.check.check_window` against
    ``model`` (UsageError naming the flag); None when the flag is not given."""
    if args.window_start is None:
        return None
    from crosssim.check import check_window

    try:
        return check_window(model, args.window_start)
    except UsageError:  # time_ms already refused negatives: the start is after t_stop
        raise UsageError(f"--window-start {args.window_start:g} ms is after t_stop_ms "
                         f"({model.simulation.t_stop_ms:g} ms)") from None


def ensure_valid_model_source(spec: str) -> None:
    """Raise InvalidModelError early for a model path that does not exist."""
    path = Path(spec)
    if path.suffix.lower() == ".toml" and not path.exists():
        raise InvalidModelError("file not found", source=spec)


def _number(text: str, *, what: str, allowed: str, ok: Callable[[Any], bool],
            kind: Callable[[str], Any] = float) -> Any:
    """argparse type helper: ``kind(text)`` if ``ok`` holds for it, else ArgumentTypeError
    ``'TEXT' is not WHAT`` (it does not parse) or ``'TEXT': ALLOWED`` (out of range)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r}: {allowed}")
    return value


def _finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def tolerance_mV(text: str) -> float | None:
    """argparse type: a tolerance in mV (finite, >= 0), or ``none``/``off`` for report only."""
    if text.strip().lower() in {"none", "off"}:
        return None
    return _number(text, what="a number of mV (or 'none')", ok=_finite_non_negative,
                   allowed="a tolerance must be a finite number >= 0")


def time_ms(text: str) -> float:
    """argparse type: a time in ms (finite, >= 0)."""
    return _number(text, what="a time in ms", ok=_finite_non_negative,
                   allowed="a time must be a finite number >= 0")


def seconds(text: str) -> float:
    """argparse type: a number of seconds (finite, > 0)."""
    return _number(text, what="a number of seconds", ok=lambda v: math.isfinite(v) and v > 0,
                   allowed="must be a number of seconds > 0")


def count(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _number(text, what="a whole number", ok=lambda v: v >= 1, allowed="must be >= 1",
                   kind=int)


def named_tolerance(text: str) -> tuple[str, float | None]:
    """argparse type of ``--tolerance NAME=MV``: a gate (``backends`` or a reference's name)
    and its tolerance in mV (or ``none``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=MV, e.g. discrete=1e-9")
    return name.strip(), tolerance_mV(value)


def add_tolerance_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tolerance-NAME MV`` for every named field of ``[tolerance]`` (backends, analytic,
    lumped) and ``--tolerance NAME=MV`` for any gate (absent = the model's values)."""
    from crosssim.model import Tolerance

    for field, info in Tolerance.model_fields.items():
        if not field.endswith("_abs_mV") or field == "reference_abs_mV":
            continue
        gate = field.removesuffix("_abs_mV")
        parser.add_argument(f"--tolerance-{gate}", type=tolerance_mV,
                            default=argparse.SUPPRESS, metavar="MV",
                            help=f"{info.description or gate} in mV ('none': report only)")
    parser.add_argument("--tolerance", dest="tolerances", type=named_tolerance,
                        action="append", default=[], metavar="NAME=MV",
                        help="tolerance of one gate: backends or a reference's name "
                        "(repeatable), e.g. --tolerance discrete=1e-9")


def tolerance_overrides(args: argparse.Namespace) -> dict[str, float | None]:
    """The tolerance flags given on the command line: gate -> mV (None: report only)."""
    from crosssim.model import Tolerance

    given = {field.removesuffix("_abs_mV"): getattr(args, f"tolerance_{field[:-7]}")
             for field in Tolerance.model_fields
             if field.endswith("_abs_mV") and hasattr(args, f"tolerance_{field[:-7]}")}
    given.update(dict(getattr(args, "tolerances", []) or []))
    return given



def add_execution_arguments(parser) -> None:
    """``--workers N``, ``--scheduler ADDRESS``, ``--no-cache``, ``--timeout S``, ``--quiet``
    of the studies (``converge``, ``sweep``, ``report --converge``) on ``parser`` (anything
    with ``add_argument``)."""
    from crosssim.study.executors import default_workers

    parser.add_argument("--workers", type=count, default=None, metavar="N",
                        help=f"simulations run at once on this machine, each in its own "
                        f"process (default: every core, here {default_workers()})")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on an existing Dask distributed scheduler, e.g. "
                        "tcp://10.0.0.5:8786 (needs pip install 'crosssim[dask]')")
    parser.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the results cache (see 'crosssim cache')")
    parser.add_argument("--timeout", type=seconds, default=None, metavar="S",
                        help="kill a simulation that runs longer than S seconds "
                        "(recorded as failed)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
