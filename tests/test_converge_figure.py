"""The standalone ``converge`` figure is the report's (issue 15, item 11): the study's own
orders, "(floor)" on a floored panel, and a tick at every level run (dt 0.04 included)."""

from __future__ import annotations

from conftest import requires_arbor

from crosssim import cli


@requires_arbor
def test_converge_figure_marks_floors_and_ticks_every_level(tmp_path, saved_figures,
                                                            cache_dir, capsys):
    seen = saved_figures
    assert cli.main(["converge", "--backend", "arbor", "--dt", "0.04,0.02,0.01",
                     "--cvs", "1,3,9", "--quiet", "--workers", "1",
                     "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    dt_axes, space_axes = seen[0].axes[:2]
    dt_ticks = [float(t) for t in dt_axes.get_xticks()]
    assert dt_ticks == [0.01, 0.02, 0.04]
    legend = [t.get_text() for t in space_axes.get_legend().get_texts()]
    # 1 CV per cell at the coarsest level: the space fit of the seed is a floor (0.47)
    assert "(floor)" in text and all("(floor)" in entry for entry in legend), (legend, text)
