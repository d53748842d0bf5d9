"""The morphology figure: each cell as a dendrogram with its probes, junction sites and clamps.

The geometry is read back from the matplotlib artists (no pixels): every section is a
horizontal segment whose x-extent is its length and which starts where it attaches (path
distance from the root), markers sit at the sites' path distances, and the report pages
carry the figure exactly when a cell has sections.  Reports come from synthetic sources
(tests/report_fixtures.py), so no simulator has to support trees.
"""

from __future__ import annotations

import base64
import datetime

import numpy as np
import pytest
from report_fixtures import handmade_outcome, png_size, synthetic_check

from crosssim.builtin import builtin_model
from crosssim.model import model_from_dict
from crosssim.report import write_report
from crosssim.report.figures import MAX_MORPHOLOGY_CELLS, dendrogram_layout, plot_morphology

NOW = datetime.datetime(2031, 4, 5, 6, 7, 8, tzinfo=datetime.timezone.utc)


def _panels(figure) -> list:
    return [axes for axes in figure.axes if axes.get_visible()]


def _artist(axes, gid: str):
    found = [a for a in axes.get_children() if a.get_gid() == gid]
    assert len(found) <= 1, f"{len(found)} artists with gid {gid!r}"
    return found[0] if found else None


def _branches(axes) -> list[tuple[float, float, float]]:
    """(start_um, end_um, row) of each drawn section, in tree order."""
    segments = _artist(axes, "branches").get_segments()
    rows = []
    for segment in segments:
        (x0, y0), (x1, y1) = segment
        assert y0 == y1, "a section is drawn horizontally"
        rows.append((float(x0), float(x1), float(y0)))
    return rows


def _marker_x(axes, gid: str) -> list[float]:
    artist = _artist(axes, gid)
    return [] if artist is None else [float(x) for x in artist.get_xdata()]


def _legend_labels(figure) -> list[str]:
    (legend,) = figure.legends
    return [text.get_text() for text in legend.get_texts()]


# ball_and_stick ------------------------------------------------------------------------------


def test_ball_and_stick_branches_have_the_section_lengths_and_attach_end_to_end():
    model = builtin_model("ball_and_stick")
    figure = plot_morphology(model)
    panels = _panels(figure)
    assert [axes.get_title() for axes in panels] == ["cell a (2 sections)",
                                                    "cell b (2 sections)"]
    for axes in panels:
        (soma_start, soma_end, soma_row), (dend_start, dend_end, dend_row) = _branches(axes)
        assert (soma_start, soma_end - soma_start) == (0.0, 20.0)
        assert (dend_start, dend_end - dend_start) == (20.0, 200.0)  # at the soma's x = 1
        assert soma_row == dend_row  # an unbranched continuation stays on one line
        soma_width, dend_width = _artist(axes, "branches").get_linewidths()
        assert soma_width > dend_width  # radius 10 um against 1 um
    assert "path distance from the root (um)" in panels[0].get_xlabel()


def test_ball_and_stick_markers_sit_at_the_sites_path_distances():
    figure = plot_morphology(builtin_model("ball_and_stick"))
    cell_a, cell_b = _panels(figure)
    # probes at the soma's middle (10 um) and the dendrite tip (20 + 200 um)
    assert _marker_x(cell_a, "probes") == [10.0, 220.0]
    assert _marker_x(cell_b, "probes") == [10.0, 220.0]
    assert _marker_x(cell_a, "junctions") == [220.0] == _marker_x(cell_b, "junctions")
    assert _marker_x(cell_a, "clamps") == [10.0] and _marker_x(cell_b, "clamps") == []
    # the three kinds differ in shape, not only in colour
    shapes = {gid: _artist(cell_a, gid).get_marker() for gid in ("probes", "junctions",
                                                                  "clamps")}
    assert len(set(shapes.values())) == 3
    texts = {text.get_text() for text in cell_a.texts}
    assert {"a_soma", "a_tip", "to b", "0.05 nA"} <= texts
    assert _legend_labels(figure) == ["section (wider: larger radius)", "probe",
                                      "gap junction", "current clamp"]


# trees --------------------------------------------------------------------------------------


def test_binary_tree_branches_start_at_their_parents_end_and_parents_sit_between_children():
    model = builtin_model("tree", {"n_cells": 3, "depth": 3, "section_length_um": 50.0})
    cell = model.cells[0]
    figure = plot_morphology(model, cells=["c0"])
    (axes,) = _panels(figure)
    drawn = _branches(axes)
    parents = cell.parents()
    assert len(drawn) == 15
    for (start, end, _), parent, section in zip(drawn, parents, cell.tree()):
        assert end - start == pytest.approx(section.length_um)
        if parent >= 0:
            assert start == pytest.approx(drawn[parent][1])  # attached at the parent's x = 1
            children = [drawn[k][2] for k, p in enumerate(parents) if p == parent]
            assert drawn[parent][2] == pytest.approx(np.mean(children))
    leaves = [row for i, (_, _, row) in enumerate(drawn) if i not in parents]
    assert sorted(leaves) == [0, 1, 2, 3, 4, 5, 6, 7]  # one row per leaf
    assert max(end for _, end, _ in drawn) == pytest.approx(200.0)
    # connectors are vertical, at the branch points
    connectors = _artist(axes, "connectors")
    xs, ys = connectors.get_xdata(), connectors.get_ydata()
    for k in range(0, len(xs), 3):
        assert xs[k] == xs[k + 1] and xs[k] in (50.0, 100.0, 150.0) and ys[k] != ys[k + 1]
    # probes: the root's middle and the last tip's end; junctions at both tips used
    assert _marker_x(axes, "probes") == [25.0, 200.0]
    assert sorted(_marker_x(axes, "junctions")) == [200.0, 200.0]
    assert dendrogram_layout(cell)[2] == [row for _, _, row in drawn]


