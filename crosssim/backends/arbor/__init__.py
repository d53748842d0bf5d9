"""Arbor backend: model -> recipe (:mod:`.recipe`), run, samples on the model's grid.

Semantics (shared with the NEURON backend): CV count ``model.cvs(cell)`` per cell
(``cv_policy_fixed_per_branch``); probe = linear interpolation between CV centres
(extrapolated from the outermost pair to the ends); point sources (junctions, clamps) act on
the CV containing x, a site on a CV boundary belonging to the distal CV; implicit Euler.

Arbor answers a sample request at time s with the state at the start of the step containing
s, and a run to T covers [0, T); the adapter requests mid-step times ``k*sample_dt + dt/2``
(immune to rounding of ``k*sample_dt``) and runs one extra step so the sample at ``t_stop``
exists.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from crosssim.backends.base import RunResult, nominal_grid
from crosssim.errors import BackendError

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = ["run"]

_BACKEND = "arbor"


def _cvs_info(model: Model) -> dict | list[int]:
    counts = [model.cvs(cell) for cell in model.cells]
    if len(counts) <= 20:
        return counts
    return {"cells": len(counts), "min": min(counts), "max": max(counts), "total": sum(counts)}


def run(model: Model, *, threads: int | None = None) -> RunResult:
    """Run ``model`` on Arbor; voltages in mV at every probe on ``t = 0 .. t_stop``.

    ``threads`` defaults to ``[backends.arbor] threads``.  ``wall_time_s`` is build + run.
    """
    import arbor

    from crosssim.backends.arbor import _compat
    from crosssim.backends.arbor.recipe import CrossSimRecipe

    threads = model.backends.arbor.threads if threads is None else int(threads)
    if threads < 1:
        raise BackendError(_BACKEND, f"threads must be >= 1 (got {threads})")
    sim_settings = model.simulation
    dt = sim_settings.dt_ms
    t_stop = sim_settings.t_stop_ms
    n_samples = sim_settings.n_samples

    started = time.perf_counter()
    try:
        recipe = CrossSimRecipe(model)
        simulation = arbor.simulation(recipe, _compat.context(threads))
        # mid-step request times: Arbor answers with the step starting at k*sample_dt
        schedule = _compat.sample_schedule(sim_settings.sample_times_ms() + 0.5 * dt)
        addresses = recipe.probe_addresses()
        handles = [simulation.sample(address, schedule) for address in addresses]
        built = time.perf_counter()
        _compat.run(simulation, t_stop + dt, dt)
        finished = time.perf_counter()
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise BackendError(_BACKEND, f"{type(exc).__name__}: {exc}") from exc

    values = np.empty((len(handles), n_samples))
    times = None
    for row, (handle, address) in enumerate(zip(handles, addresses)):
        entries = simulation.samples(handle)
        if len(entries) != 1:
            raise BackendError(_BACKEND, f"probe {address} returned {len(entries)} sample "
                               "streams, expected 1")
        data = np.asarray(entries[0][0])
        grid = nominal_grid(data[:, 0], model, _BACKEND)
        times = grid if times is None else times
        values[row] = data[:, 1]
    if times is None:
        times = sim_settings.sample_times_ms()

    info = {
        "arbor_version": _compat.ARBOR_VERSION,
        "cvs": _cvs_info(model),
        "cv_policy": "fixed_per_branch(model.cvs(cell))",
        "method": "implicit Euler",
        "dt_ms": dt,
        "threads": threads,
        "build_s": built - started,
        "run_s": finished - built,
    }
    probes = [probe.label for probe in model.effective_probes()]
    return RunResult(backend=_BACKEND, probes=probes, times_ms=times, values_mV=values,
                     wall_time_s=finished - started, info=info)
