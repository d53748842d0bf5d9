"""Synthetic sources and check outcomes for the report tests (no simulator needed).

The sources solve the lumped (isopotential) model of a junction-coupled model: ``lumped``
exactly (eigendecomposition), ``arbor`` by implicit Euler (so it differs by O(dt)),
``neuron`` as ``arbor`` plus 1e-13 mV of noise, ``analytic`` as the lumped solution plus a
small smooth offset (the exact cable differs from the lumped one by ~0.025 mV at rest).
"""

from __future__ import annotations

import math

import numpy as np

from crosssim.errors import BackendError
from crosssim.model import Model
from crosssim.outcome import CheckOutcome, Comparison
from crosssim.result import RunResult


def _lumped_system(model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A in 1/ms, b in mV/ms, V0 in mV) of dV/dt = A V + b for isopotential cells."""
    n = len(model.cells)
    capacitance = np.array([c.cm_F_per_m2 * c.area_um2 * 1e-12 for c in model.cells])  # F
    leak = np.array([c.g_leak_S_per_cm2 * c.area_um2 * 1e-8 for c in model.cells])  # S
    matrix = np.diag(-leak)
    index = model.cell_index()
    for junction in model.gap_junctions:
        i, j = index[junction.cells[0]], index[junction.cells[1]]
        g = junction.g_uS * 1e-6
        matrix[i, i] -= g
        matrix[j, j] -= g
        matrix[i, j] += g
        matrix[j, i] += g
    reversal = np.array([c.e_leak_mV for c in model.cells])
    a = matrix / capacitance[:, None] * 1e-3
    b = leak * reversal / capacitance * 1e-3
    v0 = np.array([c.initial_mV for c in model.cells])
    assert a.shape == (n, n)
    return a, b, v0


def _probe_rows(model: Model, cell_values: np.ndarray) -> np.ndarray:
    index = model.cell_index()
    return np.array([cell_values[index[probe.cell]] for probe in model.effective_probes()])


def lumped_exact(model: Model) -> np.ndarray:
    """Cell voltages (n_cells, n_samples) of the lumped model, exactly."""
    a, b, v0 = _lumped_system(model)
    times = model.simulation.sample_times_ms()
    v_inf = np.linalg.solve(a, -b)
    eigenvalues, vectors = np.linalg.eig(a)
    coefficients = np.linalg.solve(vectors, v0 - v_inf)
    modes = np.exp(np.outer(eigenvalues, times)) * coefficients[:, None]
    return np.real(v_inf[:, None] + vectors @ modes)


def lumped_equilibrium(model: Model) -> dict[str, float]:
    """Steady state of the lumped model, cell -> mV."""
    a, b, _ = _lumped_system(model)
    return {cell.name: float(v) for cell, v in zip(model.cells, np.linalg.solve(a, -b))}


def implicit_euler(model: Model) -> np.ndarray:
    """Cell voltages (n_cells, n_samples) of the lumped model by implicit Euler at dt_ms."""
    a, b, v = _lumped_system(model)
    simulation = model.simulation
    dt = simulation.dt_ms
    step = np.linalg.inv(np.eye(len(v)) - dt * a)
    out = [v.copy()]
    for k in range(simulation.n_steps):
        v = step @ (v + dt * b)
        if (k + 1) % simulation.steps_per_sample == 0:
            out.append(v.copy())
    return np.array(out).T


def fake_source(name: str, model: Model, *, broken: str | None = None) -> RunResult:
    """A synthetic RunResult of ``name`` (arbor, neuron, analytic, lumped) on ``model``."""
    if name == broken:
        raise BackendError(name, "simulated crash: <segfault> & core dumped")
    times = model.simulation.sample_times_ms()
    if name == "lumped":
        cells = lumped_exact(model)
    elif name == "analytic":
        cells = lumped_exact(model) + 0.025 * np.sign(
            np.mean([c.e_leak_mV for c in model.cells]) - np.array(
                [c.e_leak_mV for c in model.cells]))[:, None] * (1 - np.exp(-times / 2.0))
    else:
        cells = implicit_euler(model)
        if name == "neuron":
            cells = cells + 1e-13 * np.sin(np.arange(times.size))
    probes = [probe.label for probe in model.effective_probes()]
    return RunResult(name, probes, times, _probe_rows(model, cells), wall_time_s=0.01,
                     info={"method": "synthetic", "version": "0.0"})


def synthetic_check(model: Model, *, broken: str | None = None, **tolerances) -> CheckOutcome:
    """``crosssim.check.check`` on ``model`` with the synthetic sources."""
    from crosssim.check import check

    return check(model, backends=["arbor", "neuron"], references=["analytic", "lumped"],
                 runner=lambda name, m: fake_source(name, m, broken=broken), **tolerances)


def handmade_outcome(model: Model, *, probe: str = "a_gj",
                     failures: dict[str, str] | None = None) -> CheckOutcome:
    """A CheckOutcome built by hand (independent of crosssim.check): one failing pair."""
    results = {name: fake_source(name, model) for name in ("arbor", "neuron", "analytic")}

    def comparison(a: str, b: str, kind: str, max_abs: float, tolerance: float | None):
        passed = None if tolerance is None else max_abs <= tolerance
        return Comparison(a=a, b=b, probe=probe, kind=kind, max_abs_mV=max_abs,
                          t_max_abs_ms=0.01, a_at_max_mV=-99.0, b_at_max_mV=-99.0 - max_abs,
                          rms_mV=max_abs / 3, max_rel_range=max_abs / 10,
                          rms_rel_range=max_abs / 30, final_abs_mV=max_abs / 2,
                          n_samples=501, n_mismatched=0 if passed else 12,
                          tolerance_mV=tolerance, passed=passed, max_rel_diff=1e-3,
                          suggested_tolerance_mV=None if passed is not False else 0.05)

    comparisons = [comparison("arbor", "neuron", "backends", 2.5e-13, 1e-6),
                   comparison("arbor", "analytic", "reference", 0.0312, 0.01),
                   comparison("neuron", "analytic", "reference", 0.0031, 0.01),
                   comparison("analytic", "lumped", "references", math.pi * 1e-2, None)]
    return CheckOutcome(model=model, results=results, failures=dict(failures or {}),
                        comparisons=comparisons, wall_time_s={"arbor": 0.5, "neuron": 1.25},
                        kinds={"arbor": "simulator", "neuron": "simulator",
                               "analytic": "reference", "lumped": "reference"})


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of PNG ``data`` after checking it decodes: signature, every chunk's
    CRC, and the inflated image data's length for its size and colour type."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    position, idat, header = 8, b"", None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind = data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length:position + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        position += 12 + length
    assert header is not None and idat, "no IHDR or no image data"
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    assert depth == 8 and interlace == 0, "unexpected PNG layout"
    assert len(zlib.decompress(idat)) == height * (1 + width * channels)
    return width, height
