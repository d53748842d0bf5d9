"""SWC morphologies as the neutral model's section list.

:func:`read_swc` reads a file and :func:`sections_from_swc_text` the text of one; both
return the list of section dicts that ``[[cells.sections]]`` tables hold: the root first and
every parent before its children, each dict with ``name``, ``parent`` and ``parent_x``
(absent for the root), ``length_um`` and the simplest radius description that reproduces
the samples exactly: ``radius_um`` (one radius), ``radius_start_um`` + ``radius_end_um``
(radius linear in path length) or ``profile_um`` (``[distance_um, radius_um]`` pairs, the
first at 0, the last at ``length_um``, piecewise linear).  Lengths and radii are in um.

The file
--------
* One sample per line, ``id type x y z radius parent``, separated by blanks or tabs.
  ``#`` starts a comment (whole line or the rest of a line); blank lines are skipped.
* ``id``: a positive integer, each used once.  ``parent``: ``-1`` for the root, else the id
  of a sample anywhere in the file (samples may come in any order).  Exactly one root; the
  parents must not form a cycle.  Integers may be written with a zero fraction (``3.0``).
* ``x y z radius``: finite decimal numbers in um; ``radius > 0``.
* ``type``: 1 soma, 2 axon, 3 basal dendrite, 4 apical dendrite, any integer >= 5 a custom
  type (e.g. NeuroMorpho's 5 fork / 6 end points, or a user's own).  0 ("undefined") and
  negative types are refused: a type decides a section's name, so a reader must know it.
* Every violation raises :class:`~crosssim.errors.InvalidModelError` whose one-line message
  starts ``FILE:LINE:`` and says what is allowed.

Sections
--------
* A section is an unbranched run of samples of one type.  A run ends at a tip, at a sample
  with more than one child, and where the type changes (that child starts a new section).
  Names: ``soma``; ``axon_N``, ``dend_N``, ``apic_N``, ``custom<type>_N`` with N counting
  from 1 per name in the file order of each section's first sample.
* Length: the sum of the 3-D distances between consecutive points; radii are linear between
  points.  A section whose parent is a neurite starts at the parent's last sample, with that
  sample's radius (the segment from a branch point to the first child sample belongs to the
  child, as in SWC) and attaches at ``parent_x = 1``.  Consecutive points at one place
  are merged, the later sample's radius kept (a step in radius at one point cannot be
  drawn as a piecewise-linear profile).
* A run whose points all lie at one place (length 0) is an error naming its last sample if
  it is a tip.  With children it is a point, not a section (a one-sample run on the soma
  that forks at once, or a root that is also a fork in a tree without soma): its children
  start at that point and attach where it would have attached (at soma ``x = 1``); at a
  root point the first child (in file order) becomes the root and the others attach at its
  ``x = 0``, as NEURON's Import3d does.  The geometry is kept exactly; only that point's type
  is lost.  (For a one-sample run on the soma, Import3d instead draws a section from the
  soma centre to the sample, against the rule below.)

The soma
--------
Type-1 samples must be the root and, if more than one, an unbranched chain through it (the
root may sit in its middle, as in a three-point soma):

* One sample of radius r, or the NeuroMorpho three-point soma (exactly three soma samples:
  the centre as root and two samples of the same radius with the centre as parent and no
  children, at distances summing to 2r within 1 %; NeuroMorpho puts them at +-r along y):
  one cylinder ``soma`` of length 2r and radius r.  Its lateral area 2 pi r * 2r = 4 pi r^2
  is the sphere's, and it is NEURON Import3d's rule for a three-point soma (a cylinder with
  L = diam); ``arbor.load_swc_neuron`` builds the same area from two +-y cylinders.
* Any other chain: a ``soma`` section along its samples (frustums), from one end to the
  other (through the root when it lies in the middle).
* Neurites hang from the soma at its end, ``parent_x = 1``.  NEURON hangs them from
  soma(0.5), but a section's attachment points are 0 and 1 only.  Moving a neurite by r
  along a soma cylinder of radius r puts at most the axial resistance of half the soma,
  Ra r / (pi r^2) = Ra / (pi r) = 31.8 kOhm for r = 10 um and Ra = 100 Ohm cm, in series
  with it.  Measured in NEURON 9.0.2 (soma 20 x 20 um, g_pas 1e-4 S/cm^2, three dendrites
  200 um x 1 um radius) the soma input resistance moves from 202.875 to 202.893 MOhm
  (+0.009 %); with g_pas 1e-3 S/cm^2 and eight dendrites of radius 2 um, 5.249 -> 5.277
  MOhm (+0.5 %, the 31.8 kOhm bound almost reached).  On a multi-sample soma every neurite
  hangs from its end, wherever its parent soma sample lies.
* A neurite whose parent is a soma sample starts its section at its own first sample: no
  segment back to the soma centre (or contour point), as NEURON's Import3d and
  ``arbor.load_swc_neuron`` do; ``arbor.load_swc_arbor`` would add a cone from the centre
  (extra membrane that moves the voltage by mV).  So a neurite needs two distinct samples.
"""

