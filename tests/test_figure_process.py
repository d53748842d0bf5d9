"""Figures drawn in a child process (crosssim.report.figure_process): the child's PNG is
the very file this process draws, its exceptions come back, and a child that cannot deliver
leaves the work to this process."""

from __future__ import annotations

import math
import os
import signal

import pytest

from crosssim.analytic import lumped
from crosssim.builtin import builtin_model
from crosssim.report.figure_process import Figures, spawn_figures, start_figures
from crosssim.report.figures import plot_traces, traces_figure


def test_the_child_draws_the_same_png_as_this_process(tmp_path):
    model = builtin_model("two_cells")
    results = [lumped(model)]
    here = plot_traces(model, results, tmp_path / "here.png", equilibria={"a": -80.0},
                       note="a note")
    with spawn_figures() as figures:
        assert figures.in_child
        there = figures.submit("crosssim.report.figures:draw_traces",
                               traces_figure(model, results, equilibria={"a": -80.0},
                                             note="a note"), tmp_path / "there.png").result()
    assert there == tmp_path / "there.png"
    assert there.read_bytes() == here.read_bytes()


def test_calls_come_back_in_order_and_exceptions_are_raised_here():
    with spawn_figures(()) as figures:
        first = figures.submit("math:hypot", 3.0, 4.0)
        failing = figures.submit("math:sqrt", -1.0)
        last = figures.submit("math:pow", 2.0, 10)
        assert last.result() == 1024.0  # collecting the last collects the earlier ones
        assert first.result() == 5.0
        with pytest.raises(ValueError, match="math domain error"):
            failing.result()


def test_a_child_that_dies_leaves_its_calls_to_this_process():
    figures = spawn_figures(())
    process = figures._process
    pending = figures.submit("math:hypot", 5.0, 12.0)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    later = figures.submit("math:factorial", 5)  # the pipe is broken: runs here
    assert pending.result() == 13.0
    assert later.result() == 120
    assert not figures.in_child
    figures.close()


def test_an_argument_that_does_not_pickle_runs_here():
    with spawn_figures(()) as figures:
        assert figures.submit("builtins:len", [lambda: 0, 1]).result() == 2
        assert not figures.in_child


def test_without_a_child_every_call_runs_at_once():
    figures = Figures(None)
    assert figures.submit("math:gcd", 12, 18).result() == 6
    with pytest.raises(ValueError):
        figures.submit("math:log", -1.0).result()
    figures.close()


def test_a_process_that_has_matplotlib_draws_itself(monkeypatch):
    import matplotlib  # noqa: F401 - imported: the child would save nothing

    assert not start_figures().in_child
    monkeypatch.setenv("CROSSSIM_FIGURE_PROCESS", "0")
    assert not start_figures().in_child
    assert math.isclose(start_figures().submit("math:sqrt", 2.0).result(), math.sqrt(2.0))


def test_drawing_needs_neither_the_model_layer_nor_the_comparison():
    """The figure process imports what drawing needs: numpy and matplotlib (its figures
    arrive as plain data), so it is ready before the command has its results."""
    import subprocess
    import sys

    code = ("import sys, crosssim.report.figures, matplotlib.figure\n"
            "print(sorted(m for m in ('pydantic', 'crosssim.model', 'crosssim.check', "
            "'crosssim.compare', 'pandas', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_a_prestarted_figure_process_is_taken_once_and_an_unused_one_stopped(monkeypatch):
    from crosssim.report import figure_process

    monkeypatch.setattr(figure_process, "_use_child", lambda: True)
    figure_process.prestart(())
    spare = figure_process._SPARE[0]
    figure_process.prestart(())  # one at a time
    assert figure_process._SPARE == [spare]
    with figure_process.start_figures() as figures:
        assert figures is spare and figures.in_child
        assert figures.submit("math:hypot", 8.0, 15.0).result() == 17.0
    assert not figure_process._SPARE
    figure_process.prestart(())
    process = figure_process._SPARE[0]._process
    figure_process._discard_spare()  # what runs at exit
    assert process.poll() is not None and not figure_process._SPARE
