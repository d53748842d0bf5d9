"""A section tree -> Arbor morphology, CV boundaries and the locations of the shared CV nodes.

The CV layout is :mod:`crosssim.cvgraph`'s (``n`` CVs per section at ``k / n``, a zero-area
point node where two or more section ends meet, sealed tips); this module makes Arbor build
it and says where each node of that graph sits on Arbor's branches.

* **Segments**: one per frustum piece of each section's radius profile (``Section.points``),
  tagged ``section index + 1``.  A radius step inside a section is a zero-length segment,
  whose annulus Arbor counts as membrane of the proximal CV when it sits on a CV boundary
  (measured), as the graph and NEURON do; a step at a section end is left out (the graph
  gives it no membrane).  A child hangs from the last segment of the section whose end it
  shares (:func:`~crosssim.cvgraph.point_owner`), or from ``mnpos`` when that is the root's
  x = 0 end.  Each section is drawn along x from 0 on its own line ``y = index``: only
  segment lengths and radii matter electrically.
* **Branches**: Arbor merges a section and its only child into one branch.  Positions are
  mapped through :meth:`TreeLayout.position` (branch, fraction of the branch's length).
* **CV policy**: ``cv_policy_explicit`` with a boundary at every ``k / n`` of every section,
  both ends included.  Measured (Arbor 0.12.2): boundaries at a fork on the parent's end
  *and* on each child's start give the zero-length fork CV of ``cv_policy_fixed_per_branch``
  (the parent's end alone gives a CV that reaches into the children); several branches at
  ``mnpos`` always get a zero-length root CV; a boundary inside a branch (a section
  continued by one child) only cuts, so that point node has no Arbor CV.  A zero-area node
  between two CVs only adds their half-CV resistances in series, so the system is the same;
  its voltage is the conductance-weighted mean of its neighbours, ``sum(g V) / sum(g)``,
  which :meth:`TreeLayout.probe_terms` computes from the recorded neighbours.
* **Sites** sit on the centre of the CV the graph assigns them (:meth:`TreeLayout.site`);
  **probes** read the graph's stencil of recorded nodes (:meth:`TreeLayout.probe_terms`),
  not Arbor's own interpolation (which weights by axial resistance on tapers and, across a
  merged section boundary, interpolates between the two CV centres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import arbor
import numpy as np

from crosssim.cvgraph import CVGraph, cv_graph, point_owner

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Cell, Model

__all__ = ["Location", "TreeLayout", "tree_layout"]

#: An Arbor location: (branch, position 0..1 along the branch).
Location = tuple[int, float]


@dataclass(frozen=True)
class TreeLayout:
    """One tree cell laid out for Arbor.

    ``graph``: the cell's own CV graph (gid 0).  Per section: ``branch`` (Arbor branch id),
    ``start_um`` and ``stop_um`` (distances of its ends from its branch's start, summed over
    Arbor's segments in branch order, so a section continued by one child stops exactly
    where the child starts).  ``branch_length_um`` per branch.
    ``arbor_points``: the graph's point nodes Arbor has as a zero-length CV, with their
    location.
    """

    morphology: arbor.morphology
    graph: CVGraph
    branch: tuple[int, ...]
    start_um: tuple[float, ...]
    stop_um: tuple[float, ...]
    branch_length_um: tuple[float, ...]
    arbor_points: dict[int, Location]

    @property
    def n_cables(self) -> int:
        """Columns of a whole-cell voltage sample: one per CV, plus one per section end at
        each zero-length CV."""
        graph = self.graph
        held = np.isin(graph.edge_a, list(self.arbor_points))
        return graph.n_cvs + int(held.sum())

    def position(self, section: int, x: float) -> Location:
        """Arbor location of fraction ``x`` of ``section``."""
        branch = self.branch[section]
        start, stop = self.start_um[section], self.stop_um[section]
        distance = start if x == 0.0 else stop if x == 1.0 else start + x * (stop - start)
        return branch, min(distance / self.branch_length_um[branch], 1.0)

    def boundaries(self) -> list[Location]:
        """Every CV boundary, ``k / n`` of every section with both ends (sorted, distinct)."""
        found: set[Location] = set()
        for section, n in enumerate(self.graph.section_cvs[0]):
            found.update(self.position(section, k / n) for k in range(n + 1))
        return sorted(found)

    def node_location(self, node: int) -> Location:
        """Where Arbor holds node ``node`` of the graph: a CV centre, or a zero-length CV."""
        if node < self.graph.n_cvs:
            return self.position(int(self.graph.section[node]), float(self.graph.x[node]))
        return self.arbor_points[node]

    def site(self, section: int, x: float) -> Location:
        """The centre of the CV a point source at ``x`` of ``section`` acts on."""
        return self.node_location(self.graph.site_node(0, section, x))

    def probe_terms(self, section: int, x: float) -> list[tuple[Location, float]]:
        """``[(location, weight), ...]``: the probe at ``x`` of ``section`` reads
        ``sum(weight * V(location))`` (the graph's stencil; a point node Arbor does not hold
        is replaced by the conductance-weighted mean of its neighbours)."""
        first, second, weight = self.graph.probe_stencil(0, section, x)
        stencil = [(first, 1.0)] if first == second else [(first, 1.0 - weight),
                                                           (second, weight)]
        terms: dict[int, float] = {}
        for node, share in stencil:
            for source, part in self._node_terms(node):
                terms[source] = terms.get(source, 0.0) + share * part
        return [(self.node_location(node), share) for node, share in terms.items()]

    def _node_terms(self, node: int) -> list[tuple[int, float]]:
        if node < self.graph.n_cvs or node in self.arbor_points:
            return [(node, 1.0)]
        graph = self.graph
        here = np.flatnonzero((graph.edge_a == node) | (graph.edge_b == node))
        neighbours = np.where(graph.edge_a[here] == node, graph.edge_b[here], graph.edge_a[here])
        conductances = graph.edge_g_uS[here]
        total = float(conductances.sum())
        return [(int(n), float(g) / total) for n, g in zip(neighbours, conductances)]


def _single_cell(model: Model, cell: Cell) -> Model:
    """``model`` with ``cell`` as its only cell (for the cell's own CV graph)."""
    return model.model_copy(update={"cells": (cell,), "gap_junctions": (), "probes": (),
                                    "stimuli": ()})


def tree_layout(model: Model, cell: Cell) -> TreeLayout:
    """Lay ``cell`` of ``model`` out for Arbor (see the module docstring)."""
    graph = cv_graph(_single_cell(model, cell))
    tree = cell.tree()
    parents = cell.parents()
    children: dict[int, list[int]] = {}
    for s, parent in enumerate(parents):
        if parent >= 0:
            children.setdefault(parent, []).append(s)
    segments = arbor.segment_tree()
    last_segment: dict[int, int] = {}
    order = [0]
    for s in order:  # breadth first: every section after the one it hangs from
        order.extend(children.get(s, ()))
        if s == 0:
            attach = arbor.mnpos
        else:
            owner, end = point_owner(tree, parents, s, 0)
            attach = last_segment[owner] if end == 1 else arbor.mnpos
        points = tree[s].points()
        for (d0, r0), (d1, r1) in zip(points, points[1:]):
            if d1 == d0 and d0 in (0.0, points[-1][0]):
                continue  # a radius step at a section end: no membrane in the graph
            attach = segments.append(attach, arbor.mpoint(d0, float(s), 0.0, r0),
                                     arbor.mpoint(d1, float(s), 0.0, r1), tag=s + 1)
        last_segment[s] = attach
    morphology = arbor.morphology(segments)

    n_sections = len(tree)
    branch = [-1] * n_sections
    start = [0.0] * n_sections
    stop = [0.0] * n_sections
    branch_length = []
    for b in range(morphology.num_branches):
        distance = 0.0
        for segment in morphology.branch_segments(b):
            s = segment.tag - 1
            if branch[s] < 0:
                branch[s], start[s] = b, distance
            distance += math.dist((segment.prox.x, segment.prox.y, segment.prox.z),
                                  (segment.dist.x, segment.dist.y, segment.dist.z))
            stop[s] = distance
        branch_length.append(distance)

    layout = TreeLayout(morphology, graph, tuple(branch), tuple(start), tuple(stop),
                        tuple(branch_length), {})
    held: dict[int, Location] = {}
    for node in range(graph.n_cvs, graph.n_nodes):
        side = float(graph.x[node])
        where = layout.position(int(graph.section[node]), side)
        # the root's x = 0 end (several branches at mnpos: a root CV), or a branch end with
        # children (a fork CV); any other point node is inside a merged branch
        if side == 0.0 or where[1] == 1.0:
            held[node] = where
    return replace(layout, arbor_points=held)