from __future__ import annotations

import math
import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosssim.errors import InvalidModelError

__all__ = ["SWC_TYPE_NAMES", "read_swc", "sections_from_swc_text"]

#: Section name prefixes of the standard SWC types; types >= 5 are ``custom<type>``.
SWC_TYPE_NAMES: dict[int, str] = {1: "soma", 2: "axon", 3: "dend", 4: "apic"}

_SOMA = 1
_COLUMNS = ("id", "type", "x", "y", "z", "radius", "parent")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_LINE_ALLOWED = "7 columns: id type x y z radius parent (# starts a comment)"
_TYPE_ALLOWED = ("1 soma, 2 axon, 3 basal dendrite, 4 apical dendrite, 5 or more custom; "
                 "not 0 (undefined) or negative")
_SOMA_ALLOWED = ("soma samples (type 1) only as the root and an unbranched chain of type-1 "
                 "samples through it")
_ROOT_ALLOWED = "exactly one sample with parent -1"
_THREE_POINT_TOLERANCE = 0.01  # NEURON Import3d: |distances / diameter - 1| < 1 %


@dataclass(frozen=True)
class _Sample:
    id: int
    type: int
    position: tuple[float, float, float]
    radius: float
    parent: int
    line: int


@dataclass(eq=False)
class _Run:
    """A section in the making: its own samples and the point it starts from."""

    type: int
    samples: list[_Sample]
    parent: _Run | None
    points: list[tuple[float, float]] = field(default_factory=list)  # (distance, radius)
    children: list[_Run] = field(default_factory=list)
    attach: tuple[_Run, float] | None = None
    collapsed: bool = False
    replacement: _Run | None = None
    name: str = ""

    @property
    def first_line(self) -> int:
        return self.samples[0].line


