"""The run plot (issue 15, item 6): the legend outside the traces, equal equilibria as one
labelled line, and no resting equilibrium drawn while a clamp is still on."""

from __future__ import annotations

import numpy as np
from conftest import requires_arbor

from crosssim import cli
from crosssim.builtin import builtin_model
from crosssim.model import apply_overrides, dump_model
from crosssim.report import figures
from crosssim.report.figures import equilibrium_groups, traces_figure
from crosssim.report.raster import render
from crosssim.result import RunResult


def test_equal_equilibria_share_one_label_and_the_legend_sits_outside():
    model = builtin_model("chain", {"n_cells": 5, "e_leak_alt_mV": -100.0})
    times = model.simulation.sample_times_ms()
    labels = [probe.label for probe in model.effective_probes()]
    result = RunResult("arbor", labels, times, np.full((len(labels), times.size), -100.0))
    equilibria = {cell.name: -100.0 for cell in model.cells}
    assert equilibrium_groups(equilibria, set(equilibria)) == [
        (-100.0, ["c0", "c1", "c2", "c3", "c4"])]
    _, layout = render(traces_figure(model, [result], equilibria=equilibria))
    drawn = [text for text, _ in layout.texts if "equilibrium" in text]
    assert drawn == ["c0, c1, c2 +2 more: lumped equilibrium -100.0000 mV"]
    assert layout.legend is not None
    assert layout.legend[0] > layout.axes[2]  # right of the axes, not over the first decay


@requires_arbor
def test_run_draws_no_resting_equilibrium_while_a_clamp_is_on(tmp_path, monkeypatch):
    drawn = []
    draw = figures.draw_traces
    monkeypatch.setattr(figures, "draw_traces",
                        lambda traces, path, **options: (drawn.append(traces),
                                                         draw(traces, path, **options))[1])
    model = apply_overrides(builtin_model("two_cells"), [
        'stimuli=[{cell = "a", x = 0.0, delay_ms = 1.0, duration_ms = 10.0, '
        'amplitude_nA = 0.05}]'])
    path = tmp_path / "clamped.toml"
    dump_model(model, path)
    assert cli.main(["run", str(path), "--backend", "arbor", "--no-analytic", "--quiet",
                     "--out", str(tmp_path / "out")]) == 0
    (traces,) = drawn
    assert traces.equilibria == []
    assert "no lumped equilibrium drawn: a clamp is on at t_stop" in traces.title
    _, layout = render(traces)
    assert any("no lumped equilibrium drawn" in text for text, _ in layout.texts)
    assert (tmp_path / "out" / "traces.png").is_file()
