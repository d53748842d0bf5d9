"""A minimal hand-written Jaxley script of crosssim's built-in ``ring`` (no crosssim inside).

N seed cells (100 um x 3 um radius, cm 0.005 F/m^2 = 0.5 uF/cm^2, rL 90 ohm*cm, leak g
0.001 S/cm^2, leak -100 mV on even and -60 mV on odd cells, starting at rest), ``cvs``
compartments each, a 0.01 uS gap junction from the end (x = 1) of cell i to the start
(x = 0) of cell i+1 and from the last cell back to the first, voltage recorded at the middle
compartment of ``n_probes`` cells spread from the first to the last.  Written the way
Jaxley's tutorials write a network: ``jx.Network``, ``connect``, ``record``, and
``jx.integrate`` inside ``jax.jit``, float64.

A gap junction is two synapses, one per side.  Each keeps the peer's voltage of the
previous step as a state, so it is implicit in its own compartment and explicit in the
peer, as in Arbor and NEURON (written as ``g * (v_post - v_pre)`` Jaxley would treat it as
explicit on both sides).  ``connect`` takes views, whose compartments come sorted, so each
direction of the ring is two calls: cells 0..N-2 with their successors, and the last cell
with the first.

    python benchmarks/handwritten/jaxley_ring.py N_CELLS [--cvs 11] [--t-stop 50]
        [--dt 0.025] [--probes 10] [--out traces.npy]

:func:`run` returns ``(times_ms, values_mV)`` with values of shape (n_probes, samples),
t = 0, dt, ..., t_stop.
"""

from __future__ import annotations

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jaxley as jx  # noqa: E402
import numpy as np  # noqa: E402
from jaxley.channels import Leak  # noqa: E402
from jaxley.connect import connect  # noqa: E402
from jaxley.synapses.synapse import Synapse  # noqa: E402


class GapJunction(Synapse):
    """i = g (v_post - v_peer), v_peer = the presynaptic voltage of the previous step."""

    def __init__(self):
        super().__init__("GapJunction")
        self.synapse_params = {"GapJunction_g": 0.01}  # uS
        self.synapse_states = {"GapJunction_v_peer": -70.0}  # mV

    def update_states(self, states, delta_t, pre_voltage, post_voltage, params):
        return {"GapJunction_v_peer": pre_voltage}

    def compute_current(self, states, pre_voltage, post_voltage, params):
        return params["GapJunction_g"] * (post_voltage - states["GapJunction_v_peer"])


def probe_cells(n_cells: int, n_probes: int) -> list[int]:
    """The probed cells, spread evenly from the first to the last, as crosssim's ring does."""
    if n_probes <= 1:
        return [0][:n_probes]
    span = n_probes - 1
    return [(2 * k * (n_cells - 1) + span) // (2 * span) for k in range(n_probes)]


def build(n_cells: int, cvs: int, n_probes: int):
    cell = jx.Cell(jx.Branch(jx.Compartment(), ncomp=cvs), parents=[-1])
    net = jx.Network([cell] * n_cells)
    net.insert(Leak())
    net.set("radius", 3.0)
    net.set("length", 100.0 / cvs)
    net.set("axial_resistivity", 90.0)
    net.set("capacitance", 0.5)
    net.set("Leak_gLeak", 0.001)
    even, odd = list(range(0, n_cells, 2)), list(range(1, n_cells, 2))
    net.cell(even).set("Leak_eLeak", -100.0)
    net.cell(even).set("v", -100.0)
    net.cell(odd).set("Leak_eLeak", -60.0)
    net.cell(odd).set("v", -60.0)

    first, rest, last = [0], list(range(1, n_cells)), [n_cells - 1]
    ends = net.cell(list(range(n_cells - 1))).branch(0).comp(cvs - 1)
    starts = net.cell(rest).branch(0).comp(0)
    # the end of cell i sees the start of cell i+1, and the other way round
    connect(starts, ends, GapJunction())
    connect(net.cell(first).branch(0).comp(0), net.cell(last).branch(0).comp(cvs - 1),
            GapJunction())
    connect(ends, starts, GapJunction())
    connect(net.cell(last).branch(0).comp(cvs - 1), net.cell(first).branch(0).comp(0),
            GapJunction())
    for gid in probe_cells(n_cells, n_probes):
        net.cell(gid).branch(0).comp(cvs // 2).record("v", verbose=False)
    return net


def run(n_cells: int, cvs: int = 11, t_stop: float = 50.0, dt: float = 0.025,
        n_probes: int = 10):
    net = build(n_cells, cvs, n_probes)
    simulate = jax.jit(lambda params: jx.integrate(net, params=params, delta_t=dt,
                                                   t_max=t_stop))
    values = np.asarray(simulate(net.get_parameters()))
    n_samples = round(t_stop / dt) + 1
    return np.arange(n_samples) * dt, values[:, :n_samples]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_cells", type=int)
    parser.add_argument("--cvs", type=int, default=11)
    parser.add_argument("--t-stop", type=float, default=50.0)
    parser.add_argument("--dt", type=float, default=0.025)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    _, v = run(args.n_cells, args.cvs, args.t_stop, args.dt, args.probes)
    if args.out:
        np.save(args.out, v)