def read_swc(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The sections of the SWC file at ``path`` (see the module docstring), root first.

    Raises :class:`InvalidModelError` naming ``path`` and the line for every broken rule, and
    for a file that cannot be read or is not UTF-8 text.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidModelError(f"cannot read the SWC file: {exc.strerror or exc}",
                                source=source, allowed="a readable SWC file") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InvalidModelError("not UTF-8 text", source=f"{source}:{line}",
                                allowed="an SWC text file (UTF-8 or ASCII)") from None
    return sections_from_swc_text(text, source=source)


def sections_from_swc_text(text: str, *, source: str = "<string>") -> list[dict[str, Any]]:
    """The sections of the SWC ``text``, root first; errors name ``source`` and the line."""
    samples = _parse(text, source)
    by_id = {sample.id: sample for sample in samples}
    root, children = _check_tree(samples, by_id, source)
    stray = next((s for s in samples if s.type == _SOMA and root.type != _SOMA), None)
    if stray is not None:
        raise InvalidModelError(
            f"soma sample {stray.id} (type 1) but the root on line {root.line} has type "
            f"{root.type}", source=f"{source}:{stray.line}", field="type", value=stray.type,
            allowed=_SOMA_ALLOWED)
    soma = _soma_run(root, by_id, children, source) if root.type == _SOMA else None
    runs = _neurite_runs(root, by_id, children, soma)
    for run in runs:
        _collapse_if_point(run, source)
    return _sections(soma, runs)


def _parse(text: str, source: str) -> list[_Sample]:
    """Every sample line checked on its own: columns, numbers, ids, types, radii."""
    samples: list[_Sample] = []
    first_line: dict[int, int] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        where = f"{source}:{number}"
        columns = content.split()
        if len(columns) != len(_COLUMNS):
            raise InvalidModelError(f"found {len(columns)} columns", source=where,
                                    value=content, allowed=_LINE_ALLOWED)
        values = [_number(text_value, name, where) for text_value, name in zip(columns, _COLUMNS)]
        sample_id = _integer(values[0], columns[0], "id", where)
        sample_type = _integer(values[1], columns[1], "type", where)
        parent = _integer(values[6], columns[6], "parent", where)
        radius = values[5]
        if sample_id < 1:
            raise InvalidModelError(f"{columns[0]} is not a positive integer", source=where,
                                    field="id", value=sample_id, allowed="ids 1, 2, 3, ...")
        if sample_type < 1:
            raise InvalidModelError(f"unknown sample type {columns[1]}", source=where,
                                    field="type", value=sample_type, allowed=_TYPE_ALLOWED)
        if radius <= 0:
            raise InvalidModelError(f"{columns[5]} is not positive", source=where,
                                    field="radius", value=radius, allowed="a radius > 0 um")
        if parent == sample_id:
            raise InvalidModelError(f"sample {sample_id} is its own parent (a cycle)",
                                    source=where, field="parent", value=parent,
                                    allowed="-1 (the root) or the id of another sample")
        if parent < 1 and parent != -1:
            raise InvalidModelError(f"{columns[6]} is not a sample id", source=where,
                                    field="parent", value=parent,
                                    allowed="-1 (the root) or the id of another sample")
        if sample_id in first_line:
            raise InvalidModelError(
                f"sample id {sample_id} is used again (first on line {first_line[sample_id]})",
                source=where, field="id", value=sample_id, allowed="each id once")
        first_line[sample_id] = number
        samples.append(_Sample(sample_id, sample_type, (values[2], values[3], values[4]),
                               radius, parent, number))
    if not samples:
        raise InvalidModelError("no samples (only comments and blank lines)",
                                source=f"{source}:1",
                                allowed="one sample line per point: " + _LINE_ALLOWED)
    return samples


def _number(text: str, column: str, where: str) -> float:
    if not _NUMBER.match(text):
        raise InvalidModelError(f"{text!r} is not a number", source=where, field=column,
                                value=text, allowed="a finite decimal number such as 1.5")
    value = float(text)
    if not math.isfinite(value):
        raise InvalidModelError(f"{text} is too large", source=where, field=column,
                                value=text, allowed="a finite decimal number such as 1.5")
    return value


def _integer(value: float, text: str, column: str, where: str) -> int:
    if not value.is_integer():
        raise InvalidModelError(f"{text} is not an integer", source=where, field=column,
                                value=text, allowed="an integer such as 3")
    return int(value)


def _check_tree(samples: list[_Sample], by_id: dict[int, _Sample],
                source: str) -> tuple[_Sample, dict[int, list[_Sample]]]:
    """The root and every sample's children (in file order), after checking that parents
    exist, that there is one root and that the parents form no cycle."""
    children: dict[int, list[_Sample]] = {sample.id: [] for sample in samples}
    for sample in samples:
        if sample.parent == -1:
            continue
        if sample.parent not in by_id:
            raise InvalidModelError(
                f"parent {sample.parent} of sample {sample.id} is not in the file",
                source=f"{source}:{sample.line}", field="parent", value=sample.parent,
                allowed="-1 (the root) or the id of a sample in the file")
        children[sample.parent].append(sample)
    roots = [sample for sample in samples if sample.parent == -1]
    if len(roots) > 1:
        raise InvalidModelError(
            f"a second root (parent -1): sample {roots[1].id}; the first is sample "
            f"{roots[0].id} on line {roots[0].line}", source=f"{source}:{roots[1].line}",
            field="parent", value=-1, allowed=_ROOT_ALLOWED)
    if not roots:
        cycle = _cycle_from(samples[0], by_id)
        raise InvalidModelError(
            f"no root (no sample has parent -1): the parents form a cycle {_arrows(cycle)}",
            source=f"{source}:{min(s.line for s in cycle)}", field="parent",
            allowed=_ROOT_ALLOWED)
    reached = {roots[0].id}
    queue = deque([roots[0]])
    while queue:
        for child in children[queue.popleft().id]:
            reached.add(child.id)
            queue.append(child)
    if len(reached) < len(samples):
        cycle = _cycle_from(next(s for s in samples if s.id not in reached), by_id)
        raise InvalidModelError(
            f"the parents form a cycle {_arrows(cycle)}, cut off from the root on line "
            f"{roots[0].line}", source=f"{source}:{min(s.line for s in cycle)}",
            field="parent", allowed="a tree: every sample's parents lead to the root")
    return roots[0], children


def _cycle_from(start: _Sample, by_id: dict[int, _Sample]) -> list[_Sample]:
    """The cycle that following parents from ``start`` runs into (every parent exists)."""
    path: list[_Sample] = []
    seen: dict[int, int] = {}
    sample = start
    while sample.id not in seen:
        seen[sample.id] = len(path)
        path.append(sample)
        sample = by_id[sample.parent]
    return path[seen[sample.id]:]


def _arrows(cycle: list[_Sample]) -> str:
    return " -> ".join(str(s.id) for s in [*cycle, cycle[0]])


def _soma_run(root: _Sample, by_id: dict[int, _Sample], children: dict[int, list[_Sample]],
              source: str) -> _Run:
    """The soma: one cylinder (one sample, three-point soma) or a chain through the root."""
    soma_children = {s.id: [c for c in children[s.id] if c.type == _SOMA]
                     for s in by_id.values() if s.type == _SOMA}
    for sample in by_id.values():
        if sample.type == _SOMA and sample is not root and by_id[sample.parent].type != _SOMA:
            raise InvalidModelError(
                f"soma sample {sample.id} hangs from sample {sample.parent} of type "
                f"{by_id[sample.parent].type}", source=f"{source}:{sample.line}", field="type",
                value=sample.type, allowed=_SOMA_ALLOWED)
    for sample_id, own in soma_children.items():
        limit = 2 if sample_id == root.id else 1
        if len(own) > limit:
            extra = own[limit]
            raise InvalidModelError(
                f"soma sample {sample_id} has more soma children than an unbranched chain "
                f"allows (sample {extra.id})", source=f"{source}:{extra.line}", field="parent",
                value=extra.parent, allowed=_SOMA_ALLOWED)

    def chain(start: _Sample) -> list[_Sample]:
        out = [start]
        while soma_children[out[-1].id]:
            out.append(soma_children[out[-1].id][0])
        return out

    sides = soma_children[root.id]
    if not sides or _is_three_point(root, sides, children, len(soma_children)):
        return _Run(_SOMA, [root], None, points=[(0.0, root.radius), (2 * root.radius,
                                                                       root.radius)])
    path = [root, *chain(sides[0])] if len(sides) == 1 else [
        *reversed(chain(sides[0])), root, *chain(sides[1])]
    run = _Run(_SOMA, path, None, points=_points(path))
    if len(run.points) == 1:
        raise InvalidModelError("the soma's samples all lie at one point (length 0)",
                                source=f"{source}:{root.line}", field="x y z",
                                allowed="one soma sample, or soma samples at distinct points")
    return run


def _is_three_point(root: _Sample, sides: list[_Sample], children: dict[int, list[_Sample]],
                    soma_samples: int) -> bool:
    """NeuroMorpho's three-point soma, recognised as NEURON's Import3d does."""
    if soma_samples != 3 or len(sides) != 2:
        return False
    if any(children[side.id] or side.radius != root.radius for side in sides):
        return False
    distances = sum(math.dist(side.position, root.position) for side in sides)
    return abs(distances / (2 * root.radius) - 1) < _THREE_POINT_TOLERANCE


def _neurite_runs(root: _Sample, by_id: dict[int, _Sample],
                  children: dict[int, list[_Sample]], soma: _Run | None) -> list[_Run]:
    """The unbranched runs of non-soma samples, parents before children."""
    runs: list[_Run] = []
    run_ending_at: dict[int, _Run] = {}
    queue = deque([root])
    order: list[_Sample] = []
    while queue:  # breadth first: every run's parent run is built before it
        sample = queue.popleft()
        order.append(sample)
        queue.extend(children[sample.id])
    for sample in order:
        if sample.type == _SOMA:
            continue
        parent = by_id.get(sample.parent)
        if (parent is not None and parent.type == sample.type
                and len(children[parent.id]) == 1):
            continue  # continues its parent's run
        own = [sample]
        while len(children[own[-1].id]) == 1 and children[own[-1].id][0].type == sample.type:
            own.append(children[own[-1].id][0])
        if parent is None:
            run = _Run(sample.type, own, None, points=_points(own))
        elif parent.type == _SOMA:
            assert soma is not None
            run = _Run(sample.type, own, soma, points=_points(own), attach=(soma, 1.0))
        else:
            parent_run = run_ending_at[parent.id]
            run = _Run(sample.type, own, parent_run, points=_points([parent, *own]),
                       attach=(parent_run, 1.0))
        if run.parent is not None:
            run.parent.children.append(run)
        run_ending_at[own[-1].id] = run
        runs.append(run)
    return runs


def _points(samples: list[_Sample]) -> list[tuple[float, float]]:
    """(distance from the first sample in um, radius in um), coincident samples merged."""
    points = [(0.0, samples[0].radius)]
    distance = 0.0
    for previous, sample in zip(samples, samples[1:]):
        step = math.dist(previous.position, sample.position)
        if step == 0.0:
            points[-1] = (points[-1][0], sample.radius)
        else:
            distance += step
            points.append((distance, sample.radius))
    return points


def _collapse_if_point(run: _Run, source: str) -> None:
    """Turn a run of length 0 with children into a point; without children it is an error."""
    if len(run.points) > 1:
        return
    if not run.children:
        last = run.samples[-1]
        where = ("hangs from the soma and a neurite starts at its own first sample"
                 if run.parent is not None and run.parent.type == _SOMA and len(run.samples) == 1
                 else "lies at one point with the samples before it")
        raise InvalidModelError(
            f"sample {last.id} ends a section of length 0: it {where}",
            source=f"{source}:{last.line}", field="x y z",
            allowed="sections of positive length (two samples at distinct points at least)")
    run.collapsed = True
    if run.attach is None:  # a root that is a point: its first child becomes the root
        run.replacement = min(run.children, key=lambda child: child.first_line)
        run.replacement.attach = None


def _resolve(target: _Run, x: float) -> tuple[_Run, float]:
    """Where an attachment to ``target`` at ``x`` lands once point runs are gone."""
    while target.collapsed:
        if target.attach is None:
            assert target.replacement is not None
            target, x = target.replacement, 0.0
        else:
            target, x = target.attach
    return target, x


def _sections(soma: _Run | None, runs: list[_Run]) -> list[dict[str, Any]]:
    kept = [run for run in runs if not run.collapsed]
    counters: dict[str, int] = {}
    for run in sorted(kept, key=lambda run: run.first_line):
        prefix = SWC_TYPE_NAMES.get(run.type, f"custom{run.type}")
        counters[prefix] = counters.get(prefix, 0) + 1
        run.name = f"{prefix}_{counters[prefix]}"
    tree: dict[int, list[tuple[_Run, float]]] = {}
    roots = [] if soma is None else [soma]
    if soma is not None:
        soma.name = "soma"
    for run in kept:
        if run.attach is None:
            roots.append(run)
            continue
        target, x = _resolve(*run.attach)
        tree.setdefault(id(target), []).append((run, x))
    assert len(roots) == 1, "one root by construction"
    sections: list[dict[str, Any]] = []
    stack: list[tuple[_Run, _Run | None, float]] = [(roots[0], None, 1.0)]
    while stack:  # depth first, children in file order
        run, parent, x = stack.pop()
        section: dict[str, Any] = {"name": run.name}
        if parent is not None:
            section["parent"] = parent.name
            section["parent_x"] = x
        section["length_um"] = run.points[-1][0]
        section.update(_radius_fields(run.points))
        sections.append(section)
        below = sorted(tree.get(id(run), []), key=lambda item: item[0].first_line)
        stack.extend((child, run, child_x) for child, child_x in reversed(below))
    return sections


def _radius_fields(points: list[tuple[float, float]]) -> dict[str, Any]:
    """``radius_um`` if uniform, start/end if linear in distance, else ``profile_um``."""
    length, first, last = points[-1][0], points[0][1], points[-1][1]
    if all(math.isclose(radius, first, rel_tol=1e-9) for _, radius in points):
        return {"radius_um": first}
    if all(math.isclose(radius, first + (last - first) * distance / length, rel_tol=1e-9)
           for distance, radius in points):
        return {"radius_start_um": first, "radius_end_um": last}
    return {"profile_um": [[distance, radius] for distance, radius in points]}