def test_children_at_a_parents_start_get_rows_of_their_own():
    model = model_from_dict({
        "name": "bipolar", "simulation": {"t_stop_ms": 1.0, "dt_ms": 0.025},
        "discretization": {"cvs_per_section": 3},
        "cells": [{"name": "n", "cm_F_per_m2": 0.01, "ra_ohm_cm": 100.0,
                   "g_leak_S_per_cm2": 1e-4, "e_leak_mV": -65.0, "sections": [
                       {"name": "soma", "length_um": 20.0, "radius_um": 8.0},
                       {"name": "axon", "parent": "soma", "parent_x": 0.0,
                        "length_um": 300.0, "radius_start_um": 1.0, "radius_end_um": 0.5},
                       {"name": "dend", "parent": "soma", "length_um": 150.0,
                        "radius_um": 2.0}]}],
        "probes": [{"cell": "n", "section": "axon", "x": 0.5, "name": "mid_axon"}],
        "stimuli": [{"cell": "n", "section": "dend", "x": 1.0, "delay_ms": 0.0,
                     "duration_ms": 1.0, "amplitude_nA": 0.01}]})
    (axes,) = _panels(plot_morphology(model))
    (soma, axon, dend) = _branches(axes)
    assert axon[:2] == (0.0, 300.0)  # from the soma's x = 0 end
    assert dend[:2] == (20.0, 170.0)
    assert soma[2] == dend[2] != axon[2]  # the axon does not overlap the soma's line
    assert _marker_x(axes, "probes") == [150.0]
    assert _marker_x(axes, "clamps") == [170.0]
    assert _artist(axes, "junctions") is None


def test_big_networks_show_the_first_cells_with_a_note():
    model = builtin_model("tree", {"n_cells": 1000, "sections_per_cell": 20})
    figure = plot_morphology(model)
    panels = _panels(figure)
    assert len(panels) == MAX_MORPHOLOGY_CELLS
    assert [axes.get_title() for axes in panels][:2] == ["cell c000 (20 sections)",
                                                        "cell c001 (20 sections)"]
    assert f"first {MAX_MORPHOLOGY_CELLS} of 1000 cells" in figure.get_suptitle()
    assert "first" not in plot_morphology(builtin_model("tree")).get_suptitle()
    chosen = plot_morphology(model, cells=["c500", "c001"])
    assert [a.get_title() for a in _panels(chosen)] == ["cell c500 (20 sections)",
                                                       "cell c001 (20 sections)"]
    with pytest.raises(ValueError, match="unknown cell 'zz'; known: c000"):
        plot_morphology(model, cells=["zz"])


def test_one_cell_can_be_drawn_into_given_axes():
    from matplotlib.figure import Figure

    figure = Figure()
    axes = figure.add_subplot()
    assert plot_morphology(builtin_model("ball_and_stick"), cells=["b"], ax=axes) is figure
    assert axes.get_title() == "cell b (2 sections)"
    assert _marker_x(axes, "probes") == [10.0, 220.0] and _artist(axes, "clamps") is None
    assert axes.get_legend() is not None


def test_a_cable_is_drawn_as_one_branch():
    (axes, _) = _panels(plot_morphology(builtin_model("two_cells")))
    assert [(start, end) for start, end, _ in _branches(axes)] == [(0.0, 100.0)]
    assert _marker_x(axes, "probes") == [50.0] == _marker_x(axes, "junctions")


# reports ------------------------------------------------------------------------------------


def test_ball_and_stick_report_embeds_the_morphology(tmp_path, saved_figures):
    model = builtin_model("ball_and_stick")
    folder = write_report(handmade_outcome(model, probe="a_soma"), tmp_path, now=NOW)
    png = (folder / "morphology.png").read_bytes()
    assert png_size(png)[0] > 0
    page = (folder / "index.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="morphology">'):]
    section = section[:section.index("</section>")]
    assert "<h2>Morphology</h2>" in section
    assert "data:image/png;base64," + base64.b64encode(png).decode() in section
    assert 'href="morphology.png"' in page  # the caption and the list of files
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "![Morphology](morphology.png)" in markdown
    (figure,) = [f for f in saved_figures if "morphology" in f.get_suptitle()]
    assert _marker_x(_panels(figure)[0], "probes") == [10.0, 220.0]


def test_cable_only_reports_stay_without_morphology(tmp_path):
    folder = write_report(synthetic_check(builtin_model("two_cells")), tmp_path, now=NOW)
    assert not (folder / "morphology.png").exists()
    assert 'id="morphology"' not in (folder / "index.html").read_text(encoding="utf-8")
    assert "Morphology" not in (folder / "report.md").read_text(encoding="utf-8")
