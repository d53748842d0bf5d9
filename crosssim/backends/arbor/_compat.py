"""Every Arbor API call whose spelling depends on the Arbor version, in one place.

Written for Arbor 0.12 (quantities with units, the CV policy as the 4th argument of
``cable_cell``, ``pas/e=...`` as a global parameter, ``i_clamp`` without a label).  Values
passed in here are plain floats in the units the names say.
"""

from __future__ import annotations

import arbor

# ``import arbor.units`` fails: units is an attribute of the compiled module.
U = arbor.units

ARBOR_VERSION: str = str(arbor.__version__)


def position(x: float) -> float:
    """The position ``x`` (0..1) as Arbor will see it: subnormal positions (which Arbor's
    parser rejects) become 0.  Sample metadata reports exactly this float."""
    x = float(x)
    return 0.0 if 0.0 < x < 1e-300 else x


def location(x: float, branch: int = 0) -> str:
    """A locset expression for position ``x`` (0..1) on ``branch`` (the cell's single
    branch by default).

    ``repr`` round-trips the float exactly (see :func:`position` for subnormals).
    """
    return f"(location {int(branch)} {position(x)!r})"


def locations(xs) -> str:
    """A locset of several positions on the single branch (one location: no ``join``)."""
    return _join([location(x) for x in xs])


def branch_locations(places) -> str:
    """A locset of ``(branch, position)`` places (one place: no ``join``)."""
    return _join([location(x, branch) for branch, x in places])


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(join " + " ".join(parts) + ")"


def tag_region(tags) -> str:
    """The region of all segments carrying one of ``tags``."""
    parts = [f"(tag {int(tag)})" for tag in tags]
    return parts[0] if len(parts) == 1 else "(join " + " ".join(parts) + ")"


def paint_cable_properties(decor: arbor.decor, region: str, *, cm_F_per_m2: float,
                           ra_ohm_cm: float) -> arbor.decor:
    """Specific capacitance and axial resistivity on ``region`` (over the cell's defaults)."""
    return decor.paint(region, cm=float(cm_F_per_m2) * U.F / U.m2,
                       rL=float(ra_ohm_cm) * U.Ohm * U.cm)


def leak(e_mV: float, g_S_per_cm2: float) -> arbor.density:
    """The ``pas`` density mechanism: reversal ``e_mV`` (a global parameter in 0.12)."""
    return arbor.density(f"pas/e={float(e_mV)!r}", {"g": float(g_S_per_cm2)})


def set_cable_properties(decor: arbor.decor, *, v_init_mV: float, cm_F_per_m2: float,
                         ra_ohm_cm: float) -> arbor.decor:
    """Initial voltage, specific capacitance and axial resistivity of the whole cell."""
    return decor.set_property(Vm=float(v_init_mV) * U.mV, cm=float(cm_F_per_m2) * U.F / U.m2,
                              rL=float(ra_ohm_cm) * U.Ohm * U.cm)


def junction(g_uS: float) -> arbor.junction:
    """Arbor's built-in ohmic gap junction mechanism ``gj`` with conductance ``g_uS`` (uS)."""
    return arbor.junction("gj", g=float(g_uS))


def current_clamp(delay_ms: float, duration_ms: float, amplitude_nA: float) -> arbor.i_clamp:
    """A step current clamp."""
    return arbor.i_clamp(float(delay_ms) * U.ms, float(duration_ms) * U.ms,
                         float(amplitude_nA) * U.nA)


def place_clamp(decor: arbor.decor, where: str, clamp: arbor.i_clamp) -> arbor.decor:
    """Place a current clamp (0.12 takes no label for clamps)."""
    return decor.place(where, clamp)


def fixed_cv_policy(n_cvs: int) -> arbor.cv_policy:
    """``n_cvs`` equal control volumes per branch."""
    return arbor.cv_policy_fixed_per_branch(int(n_cvs))


def explicit_cv_policy(places) -> arbor.cv_policy:
    """CV boundaries at the given ``(branch, position)`` places."""
    return arbor.cv_policy_explicit(branch_locations(places))


def max_extent_cv_policy(extent_um: float) -> arbor.cv_policy:
    """Arbor's own policy: as many equal CVs per branch as needed for length <= ``extent_um``."""
    return arbor.cv_policy_max_extent(float(extent_um) * U.um)


def cable_cell(tree: arbor.segment_tree, decor: arbor.decor, labels: arbor.label_dict,
               policy: arbor.cv_policy) -> arbor.cable_cell:
    """A cable cell with an explicit discretization policy."""
    return arbor.cable_cell(tree, decor, labels, policy)


def count_cvs(cell: arbor.cable_cell) -> int:
    """Number of control volumes Arbor made for ``cell``."""
    data = arbor.cv_data(cell)
    return int(data.num_cv) if data is not None else 0


def voltage_probe(where: str, tag: str) -> arbor.probe:
    """A membrane voltage probe at locset ``where``."""
    return arbor.cable_probe_membrane_voltage(where, tag)


def cell_voltage_probe(tag: str) -> arbor.probe:
    """A membrane voltage probe of every CV of the cell (metadata: one cable per column)."""
    return arbor.cable_probe_membrane_voltage_cell(tag)


def sample_schedule(times_ms) -> arbor.explicit_schedule:
    """A schedule of the given sample times (ms).

    Arbor takes a sample at time s from the step starting at the largest step time <= s.
    (``regular_schedule(tstart, dt)`` in 0.12 snaps its times to multiples of dt, ignoring a
    tstart offset, so it cannot express mid-step times.)
    """
    return arbor.explicit_schedule([float(t) * U.ms for t in times_ms])


def context(threads: int) -> arbor.context:
    """An execution context with ``threads`` worker threads."""
    return arbor.context(threads=int(threads))


def run(simulation: arbor.simulation, t_final_ms: float, dt_ms: float) -> None:
    """Integrate from 0 to ``t_final_ms`` with fixed step ``dt_ms``."""
    simulation.run(float(t_final_ms) * U.ms, float(dt_ms) * U.ms)
