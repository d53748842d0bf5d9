"""The sweep heatmap marks FAIL only where the quantity it shows fails, and never prints a
failing ratio as 1 (issue 15, item 4)."""

from __future__ import annotations

from report_fixtures import synthetic_check

from crosssim.builtin import builtin_model
from crosssim.model import apply_overrides
from crosssim.report.raster import render_heatmap
from crosssim.report.sweep import cell_number, heatmap_data, plot_sweep_heatmap
from crosssim.study.sweeps import GridDimension, SweepPoint, SweepResult


def _sweep(analytic_abs_mV: float) -> SweepResult:
    values = (0.005, 0.01)
    points = []
    for index, g in enumerate(values):
        model = apply_overrides(builtin_model("two_cells"), [f"gap_junctions.0.g_uS={g}"])
        points.append(SweepPoint(index, {"gap_junctions.0.g_uS": g},
                                 synthetic_check(model, analytic_abs_mV=analytic_abs_mV)))
    return SweepResult(builtin_model("two_cells"),
                       [GridDimension("gap_junctions.0.g_uS", values)],
                       ["arbor", "neuron", "analytic", "lumped"], points, computed=8,
                       cached=0, failed_runs=0, wall_time_s=0.0,
                       references=["analytic", "lumped"])


def _drawn(result: SweepResult, metric: str):
    """The heatmap of ``metric`` as drawn: its cells' texts, its title lines, its layout."""
    heatmap = heatmap_data(result, metric=metric)
    image, layout = render_heatmap(heatmap)
    cells = [text for row in heatmap.texts for text in row if text]
    placed = [text for text, _ in layout.texts]
    for text in cells:  # every line of every cell's text is in the picture
        assert all(line in placed for line in text.split("\n")), text
    return cells, heatmap, image, layout


def test_a_simulator_pair_cell_is_not_marked_fail_for_an_analytic_failure(tmp_path):
    result = _sweep(analytic_abs_mV=1e-4)  # every point fails against the exact solution
    assert {point.verdict for point in result.points} == {"fail"}
    cells, heatmap, _, _ = _drawn(result, "worst_backends_mV")
    assert len(cells) == 2 and not any("FAIL" in text for text in cells), cells
    assert all("fails analytic" in text for text in cells)
    assert "fails another gate" in heatmap.title
    analytic, _, _, _ = _drawn(result, "worst_analytic_mV")
    assert sum("FAIL" in text for text in analytic) == 2
    path = plot_sweep_heatmap(result, tmp_path / "map.png", metric="worst_analytic_mV")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_ratio_never_reads_as_one():
    assert cell_number(1.018, "worst_ratio", True) == "1.02"
    assert cell_number(1.0004, "worst_ratio", True) == "1.0004"
    assert cell_number(0.5261, "worst_ratio", False) == "0.526"
    assert cell_number(6.7e-13, "worst_backends_mV", False) == "6.7e-13"


def test_the_title_of_a_narrow_map_is_wrapped_to_its_width():
    """Two points make a 4.8-inch map: its title lines (the dashed outline's explanation is
    68 characters) are wrapped to the axes' width instead of cut at both sides."""
    _, heatmap, image, layout = _drawn(_sweep(analytic_abs_mV=1e-4), "worst_backends_mV")
    words = heatmap.title.split()
    lines = [(text, box) for text, box in layout.texts
             if text and set(text.split()) <= set(words) and box[3] <= layout.axes[1]]
    assert len(lines) >= 3
    assert " ".join(text for text, _ in lines).split() == words  # every word, in order
    for _, (left, _, right, _) in lines:
        assert left >= 0 and right <= image.width
