"""Built-in network generators: ``chain``, ``ring`` and ``grid`` of seed-like cells.

Parameters come from the command line (``crosssim run ring --param n_cells=10000``) or
keyword arguments.  Cells alternate between two leak potentials (like the seed's two cells)
so that the junctions carry current; optional clamps drive some cells.  The size is checked
against the machine's memory *before* anything large is allocated.
"""

from __future__ import annotations

import math
import os
from typing import Any

from crosssim.builtin import SEED_CELL, register
from crosssim.errors import ResourceLimitError, UsageError
from crosssim.model import Model, model_from_dict

#: Peak bytes per cell of the neutral model (pydantic objects, dict/JSON copies), per CV in a
#: simulator, and per sample (one probe at one time) over one ``crosssim check`` with both
#: backends: measured on a 10,000-cell ring about 1-2 KB per cell, 1-1.3 KB per CV (Arbor,
#: NEURON) and 30 B per sample in each backend plus the comparison's aligned copies.  The
#: constants are generous; they serve only the refusal estimate.
BYTES_PER_CELL = 6_000
BYTES_PER_CV = 2_000
BYTES_PER_SAMPLE = 160


def physical_memory_bytes() -> int:
    """Total physical memory of this machine in bytes (0 if unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 0


def estimate_bytes(n_cells: int, cvs_per_cell: int, n_probes: int, n_samples: int) -> int:
    """A generous estimate of the peak memory of one check of such a network, in bytes."""
    return (n_cells * BYTES_PER_CELL + n_cells * cvs_per_cell * BYTES_PER_CV
            + n_probes * n_samples * BYTES_PER_SAMPLE)


def check_size(n_cells: int, cvs_per_cell: int, n_probes: int, n_samples: int,
               *, what: str) -> None:
    """Raise ResourceLimitError (with the estimate) if the network would not fit in memory."""
    need = estimate_bytes(n_cells, cvs_per_cell, n_probes, n_samples)
    limit = physical_memory_bytes() * 0.6
    if limit and need > limit:
        raise ResourceLimitError(
            f"{what}: {n_cells} cells x {cvs_per_cell} CVs with {n_probes} probes x "
            f"{n_samples} samples needs about {need / 2**30:.1f} GiB, more than 60% of this "
            f"machine's {physical_memory_bytes() / 2**30:.1f} GiB; allowed: fewer cells, CVs, "
            "probes or samples")


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"--param {name}={value!r}: allowed: a whole number >= {minimum}")
    return value


def _float(name: str, value: Any, *, positive: bool = False, unit_interval: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"--param {name}={value!r}: allowed: a finite number")
    if positive and value <= 0:
        raise UsageError(f"--param {name}={value!r}: allowed: a number > 0")
    if unit_interval and not 0 <= value <= 1:
        raise UsageError(f"--param {name}={value!r}: allowed: a number in [0, 1]")
    return float(value)


def probe_cells(n_cells: int, n_probes: int) -> list[int]:
    """``n_probes`` distinct cell indices spread evenly from the first to the last cell
    (rounded half up), so that both leak potentials and both ends of a chain are seen."""
    if n_probes <= 1:
        return [0][:n_probes]
    span = n_probes - 1
    return [(2 * k * (n_cells - 1) + span) // (2 * span) for k in range(n_probes)]


def _network(kind: str, n_cells: int, edges, *, cvs_per_cell: int, g_uS: float,
             x_from: float, x_to: float, e_leak_mV: float, e_leak_alt_mV: float,
             t_stop_ms: float, dt_ms: float, sample_dt_ms: float | None, n_probes: int,
             clamp_every: int, clamp_nA: float, name: str) -> Model:
    n_probes = min(n_probes, n_cells)
    sample = sample_dt_ms or dt_ms
    check_size(n_cells, cvs_per_cell, n_probes, int(t_stop_ms / sample) + 1,
               what=f"built-in {kind}")
    width = len(str(n_cells - 1))
    names = [f"c{i:0{width}d}" for i in range(n_cells)]
    cells = [{"name": names[i], **SEED_CELL,
              "e_leak_mV": e_leak_mV if i % 2 == 0 else e_leak_alt_mV}
             for i in range(n_cells)]
    junctions = [{"cells": [names[i], names[j]], "x": [x_from, x_to], "g_uS": g_uS}
                 for i, j in edges]
    probes = [{"cell": names[i], "x": 0.5, "name": f"{names[i]}_mid"}
              for i in probe_cells(n_cells, n_probes)]
    stimuli = []
    if clamp_every and clamp_nA:
        stimuli = [{"cell": names[i], "x": 0.5, "delay_ms": min(1.0, t_stop_ms / 4),
                    "duration_ms": t_stop_ms / 2, "amplitude_nA": clamp_nA}
                   for i in range(0, n_cells, clamp_every)]
    simulation = {"t_stop_ms": t_stop_ms, "dt_ms": dt_ms}
    if sample_dt_ms is not None:
        simulation["sample_dt_ms"] = sample_dt_ms
    return model_from_dict(
        {"name": name, "description": f"{kind} of {n_cells} seed cells joined by gap junctions",
         "simulation": simulation, "discretization": {"cvs_per_cell": cvs_per_cell},
         "cells": cells, "gap_junctions": junctions, "probes": probes, "stimuli": stimuli,
         # junctions off the CV centres and many cells: tolerant analytic gate
         "tolerance": {"backends_abs_mV": 1e-6, "analytic_abs_mV": 0.5}},
        source=f"<built-in {kind}>")


_COMMON_DOC = """
    Parameters: ``n_cells``, ``cvs_per_cell`` (default 11), ``g_uS`` (0.01), ``x_from`` /
    ``x_to`` (junction positions on the first / second cell of each pair, default 1.0 / 0.0:
    end to end), ``e_leak_mV`` / ``e_leak_alt_mV`` (even / odd cells, -100 / -60 as in the
    seed), ``t_stop_ms`` (5), ``dt_ms`` (0.025), ``sample_dt_ms`` (dt), ``n_probes``
    (10, at the middle of cells spread evenly from the first to the last; ``n_probes=N``
    probes every cell), ``clamp_every`` (0: no clamps; k: a clamp on every k-th cell),
    ``clamp_nA`` (0.05)."""


#: The parameters every network generator takes, with their defaults (None: dt_ms).
COMMON_PARAMETERS: dict[str, Any] = {
    "cvs_per_cell": 11, "g_uS": 0.01, "x_from": 1.0, "x_to": 0.0, "e_leak_mV": -100.0,
    "e_leak_alt_mV": -60.0, "t_stop_ms": 5.0, "dt_ms": 0.025, "sample_dt_ms": None,
    "n_probes": 10, "clamp_every": 0, "clamp_nA": 0.05}


def _common(params: dict[str, Any]) -> dict[str, Any]:
    unknown = set(params) - set(COMMON_PARAMETERS)
    if unknown:  # builtin_model checks names first; this guards direct calls
        raise UsageError(f"unknown --param {', '.join(sorted(unknown))}; allowed: "
                         + ", ".join(sorted(COMMON_PARAMETERS)))
    sample = params.get("sample_dt_ms")
    return {
        "cvs_per_cell": _int("cvs_per_cell", params.get("cvs_per_cell", 11), 1),
        "g_uS": _float("g_uS", params.get("g_uS", 0.01)),
        "x_from": _float("x_from", params.get("x_from", 1.0), unit_interval=True),
        "x_to": _float("x_to", params.get("x_to", 0.0), unit_interval=True),
        "e_leak_mV": _float("e_leak_mV", params.get("e_leak_mV", -100.0)),
        "e_leak_alt_mV": _float("e_leak_alt_mV", params.get("e_leak_alt_mV", -60.0)),
        "t_stop_ms": _float("t_stop_ms", params.get("t_stop_ms", 5.0), positive=True),
        "dt_ms": _float("dt_ms", params.get("dt_ms", 0.025), positive=True),
        "sample_dt_ms": None if sample is None else _float("sample_dt_ms", sample, positive=True),
        "n_probes": _int("n_probes", params.get("n_probes", 10), 1),
        "clamp_every": _int("clamp_every", params.get("clamp_every", 0), 0),
        "clamp_nA": _float("clamp_nA", params.get("clamp_nA", 0.05)),
    }


def chain(n_cells: int = 10, **params: Any) -> Model:
    """A chain c0 - c1 - ... - c(N-1)."""
    n = _int("n_cells", n_cells, 2)
    return _network("chain", n, ((i, i + 1) for i in range(n - 1)), name=f"chain_{n}",
                    **_common(params))


def ring(n_cells: int = 10, **params: Any) -> Model:
    """A ring: a chain whose last cell joins the first."""
    n = _int("n_cells", n_cells, 3)
    return _network("ring", n, ((i, (i + 1) % n) for i in range(n)), name=f"ring_{n}",
                    **_common(params))


def grid(rows: int = 4, cols: int = 4, **params: Any) -> Model:
    """A rows x cols grid, each cell joined to its right and lower neighbour."""
    r = _int("rows", rows, 1)
    c = _int("cols", cols, 1)
    if r * c < 2:
        raise UsageError("--param rows/cols: allowed: at least 2 cells in all")
    edges = [(i * c + j, i * c + j + 1) for i in range(r) for j in range(c - 1)]
    edges += [(i * c + j, (i + 1) * c + j) for i in range(r - 1) for j in range(c)]
    return _network("grid", r * c, edges, name=f"grid_{r}x{c}", **_common(params))


for _name, _factory in (("chain", chain), ("ring", ring), ("grid", grid)):
    _factory.__doc__ = (_factory.__doc__ or "") + "\n" + _COMMON_DOC
    register(_name, _factory, COMMON_PARAMETERS)
