"""Writing crosssim's results as files: traces.csv, model.toml, check.json.

Each function writes through :mod:`crosssim.files` (atomic: a reader never sees half a
file).  Commands, ``assert_agree`` and the report writer all call these, so a trace table or
a saved model is written one way everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from crosssim.files import atomic_open, atomic_write_text, write_csv, write_json

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.outcome import CheckOutcome
    from crosssim.result import RunResult

__all__ = ["grid_times", "write_check_artifacts", "write_model", "write_traces"]


#: Characters that make a CSV field need quoting (then the pandas writer is used).
_CSV_SPECIAL = frozenset(',"\r\n')
#: Rows formatted per block of the direct CSV writer (bounds the temporary strings).
_CSV_BLOCK_ROWS = 200_000


def _csv_floats(values: Any) -> list[str]:
    """Shortest round-trip text of each float, as pandas writes it (NaN as empty)."""
    import numpy as np

    text = np.asarray(values, dtype=float).astype(str)
    if not np.isfinite(values).all():
        text[np.isnan(values)] = ""
        text[np.isposinf(values)] = "inf"
        text[np.isneginf(values)] = "-inf"
    return text.tolist()


def _write_traces_direct(handle: IO[str], results: Sequence[RunResult]) -> None:
    """The long-form CSV of ``results`` written with numpy and str.join: the same bytes as
    ``results_to_frame(results).to_csv(index=False)`` without importing pandas."""
    handle.write(",".join(("backend", "probe", "t_ms", "v_mV")) + "\n")
    grids = [r.times_ms for r in results if len(r.times_ms) > 1]
    for result in results:
        times = _csv_floats(grid_times(result.times_ms, grids))
        n_samples = len(times)
        if not n_samples:
            continue
        per_block = max(1, _CSV_BLOCK_ROWS // n_samples)
        for first in range(0, len(result.probes), per_block):
            block = result.values_mV[first:first + per_block]
            values = _csv_floats(block.reshape(-1))
            lines = []
            for row, probe in enumerate(result.probes[first:first + per_block]):
                prefix = f"{result.backend},{probe},"
                offset = row * n_samples
                lines.append("".join(
                    f"{prefix}{t},{v}\n"
                    for t, v in zip(times, values[offset:offset + n_samples])))
            handle.write("".join(lines))


def write_traces(path: Path, results: Sequence[RunResult]) -> Path:
    """Write ``results`` as one long-form CSV table (``backend, probe, t_ms, v_mV``) at full
    precision (backends agree to ~1e-12 mV) to ``path`` atomically.

    Times are written as the decimal grid values (:func:`grid_times`).  Written directly
    (numpy's shortest round-trip float text, the same bytes pandas writes) unless a source
    or probe name needs CSV quoting; then through pandas."""
    results = list(results)
    names = [result.backend for result in results]
    names += [probe for result in results for probe in result.probes]
    if not results or any(_CSV_SPECIAL.intersection(name) for name in names):
        from crosssim.result import results_to_frame

        frame = results_to_frame(results)
        frame["t_ms"] = grid_times(frame["t_ms"].to_numpy(),
                                   [r.times_ms for r in results if len(r.times_ms) > 1])
        return write_csv(path, frame)
    path = Path(path)
    with atomic_open(path) as handle:
        _write_traces_direct(handle, results)
    return path


def grid_times(times_ms: Any, grids: Sequence[Any]) -> Any:
    """``times_ms`` as the decimal grid values people wrote: ``k * 0.01`` is
    ``0.15000000000000002`` in binary, written ``0.15``.  Rounded to 6 decimal places below
    the finest step of ``grids`` (each a sample-time array); unchanged without a grid."""
    import numpy as np

    steps = [float(grid[1] - grid[0]) for grid in grids if grid[1] > grid[0]]
    if not steps:
        return times_ms
    decimals = min(15, max(0, 6 - math.floor(math.log10(min(steps)))))
    return np.round(np.asarray(times_ms, dtype=float), decimals)


def write_model(folder: Path, model: Model, *, resolved: bool = False) -> list[Path]:
    """Write ``model.toml`` (the model as given) and, with ``resolved``,
    ``model.resolved.toml`` (every default spelled out) into ``folder``."""
    from crosssim.model import dumps_model

    folder = Path(folder)
    written = [folder / "model.toml"]
    atomic_write_text(written[0], dumps_model(model))
    if resolved:
        written.append(folder / "model.resolved.toml")
        atomic_write_text(written[1], dumps_model(model, resolved=True))
    return written


def write_check_artifacts(outcome: CheckOutcome, folder: Path | str, *,
                          model: Model | None = None,
                          document: Mapping[str, Any] | None = None) -> list[Path]:
    """Write what reproduces a check into ``folder``: ``model.toml`` (when ``model`` is
    given), ``check.json`` (``document``, default :meth:`CheckOutcome.to_document`) and
    ``traces.csv`` (every source, when any produced traces).  Returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = write_model(folder, model) if model is not None else []
    written.append(write_json(folder / "check.json",
                              outcome.to_document() if document is None else document))
    if outcome.results:
        written.append(write_traces(folder / "traces.csv", list(outcome.results.values())))
    return written
