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


class _OnlyHere:
    """A class the child cannot import (this test module is not on its path)."""

    def __repr__(self) -> str:
        return "only here"


def test_a_call_the_child_cannot_read_runs_here_and_the_child_stays():
    with spawn_figures(()) as figures:
        assert figures.submit("builtins:repr", _OnlyHere()).result() == "only here"
        assert figures.in_child
        assert figures.submit("math:hypot", 20.0, 21.0).result() == 29.0


def test_busy_while_the_child_owes_a_reply():
    assert not Figures(None).busy()
    with spawn_figures(()) as figures:
        assert not figures.busy()
        release = figures.submit("time:sleep", 0.5)
        assert figures.busy()
        release.result()
        assert not figures.busy()


def test_a_large_call_does_not_wait_for_the_child_to_finish_importing(tmp_path, monkeypatch):
    """The child reads its calls while it imports: a call larger than a pipe holds is sent
    at once (before, the parent's write waited for matplotlib's import)."""
    import threading

    flag = tmp_path / "go"
    (tmp_path / "held_import.py").write_text(
        "import os, time\n"
        f"while not os.path.exists({str(flag)!r}):\n"
        "    time.sleep(0.01)\n", encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with spawn_figures(("held_import",)) as figures:
        payload = b"x" * (8 << 20)  # 8 MiB; a pipe holds 64 KiB
        sent = threading.Event()
        pending = []
        sender = threading.Thread(
            target=lambda: (pending.append(figures.submit("builtins:len", payload)),
                            sent.set()), daemon=True)
        sender.start()
        assert sent.wait(60), "the call waited for the child's imports"
        assert figures.in_child and figures.busy()  # still importing
        flag.write_text("", encoding="utf-8")
        assert pending[0].result() == len(payload)


@pytest.mark.skipif(not __import__("importlib").util.find_spec("arbor"),
                    reason="arbor is not installed")
def test_a_report_drawn_in_both_processes_is_the_report_drawn_here(tmp_path):
    """write_report with a figure process: the child draws whenever it is free, this
    process the rest; every file is the file the single-process report writes."""
    import datetime

    from crosssim.check import check
    from crosssim.report import write_report
    from crosssim.report.figure_process import REPORT_IMPORTS

    outcome = check(builtin_model("two_cells"), backends=["arbor"],
                    references=["analytic", "lumped", "discrete", "semidiscrete"])
    now = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)
    with spawn_figures(REPORT_IMPORTS) as figures:
        both = write_report(outcome, tmp_path / "both", now=now, figures=figures)
        assert figures._submitted and figures.in_child
    alone = write_report(outcome, tmp_path / "alone", now=now, figures=Figures(None))
    names = sorted(path.name for path in both.iterdir())
    assert {"traces.png", "deviation.png", "decomposition.png"} <= set(names)
    assert names == sorted(path.name for path in alone.iterdir())
    for name in names:
        assert (both / name).read_bytes() == (alone / name).read_bytes(), name
