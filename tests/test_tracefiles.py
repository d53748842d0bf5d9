"""Traces from files as sources (crosssim.tracefiles): long-form tables and descriptors.

The independent truth is crosssim's exact cable solution of the seed model, written out the
way other tools and published benchmarks ship data (seconds and volts, 7 significant digits,
one file per probe, a header and comments) and read back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crosssim.analytic import exact_cable
from crosssim.builtin import builtin_model
from crosssim.compare import AlignmentError, align, compare_results, infer_grid
from crosssim.errors import EXIT_USAGE, CrossSimError, TraceFileError
from crosssim.model import apply_overrides
from crosssim.result import RunResult, results_to_frame
from crosssim.tracefiles import load_trace_files, load_traces

DESCRIPTOR = """\
# Exact cable solution of two_cells, as a published benchmark would ship it
name = "rallpack"
kind = "reference"
time_unit = "s"
voltage_unit = "V"

[files]
a_gj = "ref/a_gj.txt"
b_gj = "ref/b_gj.txt"
"""


@pytest.fixture(scope="module")
def model():
    return builtin_model("two_cells", {})


@pytest.fixture(scope="module")
def exact(model) -> RunResult:
    return exact_cable(model)


def seven_digits(values: np.ndarray) -> np.ndarray:
    """What a file written with %.7g reads back as."""
    return np.array([float(f"{value:.7g}") for value in values])


def column_file_text(times_s: np.ndarray, volts: np.ndarray, probe: str) -> str:
    lines = [f"# {probe}: membrane voltage, exact cable solution", "# 7 significant digits",
             "time(s)   voltage(V)"]
    lines += [f"{t:.7g}  {v:.7g}" for t, v in zip(times_s, volts)]
    return "\n".join(lines) + "\n"


def write_published_reference(folder: Path, result: RunResult,
                              descriptor: str = DESCRIPTOR) -> Path:
    """rallpack-style: ``rallpack.toml`` and one two-column file per probe in ref/."""
    (folder / "ref").mkdir(parents=True, exist_ok=True)
    for probe in result.probes:
        (folder / "ref" / f"{probe}.txt").write_text(column_file_text(
            result.times_ms / 1e3, result.trace(probe) / 1e3, probe))
    path = folder / "rallpack.toml"
    path.write_text(descriptor)
    return path


# --- the published-style reference --------------------------------------------------------


def test_published_two_file_reference_in_seconds_and_volts(tmp_path, model, exact):
    descriptor = write_published_reference(tmp_path, exact)
    (source,) = load_traces(descriptor, model=model)
    assert (source.name, source.kind, source.path) == ("rallpack", "reference", descriptor)
    assert source.result.backend == "rallpack"
    assert source.probes == ["a_gj", "b_gj"]
    assert source.notes == ()
    # times: 7-digit seconds recognised as the model grid and replaced by it exactly
    assert source.result.info["snapped_to_model_grid"] is True
    np.testing.assert_array_equal(source.result.times_ms, model.simulation.sample_times_ms())
    # voltages: the exact solution up to the 7-digit rounding of volts (5e-7 relative)
    np.testing.assert_allclose(source.result.values_mV, exact.values_mV, rtol=5.01e-7, atol=0)
    assert not np.array_equal(source.result.values_mV, exact.values_mV)  # it was rounded
    assert source.result.info["time_unit"] == "s"
    assert source.result.info["voltage_unit"] == "V"


def test_published_reference_compares_with_exact_at_the_rounding_level(tmp_path, model, exact):
    (source,) = load_traces(write_published_reference(tmp_path, exact), model=model)
    comparisons = compare_results(source.result, exact, kind="references")
    assert [c.probe for c in comparisons] == ["a_gj", "b_gj"]
    for comparison in comparisons:
        assert comparison.alignment == "exact"
        assert comparison.n_samples == model.simulation.n_samples
        assert 0 < comparison.max_rel_diff < 5.01e-7  # 7 significant digits
        assert comparison.max_abs_mV < 1e-4  # ~70 mV * 5e-7
        assert comparison.rms_rel_range < 1e-6


def test_seven_digit_times_align_by_index_even_without_the_model(tmp_path, exact):
    """compare.GRID_RTOL alone recognises the 7-digit grid of the 501-sample seed model."""
    (source,) = load_traces(write_published_reference(tmp_path, exact))
    assert "snapped_to_model_grid" not in source.result.info
    aligned = align(source.result, exact)
    assert aligned.method == "exact"
    assert aligned.times_ms.size == exact.times_ms.size


def test_many_seven_digit_times_are_snapped_to_the_model_grid(tmp_path, model):
    """10,241 samples with a step of 1/64 ms: 7-digit seconds drift up to 0.8 % of a step from
    the grid, beyond compare.GRID_RTOL; with the model the loader recognises its grid."""
    fine = apply_overrides(model, ["simulation.dt_ms=0.015625", "simulation.t_stop_ms=160"])
    grid = fine.simulation.sample_times_ms()
    times_s = seven_digits(grid / 1e3)
    with pytest.raises(AlignmentError, match="not on a uniform grid"):
        infer_grid(times_s * 1e3)
    volts = -0.07 + 0.01 * np.sin(grid / 10)
    (tmp_path / "a.txt").write_text(column_file_text(times_s, volts, "a_gj"))
    (tmp_path / "fine.toml").write_text(
        'time_unit = "s"\nvoltage_unit = "V"\n[files]\na_gj = "a.txt"\n')
    (source,) = load_traces(tmp_path / "fine.toml", model=fine)
    np.testing.assert_array_equal(source.result.times_ms, grid)
    assert 0 < source.result.info["largest_time_offset_ms"] < 0.01 * 0.015625
    on_grid = RunResult("sim", ["a_gj"], grid, np.zeros((1, grid.size)))
    aligned = align(source.result, on_grid)
    assert (aligned.method, aligned.times_ms.size) == ("exact", grid.size)
    # defaults: named by the descriptor's stem, a simulator; b_gj is reported, not dropped
    assert (source.name, source.kind) == ("fine", "simulator")
    assert [note.kind for note in source.notes] == ["probe-not-compared"]


def test_times_off_the_model_grid_are_kept_as_written(tmp_path, model):
    times_ms = np.arange(0, 5.0001, 0.015)  # 0.015 ms is no multiple of the model's 0.01 ms
    (tmp_path / "a.txt").write_text(column_file_text(times_ms, np.zeros_like(times_ms), "a"))
    (tmp_path / "odd.toml").write_text(
        'time_unit = "ms"\nvoltage_unit = "mV"\n[files]\na_gj = "a.txt"\nb_gj = "a.txt"\n')
    (source,) = load_traces(tmp_path / "odd.toml", model=model)
    assert source.result.info["snapped_to_model_grid"] is False
    np.testing.assert_allclose(source.result.times_ms, times_ms, rtol=1e-15)
    exact_grid = RunResult("sim", ["a_gj"], model.simulation.sample_times_ms(),
                           np.zeros((1, model.simulation.n_samples)))
    with pytest.raises(AlignmentError, match="interpolate=True"):
        align(exact_grid, source.result)
    assert align(exact_grid, source.result, interpolate=True).method == "interpolated"


def test_column_files_comma_separated_fortran_exponents_trailing_comments(tmp_path):
    (tmp_path / "v.csv").write_text("time,voltage\n0.0, -70.0  # rest\n1.0D-1,-6.95D+1\n"
                                    "\n0.2 , -69.0\n")
    (tmp_path / "d.toml").write_text(
        'name = "ext"\ntime_unit = "ms"\nvoltage_unit = "mV"\n[files]\np = "v.csv"\n')
    (source,) = load_traces(tmp_path / "d.toml")
    np.testing.assert_array_equal(source.result.times_ms, [0.0, 0.1, 0.2])
    np.testing.assert_array_equal(source.result.values_mV, [[-70.0, -69.5, -69.0]])


def test_microseconds_and_absolute_paths(tmp_path):
    elsewhere = tmp_path / "data" / "v.txt"
    elsewhere.parent.mkdir()
    elsewhere.write_text("0 -65\n10 -64\n20 -63\n")
    (tmp_path / "desc").mkdir()
    descriptor = tmp_path / "desc" / "us.toml"
    descriptor.write_text(f'time_unit = "us"\nvoltage_unit = "mV"\n[files]\np = "{elsewhere}"\n')
    (source,) = load_traces(descriptor)
    np.testing.assert_allclose(source.result.times_ms, [0.0, 0.01, 0.02], rtol=1e-15)


# --- long-form tables --------------------------------------------------------------------


def test_long_form_csv_round_trips_exactly(tmp_path, model, exact):
    path = tmp_path / "traces.csv"
    exact.to_frame().to_csv(path, index=False)
    (source,) = load_traces(path, model=model)
    np.testing.assert_array_equal(source.result.values_mV, exact.values_mV)
    np.testing.assert_array_equal(source.result.times_ms, exact.times_ms)
    assert source.probes == exact.probes
    # the backend column names the source; a registered reference stays a reference
    assert (source.name, source.kind) == ("analytic", "reference")


def test_long_form_parquet_round_trips_exactly(tmp_path, model, exact):
    path = tmp_path / "traces.parquet"
    exact.to_frame().to_parquet(path)
    (source,) = load_traces(path, model=model)
    np.testing.assert_array_equal(source.result.values_mV, exact.values_mV)
    np.testing.assert_array_equal(source.result.times_ms, exact.times_ms)
    assert (source.name, source.kind, source.probes) == ("analytic", "reference", exact.probes)


def test_long_form_with_several_sources_kinds_and_interleaved_rows(tmp_path, exact):
    other = RunResult("ext_sim", exact.probes, exact.times_ms, exact.values_mV + 1.0)
    frame = results_to_frame([other, exact]).sample(frac=1.0, random_state=1)
    frame = frame.sort_values("t_ms", kind="stable")  # time-major: probes interleave
    frame.to_csv(tmp_path / "both.csv", index=False)
    sources = load_traces(tmp_path / "both.csv")
    assert {s.name: s.kind for s in sources} == {"ext_sim": "simulator", "analytic": "reference"}
    by_name = {s.name: s.result for s in sources}
    for result in (other, exact):
        got = by_name[result.backend]
        for probe in result.probes:
            np.testing.assert_array_equal(got.trace(probe), result.trace(probe))

    frame = exact.to_frame()
    frame["kind"] = "simulator"  # a kind column overrides the registry
    frame.drop(columns="backend").to_csv(tmp_path / "my-run.csv", index=False)
    (source,) = load_traces(tmp_path / "my-run.csv")
    assert (source.name, source.kind) == ("my-run", "simulator")  # the stem names it


def test_a_file_lacking_a_model_probe_gives_a_note(tmp_path, model, exact):
    frame = exact.to_frame()
    frame = frame[frame["probe"] == "a_gj"]
    frame = frame[frame["t_ms"] <= 3.0]
    frame.to_csv(tmp_path / "part.csv", index=False)
    (source,) = load_traces(tmp_path / "part.csv", model=model)
    assert source.probes == ["a_gj"]
    kinds = {note.kind: note for note in source.notes}
    assert set(kinds) == {"probe-not-compared", "partial-span"}
    missing = kinds["probe-not-compared"]
    assert missing.subject == "analytic"
    assert "b_gj" in missing.message and "not compared" in missing.message
    assert "0..3 ms" in kinds["partial-span"].message
    (comparison,) = compare_results(source.result, exact, kind="references",
                                    probes=source.probes)
    assert comparison.max_abs_mV == 0.0 and comparison.n_samples == 301


def test_source_names_must_be_unique_across_files(tmp_path, exact):
    exact.to_frame().to_csv(tmp_path / "one.csv", index=False)
    exact.to_frame().to_parquet(tmp_path / "two.parquet")
    with pytest.raises(TraceFileError, match="'analytic' is already taken by the source"):
        load_trace_files([tmp_path / "one.csv"], reserved=["arbor", "analytic"])
    with pytest.raises(TraceFileError, match=r"two.parquet: source name 'analytic' is already "
                       r"taken by .*one.csv"):
        load_trace_files([tmp_path / "one.csv", tmp_path / "two.parquet"])


# --- bad files: one line naming the file, the line and what is wrong -------------------------

GOOD_CSV = "backend,probe,t_ms,v_mV\next,a_gj,0.0,-100\next,a_gj,0.01,-99.5\n" \
           "ext,a_gj,0.02,-99\next,b_gj,0.0,-60\next,b_gj,0.01,-60.5\next,b_gj,0.02,-61\n"


def bad_csv(line: int, replacement: str) -> str:
    lines = GOOD_CSV.splitlines()
    lines[line - 1] = replacement
    return "\n".join(lines) + "\n"


GOOD_COLUMN = "# v0\ntime voltage\n0.0 -0.1\n1e-5 -0.0995\n2e-5 -0.099\n"


def bad_column(line: int, replacement: str) -> str:
    lines = GOOD_COLUMN.splitlines()
    lines[line - 1] = replacement
    return "\n".join(lines) + "\n"


DESCRIPTOR_AB = ('name = "ext"\ntime_unit = "s"\nvoltage_unit = "V"\n[files]\n'
                 'a_gj = "a.txt"\nb_gj = "b.txt"\n')

# (case, files {name: text}, file to load, file named in the error, line, message part)
BAD_FILES = [
    ("csv non-numeric value", {"t.csv": bad_csv(3, "ext,a_gj,0.01,abc")}, "t.csv", "t.csv", 3,
     "non-numeric value 'abc' in column v_mV"),
    ("csv empty value", {"t.csv": bad_csv(4, "ext,a_gj,,-99")}, "t.csv", "t.csv", 4,
     "empty value in column t_ms"),
    ("csv times not increasing", {"t.csv": bad_csv(4, "ext,a_gj,0.01,-99")}, "t.csv", "t.csv",
     4, "times not increasing: probe 'a_gj' has t = 0.01 ms after 0.01 ms"),
    ("csv too many columns", {"t.csv": bad_csv(5, "ext,b_gj,0.0,-60,7")}, "t.csv", "t.csv", 5,
     "wrong column count: 5 fields, expected 4"),
    ("csv too few columns", {"t.csv": bad_csv(2, "ext,a_gj,0.0")}, "t.csv", "t.csv", 2,
     "wrong column count: 3 fields, expected 4"),
    ("csv NaN", {"t.csv": bad_csv(6, "ext,b_gj,0.01,nan")}, "t.csv", "t.csv", 6,
     "v_mV = nan is not a finite number"),
    ("csv infinity", {"t.csv": bad_csv(6, "ext,b_gj,0.01,inf")}, "t.csv", "t.csv", 6,
     "v_mV = inf is not a finite number"),
    ("csv unknown probe", {"t.csv": bad_csv(5, "ext,b_gk,0.0,-60")}, "t.csv", "t.csv", 5,
     "unknown probe 'b_gk': model 'two_cells' has no such probe (did you mean 'b_gj'?)"),
    ("csv unknown column", {"t.csv": bad_csv(1, "backend,probe,t_ms,v_V")}, "t.csv", "t.csv",
     1, "unknown column 'v_V' (did you mean 'v_mV'?)"),
    ("csv unknown kind", {"t.csv": GOOD_CSV.replace("backend,", "kind,").replace(
        "ext,", "ref,")}, "t.csv", "t.csv", 2, "unknown kind 'ref'"),
    ("csv probe grids differ", {"t.csv": bad_csv(7, "ext,b_gj,0.03,-61")}, "t.csv", "t.csv",
     7, "probe 'b_gj' has t = 0.03 ms where probe 'a_gj' has 0.02 ms (sample 3)"),
    ("csv empty file", {"t.csv": ""}, "t.csv", "t.csv", 1, "empty file"),
    ("csv header only", {"t.csv": "probe,t_ms,v_mV\n"}, "t.csv", "t.csv", 1,
     "no data rows after the header"),
    ("column non-numeric value", {"d.toml": DESCRIPTOR_AB, "a.txt": GOOD_COLUMN,
                                  "b.txt": bad_column(4, "1e-5 -0.0995V")},
     "d.toml", "b.txt", 4, "non-numeric value '-0.0995V' in column 2 (voltage)"),
    ("column times not increasing", {"d.toml": DESCRIPTOR_AB, "a.txt": GOOD_COLUMN,
                                     "b.txt": bad_column(5, "0.5e-5 -0.099")},
     "d.toml", "b.txt", 5, "times not increasing: t = 0.5e-5 after 1e-5 (line 4)"),
    ("column wrong column count", {"d.toml": DESCRIPTOR_AB, "b.txt": GOOD_COLUMN,
                                   "a.txt": bad_column(3, "0.0 -0.1 -0.06")},
     "d.toml", "a.txt", 3, "wrong column count: 3 columns, expected 2 (time, voltage)"),
    ("column NaN", {"d.toml": DESCRIPTOR_AB, "b.txt": GOOD_COLUMN,
                    "a.txt": bad_column(4, "1e-5 NaN")},
     "d.toml", "a.txt", 4, "voltage NaN is not a finite number"),
    ("column empty file", {"d.toml": DESCRIPTOR_AB, "a.txt": GOOD_COLUMN, "b.txt": ""},
     "d.toml", "b.txt", 1, "empty file"),
    ("column only comments", {"d.toml": DESCRIPTOR_AB, "a.txt": GOOD_COLUMN,
                              "b.txt": "# nothing\ntime voltage\n"},
     "d.toml", "b.txt", 2, "no data lines (only comments and a header)"),
    ("column single sample", {"d.toml": DESCRIPTOR_AB, "a.txt": GOOD_COLUMN,
                              "b.txt": "0 -0.06\n"},
     "d.toml", "b.txt", 1, "probe 'b_gj' has only 1 sample"),
    ("column grids differ", {"d.toml": DESCRIPTOR_AB, "a.txt": GOOD_COLUMN,
                             "b.txt": bad_column(5, "3e-5 -0.099")},
     "d.toml", "b.txt", 5, "probe 'b_gj' has t = 3e-05 s where probe 'a_gj' has 2e-05 s"),
    ("column fewer samples", {"d.toml": DESCRIPTOR_AB, "a.txt": GOOD_COLUMN,
                              "b.txt": GOOD_COLUMN.rsplit("\n", 2)[0] + "\n"},
     "d.toml", "b.txt", 4, "probe 'b_gj' has 2 samples, probe 'a_gj' has 3"),
    ("descriptor unknown unit", {"d.toml": DESCRIPTOR_AB.replace('"s"', '"sec"'),
                                 "a.txt": GOOD_COLUMN, "b.txt": GOOD_COLUMN},
     "d.toml", "d.toml", 2, "(time_unit): unknown time unit 'sec'; allowed: s | ms | us"),
    ("descriptor unknown voltage unit", {"d.toml": DESCRIPTOR_AB.replace('"V"', '"volt"'),
                                         "a.txt": GOOD_COLUMN, "b.txt": GOOD_COLUMN},
     "d.toml", "d.toml", 3, "unknown voltage unit 'volt'; allowed: V | mV"),
    ("descriptor unknown probe", {"d.toml": DESCRIPTOR_AB.replace("b_gj =", "vx ="),
                                  "a.txt": GOOD_COLUMN, "b.txt": GOOD_COLUMN},
     "d.toml", "d.toml", 6, "(files.vx): unknown probe 'vx': model 'two_cells' has no such "
     "probe; allowed: a_gj, b_gj"),
    ("descriptor unknown key", {"d.toml": DESCRIPTOR_AB.replace("time_unit", "time_units"),
                                "a.txt": GOOD_COLUMN, "b.txt": GOOD_COLUMN},
     "d.toml", "d.toml", 2, "unknown key 'time_units' (did you mean 'time_unit'?)"),
    ("descriptor missing column file", {"d.toml": DESCRIPTOR_AB, "a.txt": GOOD_COLUMN},
     "d.toml", "d.toml", 6, "(files.b_gj): file not found: "),
    ("descriptor not TOML", {"d.toml": DESCRIPTOR_AB.replace('"V"', "V")},
     "d.toml", "d.toml", 3, "not valid TOML"),
    ("descriptor empty", {"d.toml": ""}, "d.toml", "d.toml", 1, "empty file"),
    ("descriptor bad kind", {"d.toml": 'kind = "ref"\n' + DESCRIPTOR_AB, "a.txt": GOOD_COLUMN,
                             "b.txt": GOOD_COLUMN},
     "d.toml", "d.toml", 1, "unknown kind 'ref'; allowed: simulator | reference"),
]


@pytest.mark.parametrize(("files", "load", "named", "line", "message"),
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES])
def test_bad_file_is_one_line_naming_file_line_and_problem(tmp_path, model, files, load,
                                                           named, line, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(TraceFileError) as caught:
        load_traces(tmp_path / load, model=model)
    error = caught.value
    text = str(error)
    assert "\n" not in text
    assert text.startswith(f"{tmp_path / named}: line {line}"), text
    assert message in text, text
    assert error.line == line
    assert isinstance(error, (CrossSimError, ValueError))
    assert error.exit_code == EXIT_USAGE
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_bad_parquet_names_the_row(tmp_path, model, exact):
    frame = exact.to_frame()
    frame.loc[7, "v_mV"] = np.nan
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(TraceFileError, match=r"t.parquet: row 8: missing value in column v_mV"):
        load_traces(tmp_path / "t.parquet", model=model)
    frame = exact.to_frame()
    frame["t_ms"] = frame["t_ms"].astype(str)
    frame.loc[3, "t_ms"] = "soon"
    frame.to_parquet(tmp_path / "s.parquet")
    with pytest.raises(TraceFileError, match=r"s.parquet: row 4: non-numeric value 'soon' in "
                       r"column t_ms"):
        load_traces(tmp_path / "s.parquet")
    (tmp_path / "fake.parquet").write_text("probe,t_ms,v_mV\n")
    with pytest.raises(TraceFileError, match="fake.parquet: not a Parquet file"):
        load_traces(tmp_path / "fake.parquet")


@pytest.mark.parametrize(("name", "message"), [
    ("missing.csv", "missing.csv: file not found"),
    ("traces.txt", "unknown trace file type '.txt'; allowed: .csv or .parquet"),
    ("folder.csv", "folder.csv: is a folder, not a trace file"),
])
def test_unusable_paths(tmp_path, name, message):
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "traces.txt").write_text("0 1\n")
    with pytest.raises(TraceFileError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_traces(tmp_path / name)


def test_csv_line_numbers_count_blank_lines_and_a_byte_order_mark(tmp_path, model):
    text = "\ufeff\nprobe,t_ms,v_mV\n\na_gj,0,-100\n   \na_gj,0.01,-99\na_gj,0.02,oops\n"
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    with pytest.raises(TraceFileError, match=r"t.csv: line 7: non-numeric value 'oops'"):
        load_traces(tmp_path / "t.csv", model=model)
    (tmp_path / "u.csv").write_bytes(b"probe,t_ms,v_mV\na_gj,0,-100\na_gj,0.01,\xff\n")
    with pytest.raises(TraceFileError, match=r"u.csv: line 3: not UTF-8 text"):
        load_traces(tmp_path / "u.csv")


@pytest.mark.parametrize(("name", "text", "message"), [
    ("n.csv", "backend,probe,t_ms,v_mV\nmy sim,p,0,1\nmy sim,p,1,2\n",
     "n.csv: line 2: backend 'my sim' cannot name a source; allowed: letters, digits"),
    ("my traces.csv", "probe,t_ms,v_mV\np,0,1\np,1,2\n",
     "my traces.csv: the file's stem (the source name without a backend column) 'my traces' "
     "cannot name a source"),
    ("k.toml", 'name = "a/b"\ntime_unit = "s"\nvoltage_unit = "V"\n[files]\np = "x"\n',
     "k.toml: line 1 (name): name 'a/b' cannot name a source"),
    ("m.toml", 'time_unit = "s"\n[files]\np = "x"\n',
     "m.toml: missing key 'voltage_unit'; allowed: V | mV"),
])
def test_source_names_and_required_keys(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(TraceFileError) as caught:
        load_traces(tmp_path / name)
    assert str(caught.value).startswith(f"{tmp_path / message}"), str(caught.value)
