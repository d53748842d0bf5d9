"""Model -> ``arbor.recipe``: one cable cell per model cell, built on demand.

* gid = index of the cell in ``model.cells``; one unbranched cylinder (tag 1) of
  ``length_um`` and ``radius_um``, ``pas`` (e = ``e_leak_mV``, g = ``g_leak_S_per_cm2``),
  ``cm``, ``rL`` and the initial voltage ``v_init_mV`` of that cell.
* Discretization: ``cv_policy_fixed_per_branch(model.cvs(cell))``, so Arbor and NEURON take
  the CV count from the same place (``Discretization.cvs_for``).
* Every junction half is Arbor's ``gj`` junction mechanism (g in uS, weight 1) placed at
  ``(location 0 x)`` with its own label ``gj<junction>_<side>``; each cell returns its own
  halves from :meth:`CrossSimRecipe.gap_junctions_on`, peering the other side's label.
* Probes: ``cable_probe_membrane_voltage`` tagged ``p<probe index>``; step clamps: ``i_clamp``.

Semantics (the contract the NEURON backend reproduces): a point source acts on the CV
containing x (boundary sites go to the distal CV, x = 1 to the last CV); a probe reads the
linear interpolation between the two neighbouring CV centres (extrapolated from the
outermost pair towards x = 0 and 1); a clamp is on for the steps whose start time t satisfies
``delay <= t < delay + duration``.

Scaling: junctions and probes are indexed by cell once at construction; nothing scans the
whole model per cell; morphologies are shared between cells of the same geometry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import arbor

from crosssim.backends.arbor import _compat

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = ["CrossSimRecipe", "junction_label", "probe_tag"]


def junction_label(junction_index: int, side: int) -> str:
    """Label of one junction half on its cell, e.g. ``gj3_1``."""
    return f"gj{junction_index}_{side}"


def probe_tag(probe_index: int) -> str:
    """Tag of the probe with index ``probe_index`` in ``model.effective_probes()``."""
    return f"p{probe_index}"


class CrossSimRecipe(arbor.recipe):
    """An Arbor recipe for a crosssim :class:`~crosssim.model.Model`."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model
        self._index = model.cell_index()
        self._junctions = model.junctions_by_cell()
        self.probe_list = model.effective_probes()
        self._probes: dict[int, list[tuple[int, float]]] = {}
        for i, probe in enumerate(self.probe_list):
            self._probes.setdefault(self._index[probe.cell], []).append((i, probe.x))
        self._stimuli: dict[int, list] = {}
        for stimulus in model.stimuli:
            self._stimuli.setdefault(self._index[stimulus.cell], []).append(stimulus)
        self._morphologies: dict[tuple[float, float], arbor.morphology] = {}
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
        decor = arbor.decor()
        _compat.set_cable_properties(decor, v_init_mV=cell.initial_mV,
                                     cm_F_per_m2=cell.cm_F_per_m2, ra_ohm_cm=cell.ra_ohm_cm)
        decor.paint("(all)", _compat.leak(cell.e_leak_mV, cell.g_leak_S_per_cm2))
        for j, side, _peer in self._junctions.get(gid, ()):
            junction = self.model.gap_junctions[j]
            decor.place(_compat.location(junction.x[side]), _compat.junction(junction.g_uS),
                        junction_label(j, side))
        for stimulus in self._stimuli.get(gid, ()):
            _compat.place_clamp(decor, _compat.location(stimulus.x),
                                _compat.current_clamp(stimulus.delay_ms, stimulus.duration_ms,
                                                      stimulus.amplitude_nA))
        return _compat.cable_cell(self._morphology(cell.length_um, cell.radius_um), decor,
                                  arbor.label_dict(), _compat.fixed_cv_policy(self.model.cvs(cell)))

    def gap_junctions_on(self, gid: int) -> list[arbor.gap_junction_connection]:
        return [
            arbor.gap_junction_connection((peer, junction_label(j, 1 - side)),
                                          junction_label(j, side), 1.0)
            for j, side, peer in self._junctions.get(gid, ())
        ]

    def probes(self, gid: int) -> list:
        return [_compat.voltage_probe(_compat.location(x), probe_tag(i))
                for i, x in self._probes.get(gid, ())]

    # Helpers ---------------------------------------------------------------------------

    def probe_addresses(self) -> list[tuple[int, str]]:
        """``(gid, tag)`` of every probe, in ``model.effective_probes()`` order."""
        return [(self._index[probe.cell], probe_tag(i)) for i, probe in enumerate(self.probe_list)]

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
