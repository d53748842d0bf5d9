"""A minimal hand-written Arbor script of crosssim's built-in ``ring`` (no crosssim inside).

N seed cells (100 um x 3 um radius, cm 0.005 F/m^2, rL 90 ohm*cm, pas g 0.001 S/cm^2, leak
-100 mV on even and -60 mV on odd cells, starting at rest), ``cvs`` CVs each, a 0.01 uS gap
junction from the end (x = 1) of cell i to the start (x = 0) of cell i+1 and from the last
cell back to the first, voltage probes at the middle of ``n_probes`` cells spread from the
first to the last, sampled every step.  Written the way the Arbor tutorial writes a recipe.

    python benchmarks/handwritten/arbor_ring.py N_CELLS [--cvs 11] [--t-stop 50] [--dt 0.025]
        [--probes 10] [--out traces.npy]

:func:`run` returns ``(times_ms, values_mV)`` with values of shape (n_probes, samples); the
samples are t = 0, dt, ..., t_stop like crosssim's (one extra step is run for t_stop).
"""

from __future__ import annotations

import argparse

import arbor
import numpy as np

U = arbor.units


class Ring(arbor.recipe):
    def __init__(self, n_cells, cvs, probe_cells):
        super().__init__()
        self.n = n_cells
        self.cvs = cvs
        self.probe_cells = set(probe_cells)
        tree = arbor.segment_tree()
        tree.append(arbor.mnpos, arbor.mpoint(0, 0, 0, 3), arbor.mpoint(100, 0, 0, 3), tag=1)
        self.morphology = arbor.morphology(tree)
        self.labels = arbor.label_dict({"start": "(location 0 0)", "end": "(location 0 1)"})
        self.props = arbor.neuron_cable_properties()

    def num_cells(self):
        return self.n

    def cell_kind(self, gid):
        return arbor.cell_kind.cable

    def global_properties(self, kind):
        return self.props

    def cell_description(self, gid):
        e_leak = -100.0 if gid % 2 == 0 else -60.0
        decor = (arbor.decor()
                 .set_property(Vm=e_leak * U.mV, cm=0.005 * U.F / U.m2, rL=90 * U.Ohm * U.cm)
                 .paint("(all)", arbor.density(f"pas/e={e_leak}", {"g": 0.001}))
                 .place('"end"', arbor.junction("gj", g=0.01), "gj_end")
                 .place('"start"', arbor.junction("gj", g=0.01), "gj_start"))
        return arbor.cable_cell(self.morphology, decor, self.labels,
                                arbor.cv_policy_fixed_per_branch(self.cvs))

    def gap_junctions_on(self, gid):
        return [arbor.gap_junction_connection(((gid + 1) % self.n, "gj_start"), "gj_end", 1.0),
                arbor.gap_junction_connection(((gid - 1) % self.n, "gj_end"), "gj_start", 1.0)]

    def probes(self, gid):
        if gid in self.probe_cells:
            return [arbor.cable_probe_membrane_voltage("(location 0 0.5)", "v")]
        return []


def probe_cells(n_cells: int, n_probes: int) -> list[int]:
    """The probed cells, spread evenly from the first to the last, as crosssim's ring does."""
    if n_probes <= 1:
        return [0][:n_probes]
    span = n_probes - 1
    return [(2 * k * (n_cells - 1) + span) // (2 * span) for k in range(n_probes)]


def run(n_cells: int, cvs: int = 11, t_stop: float = 50.0, dt: float = 0.025,
        n_probes: int = 10, threads: int = 1):
    cells = probe_cells(n_cells, n_probes)
    recipe = Ring(n_cells, cvs, cells)
    sim = arbor.simulation(recipe, arbor.context(threads=threads))
    n_samples = round(t_stop / dt) + 1
    # request samples in the middle of each step (robust against rounding of k * dt)
    schedule = arbor.explicit_schedule([(k + 0.5) * dt * U.ms for k in range(n_samples)])
    handles = [sim.sample((gid, "v"), schedule) for gid in cells]
    sim.run((t_stop + dt) * U.ms, dt * U.ms)
    values = np.empty((len(cells), n_samples))
    for row, handle in enumerate(handles):
        data, _meta = sim.samples(handle)[0]
        values[row] = data[:, 1]
    return np.arange(n_samples) * dt, values


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_cells", type=int)
    parser.add_argument("--cvs", type=int, default=11)
    parser.add_argument("--t-stop", type=float, default=50.0)
    parser.add_argument("--dt", type=float, default=0.025)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    _, v = run(args.n_cells, args.cvs, args.t_stop, args.dt, args.probes, args.threads)
    if args.out:
        np.save(args.out, v)
