"""The sweep heatmap marks FAIL only where the quantity it shows fails, and never prints a
failing ratio as 1 (issue 15, item 4)."""

from __future__ import annotations

from report_fixtures import synthetic_check

from crosssim.builtin import builtin_model
from crosssim.model import apply_overrides
from crosssim.report.sweep import cell_number, plot_sweep_heatmap
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


def _texts(result: SweepResult, metric: str, tmp_path, monkeypatch) -> list[str]:
    import crosssim.report.figures as figures

    seen: list[str] = []
    original = figures._save_png

    def keep(figure, path, dpi):
        seen.extend(text.get_text() for axes in figure.axes for text in axes.texts)
        seen.append(figure.axes[0].get_title())
        return original(figure, path, dpi)

    monkeypatch.setattr(figures, "_save_png", keep)
    plot_sweep_heatmap(result, tmp_path / f"{metric}.png", metric=metric)
    return seen


def test_a_simulator_pair_cell_is_not_marked_fail_for_an_analytic_failure(tmp_path,
                                                                            monkeypatch):
    result = _sweep(analytic_abs_mV=1e-4)  # every point fails against the exact solution
    assert {point.verdict for point in result.points} == {"fail"}
    backends = _texts(result, "worst_backends_mV", tmp_path, monkeypatch)
    cells = backends[:-1]  # the last text is the title
    assert len(cells) == 2 and not any("FAIL" in text for text in cells), backends
    assert all("fails analytic" in text for text in cells)
    assert "fails another gate" in backends[-1]
    analytic = _texts(result, "worst_analytic_mV", tmp_path, monkeypatch)
    assert sum("FAIL" in text for text in analytic[:-1]) == 2


def test_a_failing_ratio_never_reads_as_one():
    assert cell_number(1.018, "worst_ratio", True) == "1.02"
    assert cell_number(1.0004, "worst_ratio", True) == "1.0004"
    assert cell_number(0.5261, "worst_ratio", False) == "0.526"
    assert cell_number(6.7e-13, "worst_backends_mV", False) == "6.7e-13"


def test_the_title_of_a_narrow_map_is_wrapped_to_its_width(tmp_path, monkeypatch):
    """Two points make a 4.8-inch map, 3.2 inches of axes: its title lines (the dashed
    outline's explanation is 68 characters) are wrapped instead of cut at both sides."""
    result = _sweep(analytic_abs_mV=1e-4)
    title = _texts(result, "worst_backends_mV", tmp_path, monkeypatch)[-1]
    lines = title.split("\n")
    assert len(lines) >= 3 and max(len(line) for line in lines) <= int(3.2 / 0.075)
    assert " ".join(lines).count("fails another gate") == 1
