"""``crosssim models``: the generator parameters are listed, a wrong parameter names only
those the model takes, and ``--resolved`` works for one's own files and never silently."""

from __future__ import annotations

import pytest

from crosssim import cli
from crosssim.builtin import builtin_model, builtin_parameters
from crosssim.errors import UsageError
from crosssim.model import dump_model, loads_model


def test_the_list_shows_every_generators_parameters(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    ring = out[out.index("ring "):out.index("two_cells ")]
    assert "parameters: n_cells=10, cvs_per_cell=11" in ring and "rows" not in ring
    assert "rows=4, cols=4" in out[out.index("grid "):out.index("ring ")]
    assert "two_cells" in out and "no parameters" in out


def test_a_wrong_parameter_lists_only_what_that_model_takes(capsys):
    assert cli.main(["models", "ring", "--param", "rows=2"]) == 2
    err = capsys.readouterr().err
    assert "unknown --param rows" in err and "n_cells" in err
    assert "rows" not in err.split("allowed:")[1] and "cols" not in err
    assert cli.main(["models", "two_cells", "--param", "n_cells=3"]) == 2
    err = capsys.readouterr().err
    assert "takes no --param" in err and "unexpected keyword" not in err
    assert set(builtin_parameters("grid")) >= {"rows", "cols", "g_uS"}
    with pytest.raises(UsageError, match="unknown --param"):
        builtin_model("chain", {"colour": 1})


def test_resolved_needs_a_name_and_takes_a_file(capsys, tmp_path):
    assert cli.main(["models", "--resolved"]) == 2
    assert "--resolved: give a built-in model NAME or a model FILE" in capsys.readouterr().err
    path = tmp_path / "mine.toml"
    dump_model(builtin_model("two_cells"), path)
    assert cli.main(["models", str(path), "--resolved"]) == 0
    text = capsys.readouterr().out
    assert "v_init_mV" in text  # a default written out
    resolved = builtin_model("two_cells").to_dict(resolved=True)
    assert loads_model(text).to_dict(resolved=True) == resolved
