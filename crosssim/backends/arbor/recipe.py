"""Model -> ``arbor.recipe``: one cable cell per model cell, described on demand.

* gid = index of the cell in ``model.cells``; one unbranched cylinder (tag 1) of
  ``length_um`` and ``radius_um``, ``pas`` (e = ``e_leak_mV``, g = ``g_leak_S_per_cm2``),
  ``cm``, ``rL`` and the initial voltage ``v_init_mV`` of that cell.
* Discretization: ``cv_policy_fixed_per_branch(model.cvs(cell))``, so Arbor and NEURON take
  the CV count from the same place (``Discretization.cvs_for``).
* Every junction half is Arbor's ``gj`` junction mechanism (g in uS, weight 1) placed at
  ``(location 0 x)``.  Its label is local to the cell: ``gj<k>`` for the k-th half on that
  cell (ordered by position, then conductance, then model order), and
  :meth:`CrossSimRecipe.gap_junctions_on` names the peer's label
  from the junction index.  Local labels make the description of a cell independent of its
  gid, so cells that are alike share one ``cable_cell`` (a ring of two kinds of cells builds
  two, not N).
* Probes: one ``cable_probe_membrane_voltage`` per probed cell, tagged ``probes``, whose locset
  joins the positions of all probes on that cell; one ``sim.sample`` call per probed cell.
  Step clamps: ``i_clamp``.

Semantics (the contract the NEURON backend reproduces): a point source acts on the CV
containing x (boundary sites go to the distal CV, x = 1 to the last CV); a probe reads the
linear interpolation between the two neighbouring CV centres (extrapolated from the
outermost pair towards x = 0 and 1); a clamp is on for the steps whose start time t satisfies
``delay <= t < delay + duration``.

Scaling: the recipe keeps flat numpy arrays (junction halves grouped by cell, compressed-row
style), a dict of probe positions for the probed cells only, and a bounded cache of distinct
cable cells; nothing scans the whole model per cell and no Python object is kept per cell.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import arbor
import numpy as np

from crosssim.backends.arbor import _compat

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = ["PROBE_TAG", "CrossSimRecipe", "junction_label"]

#: Tag of the one voltage probe (set) on every probed cell.
PROBE_TAG = "probes"
#: Distinct cable cells kept for reuse; cells beyond this are described afresh each time.
CELL_CACHE_SIZE = 256


def junction_label(local_index: int) -> str:
    """Label of the ``local_index``-th junction half on its cell, e.g. ``gj1``."""
    return f"gj{local_index}"


class CrossSimRecipe(arbor.recipe):
    """An Arbor recipe for a crosssim :class:`~crosssim.model.Model`."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model
        index = model.cell_index()
        n_cells = len(model.cells)
        junctions = model.gap_junctions
        # Junction halves grouped by cell: halves of cell g are rows start[g]:start[g+1].
        n_halves = 2 * len(junctions)
        host = np.empty(n_halves, dtype=np.int64)
        for j, junction in enumerate(junctions):
            host[2 * j] = index[junction.cells[0]]
            host[2 * j + 1] = index[junction.cells[1]]
        x = np.array([junction.x for junction in junctions], dtype=float).reshape(-1)
        g = np.repeat(np.array([junction.g_uS for junction in junctions], dtype=float), 2)
        # Halves (h = 2*junction + side) sorted by cell, then site and conductance, so that
        # cells with the same junction sites get the same labels and share a description.
        half = np.lexsort((np.arange(n_halves), g, x, host))
        self._start = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(np.bincount(host, minlength=n_cells), out=self._start[1:])
        local = np.empty(n_halves, dtype=np.int64)  # label number of each half on its cell
        local[half] = np.arange(n_halves) - self._start[host[half]]
        peer_half = half ^ 1
        self._peer_gid = host[peer_half]
        self._peer_label = local[peer_half]
        self._x = x[half]
        self._g = g[half]
        # Probes: cell -> sorted distinct positions, only for probed cells.
        self.probe_list = model.effective_probes()
        positions: dict[int, set[float]] = {}
        for probe in self.probe_list:
            positions.setdefault(index[probe.cell], set()).add(_compat.position(probe.x))
        self._probe_positions = {gid: tuple(sorted(xs)) for gid, xs in positions.items()}
        self._probe_gids = [index[probe.cell] for probe in self.probe_list]
        self._stimuli: dict[int, list] = {}
        for stimulus in model.stimuli:
            self._stimuli.setdefault(index[stimulus.cell], []).append(stimulus)
        self._morphologies: dict[tuple[float, float], arbor.morphology] = {}
        self._cells: OrderedDict[tuple, arbor.cable_cell] = OrderedDict()
        self._properties = arbor.neuron_cable_properties()

    # The recipe interface ------------------------------------------------------------------

    def num_cells(self) -> int:
        return len(self.model.cells)

    def cell_kind(self, gid: int) -> arbor.cell_kind:
        return arbor.cell_kind.cable

    def global_properties(self, kind: arbor.cell_kind):
        return self._properties

    def cell_description(self, gid: int) -> arbor.cable_cell:
        cell = self.model.cells[gid]
        rows = slice(self._start[gid], self._start[gid + 1])
        junctions = tuple(zip(self._x[rows].tolist(), self._g[rows].tolist()))
        stimuli = tuple((s.x, s.delay_ms, s.duration_ms, s.amplitude_nA)
                        for s in self._stimuli.get(gid, ()))
        key = (cell.length_um, cell.radius_um, cell.cm_F_per_m2, cell.ra_ohm_cm,
               cell.g_leak_S_per_cm2, cell.e_leak_mV, cell.initial_mV, self.model.cvs(cell),
               junctions, stimuli)
        described = self._cells.get(key)
        if described is None:
            described = self._describe(key)
            self._cells[key] = described
            if len(self._cells) > CELL_CACHE_SIZE:
                self._cells.popitem(last=False)
        return described

    def gap_junctions_on(self, gid: int) -> list[arbor.gap_junction_connection]:
        start, stop = int(self._start[gid]), int(self._start[gid + 1])
        return [
            arbor.gap_junction_connection((peer, junction_label(peer_label)),
                                          junction_label(k), 1.0)
            for k, (peer, peer_label) in enumerate(zip(self._peer_gid[start:stop].tolist(),
                                                       self._peer_label[start:stop].tolist()))
        ]

    def probes(self, gid: int) -> list:
        positions = self._probe_positions.get(gid)
        if positions is None:
            return []
        return [_compat.voltage_probe(_compat.locations(positions), PROBE_TAG)]

    # Helpers ---------------------------------------------------------------------------

    def probed_cells(self) -> list[int]:
        """The gids that carry a probe set, in ascending order (one ``sim.sample`` each)."""
        return sorted(self._probe_positions)

    def probe_rows(self) -> list[tuple[int, float]]:
        """``(gid, position)`` of every probe, in ``model.effective_probes()`` order; the
        position is the float Arbor reports in the sample metadata."""
        return [(gid, _compat.position(probe.x))
                for gid, probe in zip(self._probe_gids, self.probe_list)]

    def distinct_cells(self) -> int:
        """How many distinct cable cells were described (while the cache held them)."""
        return len(self._cells)

    def _describe(self, key: tuple) -> arbor.cable_cell:
        (length_um, radius_um, cm, ra, g_leak, e_leak, v_init, n_cvs, junctions,
         stimuli) = key
        decor = arbor.decor()
        _compat.set_cable_properties(decor, v_init_mV=v_init, cm_F_per_m2=cm, ra_ohm_cm=ra)
        decor.paint("(all)", _compat.leak(e_leak, g_leak))
        for k, (x, g) in enumerate(junctions):
            decor.place(_compat.location(x), _compat.junction(g), junction_label(k))
        for x, delay, duration, amplitude in stimuli:
            _compat.place_clamp(decor, _compat.location(x),
                                _compat.current_clamp(delay, duration, amplitude))
        return _compat.cable_cell(self._morphology(length_um, radius_um), decor,
                                  arbor.label_dict(), _compat.fixed_cv_policy(n_cvs))

    def _morphology(self, length_um: float, radius_um: float) -> arbor.morphology:
        key = (length_um, radius_um)
        morphology = self._morphologies.get(key)
        if morphology is None:
            tree = arbor.segment_tree()
            tree.append(arbor.mnpos, arbor.mpoint(0.0, 0.0, 0.0, radius_um),
                        arbor.mpoint(length_um, 0.0, 0.0, radius_um), tag=1)
            morphology = arbor.morphology(tree)
            self._morphologies[key] = morphology
        return morphology


def samples_by_position(entries: list[Any]) -> dict[float, np.ndarray]:
    """Map probe position -> (n, 2) array of (t, v) from one ``sim.samples(handle)`` list."""
    return {float(meta.pos): np.asarray(data) for data, meta in entries}
