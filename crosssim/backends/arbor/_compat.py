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


def density(name: str, parameters: dict[str, float]) -> arbor.density:
    """A density mechanism of the cell's catalogue (built-in or a user's) with parameters in
    the units of its MOD file."""
    return arbor.density(name, {key: float(value) for key, value in parameters.items()})


def hodgkin_huxley(gnabar_S_per_cm2: float, gkbar_S_per_cm2: float, gl_S_per_cm2: float,
                   el_mV: float) -> arbor.density:
    """Arbor's built-in ``hh`` (NEURON's hh.mod equations); it reads ``ena`` / ``ek`` from the
    ``na`` / ``k`` ions (see :func:`paint_reversal_potential`)."""
    return density("hh", {"gnabar": gnabar_S_per_cm2, "gkbar": gkbar_S_per_cm2,
                          "gl": gl_S_per_cm2, "el": el_mV})


def paint_reversal_potential(decor: arbor.decor, region: str, ion: str,
                             rev_pot_mV: float) -> arbor.decor:
    """The reversal potential of ``ion`` on ``region`` (0.12: ``paint(region, ion=...,
    rev_pot=...)``; no mechanism writes it, so it stays at this value)."""
    return decor.paint(region, ion=ion, rev_pot=float(rev_pot_mV) * U.mV)


#: Arbor keeps the temperature in kelvin and hands ``celsius = T - 273.15`` to mechanisms.
KELVIN_OFFSET = 273.15


def temperature_K(celsius: float) -> float:
    """The kelvin value whose ``T - 273.15`` (as Arbor computes it) is nearest ``celsius``.

    The subtraction is exact (Sterbenz), so Arbor's ``celsius`` is a multiple of the ulp of
    ``T``: 6.3 degC comes back as 6.300000000000011 at best (``celsius * U.Celsius`` gives the
    same).  Of ``celsius + 273.15`` and its two neighbours, the nearest wins.
    """
    import math

    guess = float(celsius) + KELVIN_OFFSET
    candidates = (math.nextafter(guess, -math.inf), guess, math.nextafter(guess, math.inf))
    return min(candidates, key=lambda kelvin: abs((kelvin - KELVIN_OFFSET) - celsius))


def set_temperature(properties: arbor.cable_global_properties, celsius: float) -> None:
    """Every cell's temperature (the default of the global properties), in degrees Celsius."""
    properties.set_property(tempK=temperature_K(celsius) * U.Kelvin)


def extend_catalogue(properties: arbor.cable_global_properties, library: str) -> None:
    """Add the mechanisms of a compiled catalogue (``.so``) under their own names."""
    properties.catalogue.extend(arbor.load_catalogue(str(library)), "")


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
