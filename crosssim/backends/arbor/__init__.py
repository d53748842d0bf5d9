"""Arbor backend: model -> recipe (:mod:`.recipe`), run, samples on the model's grid.

Semantics (shared with the NEURON backend): CV count ``model.cvs(cell)`` per cell
(``cv_policy_fixed_per_branch``); probe = linear interpolation between CV centres
(extrapolated from the outermost pair to the ends); point sources (junctions, clamps) act on
the CV containing x, a site on a CV boundary belonging to the distal CV; implicit Euler.
A model with section trees follows :mod:`crosssim.cvgraph` instead (see :mod:`.morphology`):
explicit CV boundaries at ``k / n`` of every section with zero-length CVs at forks, sites on
CV centres, probes combined from whole-cell samples of the CV nodes.

Arbor answers a sample request at time s with the state at the start of the step containing
s, and a run to T covers [0, T); the adapter requests mid-step times ``k*sample_dt + dt/2``
(immune to rounding of ``k*sample_dt``) and runs one extra step so the sample at ``t_stop``
exists.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from crosssim.errors import BackendError, CrossSimError
from crosssim.result import RunResult, nominal_grid

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = ["run"]

_BACKEND = "arbor"


def _cvs_info(model: Model) -> dict | list[int]:
    counts = [model.cvs(cell) for cell in model.cells]
    if len(counts) <= 20:
        return counts
    return {"cells": len(counts), "min": min(counts), "max": max(counts), "total": sum(counts)}


#: Samples (probes x sample times) Arbor may stage at once.  Without spike connections an
#: Arbor epoch spans the whole run and every sample event of the run is staged up front
#: (about 150 bytes each); running in chunks bounds that memory.
MAX_STAGED_SAMPLES = 1_000_000


def _chunk_ends(n_steps: int, steps_per_sample: int, n_probes: int) -> list[int]:
    """Step counts at which to end successive ``sim.run`` calls (the last is ``n_steps``).

    Chunks hold whole sample intervals and at most :data:`MAX_STAGED_SAMPLES` samples.  The
    results do not depend on the chunking beyond rounding: steps stay ``dt`` long and the
    sample times lie mid-step.
    """
    samples_per_chunk = max(1, MAX_STAGED_SAMPLES // max(1, n_probes))
    chunk = samples_per_chunk * steps_per_sample
    ends = list(range(chunk, n_steps, chunk))
    return ends + [n_steps]


def run(model: Model, *, threads: int | None = None) -> RunResult:
    """Run ``model`` on Arbor; voltages in mV at every probe on ``t = 0 .. t_stop``.

    ``threads`` defaults to ``[backends.arbor] threads``.  Cells joined by gap junctions
    share one cell group, which one thread advances: threads speed up models with several
    unconnected components, not one ring or chain.  ``wall_time_s`` is build + run.
    """
    import arbor

    from crosssim.backends.arbor import _compat
    from crosssim.backends.arbor.recipe import PROBE_TAG, CrossSimRecipe, samples_by_position

    threads = model.backends.arbor.threads if threads is None else int(threads)
    if threads < 1:
        raise BackendError(_BACKEND, f"threads must be >= 1 (got {threads})")
    sim_settings = model.simulation
    dt = sim_settings.dt_ms
    n_samples = sim_settings.n_samples

    started = time.perf_counter()
    try:
        recipe = CrossSimRecipe(model)
        simulation = arbor.simulation(recipe, _compat.context(threads))
        # mid-step request times: Arbor answers with the step starting at k*sample_dt
        schedule = _compat.sample_schedule(sim_settings.sample_times_ms() + 0.5 * dt)
        sampling = time.perf_counter()
        # One probe set per probed cell: Arbor 0.12's sim.sample scans (hashes) every probe
        # set of the cell group on each call, so setting up C probed cells of one coupled
        # network costs O(C^2): about 0.2 us x C^2 (20 s for 10,000 probed cells).
        handles = {gid: simulation.sample((gid, PROBE_TAG), schedule)
                   for gid in recipe.probed_cells()}
        built = time.perf_counter()
        n_steps = sim_settings.n_steps + 1  # one extra step: the sample at t_stop
        for chunk_end in _chunk_ends(n_steps, sim_settings.steps_per_sample,
                                     recipe.sampled_values()):
            _compat.run(simulation, chunk_end * dt, dt)
        finished = time.perf_counter()
    except CrossSimError:
        raise  # already says what is wrong (a refused MOD file is exit 2)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise BackendError(_BACKEND, f"{type(exc).__name__}: {exc}") from exc

    rows_by_cell: dict[int, list[tuple[int, list]]] = {}
    for row, (gid, terms) in enumerate(recipe.probe_rows()):
        rows_by_cell.setdefault(gid, []).append((row, terms))
    values = np.empty((len(recipe.probe_rows()), n_samples))
    times = None
    for gid, handle in handles.items():
        streams = samples_by_position(simulation.samples(handle), recipe.probe_places(gid))
        simulation.remove_sampler(handle)  # frees Arbor's copy of these samples
        for row, terms in rows_by_cell[gid]:
            for k, (where, weight) in enumerate(terms):
                data = streams.get(where)
                if data is None:
                    raise BackendError(_BACKEND, f"no samples for the probe at {where!r} "
                                       f"(branch, position) on cell {gid} (Arbor returned "
                                       f"{sorted(streams)})")
                if times is None or data.shape[0] != n_samples:
                    times = nominal_grid(data[:, 0], model, _BACKEND)
                if k == 0:
                    values[row] = data[:, 1] if weight == 1.0 else weight * data[:, 1]
                else:
                    values[row] += weight * data[:, 1]
    if times is None:
        times = sim_settings.sample_times_ms()

    info = {
        "arbor_version": _compat.ARBOR_VERSION,
        "cvs": _cvs_info(model),
        "cv_policy": ("explicit: k/n of every section, zero-length CVs at forks"
                      if recipe.has_trees() else "fixed_per_branch(model.cvs(cell))"),
        "method": "implicit Euler",
        "scheme": "implicit-euler",
        "dt_ms": dt,
        "threads": threads,
        "probed_cells": len(handles),
        "distinct_cells": recipe.distinct_cells(),
        "build_s": built - started,
        "sampling_setup_s": built - sampling,
        "run_s": finished - built,
    }
    probes = [probe.label for probe in model.effective_probes()]
    return RunResult(backend=_BACKEND, probes=probes, times_ms=times, values_mV=values,
                     wall_time_s=finished - started, info=info)
