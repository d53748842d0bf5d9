"""The analytic references against independent methods, on models they were not tuned on.

* exact cable vs a finite-volume discretization of the cable PDE, integrated exactly in
  time (eigendecomposition), Richardson-extrapolated over three grids (error O(h^6));
* exact cable vs an independent Laplace-domain implementation in mpmath (cosh/sinh form,
  side-voltage formulation) inverted by ``mpmath.invertlaplace`` (Talbot) at 20 digits;
* lumped vs ``scipy.linalg.expm`` and ``scipy.integrate.solve_ivp`` (rtol 1e-12).

Everything here computes its constants from the raw model fields in ohm, cm, F, s.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crosssim.analytic import exact_cable, lumped
from crosssim.model import Model, model_from_dict


def _cell(name, length, radius, cm, ra, g, e, v=None):
    cell = {"name": name, "length_um": length, "radius_um": radius, "cm_F_per_m2": cm,
            "ra_ohm_cm": ra, "g_leak_S_per_cm2": g, "e_leak_mV": e}
    if v is not None:
        cell["v_init_mV"] = v
    return cell


def _per_length(cell):
    """(c F/cm, g_m S/cm, r_a ohm/cm, length cm) from the raw fields."""
    a_cm = cell.radius_um * 1e-4
    return (cell.cm_F_per_m2 * 1e-4 * 2 * math.pi * a_cm,
            cell.g_leak_S_per_cm2 * 2 * math.pi * a_cm,
            cell.ra_ohm_cm / (math.pi * a_cm**2),
            cell.length_um * 1e-4)


def _clamp_schedule(model: Model):
    """Switch times (ms) and the clamps on in each interval, as [(start_ms, [(cell, x, nA)])]."""
    starts = sorted({0.0} | {s.delay_ms for s in model.stimuli}
                    | {s.delay_ms + s.duration_ms for s in model.stimuli})
    return [(start, [(s.cell, s.x, s.amplitude_nA) for s in model.stimuli
                     if s.delay_ms <= start < s.delay_ms + s.duration_ms])
            for start in starts]


def _piecewise_exact(capacitance, stiffness, source_at, v0, times_ms, schedule, read):
    """Exact solution of C dV/dt = -K V + b(t) (SI, V in mV) with b piecewise constant."""
    root = np.sqrt(capacitance)
    rates, vectors = np.linalg.eigh(stiffness / np.outer(root, root))
    out = np.empty((len(read), len(times_ms)))
    state = v0.copy()
    bounds = [start for start, _ in schedule[1:]] + [np.inf]
    for (start, clamps), end in zip(schedule, bounds):
        steady = np.linalg.solve(stiffness, source_at(clamps))
        modal = vectors.T @ (root * (state - steady))
        for i, t in enumerate(times_ms):
            if start <= t <= end:
                out[:, i] = (steady + vectors @ (np.exp(-rates * (t - start) * 1e-3) * modal)
                             / root)[read]
        if end < np.inf:
            state = steady + vectors @ (np.exp(-rates * (end - start) * 1e-3) * modal) / root
    return out


# Finite volumes + Richardson ------------------------------------------------------------


def _finite_volume(model: Model, n: int, times_ms: np.ndarray) -> np.ndarray:
    """Vertex-centred finite volumes, n segments per cell, every site on a node."""
    index = model.cell_index()
    offsets = np.cumsum([0] + [n + 1] * len(model.cells))
    size = offsets[-1]
    capacitance, stiffness = np.zeros(size), np.zeros((size, size))
    leak_source, v0 = np.zeros(size), np.zeros(size)
    for i, cell in enumerate(model.cells):
        c, g, r, length = _per_length(cell)
        h = length / n
        widths = np.full(n + 1, h)
        widths[[0, -1]] = h / 2
        nodes = np.arange(offsets[i], offsets[i + 1])
        capacitance[nodes] = c * widths
        stiffness[nodes, nodes] += g * widths
        axial = 1 / (r * h)
        left, right = nodes[:-1], nodes[1:]
        np.add.at(stiffness, (left, left), axial)
        np.add.at(stiffness, (right, right), axial)
        stiffness[left, right] -= axial
        stiffness[right, left] -= axial
        leak_source[nodes] = g * widths * cell.e_leak_mV
        v0[nodes] = cell.initial_mV

    def node(cell: str, x: float) -> int:
        assert abs(x * n - round(x * n)) < 1e-9, "sites must sit on grid nodes"
        return offsets[index[cell]] + round(x * n)

    for junction in model.gap_junctions:
        a, b = node(junction.cells[0], junction.x[0]), node(junction.cells[1], junction.x[1])
        g = junction.g_uS * 1e-6
        stiffness[[a, b], [a, b]] += g
        stiffness[a, b] -= g
        stiffness[b, a] -= g

    def source_at(clamps):
        source = leak_source.copy()
        for cell, x, nA in clamps:
            source[node(cell, x)] += nA * 1e-9 * 1e3  # A * 1e3: voltages are in mV
        return source

    read = [node(p.cell, p.x) for p in model.effective_probes()]
    return _piecewise_exact(capacitance, stiffness, source_at, v0, times_ms,
                            _clamp_schedule(model), read)


def _four_cell_chain() -> Model:
    """Asymmetric cells, off-centre junctions (one to the same cell), clamps, v_init != E."""
    return model_from_dict({
        "name": "fv_chain",
        "simulation": {"t_stop_ms": 2.0, "dt_ms": 0.001},
        "cells": [
            _cell("a", 200.0, 1.0, 0.01, 100.0, 0.0005, -70.0, -65.0),
            _cell("b", 100.0, 3.0, 0.005, 90.0, 0.001, -60.0),
            _cell("c", 300.0, 0.5, 0.008, 150.0, 0.0002, -80.0, -50.0),
            _cell("d", 150.0, 2.0, 0.012, 60.0, 0.002, -55.0, -75.0),
        ],
        "gap_junctions": [
            {"cells": ["a", "b"], "x": [0.25, 0.9], "g_uS": 0.005},
            {"cells": ["b", "c"], "x": [0.1, 0.7], "g_uS": 0.02},
            {"cells": ["c", "d"], "x": [0.35, 1.0], "g_uS": 0.01},
            {"cells": ["d", "d"], "x": [0.05, 0.6], "g_uS": 0.003},
        ],
        "probes": [{"cell": "a", "x": 0.25}, {"cell": "a", "x": 1.0}, {"cell": "b", "x": 0.5},
                   {"cell": "c", "x": 0.0}, {"cell": "c", "x": 0.7}, {"cell": "d", "x": 0.6}],
        "stimuli": [
            {"cell": "a", "x": 0.0, "delay_ms": 0.5, "duration_ms": 1.0, "amplitude_nA": 0.1},
            {"cell": "c", "x": 0.35, "delay_ms": 0.3333, "duration_ms": 5.0,
             "amplitude_nA": -0.05},
            {"cell": "d", "x": 0.8, "delay_ms": 0.0, "duration_ms": 0.25, "amplitude_nA": 0.2},
        ],
    })


def test_exact_cable_matches_richardson_extrapolated_finite_volumes():
    model = _four_cell_chain()
    result = exact_cable(model)
    # early, just after switches (0.25 off, 0.3333 on, 0.5 on) and late.  Not t = 0.001:
    # there the initial layer at a junction is ~5 um wide and the finest grid (0.9 um) is
    # not yet in its asymptotic range (the mpmath check covers t = 0.001).
    picks = [10, 20, 251, 335, 501, 510, 1000, 1500, 2000]
    times = result.times_ms[picks]
    a, b, c = (_finite_volume(model, n, times) for n in (80, 160, 320))
    first, second = (4 * b - a) / 3, (4 * c - b) / 3
    reference = (16 * second - first) / 15
    error = np.abs(result.values_mV[:, picks] - reference)
    # the finite-volume error itself: 3.7e-5 mV on the finest grid, far above the check
    assert np.max(np.abs(c - reference)) > 1e-6
    print(f"exact cable vs finite volumes + Richardson: largest deviation {np.max(error):.3g} mV")
    assert np.max(error) < 1e-7, f"largest deviation {np.max(error):.3g} mV"


# mpmath: independent Laplace implementation and Talbot inversion ------------------------


def _mpmath_reference(model: Model, times_ms, dps: int = 20) -> np.ndarray:
    """Probe voltages by mpmath: side voltages solve (1 + Z_block Lap) V = f_open."""
    import mpmath as mp

    index = model.cell_index()
    with mp.workdps(dps):
        cells = []
        for cell in model.cells:
            c, g, r, _ = _per_length(cell)
            # per um, in the ms/mV/nA/uS/MOhm/nF system
            cells.append({"c": mp.mpf(c) * 1e9 / 1e4, "g": mp.mpf(g) * 1e6 / 1e4,
                          "r": mp.mpf(r) * 1e-6 * 1e-4, "L": mp.mpf(cell.length_um),
                          "E": mp.mpf(cell.e_leak_mV), "V0": mp.mpf(cell.initial_mV)})

        def impedance(i, x, y, s):
            p = cells[i]
            k = mp.sqrt(p["r"] * (p["g"] + p["c"] * s))
            lo, hi = min(x, y) * p["L"], max(x, y) * p["L"]
            return p["r"] * mp.cosh(k * lo) * mp.cosh(k * (p["L"] - hi)) / (
                k * mp.sinh(k * p["L"]))

        sides = [(index[name], x) for j in model.gap_junctions for name, x in zip(j.cells, j.x)]
        m = len(sides)
        lap = mp.zeros(m, m)
        for j, junction in enumerate(model.gap_junctions):
            g = mp.mpf(junction.g_uS)
            lap[2 * j, 2 * j] += g
            lap[2 * j + 1, 2 * j + 1] += g
            lap[2 * j, 2 * j + 1] -= g
            lap[2 * j + 1, 2 * j] -= g
        probes = [(index[p.cell], p.x) for p in model.effective_probes()]

        def solve(s, source):
            """Laplace probe voltages for 'free' or a unit step at site (cell, x)."""
            def open_voltage(cell, x):
                if source == "free":
                    p = cells[cell]
                    return p["E"] / s + (p["V0"] - p["E"]) / (s + p["g"] / p["c"])
                site_cell, site_x = source
                return impedance(cell, x, site_x, s) / s if cell == site_cell else 0

            z_block = mp.matrix(m, m)
            for p, (cp, xp) in enumerate(sides):
                for q, (cq, xq) in enumerate(sides):
                    if cp == cq:
                        z_block[p, q] = impedance(cp, xp, xq, s)
            f = mp.matrix([open_voltage(*side) for side in sides]) if m else None
            currents = None
            if m:
                voltages = mp.lu_solve(mp.eye(m) + z_block * lap, f)
                currents = -(lap * voltages)
            out = []
            for cell, x in probes:
                value = open_voltage(cell, x)
                for p, (cp, xp) in enumerate(sides):
                    if cp == cell:
                        value += impedance(cell, x, xp, s) * currents[p]
                out.append(value)
            return out

        cache: dict = {}

        def cached(s, source):
            key = (source, s)
            if key not in cache:
                cache[key] = solve(s, source)
            return cache[key]

        def invert(source, t, probe):
            return mp.invertlaplace(lambda s: cached(s, source)[probe], t, method="talbot")

        result = np.empty((len(probes), len(times_ms)))
        for col, t in enumerate(times_ms):
            for probe in range(len(probes)):
                total = invert("free", mp.mpf(t), probe)
                for stimulus in model.stimuli:
                    for switch, sign in ((stimulus.delay_ms, 1),
                                         (stimulus.delay_ms + stimulus.duration_ms, -1)):
                        elapsed = mp.mpf(t) - mp.mpf(switch)
                        if elapsed > 1e-12:
                            total += sign * mp.mpf(stimulus.amplitude_nA) * invert(
                                (index[stimulus.cell], stimulus.x), elapsed, probe)
                result[probe, col] = float(total)
        return result


def _three_cell_model() -> Model:
    return model_from_dict({
        "name": "mp_chain",
        "simulation": {"t_stop_ms": 1.5, "dt_ms": 0.001},
        "cells": [
            _cell("u", 170.0, 1.2, 0.009, 110.0, 0.0007, -68.0, -58.0),
            _cell("v", 90.0, 2.5, 0.006, 80.0, 0.0012, -52.0, -90.0),
            _cell("w", 260.0, 0.8, 0.01, 140.0, 0.0003, -75.0),
        ],
        "gap_junctions": [
            {"cells": ["u", "v"], "x": [0.37, 0.81], "g_uS": 0.007},
            {"cells": ["w", "v"], "x": [0.93, 0.12], "g_uS": 0.03},
            {"cells": ["u", "u"], "x": [0.05, 0.66], "g_uS": 0.002},
        ],
        "probes": [{"cell": "u", "x": 0.37}, {"cell": "v", "x": 1.0},
                   {"cell": "w", "x": 0.42}],
        "stimuli": [
            {"cell": "w", "x": 0.42, "delay_ms": 0.2, "duration_ms": 0.5, "amplitude_nA": 0.08},
            {"cell": "u", "x": 0.9, "delay_ms": 0.0371, "duration_ms": 3.0,
             "amplitude_nA": -0.03},
        ],
    })


def test_exact_cable_matches_mpmath_inversion_at_high_precision():
    pytest.importorskip("mpmath")
    model = _three_cell_model()
    result = exact_cable(model)
    # first steps, 1 us and 10 us after switches (0.2 on, 0.0371 on, 0.7 off), late
    picks = [1, 2, 10, 38, 201, 210, 701, 1500]
    reference = _mpmath_reference(model, result.times_ms[picks])
    error = np.abs(result.values_mV[:, picks] - reference)
    print(f"exact cable vs mpmath Talbot: largest deviation {np.max(error):.3g} mV")
    assert np.max(error) < 1e-10, f"largest deviation {np.max(error):.3g} mV"


# Lumped against expm and solve_ivp ------------------------------------------------------


def _lumped_model() -> Model:
    return model_from_dict({
        "name": "lumped_graph",
        "simulation": {"t_stop_ms": 4.0, "dt_ms": 0.01, "sample_dt_ms": 0.05},
        "cells": [
            _cell("a", 200.0, 1.0, 0.01, 100.0, 0.0005, -70.0, -65.0),
            _cell("b", 100.0, 3.0, 0.005, 90.0, 0.001, -60.0),
            _cell("c", 300.0, 0.5, 0.008, 150.0, 0.0002, -80.0, -50.0),
            _cell("d", 150.0, 2.0, 0.012, 60.0, 0.002, -55.0, -75.0),
            _cell("e", 50.0, 1.5, 0.007, 70.0, 0.0009, -62.0),
        ],
        "gap_junctions": [
            {"cells": ["a", "b"], "x": [0.25, 0.9], "g_uS": 0.005},
            {"cells": ["b", "c"], "x": [0.1, 0.7], "g_uS": 0.02},
            {"cells": ["c", "a"], "x": [0.3, 0.3], "g_uS": 0.001},
            {"cells": ["c", "d"], "x": [0.35, 1.0], "g_uS": 0.01},
            {"cells": ["d", "c"], "x": [0.5, 0.5], "g_uS": 0.004},
            {"cells": ["d", "d"], "x": [0.05, 0.6], "g_uS": 0.3},
        ],
        "probes": [{"cell": "a", "x": 0.1}, {"cell": "c", "x": 0.9}, {"cell": "d", "x": 0.5},
                   {"cell": "e", "x": 0.5}],
        "stimuli": [
            {"cell": "a", "x": 0.0, "delay_ms": 0.5, "duration_ms": 1.0, "amplitude_nA": 0.1},
            {"cell": "c", "x": 0.35, "delay_ms": 0.3333, "duration_ms": 5.0,
             "amplitude_nA": -0.05},
            {"cell": "e", "x": 0.8, "delay_ms": 1.0, "duration_ms": 0.0, "amplitude_nA": 5.0},
        ],
    })


def _lumped_arrays(model: Model):
    """C (F), K (S), leak sources (S mV), V0 (mV), in SI from the raw fields."""
    index = model.cell_index()
    n = len(model.cells)
    capacitance, stiffness = np.zeros(n), np.zeros((n, n))
    leak_source, v0 = np.zeros(n), np.zeros(n)
    for i, cell in enumerate(model.cells):
        c, g, _, length = _per_length(cell)
        capacitance[i], stiffness[i, i] = c * length, g * length
        leak_source[i], v0[i] = g * length * cell.e_leak_mV, cell.initial_mV
    for junction in model.gap_junctions:
        a, b = index[junction.cells[0]], index[junction.cells[1]]
        if a != b:
            g = junction.g_uS * 1e-6
            stiffness[[a, b], [a, b]] += g
            stiffness[a, b] -= g
            stiffness[b, a] -= g

    def source_at(clamps):
        source = leak_source.copy()
        for cell, _, nA in clamps:
            source[index[cell]] += nA * 1e-6  # nA * 1e-9 A * 1e3 (mV)
        return source

    read = [index[p.cell] for p in model.effective_probes()]
    return capacitance, stiffness, source_at, v0, read


def test_lumped_matches_expm():
    from scipy.linalg import expm

    model = _lumped_model()
    result = lumped(model)
    capacitance, stiffness, source_at, v0, read = _lumped_arrays(model)
    schedule = _clamp_schedule(model)
    rate = stiffness / capacitance[:, None]  # C^-1 K, 1/s
    reference = np.empty_like(result.values_mV)
    for col, t in enumerate(result.times_ms):
        state = v0.copy()
        for (start, clamps), end in zip(schedule, [s for s, _ in schedule[1:]] + [np.inf]):
            stop = min(end, t)
            steady = np.linalg.solve(stiffness, source_at(clamps))
            state = steady + expm(-rate * (stop - start) * 1e-3) @ (state - steady)
            if stop >= t:
                break
        reference[:, col] = state[read]
    assert np.max(np.abs(result.values_mV - reference)) < 1e-10


def test_lumped_matches_solve_ivp():
    from scipy.integrate import solve_ivp

    model = _lumped_model()
    result = lumped(model)
    capacitance, stiffness, source_at, v0, read = _lumped_arrays(model)
    schedule = _clamp_schedule(model)
    state = v0.copy()
    reference = np.empty_like(result.values_mV)
    times = result.times_ms
    bounds = [s for s, _ in schedule[1:]] + [model.simulation.t_stop_ms]
    for (start, clamps), end in zip(schedule, bounds):
        if start >= model.simulation.t_stop_ms:
            break
        source = source_at(clamps)
        inside = (times >= start) & (times <= end)
        solution = solve_ivp(lambda _, v, source=source: (source - stiffness @ v) / capacitance,
                             (start * 1e-3, end * 1e-3), state, method="DOP853",
                             t_eval=times[inside] * 1e-3, rtol=1e-12, atol=1e-12)
        reference[:, inside] = solution.y[read]
        state = solve_ivp(lambda _, v, source=source: (source - stiffness @ v) / capacitance,
                          (start * 1e-3, end * 1e-3), state, method="DOP853",
                          rtol=1e-12, atol=1e-12).y[:, -1]
    assert np.max(np.abs(result.values_mV - reference)) < 1e-8
