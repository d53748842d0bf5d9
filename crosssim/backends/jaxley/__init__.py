"""Jaxley backend: model -> Jaxley network (:mod:`.network`), compiled once per structure, run
with JAX on the CPU in float64, samples on the model's grid.

Semantics (shared with the Arbor and NEURON backends, :mod:`crosssim.discretization`): CV
count ``model.cvs(cell)`` per cell; point sources (junction halves, clamps) act on the CV
containing x; probes interpolate linearly between CV centres (extrapolated to the ends);
clamps are on for the steps whose start ``t`` satisfies ``delay <= t < delay + duration``;
implicit Euler.  Each junction half keeps the peer's voltage of the previous step as a
state, so the junction is implicit in its own site's voltage and explicit in the peer's,
as in Arbor and NEURON (see :class:`._compat.HalfJunction`).

Compilation: the network and the compiled program depend only on the model's *structure*
(:class:`.network.Structure`); every value (geometry, conductances, reversal and initial
voltages, junction conductances, clamp amplitudes and timing) is an argument.  A second
model of the same structure in one process reuses both (``info["reused"]``); in a fresh
process JAX's persistent compilation cache under ``<crosssim cache>/jax`` answers the
compile step when it has seen the program (``compilation_cache=False`` turns that off).

Options: ``compilation_cache`` (bool, default True).  ``wall_time_s`` is build + compile +
run (not the first import of JAX and Jaxley, ``info["import_s"]``); ``info`` splits them
(``build_s``, ``compile_s``, ``run_s``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from crosssim.errors import BackendError, SourceNotApplicableError
from crosssim.result import RunResult

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = ["run"]

_BACKEND = "jaxley"


def _cvs_info(counts: tuple[int, ...]) -> dict | list[int]:
    if len(counts) <= 20:
        return list(counts)
    return {"cells": len(counts), "min": min(counts), "max": max(counts), "total": sum(counts)}


def _cache_folder() -> str:
    from crosssim.provenance import cache_base

    return str(cache_base() / "jax")


def run(model: Model, *, compilation_cache: bool = True) -> RunResult:
    """Run ``model`` on Jaxley; voltages in mV at every probe on ``t = 0 .. t_stop``.

    Membranes: a passive leak and NEURON's ``hh`` (:class:`._compat.HodgkinHuxley`); user
    NMODL mechanisms raise :class:`~crosssim.errors.SourceNotApplicableError`.
    """
    if model.mechanisms:  # cells can use user channels only through [[mechanisms]]
        raise SourceNotApplicableError(
            _BACKEND, f"user NMODL mechanisms ({model.mechanisms[0].suffix}); Jaxley runs "
            "the passive leak and hh only")
    started = time.perf_counter()
    try:
        from crosssim.backends.jaxley import _compat
        from crosssim.backends.jaxley.network import compiled, lower
    except ImportError as exc:
        raise BackendError(_BACKEND, f"failed to import Jaxley: {exc}") from exc
    imported = time.perf_counter()

    cache_folder = _compat.compilation_cache(_cache_folder() if compilation_cache else None)
    structure, values, readout = lower(model)
    try:
        program, reused = compiled(structure, values)
        ready = time.perf_counter()
        recorded = program.run(values)
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise BackendError(_BACKEND, f"{type(exc).__name__}: {exc}") from exc
    finished = time.perf_counter()

    sim = model.simulation
    info = {
        "jaxley_version": _compat.JAXLEY_VERSION,
        "jax_version": _compat.JAX_VERSION,
        "cvs": _cvs_info(structure.compartments),
        "method": "implicit Euler",
        "scheme": "implicit-euler",
        "voltage_solver": _compat.VOLTAGE_SOLVER,
        "dtype": "float64",
        "dt_ms": sim.dt_ms,
        "junction_halves": len(structure.half_site),
        "recorded_compartments": len(structure.recorded),
        "structure": structure.key(),
        "reused": reused,
        "compilation_cache": cache_folder,
        "import_s": imported - started,
        "build_s": 0.0 if reused else program.build_s,
        "compile_s": 0.0 if reused else program.compile_s,
        "run_s": finished - ready,
    }
    probes = [probe.label for probe in model.effective_probes()]
    return RunResult(backend=_BACKEND, probes=probes, times_ms=sim.sample_times_ms(),
                     values_mV=readout.probe_values(recorded), wall_time_s=finished - imported,
                     info=info)
