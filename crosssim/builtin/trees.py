"""Built-in models with branched cells: ``ball_and_stick`` and the ``tree`` generator.

Cells are passive with realistic membrane values (:data:`TREE_MEMBRANE`: 0.01 F/m^2,
100 ohm cm, 1e-4 S/cm^2, so tau = 10 ms).  Sites name their section; every section is cut
into the same odd number of CVs (``cvs_per_section``), so x = 0.5 is a CV centre.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crosssim.builtin import register
from crosssim.builtin.networks import _float, _int, check_size, probe_cells
from crosssim.errors import UsageError
from crosssim.model import Model, model_from_dict

#: Membrane and cable properties of every cell here (cell-wide, no section overrides).
TREE_MEMBRANE: dict[str, float] = {
    "cm_F_per_m2": 0.01,
    "ra_ohm_cm": 100.0,
    "g_leak_S_per_cm2": 1e-4,
}

#: The ball-and-stick geometry: a 20 x 10 um soma cylinder and a 200 x 1 um dendrite.
SOMA = {"name": "soma", "length_um": 20.0, "radius_um": 10.0}
DENDRITE = {"name": "dend", "parent": "soma", "parent_x": 1.0, "length_um": 200.0,
            "radius_um": 1.0}


def ball_and_stick() -> Model:
    """Two ball-and-stick cells (leak -70 / -60 mV), dendrite tips joined by one junction.

    Each cell is a soma (20 um long, radius 10 um) with a dendrite (200 um, radius 1 um)
    at its x = 1 end; one 0.005 uS junction joins the dendrite tips (x = 1 on each); a
    0.05 nA clamp on the soma of ``a`` from 2 to 12 ms; probes at both somata (x = 0.5)
    and both tips; 5 CVs per section, dt 0.025 ms, 20 ms.
    """
    cells = [{"name": name, **TREE_MEMBRANE, "e_leak_mV": e_leak,
              "sections": [dict(SOMA), dict(DENDRITE)]}
             for name, e_leak in (("a", -70.0), ("b", -60.0))]
    return model_from_dict(
        {
            "name": "ball_and_stick",
            "description": "two ball-and-stick cells with different leak potentials, "
                           "dendrite tips joined by one gap junction, a clamp on one soma",
            "simulation": {"t_stop_ms": 20.0, "dt_ms": 0.025},
            "discretization": {"cvs_per_section": 5},
            "cells": cells,
            "gap_junctions": [{"sites": [{"cell": "a", "section": "dend", "x": 1.0},
                                         {"cell": "b", "section": "dend", "x": 1.0}],
                               "g_uS": 0.005}],
            "probes": [{"cell": cell, "section": section, "x": x, "name": f"{cell}_{where}"}
                       for cell in ("a", "b")
                       for section, x, where in (("soma", 0.5, "soma"), ("dend", 1.0, "tip"))],
            "stimuli": [{"cell": "a", "section": "soma", "x": 0.5, "delay_ms": 2.0,
                         "duration_ms": 10.0, "amplitude_nA": 0.05}],
            # Against the exact tree solution these settings are off by at most 0.154 mV
            # (at the tips; space 0.094 mV, time stepping 0.060 mV: `crosssim check
            # ball_and_stick`).  The space error falls at first order only: the junction
            # sits at section ends, read at the last CV centre h/2 away (0.0055 mV still
            # at 81 CVs per section; tests/test_tree_studies.py); 0.2 mV gates it.
            "tolerance": {"backends_abs_mV": 1e-6, "analytic_abs_mV": 0.2},
        },
        source="<built-in ball_and_stick>",
    )


#: Largest sections per cell the generator builds (a typo like depth=40 must not hang).
MAX_SECTIONS_PER_CELL = 10_000

#: The generator's parameters besides ``n_cells``, with their defaults.
TREE_PARAMETERS: dict[str, Any] = {
    "depth": 3, "branching": 2, "sections_per_cell": 0, "section_length_um": 100.0,
    "root_radius_um": 2.0, "cvs_per_section": 5, "g_uS": 0.005, "e_leak_mV": -70.0,
    "e_leak_alt_mV": -60.0, "t_stop_ms": 10.0, "dt_ms": 0.025, "sample_dt_ms": None,
    "n_probed_cells": 4, "clamp_nA": 0.1}


def tree_size(depth: int, branching: int) -> int:
    """Sections of a full tree: 1 + b + b^2 + ... + b^depth (capped just past
    :data:`MAX_SECTIONS_PER_CELL`, so huge trees are never counted out)."""
    total, level = 0, 1
    for _ in range(depth + 1):
        total += level
        if total > MAX_SECTIONS_PER_CELL:
            return MAX_SECTIONS_PER_CELL + 1
        level *= branching
    return total


def tree_sections(n_sections: int, branching: int, length_um: float,
                  root_radius_um: float) -> list[dict[str, Any]]:
    """The first ``n_sections`` sections of a tree with ``branching`` children per section,
    breadth first (root first), as model dicts: the root is ``root``, its children ``d0``,
    ``d1``, ..., theirs ``d0_0``, ``d0_1``, ...; every section is ``length_um`` long and
    attaches at its parent's x = 1 end; a child's radius is its parent's times
    ``branching ** (-2/3)`` (Rall's 3/2 power rule: a full tree is equivalent to one
    cylinder)."""
    shrink = branching ** (-2.0 / 3.0)
    sections = [{"name": "root", "length_um": length_um, "radius_um": root_radius_um}]
    queue = 0
    while len(sections) < n_sections:
        parent = sections[queue]
        prefix = "d" if parent["name"] == "root" else f"{parent['name']}_"
        for k in range(branching):
            if len(sections) == n_sections:
                break
            sections.append({"name": f"{prefix}{k}", "parent": parent["name"],
                             "parent_x": 1.0, "length_um": length_um,
                             "radius_um": parent["radius_um"] * shrink})
        queue += 1
    return sections


def _tips(sections: list[dict[str, Any]]) -> list[str]:
    """Names of the sections nothing attaches to, in order."""
    parents = {section.get("parent") for section in sections}
    return [section["name"] for section in sections if section["name"] not in parents]


def _ring(n_cells: int) -> Iterator[tuple[int, int]]:
    """Pairs (i, i + 1) closed into a ring; two cells are joined once, one cell never."""
    if n_cells == 2:
        yield (0, 1)
    elif n_cells > 2:
        yield from ((i, (i + 1) % n_cells) for i in range(n_cells))


def tree(n_cells: int = 4, **params: Any) -> Model:
    """Cells with branched dendritic trees, joined tip to tip in a ring.

    Parameters: ``n_cells`` (4), ``depth`` (3: levels of branching below the root) and
    ``branching`` (2: children per section) give 1 + b + ... + b^depth sections per cell
    (depth 3, binary: 15); ``sections_per_cell`` (0: that full tree; N: the first N
    sections breadth first, as deep as needed, e.g. 20 with binary branching; not with
    ``depth``); ``section_length_um`` (100, every section), ``root_radius_um`` (2; each
    level thinner by Rall's 3/2 rule, radius x branching^(-2/3)); ``cvs_per_section`` (5);
    ``g_uS`` (0.005, every junction); ``e_leak_mV`` / ``e_leak_alt_mV`` (even / odd cells,
    -70 / -60); ``t_stop_ms`` (10), ``dt_ms`` (0.025), ``sample_dt_ms`` (dt);
    ``n_probed_cells`` (4 cells spread from the first to the last, each probed at its
    root's middle, ``<cell>_root``, and at its last tip's end, ``<cell>_tip``);
    ``clamp_nA`` (0.1, on the root's middle of cell 0 from t_stop/10 for t_stop/2; 0:
    none).  Junctions: the end (x = 1) of the last tip of cell i joins the end of the
    first tip of cell i + 1, and the last cell joins cell 0 (two cells: one junction).
    """
    unknown = set(params) - set(TREE_PARAMETERS)
    if unknown:  # builtin_model checks names first; this guards direct calls
        raise UsageError(f"unknown --param {', '.join(sorted(unknown))}; allowed: n_cells, "
                         + ", ".join(sorted(TREE_PARAMETERS)))
    given = {**TREE_PARAMETERS, **params}
    n = _int("n_cells", n_cells, 1)
    depth = _int("depth", given["depth"], 0)
    branching = _int("branching", given["branching"], 1)
    wanted = _int("sections_per_cell", given["sections_per_cell"], 0)
    if wanted and "depth" in params:
        raise UsageError(f"--param depth={depth} and sections_per_cell={wanted}: allowed: "
                         "one of them (sections_per_cell fills the tree as deep as needed)")
    n_sections = wanted or tree_size(depth, branching)
    if n_sections > MAX_SECTIONS_PER_CELL:
        what = (f"sections_per_cell={wanted}" if wanted
                else f"depth={depth} with branching={branching}")
        raise UsageError(f"--param {what}: more than {MAX_SECTIONS_PER_CELL} sections per "
                         f"cell; allowed: at most {MAX_SECTIONS_PER_CELL}")
    length = _float("section_length_um", given["section_length_um"], positive=True)
    radius = _float("root_radius_um", given["root_radius_um"], positive=True)
    cvs = _int("cvs_per_section", given["cvs_per_section"], 1)
    g_uS = _float("g_uS", given["g_uS"])
    if g_uS < 0:
        raise UsageError(f"--param g_uS={given['g_uS']!r}: allowed: a number >= 0")
    e_leak = _float("e_leak_mV", given["e_leak_mV"])
    e_leak_alt = _float("e_leak_alt_mV", given["e_leak_alt_mV"])
    t_stop = _float("t_stop_ms", given["t_stop_ms"], positive=True)
    dt = _float("dt_ms", given["dt_ms"], positive=True)
    sample = given["sample_dt_ms"]
    sample = None if sample is None else _float("sample_dt_ms", sample, positive=True)
    n_probed = min(_int("n_probed_cells", given["n_probed_cells"], 1), n)
    clamp_nA = _float("clamp_nA", given["clamp_nA"])
    check_size(n, n_sections * cvs, 2 * n_probed, int(t_stop / (sample or dt)) + 1,
               what="built-in tree")

    sections = tree_sections(n_sections, branching, length, radius)
    tips = _tips(sections)
    width = len(str(n - 1))
    names = [f"c{i:0{width}d}" for i in range(n)]
    cells = [{"name": names[i], **TREE_MEMBRANE,
              "e_leak_mV": e_leak if i % 2 == 0 else e_leak_alt, "sections": sections}
             for i in range(n)]
    junctions = [{"sites": [{"cell": names[i], "section": tips[-1], "x": 1.0},
                            {"cell": names[j], "section": tips[0], "x": 1.0}],
                  "g_uS": g_uS}
                 for i, j in _ring(n)]
    probes = []
    for i in probe_cells(n, n_probed):
        probes += [{"cell": names[i], "section": "root", "x": 0.5, "name": f"{names[i]}_root"},
                   {"cell": names[i], "section": tips[-1], "x": 1.0,
                    "name": f"{names[i]}_tip"}]
    stimuli = []
    if clamp_nA:
        stimuli = [{"cell": names[0], "section": "root", "x": 0.5, "delay_ms": t_stop / 10,
                    "duration_ms": t_stop / 2, "amplitude_nA": clamp_nA}]
    simulation: dict[str, Any] = {"t_stop_ms": t_stop, "dt_ms": dt}
    if sample is not None:
        simulation["sample_dt_ms"] = sample
    return model_from_dict(
        {"name": f"tree_{n}x{n_sections}",
         "description": f"{n} cells of {n_sections} sections ({branching} children per "
                        "section) joined tip to tip in a ring",
         "simulation": simulation, "discretization": {"cvs_per_section": cvs},
         "cells": cells, "gap_junctions": junctions, "probes": probes, "stimuli": stimuli,
         # the defaults are off by at most 0.16 mV from the exact tree solution (at the
         # tips, mostly space: tip-to-tip junctions converge at first order in space),
         # 0.34 mV with n_cells=1000 and sections_per_cell=20; other parameters move
         # that, so the gate is the networks' tolerant one
         "tolerance": {"backends_abs_mV": 1e-6, "analytic_abs_mV": 0.5}},
        source="<built-in tree>")


register("ball_and_stick", ball_and_stick)
register("tree", tree, TREE_PARAMETERS)
