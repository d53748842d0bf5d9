"""Built-in models with active membranes: ``hh_ring``, a travelling spike.

``crosssim check hh_ring --param n_cells=1000``: Hodgkin-Huxley cables joined end to end
by gap junctions in a ring; a short clamp on cell 0 makes it fire once, the spike crosses
each junction in turn, travelling both ways round the ring, and the two fronts meet (and
stop, each cell being refractory) on the far side.  Every cell fires exactly once.

Measured on 10 cells (Arbor, dt 0.025 ms): the spike crosses a junction in 0.74 ms at
0.01 uS, 0.33 ms at 0.05 uS, 0.05 ms at 0.2 uS; below about 0.0015 uS it does not cross, and
at 0.5 uS the clamp cannot bring cell 0 to threshold (its neighbours take the current).
The default 0.05 uS sits well inside that range.

Arbor and NEURON step hh differently (the difference falls as dt^2), and along the ring the
spike-time difference adds up: about 0.065 us per junction crossed at dt 0.025 ms.  On 10
cells that is 0.45 us; at 1,000 cells it reaches 28.7 us at the far side, beyond the default
10 us gate; dt 0.0125 ms brings it to 7.1 us.
"""

from __future__ import annotations

import math
from typing import Any

from crosssim.builtin import register
from crosssim.builtin.networks import _float, _int, check_size, probe_cells
from crosssim.model import Model, model_from_dict

#: One cell: the cable of the hh tests, 100 um x 3 um radius, NEURON's hh defaults,
#: cm 1 uF/cm^2, Ra 35.4 ohm*cm, starting at -65 mV.
HH_CELL: dict[str, Any] = {"length_um": 100.0, "radius_um": 3.0, "cm_F_per_m2": 0.01,
                           "ra_ohm_cm": 35.4, "membrane": "hh"}
#: Time the spike takes per junction, generously, at the default 0.05 uS (measured 0.33 ms).
MS_PER_CELL = 0.4

PARAMETERS: dict[str, Any] = {
    "cvs_per_cell": 11, "g_uS": 0.05, "t_stop_ms": None, "dt_ms": 0.025,
    "sample_dt_ms": None, "n_probes": 10, "clamp_nA": 1.0, "clamp_ms": 2.0}


def default_t_stop_ms(n_cells: int) -> float:
    """Long enough for the spike to reach the cell opposite cell 0 at the default junction
    (5 ms + 0.4 ms per cell on half the ring)."""
    return 5.0 + MS_PER_CELL * math.ceil(n_cells / 2)


def hh_ring(n_cells: int = 10, **params: Any) -> Model:
    """A ring of Hodgkin-Huxley cables; a clamp on cell 0 starts one travelling spike.

    Parameters: ``n_cells`` (10), ``cvs_per_cell`` (11), ``g_uS`` (0.05, junctions from x = 1
    of cell i to x = 0 of cell i+1), ``t_stop_ms`` (default :func:`default_t_stop_ms`),
    ``dt_ms`` (0.025), ``sample_dt_ms`` (dt), ``n_probes`` (10 at the middle of cells spread
    from the first to the last; ``n_probes=N`` probes every cell), ``clamp_nA`` (1.0) and
    ``clamp_ms`` (2.0): the clamp on the middle of cell 0, from 1 ms.
    """
    n = _int("n_cells", n_cells, 3)
    unknown = set(params) - set(PARAMETERS)
    if unknown:  # builtin_model checks names first; this guards direct calls
        from crosssim.errors import UsageError

        raise UsageError(f"unknown --param {', '.join(sorted(unknown))}; allowed: "
                         + ", ".join(sorted(PARAMETERS)))
    cvs = _int("cvs_per_cell", params.get("cvs_per_cell", 11), 1)
    g_uS = _float("g_uS", params.get("g_uS", 0.05))
    t_stop = params.get("t_stop_ms")
    t_stop = default_t_stop_ms(n) if t_stop is None else _float("t_stop_ms", t_stop,
                                                                positive=True)
    dt = _float("dt_ms", params.get("dt_ms", 0.025), positive=True)
    sample = params.get("sample_dt_ms")
    n_probes = min(_int("n_probes", params.get("n_probes", 10), 1), n)
    clamp_nA = _float("clamp_nA", params.get("clamp_nA", 1.0))
    clamp_ms = _float("clamp_ms", params.get("clamp_ms", 2.0), positive=True)
    check_size(n, cvs, n_probes, int(t_stop / (sample or dt)) + 1, what="built-in hh_ring")

    width = len(str(n - 1))
    names = [f"c{i:0{width}d}" for i in range(n)]
    simulation: dict[str, Any] = {"t_stop_ms": t_stop, "dt_ms": dt}
    if sample is not None:
        simulation["sample_dt_ms"] = _float("sample_dt_ms", sample, positive=True)
    return model_from_dict(
        {"name": f"hh_ring_{n}",
         "description": f"ring of {n} Hodgkin-Huxley cables joined by gap junctions; a "
                        "clamp on the first starts one spike that travels round both ways",
         "simulation": simulation, "discretization": {"cvs_per_cell": cvs},
         "cells": [{"name": name, **HH_CELL} for name in names],
         "gap_junctions": [{"cells": [names[i], names[(i + 1) % n]], "x": [1.0, 0.0],
                            "g_uS": g_uS} for i in range(n)],
         "probes": [{"cell": names[i], "x": 0.5, "name": f"{names[i]}_mid"}
                    for i in probe_cells(n, n_probes)],
         "stimuli": [{"cell": names[0], "x": 0.5, "delay_ms": 1.0, "duration_ms": clamp_ms,
                      "amplitude_nA": clamp_nA}]},
        source="<built-in hh_ring>")


register("hh_ring", hh_ring, PARAMETERS)
