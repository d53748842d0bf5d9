"""Model -> ``arbor.recipe``: one cable cell per model cell, described on demand.

* gid = index of the cell in ``model.cells``.  A model whose cells are all uniform cables
  (``Model.has_trees`` is False) takes the fast path below.  A model with a tree lays every
  cell out with :mod:`.morphology` (the CV layout of :mod:`crosssim.cvgraph`, sites on CV
  centres, probes combined from a whole-cell voltage sample of each probed cell), cables
  included: Arbor 0.12.2's interpolating probe reads the wrong cell's resistivity once
  junctions put unlike cells in one group (see ``__init__``).
* A cable cell is one unbranched cylinder (tag 1) of
  ``length_um`` and ``radius_um``, its membrane (:func:`paint_membrane`), ``cm``, ``rL`` and
  the initial voltage ``Cell.initial_mV`` of that cell.
* Membranes, per section (a tree groups sections by membrane and paints each group on its
  tags): ``pas`` (e = ``e_leak_mV``, g = ``g_leak_S_per_cm2``) where there is a leak; the
  built-in ``hh`` with gnabar, gkbar, gl, el, and ``ena`` / ``ek`` as the reversal potentials
  of the ``na`` / ``k`` ions painted on the same region (Arbor's hh reads them from the ions,
  no mechanism writes them); user channels by SUFFIX from the model's catalogue
  (:func:`~crosssim.backends.arbor.catalogue.build_catalogue`, registered without prefix).
  Temperature: ``simulation.celsius`` as the global ``tempK`` (nearest kelvin float: Arbor
  hands mechanisms ``T - 273.15``, 6.300000000000011 for 6.3).
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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import arbor
import numpy as np

from crosssim.backends.arbor import _compat
from crosssim.backends.arbor.morphology import Location, TreeLayout, tree_layout

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Cell, Model
    from crosssim.model.schema import Section

__all__ = ["PROBE_TAG", "CrossSimRecipe", "junction_label", "membrane_key", "paint_membrane"]

#: Tag of the one voltage probe (set) on every probed cell.
PROBE_TAG = "probes"
#: Distinct cable cells kept for reuse; cells beyond this are described afresh each time.
CELL_CACHE_SIZE = 256


#: Everything painted on a section's membrane: the passive leak ``(g, e)`` or None, hh's
#: parameters (gnabar, gkbar, gl, el, ena, ek) or None, and the user channels
#: ``((suffix, ((parameter, value), ...)), ...)``.
MembraneKey = tuple[tuple[float, float] | None, tuple[float, ...] | None, tuple]


def membrane_key(cell: Cell, section: Section) -> MembraneKey:
    """What :func:`paint_membrane` paints on ``section`` of ``cell`` (hashable)."""
    hh = cell.hh_of(section)
    channels = tuple(sorted((name, tuple(sorted(values.items())))
                            for name, values in cell.channels_of(section).items()))
    return (cell.leak_of(section),
            None if hh is None else (hh.gnabar_S_per_cm2, hh.gkbar_S_per_cm2,
                                     hh.gl_S_per_cm2, hh.el_mV, hh.ena_mV, hh.ek_mV),
            channels)


def paint_membrane(decor: arbor.decor, region: str, membrane: MembraneKey) -> None:
    """Paint ``membrane`` (from :func:`membrane_key`) on ``region``: ``pas``, the built-in
    ``hh`` with the ``na`` / ``k`` reversal potentials it reads, and the user channels from the
    model's catalogue (registered under their SUFFIX)."""
    leak, hh, channels = membrane
    if leak is not None:
        decor.paint(region, _compat.leak(leak[1], leak[0]))
    if hh is not None:
        gnabar, gkbar, gl, el, ena, ek = hh
        decor.paint(region, _compat.hodgkin_huxley(gnabar, gkbar, gl, el))
        _compat.paint_reversal_potential(decor, region, "na", ena)
        _compat.paint_reversal_potential(decor, region, "k", ek)
    for name, values in channels:
        decor.paint(region, _compat.density(name, dict(values)))


def junction_label(local_index: int) -> str:
    """Label of the ``local_index``-th junction half on its cell, e.g. ``gj1``."""
    return f"gj{local_index}"


