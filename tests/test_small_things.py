"""Small things a new user trips over (issue 15, item 13): plurals, bare ``cache``, unknown
options named by their subcommand, did-you-mean for a name without its unit, the README's
cache lines, ``load_model`` of a built-in name, CSV times on the decimal grid, and one line
when a sweep is interrupted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_arbor
from report_fixtures import synthetic_check

from crosssim import cli
from crosssim.builtin import builtin_model
from crosssim.errors import InvalidModelError
from crosssim.model import apply_overrides, load_model
from crosssim.result import RunResult

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_counts_are_singular_when_there_is_one(capsys):
    from crosssim.report.html import render_html
    from crosssim.report.text import plural, render_table

    assert (plural(1, "cell"), plural(2, "cell"), plural(1, "gap junction")) == (
        "1 cell", "2 cells", "1 gap junction")
    outcome = synthetic_check(builtin_model("two_cells"))
    page = render_html(outcome, {}, figures=[], given_toml="", resolved_toml="", run_id="r",
                       files=[])
    assert "2 cells, 1 gap junction," in page and "1 gap junctions" not in page
    assert render_table(outcome).startswith("crosssim check: two_cells (2 cells,")


def test_bare_cache_is_cache_info_and_unknown_options_name_their_command(capsys, cache_dir):
    assert cli.main(["cache"]) == 0
    assert capsys.readouterr().out.startswith("results cache: ")
    assert cli.main(["check", "--bogus"]) == 2
    assert capsys.readouterr().err == "crosssim check: error: unrecognized arguments: --bogus\n"


def test_a_name_without_its_unit_gets_a_did_you_mean():
    model = builtin_model("two_cells")
    for setting, hint in (("dt=0.001", "did you mean 'simulation.dt_ms'?"),
                          ("simulation.dt=0.001", "did you mean 'simulation.dt_ms'?"),
                          ("cells.a.radius=2", "did you mean 'radius_um'?")):
        try:
            apply_overrides(model, [setting])
        except InvalidModelError as exc:
            assert hint in str(exc), str(exc)
        else:  # pragma: no cover
            raise AssertionError(f"{setting} was accepted")


def test_the_readme_shows_cache_as_two_commands_and_names_the_cache_folder():
    assert "cache info | crosssim cache clear" not in README
    assert re.search(r"^\| `crosssim cache", README, flags=re.M)
    assert "CROSSSIM_CACHE_DIR" in README


def test_load_model_accepts_a_built_in_name(tmp_path, monkeypatch):
    import crosssim

    monkeypatch.chdir(tmp_path)
    assert crosssim.load_model("two_cells") == builtin_model("two_cells")
    assert len(crosssim.load_model("ring").cells) == len(builtin_model("ring").cells)
    # crosssim.model.load_model reads files only: a name that is no file is not found
    with pytest.raises(InvalidModelError, match="two_cells: file not found"):
        load_model("two_cells")


def test_csv_times_are_the_grid_values(tmp_path):
    from crosssim.report.artifacts import write_traces

    times = builtin_model("two_cells").simulation.sample_times_ms()
    assert float(times[35]) == 0.35000000000000003  # 35 * 0.01 in binary
    result = RunResult("arbor", ["p"], times, np.zeros((1, 501)))
    text = write_traces(tmp_path / "traces.csv", [result]).read_text()
    assert "arbor,p,0.35,0.0" in text and "0.35000000000000003" not in text
    assert all(len(line.split(",")[2]) <= 4 for line in text.splitlines()[1:])


def test_an_interrupted_sweep_says_so_once(capsys, cache_dir, monkeypatch, tmp_path):
    import crosssim.study.sweeps as sweeps

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeps, "sweep", interrupted)
    code = cli.main(["sweep", "--grid", "gap_junctions.0.g_uS=0.01,0.02", "--quiet",
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 130
    assert err.count("interrupted") == 1, err
    assert "kept in the cache" in err


@requires_arbor
def test_run_without_a_plot_removes_the_earlier_runs_plot(tmp_path, capsys):
    """run --no-plot rewrote traces.csv and left the previous two-backend traces.png."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "traces.png").write_bytes(b"\x89PNG earlier run")
    assert cli.main(["run", "--backend", "arbor", "--no-plot", "--no-analytic", "--quiet",
                     "--out", str(out)]) == 0
    assert not (out / "traces.png").exists()
    assert f"removed {out / 'traces.png'}" in capsys.readouterr().out
    assert (out / "traces.csv").is_file()


def test_cache_lists_and_clears_neuron_builds_and_arbor_catalogues(capsys, cache_dir,
                                                                   monkeypatch, tmp_path):
    base = tmp_path / "mechanism-cache"
    for name in ("mod-0123", "arbor-cat-4567"):
        (base / name).mkdir(parents=True)
        (base / name / "lib.so").write_bytes(b"x" * 1000)
    monkeypatch.setattr("crosssim.provenance.cache_base", lambda: base)
    assert cli.main(["cache", "info", "--format", "json"]) == 0
    mechanisms = json.loads(capsys.readouterr().out)["mechanisms"]
    assert mechanisms["builds"] == ["arbor-cat-4567", "mod-0123"]
    assert mechanisms["bytes"] == 2000
    assert cli.main(["cache", "clear", "--mechanisms"]) == 0
    assert "removed 2 mechanism build(s)" in capsys.readouterr().out
    assert not any(base.iterdir())