class CrossSimRecipe(arbor.recipe):
    """An Arbor recipe for a crosssim :class:`~crosssim.model.Model`."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model
        index = model.cell_index()
        cells = model.cells
        n_cells = len(cells)
        junctions = model.gap_junctions
        #: A model with a tree lays every cell out as a tree (see .morphology), cables
        #: included: probes then read whole-cell samples, never Arbor's interpolation, which
        #: in 0.12.2 looks up the axial resistivity of the group's first cell
        #: (``fvm_interpolate_voltage`` reads ``D.axial_resistivity[0]``, not
        #: ``[cell_idx]``): wrong weights, or an IndexError when that cell has fewer
        #: branches, as soon as junctions put unlike cells in one group.
        self._trees = model.has_trees
        self._layouts: dict[tuple, TreeLayout] = {}
        # Junction halves grouped by cell: halves of cell g are rows start[g]:start[g+1].
        n_halves = 2 * len(junctions)
        host = np.empty(n_halves, dtype=np.int64)
        section = np.zeros(n_halves, dtype=np.int64)
        for j, junction in enumerate(junctions):
            for side in (0, 1):
                gid = host[2 * j + side] = index[junction.cells[side]]
                name = junction.sections[side]
                if name is not None:
                    section[2 * j + side] = cells[gid].section_index(name)
        x = np.array([junction.x for junction in junctions], dtype=float).reshape(-1)
        g = np.repeat(np.array([junction.g_uS for junction in junctions], dtype=float), 2)
        # Halves (h = 2*junction + side) sorted by cell, then site and conductance, so that
        # cells with the same junction sites get the same labels and share a description.
        half = np.lexsort((np.arange(n_halves), g, x, section, host))
        self._start = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(np.bincount(host, minlength=n_cells), out=self._start[1:])
        local = np.empty(n_halves, dtype=np.int64)  # label number of each half on its cell
        local[half] = np.arange(n_halves) - self._start[host[half]]
        peer_half = half ^ 1
        self._peer_gid = host[peer_half]
        self._peer_label = local[peer_half]
        self._x = x[half]
        self._g = g[half]
        self._section = section[half]
        # Probes: each row reads sum(weight * V(location)) of one cell; a cable cell reads
        # Arbor's own interpolation at x, a tree cell the graph's stencil of CV nodes.
        self.probe_list = model.effective_probes()
        self._probe_gids = [index[probe.cell] for probe in self.probe_list]
        self._probe_terms: list[list[tuple[Location, float]]] = []
        places: dict[int, set[Location]] = {}
        for gid, probe in zip(self._probe_gids, self.probe_list):
            if self._trees:
                cell = cells[gid]
                terms = self.layout(cell).probe_terms(cell.section_index(probe.section),
                                                      probe.x)
            else:
                terms = [((0, _compat.position(probe.x)), 1.0)]
            self._probe_terms.append(terms)
            places.setdefault(gid, set()).update(where for where, _ in terms)
        self._probe_places = {gid: tuple(sorted(found)) for gid, found in places.items()}
        self._stimuli: dict[int, list] = {}
        for stimulus in model.stimuli:
            self._stimuli.setdefault(index[stimulus.cell], []).append(stimulus)
        self._morphologies: dict[tuple[float, float], arbor.morphology] = {}
        self._cells: OrderedDict[tuple, arbor.cable_cell] = OrderedDict()
        self._properties = arbor.neuron_cable_properties()
        _compat.set_temperature(self._properties, model.simulation.celsius)
        if model.mechanisms:
            from crosssim.backends.arbor.catalogue import build_catalogue

            _compat.extend_catalogue(self._properties, str(build_catalogue(
                [mechanism.mod for mechanism in model.mechanisms])))

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
        if self._trees:
            junctions = tuple(zip(self._section[rows].tolist(), self._x[rows].tolist(),
                                  self._g[rows].tolist()))
            stimuli = tuple((cell.section_index(s.section), s.x, s.delay_ms, s.duration_ms,
                             s.amplitude_nA) for s in self._stimuli.get(gid, ()))
            membranes = tuple(membrane_key(cell, section) for section in cell.tree())
            return self._cached(("tree", self._shape(cell), membranes, junctions, stimuli),
                                lambda: self._describe_tree(cell, junctions, stimuli))
        if cell.sections:  # one uniform section written as a section: the same cable
            cell = cell.as_cable()
        key = (cell.length_um, cell.radius_um, cell.cm_F_per_m2, cell.ra_ohm_cm,
               membrane_key(cell, cell.tree()[0]), cell.initial_mV, self.model.cvs(cell),
               tuple(zip(self._x[rows].tolist(), self._g[rows].tolist())),
               tuple((s.x, s.delay_ms, s.duration_ms, s.amplitude_nA)
                     for s in self._stimuli.get(gid, ())))
        return self._cached(key, lambda: self._describe(key))

    def _cached(self, key: tuple, describe: Callable[[], arbor.cable_cell]) -> arbor.cable_cell:
        """The description of ``key`` from the bounded cache, else ``describe()``."""
        described = self._cells.get(key)
        if described is None:
            described = self._cells[key] = describe()
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
        places = self._probe_places.get(gid)
        if places is None:
            return []
        if self._trees:
            return [_compat.cell_voltage_probe(PROBE_TAG)]
        return [_compat.voltage_probe(_compat.branch_locations(places), PROBE_TAG)]

    # Helpers ---------------------------------------------------------------------------

    def probed_cells(self) -> list[int]:
        """The gids that carry a probe set, in ascending order (one ``sim.sample`` each)."""
        return sorted(self._probe_places)

    def probe_rows(self) -> list[tuple[int, list[tuple[Location, float]]]]:
        """``(gid, terms)`` of every probe, in ``model.effective_probes()`` order: the probe
        reads ``sum(weight * V(location))`` over ``terms``, each location ``(branch,
        position)`` as Arbor reports it in the sample metadata."""
        return list(zip(self._probe_gids, self._probe_terms))

    def probe_places(self, gid: int) -> tuple[Location, ...]:
        """The locations the probe rows of cell ``gid`` read."""
        return self._probe_places.get(gid, ())

    def sampled_values(self) -> int:
        """Values sampled per sample time: probe locations, or every CV cable of each probed
        cell of a tree model (whole-cell samples)."""
        if not self._trees:
            return sum(len(places) for places in self._probe_places.values())
        return sum(self.layout(self.model.cells[gid]).n_cables for gid in self._probe_places)

    def layout(self, cell: Cell) -> TreeLayout:
        """The Arbor layout of ``cell`` (computed once per distinct shape)."""
        key = self._shape(cell)
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = tree_layout(self.model, cell)
        return layout

    def _shape(self, cell: Cell) -> tuple:
        """What the layout of ``cell`` depends on (not its name)."""
        return (cell.tree(), cell.cm_F_per_m2, cell.ra_ohm_cm, cell.g_leak_S_per_cm2,
                cell.e_leak_mV, cell.initial_mV, self.model.section_cvs(cell))

    def has_trees(self) -> bool:
        """True when the cells are laid out as trees (not the cable fast path)."""
        return self._trees

    def distinct_cells(self) -> int:
        """How many distinct cable cells were described (while the cache held them)."""
        return len(self._cells)

    def _describe(self, key: tuple) -> arbor.cable_cell:
        (length_um, radius_um, cm, ra, membrane, v_init, n_cvs, junctions, stimuli) = key
        decor = arbor.decor()
        _compat.set_cable_properties(decor, v_init_mV=v_init, cm_F_per_m2=cm, ra_ohm_cm=ra)
        paint_membrane(decor, "(all)", membrane)
        for k, (x, g) in enumerate(junctions):
            decor.place(_compat.location(x), _compat.junction(g), junction_label(k))
        for x, delay, duration, amplitude in stimuli:
            _compat.place_clamp(decor, _compat.location(x),
                                _compat.current_clamp(delay, duration, amplitude))
        return _compat.cable_cell(self._morphology(length_um, radius_um), decor,
                                  arbor.label_dict(), _compat.fixed_cv_policy(n_cvs))

    def _describe_tree(self, cell: Cell, junctions: tuple, stimuli: tuple) -> arbor.cable_cell:
        layout = self.layout(cell)
        decor = arbor.decor()
        _compat.set_cable_properties(decor, v_init_mV=cell.initial_mV,
                                     cm_F_per_m2=cell.cm_F_per_m2, ra_ohm_cm=cell.ra_ohm_cm)
        membranes: dict[MembraneKey, list[int]] = {}
        for s, section in enumerate(cell.tree()):
            cm, ra = cell.value(section, "cm_F_per_m2"), cell.value(section, "ra_ohm_cm")
            if (cm, ra) != (cell.cm_F_per_m2, cell.ra_ohm_cm):
                _compat.paint_cable_properties(decor, _compat.tag_region([s + 1]),
                                               cm_F_per_m2=cm, ra_ohm_cm=ra)
            membranes.setdefault(membrane_key(cell, section), []).append(s + 1)
        for membrane, tags in membranes.items():
            region = "(all)" if len(membranes) == 1 else _compat.tag_region(tags)
            paint_membrane(decor, region, membrane)
        for k, (section, x, g) in enumerate(junctions):
            branch, position = layout.site(section, x)
            decor.place(_compat.location(position, branch), _compat.junction(g),
                        junction_label(k))
        for section, x, delay, duration, amplitude in stimuli:
            branch, position = layout.site(section, x)
            _compat.place_clamp(decor, _compat.location(position, branch),
                                _compat.current_clamp(delay, duration, amplitude))
        return _compat.cable_cell(layout.morphology, decor, arbor.label_dict(),
                                  _compat.explicit_cv_policy(layout.boundaries()))

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


def samples_by_position(entries: list[Any],
                        wanted: tuple[Location, ...]) -> dict[Location, np.ndarray]:
    """Map each ``wanted`` location ``(branch, position)`` -> (n, 2) array of (t, v) from one
    ``sim.samples(handle)`` list: of a location probe (metadata: the location) or of a
    whole-cell probe (metadata: the cable of every column; a location reads the zero-length
    cable at it, a fork or root CV, else the cable that holds it inside)."""
    found: dict[Location, np.ndarray] = {}
    for data, meta in entries:
        data = np.asarray(data)
        if not isinstance(meta, list):
            found[(int(meta.branch), float(meta.pos))] = data
            continue
        cables = [(int(c.branch), float(c.prox), float(c.dist)) for c in meta]
        points = {(b, prox): j for j, (b, prox, dist) in enumerate(cables) if prox == dist}
        for branch, position in wanted:
            column = points.get((branch, position))
            if column is None:
                column = next((j for j, (b, prox, dist) in enumerate(cables)
                               if b == branch and prox < position < dist), None)
            if column is not None:
                found[(branch, position)] = data[:, [0, column + 1]]
    return found
