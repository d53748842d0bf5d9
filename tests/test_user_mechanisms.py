"""Users' NMODL mechanisms: compiled for Arbor (a cached catalogue) and for NEURON (with
crosssim's own MOD files, one cached library), and run on both.

Truths: a hand-written copy of Hodgkin-Huxley (``tests/data/mechanisms/myhh.mod``, NEURON's
hh.mod equations, rate tables off) against each simulator's built-in ``hh``, and a leak
(``myleak.mod``) against the built-in ``pas``, on one cable with 1 and 11 CVs: the same
simulator must give the same trace to round-off.  The leak also agrees across simulators to
round-off; Hodgkin-Huxley differs between Arbor and NEURON by their time stepping (0.75 mV
here at dt 0.025 ms, falling as dt^2), identically for the copy and the built-in.

The catalogue and the library land in the ordinary cache, so only the first run compiles
(about 7 s for Arbor, 5 s for NEURON); those tests are marked ``slow`` and still run.
NEURON runs in a child process: one process cannot load two mechanism libraries reliably.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_arbor, requires_neuron

from crosssim.backends.arbor.catalogue import mechanism_name, modcc_reason, modcc_source
from crosssim.backends.neuron.mechanisms import nrnivmodl_reason
from crosssim.errors import EXIT_BACKEND, EXIT_USAGE, MechanismBuildError, MechanismSourceError
from crosssim.provenance import check_mod_files

DATA = Path(__file__).parent / "data" / "mechanisms"
MYHH, MYLEAK = DATA / "myhh.mod", DATA / "myleak.mod"
#: NEURON accepts it, Arbor refuses it (celsius read inside a PROCEDURE).
ARBOR_REFUSES = DATA / "celsius_in_procedure.mod"
#: Arbor accepts it, NEURON refuses it (LOCAL after SOLVE in BREAKPOINT).
NEURON_REFUSES = DATA / "solve_then_local.mod"

#: Largest allowed |copy - built-in| (same simulator) and |Arbor - NEURON| for the leak, mV.
ROUND_OFF_MV = 1e-9
CVS = (1, 11)

#: One cable: 100 um long, radius 10 um; 0.5 nA from 5 to 45 ms at its middle; 50 ms at
#: dt 0.025 ms, implicit Euler; 6.3 degC; cm 1 uF/cm2, Ra 35.4 ohm cm, v0 -65 mV.
CABLE = {"length_um": 100.0, "radius_um": 10.0, "t_stop_ms": 50.0, "dt_ms": 0.025,
         "clamp": (5.0, 40.0, 0.5), "celsius": 6.3, "v_init_mV": -65.0}
#: Mechanism -> parameters (the built-ins take the same values as their copies).
HH = {"gnabar": 0.12, "gkbar": 0.036, "gl": 0.0003, "el": -54.3}
LEAK = {"g": 0.001, "e": -65.0}
CASES = ("hh", "myhh", "pas", "myleak")


# The text handed to modcc --------------------------------------------------------------------


def test_modcc_source_drops_what_neuron_needs_and_arbor_refuses():
    text = textwrap.dedent("""\
        NEURON {
            SUFFIX kx  : a comment naming ASSIGNED { ik }
            USEION k READ ek WRITE ik
            NONSPECIFIC_CURRENT il
            RANGE gbar
        }
        PARAMETER { gbar = 0.01 (S/cm2) }
        ASSIGNED {
            v (mV) celsius (degC)
            ik (mA/cm2)
            ek (mV)
            il (mA/cm2)
            q10
        }
        BREAKPOINT {
            q10 = celsius
            ik = gbar*(v - ek)
            il = 0
        }
        """)
    adapted = modcc_source(text)
    assert len(adapted.splitlines()) == len(text.splitlines())  # modcc's line numbers hold
    assigned = adapted[adapted.index("ASSIGNED {\n"):adapted.index("BREAKPOINT")]
    for name in ("v", "celsius", "ik", "ek", "il"):
        assert f" {name} (" not in assigned
    assert "q10" in assigned
    assert "PARAMETER { celsius (degC)  gbar = 0.01 (S/cm2) }" in adapted
    assert adapted.splitlines()[1] == text.splitlines()[1]  # comments untouched
    assert modcc_source(adapted) == adapted  # nothing left to drop
    assert mechanism_name(text) == "kx"


def test_modcc_source_leaves_an_arbor_style_file_alone():
    text = ("NEURON { SUFFIX a NONSPECIFIC_CURRENT i RANGE g }\n"
            "PARAMETER { g = 0.001 (S/cm2) }\nBREAKPOINT { i = g*v }\n")
    assert modcc_source(text) == text
    without_parameters = ("NEURON { SUFFIX b NONSPECIFIC_CURRENT i }\n"
                          "ASSIGNED { celsius (degC) i (mA/cm2) }\nBREAKPOINT { i = celsius }\n")
    adapted = modcc_source(without_parameters)
    assert adapted.endswith("PARAMETER { celsius (degC) }\n")
    before, after = without_parameters.splitlines(), adapted.splitlines()
    assert after[1].split() == ["ASSIGNED", "{", "}"] and len(after[1]) == len(before[1])
    assert after[0] == before[0] and after[2] == before[2]


# The compilers' messages, as one line --------------------------------------------------------


def test_modcc_reason_finds_the_message_in_each_of_modccs_layouts():
    semantic = ("\x1b[1;31merror: \x1b[0m\x1b[1;37mx.mod (line 58,col 15) \x1b[0m\n"
                "  the symbol '\x1b[1;33mcelsius\x1b[0m' refers to an external quantity and is "
                "unavailable in a function or procedure\n\x1b[1;31merror trace:\n\x1b[0m"
                "  * x.mod:(line 1,col 1) There were 1 errors in the semantic analysis\n")
    assert modcc_reason(semantic) == (58, "the symbol 'celsius' refers to an external quantity "
                                          "and is unavailable in a function or procedure")
    trace = ("error trace:\n  * /tmp/x/mod/a.mod:(line 28,col 5) the symbol 'v' is defined as "
             "a builtin and cannot be used as an ASSIGNED here (line 28,col 5).\n")
    assert modcc_reason(trace) == (28, "the symbol 'v' is defined as a builtin and cannot be "
                                       "used as an ASSIGNED here")
    internal = ("internal compiler error:\nthe symbol i already exists @ (line 5,col 25)\n\n"
                "Please report this error to the modcc developers.\n")
    assert modcc_reason(internal) == (None, "the symbol i already exists @ (line 5,col 25)")
    table = "error: a.mod:(line 2,col 11) \n  expected an assignment '=' or new line, found 'y'"
    row, what = modcc_reason(table, "PROCEDURE p(x) {\n  TABLE y FROM -1 TO 1 WITH 2\n}\n")
    assert row == 2 and what.endswith("(Arbor's NMODL has no TABLE statement: remove it)")


def test_nrnivmodl_reason_skips_the_wrapper_traceback():
    nocmodl = textwrap.dedent("""\
        Translating nb3.mod into /tmp/s/x86_64/nb3.cpp
        syntax error:
         Illegal statement:
         Error: Illegal block at line 6 in file nb3.mod
         LOCAL x
              ^
        make: *** [makemod2c_inc:3: nb3.cpp] Error 1
        Traceback (most recent call last):
          File "/venv/bin/nrnivmodl", line 126, in <module>
        subprocess.CalledProcessError: Command '['nrnivmodl', '.']' returned non-zero exit status 2.
        """)
    assert nrnivmodl_reason(nocmodl) == "Illegal block at line 6 in file nb3.mod: LOCAL x"
    cxx = ("Warning: foo undefined. (declared within VERBATIM?)\n"
           "/tmp/s/x86_64/nb1.cpp:244:24: error: 'foo' was not declared in this scope\n"
           "make: *** [makemod2c_inc:7: nb1.o] Error 1\n")
    assert nrnivmodl_reason(cxx) == ("nb1.cpp:244: error: 'foo' was not declared in this scope "
                                     "(nocmodl: foo undefined. (declared within VERBATIM?))")


def test_check_mod_files_names_the_file(tmp_path):
    with pytest.raises(MechanismSourceError, match="no such MOD file") as missing:
        check_mod_files([tmp_path / "nope.mod"], "arbor")
    assert missing.value.exit_code == EXIT_USAGE and missing.value.path.endswith("nope.mod")
    (tmp_path / "other").mkdir()
    twin = tmp_path / "other" / "myhh.mod"
    twin.write_text(MYHH.read_text())
    with pytest.raises(MechanismSourceError, match="two MOD files named myhh.mod"):
        check_mod_files([MYHH, twin], "neuron")
    with pytest.raises(MechanismSourceError, match="not a MOD file"):
        check_mod_files([DATA], "neuron")
    assert check_mod_files([MYLEAK, str(MYHH)], "arbor") == [MYLEAK, MYHH]


# Arbor ------------------------------------------------------------------------------------------


def _arbor_trace(catalogue: Path | None, mechanism: str, n_cvs: int) -> np.ndarray:
    """Membrane voltage (mV) at the cable's middle, one sample per step from t = 0."""
    import arbor

    units = arbor.units
    tree = arbor.segment_tree()
    tree.append(arbor.mnpos, arbor.mpoint(0, 0, 0, CABLE["radius_um"]),
                arbor.mpoint(CABLE["length_um"], 0, 0, CABLE["radius_um"]), tag=1)
    decor = arbor.decor()
    decor.set_property(Vm=CABLE["v_init_mV"] * units.mV, cm=0.01 * units.F / units.m2,
                       rL=35.4 * units.Ohm * units.cm, tempK=CABLE["celsius"] * units.Celsius)
    if mechanism == "hh":
        decor.paint("(all)", arbor.density("hh", HH))
    elif mechanism == "myhh":
        decor.paint("(all)", arbor.density("myhh", {**HH, "ena": 50.0, "ek": -77.0}))
    elif mechanism == "pas":
        decor.paint("(all)", arbor.density(f"pas/e={LEAK['e']}", {"g": LEAK["g"]}))
    else:
        decor.paint("(all)", arbor.density(mechanism, LEAK))
    delay, duration, amplitude = CABLE["clamp"]
    decor.place("(location 0 0.5)", arbor.i_clamp(delay * units.ms, duration * units.ms,
                                                 amplitude * units.nA))
    cell = arbor.cable_cell(tree, decor, arbor.label_dict(),
                            arbor.cv_policy_fixed_per_branch(n_cvs))
    properties = arbor.neuron_cable_properties()
    properties.set_ion("na", rev_pot=50 * units.mV)
    properties.set_ion("k", rev_pot=-77 * units.mV)
    if catalogue is not None:
        properties.catalogue.extend(arbor.load_catalogue(str(catalogue)), "")

    class Recipe(arbor.recipe):
        def num_cells(self):
            return 1

        def cell_kind(self, gid):
            return arbor.cell_kind.cable

        def cell_description(self, gid):
            return cell

        def global_properties(self, kind):
            return properties

        def probes(self, gid):
            return [arbor.cable_probe_membrane_voltage("(location 0 0.5)", "v")]

    simulation = arbor.simulation(Recipe())
    handle = simulation.sample((0, "v"), arbor.regular_schedule(CABLE["dt_ms"] * units.ms))
    simulation.run(CABLE["t_stop_ms"] * units.ms, CABLE["dt_ms"] * units.ms)
    data, _ = simulation.samples(handle)[0]
    return np.asarray(data[:, 1])


@pytest.fixture(scope="module")
def arbor_catalogue() -> Path:
    """myhh, myleak and solve_then_local in one catalogue (compiled on the first run only)."""
    from crosssim.backends.arbor.catalogue import build_catalogue

    return build_catalogue([MYHH, MYLEAK, NEURON_REFUSES])


@pytest.fixture(scope="module")
def arbor_traces(arbor_catalogue) -> dict[tuple[str, int], np.ndarray]:
    return {(case, n): _arbor_trace(arbor_catalogue if case.startswith("my") else None, case, n)
            for case in CASES for n in CVS}


@requires_arbor
@pytest.mark.slow
def test_arbor_catalogue_holds_each_mechanism_by_its_suffix(arbor_catalogue):
    import arbor

    assert arbor_catalogue.name.endswith("-catalogue.so")
    assert arbor_catalogue.parent.name.startswith("arbor-cat-")
    catalogue = arbor.load_catalogue(str(arbor_catalogue))
    assert sorted(catalogue.keys()) == ["myhh", "myleak", "solvelocal"]
    parameters = catalogue["myhh"].parameters
    assert parameters["gnabar"].units == "S / cm2" and parameters["gnabar"].default == 0.12
    assert sorted(catalogue["myleak"].parameters) == ["e", "g"]


@requires_arbor
@pytest.mark.slow
@pytest.mark.parametrize("n_cvs", CVS)
def test_arbor_runs_the_copies_as_its_built_ins(arbor_traces, n_cvs):
    hh, myhh = arbor_traces["hh", n_cvs], arbor_traces["myhh", n_cvs]
    assert hh.max() > 30  # it spikes
    assert np.max(np.abs(myhh - hh)) < ROUND_OFF_MV
    assert np.max(np.abs(arbor_traces["myleak", n_cvs] - arbor_traces["pas", n_cvs])) \
        < ROUND_OFF_MV


@requires_arbor
def test_arbor_refusal_names_the_file_line_and_modccs_reason(tmp_path, monkeypatch):
    from crosssim.backends.arbor.catalogue import build_catalogue

    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path))
    with pytest.raises(MechanismSourceError) as refused:
        build_catalogue([MYLEAK, ARBOR_REFUSES])
    error = refused.value
    assert error.exit_code == EXIT_USAGE and error.backend == "arbor"
    assert error.path == str(ARBOR_REFUSES)
    message = error.one_line()
    assert message == str(error)  # one line already
    line = next(number for number, text in enumerate(ARBOR_REFUSES.read_text().splitlines(), 1)
                if "factor = 3^" in text)
    assert f"{ARBOR_REFUSES}:{line}: Arbor's NMODL compiler (modcc) refuses it" in message
    assert "the symbol 'celsius' refers to an external quantity" in message
    assert not list(tmp_path.glob("arbor-cat-*"))  # refused before any build


@requires_arbor
@pytest.mark.slow
def test_arbor_compiles_once_and_says_so(tmp_path, monkeypatch, capsys):
    from crosssim.backends.arbor.catalogue import CATALOGUE_MANIFEST, build_catalogue

    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path))
    library = build_catalogue([MYLEAK])
    first = capsys.readouterr()
    assert "compiling 1 MOD file(s) for Arbor (first use; cached in" in first.err
    assert str(tmp_path) in first.err and first.out == ""
    manifest = json.loads((library.parent / CATALOGUE_MANIFEST).read_text())
    assert manifest["mechanisms"] == {"myleak": str(MYLEAK)}
    assert build_catalogue([MYLEAK]) == library  # cached: silent
    assert capsys.readouterr().err == ""
    assert not list(tmp_path.glob(".arbor-cat-*-*"))  # no staging leftovers


def test_arbor_without_cmake_names_the_fix(tmp_path, monkeypatch):
    from crosssim.backends.arbor import catalogue

    wheel = tmp_path / "arbor"  # where Arbor's wheel keeps its tools, faked
    (wheel / "bin").mkdir(parents=True)
    for tool in ("arbor-build-catalogue", "modcc"):
        (wheel / "bin" / tool).write_text("")
    monkeypatch.setattr(catalogue, "_arbor_dir", lambda: wheel)
    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(MechanismBuildError, match="cmake not found.*apt-get install cmake") \
            as missing:
        catalogue.build_catalogue([MYLEAK])
    assert missing.value.exit_code == EXIT_BACKEND
    assert not isinstance(missing.value, MechanismSourceError)


def test_arbor_refuses_two_files_with_one_mechanism(tmp_path):
    from crosssim.backends.arbor.catalogue import build_catalogue

    twin = tmp_path / "leak_again.mod"
    twin.write_text(MYLEAK.read_text())
    with pytest.raises(MechanismSourceError, match="mechanism myleak is also defined in"):
        build_catalogue([MYLEAK, twin])


# NEURON -------------------------------------------------------------------------------------


_NEURON_SCRIPT = """
import json, sys
import numpy as np
from neuron import h

library, cable, hh, leak, output = sys.argv[1:6]
cable, hh, leak = json.loads(cable), json.loads(hh), json.loads(leak)
h.nrn_load_dll(library)
h.celsius = cable["celsius"]
h.usetable_hh = 0  # NEURON's hh.mod tabulates its rates by default; the copy computes them
traces = {}
for n_cvs in (1, 11):
    for case in ("hh", "myhh", "pas", "myleak"):
        section = h.Section(name="cable")
        section.L, section.diam, section.nseg = cable["length_um"], 2 * cable["radius_um"], n_cvs
        section.cm, section.Ra = 1.0, 35.4
        section.insert(case)
        for segment in section:
            mechanism = getattr(segment, case)
            for name, value in (hh if "hh" in case else leak).items():
                setattr(mechanism, name, value)
            if case == "hh":
                segment.ena, segment.ek = 50.0, -77.0
            elif case == "myhh":
                mechanism.ena, mechanism.ek = 50.0, -77.0
        clamp = h.IClamp(section(0.5))
        clamp.delay, clamp.dur, clamp.amp = cable["clamp"]
        voltage = h.Vector().record(section(0.5)._ref_v)
        h.dt = cable["dt_ms"]
        h.finitialize(cable["v_init_mV"])
        while h.t < cable["t_stop_ms"] - cable["dt_ms"] / 2:
            h.fadvance()
        traces[f"{case}-{n_cvs}"] = np.array(voltage)
        del clamp, voltage, section
np.savez(output, **traces)
"""


def _neuron_traces(library: Path, output: Path) -> dict[tuple[str, int], np.ndarray]:
    """Every case at 1 and 11 CVs in one NEURON child process; mV from t = 0, one per step."""
    done = subprocess.run(
        [sys.executable, "-c", _NEURON_SCRIPT, str(library), json.dumps(CABLE), json.dumps(HH),
         json.dumps(LEAK), str(output)], capture_output=True, text=True, timeout=300,
        check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(output) as saved:
        return {(key.split("-")[0], int(key.split("-")[1])): saved[key] for key in saved.files}


@pytest.fixture(scope="module")
def neuron_library() -> Path:
    """crosssim's own mechanisms with myhh, myleak and celsius_in_procedure (compiled on the
    first run only)."""
    from crosssim.backends.neuron.mechanisms import ensure_mechanisms, mechanism_library

    return mechanism_library(ensure_mechanisms([MYHH, MYLEAK, ARBOR_REFUSES]))


@pytest.fixture(scope="module")
def neuron_traces(neuron_library, tmp_path_factory) -> dict[tuple[str, int], np.ndarray]:
    return _neuron_traces(neuron_library, tmp_path_factory.mktemp("neuron") / "traces.npz")


@requires_neuron
@pytest.mark.slow
@pytest.mark.parametrize("n_cvs", CVS)
def test_neuron_runs_the_copies_as_its_built_ins(neuron_traces, n_cvs):
    hh, myhh = neuron_traces["hh", n_cvs], neuron_traces["myhh", n_cvs]
    assert len(hh) == round(CABLE["t_stop_ms"] / CABLE["dt_ms"]) + 1 and hh.max() > 30
    assert np.max(np.abs(myhh - hh)) < ROUND_OFF_MV
    assert np.max(np.abs(neuron_traces["myleak", n_cvs] - neuron_traces["pas", n_cvs])) \
        < ROUND_OFF_MV


@requires_neuron
@pytest.mark.slow
def test_neuron_library_holds_crosssims_and_the_users_mechanisms(neuron_library):
    script = ("import sys; from neuron import h; h.nrn_load_dll(sys.argv[1]); "
              "section = h.Section(name='s'); names = ('myhh', 'myleak', 'celsiusleak'); "
              "[section.insert(name) for name in names]; "
              "print(hasattr(h, 'CrosssimGap'), sorted(section.psection()['density_mechs']))")
    done = subprocess.run([sys.executable, "-c", script, str(neuron_library)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True ['celsiusleak', 'myhh', 'myleak']"


@requires_neuron
def test_neuron_refusal_names_the_file_and_nrnivmodls_reason(tmp_path, monkeypatch):
    from crosssim.backends.neuron.mechanisms import ensure_mechanisms

    monkeypatch.setenv("CROSSSIM_CACHE_DIR", str(tmp_path))
    with pytest.raises(MechanismSourceError) as refused:
        ensure_mechanisms([MYLEAK, NEURON_REFUSES])
    error = refused.value
    assert error.exit_code == EXIT_USAGE and error.backend == "neuron"
    assert error.path == str(NEURON_REFUSES)
    line = next(number for number, text in enumerate(NEURON_REFUSES.read_text().splitlines(), 1)
                if "LOCAL open" in text)
    assert error.reason == f"Illegal block at line {line} in file solve_then_local.mod: LOCAL open"
    assert str(error).startswith(f"neuron: {NEURON_REFUSES}: nrnivmodl refused it: Illegal block")
    assert "\n" not in str(error)
    assert not list(tmp_path.glob("mod-*/"))  # nothing half-built in the cache


# Across simulators ------------------------------------------------------------------------------


@requires_arbor
@requires_neuron
@pytest.mark.slow
@pytest.mark.parametrize("n_cvs", CVS)
def test_the_copies_differ_across_simulators_exactly_as_the_built_ins(arbor_traces,
                                                                      neuron_traces, n_cvs):
    steps = len(arbor_traces["hh", n_cvs])  # Arbor samples [0, T), NEURON [0, T]
    arbor_leak, neuron_leak = arbor_traces["myleak", n_cvs], neuron_traces["myleak", n_cvs]
    assert np.max(np.abs(arbor_leak - neuron_leak[:steps])) < ROUND_OFF_MV
    copies = arbor_traces["myhh", n_cvs] - neuron_traces["myhh", n_cvs][:steps]
    built_ins = arbor_traces["hh", n_cvs] - neuron_traces["hh", n_cvs][:steps]
    assert 0.1 < np.max(np.abs(copies)) < 2.0  # time stepping: 0.75 mV at dt 0.025 ms
    assert np.max(np.abs(copies - built_ins)) < ROUND_OFF_MV


def _model_using(tmp_path: Path, mod: str) -> Path:
    """A one-cable model in ``tmp_path`` that uses the MOD file ``mod`` (copied beside it)."""
    import shutil

    from crosssim.nmodl import describe_mod

    shutil.copy(DATA / mod, tmp_path / mod)
    suffix = describe_mod(tmp_path / mod).suffix
    path = tmp_path / "model.toml"
    path.write_text(textwrap.dedent(f"""\
        name = "user_mod"
        [simulation]
        t_stop_ms = 5.0
        dt_ms = 0.025
        [[mechanisms]]
        mod = "{mod}"
        [[cells]]
        name = "a"
        length_um = 100.0
        radius_um = 3.0
        cm_F_per_m2 = 0.01
        ra_ohm_cm = 100.0
        g_leak_S_per_cm2 = 1e-5
        e_leak_mV = -65.0
        [cells.channels.{suffix}]
        """))
    return path


@pytest.mark.parametrize("backend, mod, words", [
    pytest.param("arbor", "celsius_in_procedure.mod",
                 "celsius_in_procedure.mod:44: Arbor's NMODL compiler (modcc) refuses it: "
                 "the symbol 'celsius' refers to an external quantity", marks=requires_arbor,
                 id="arbor"),
    pytest.param("neuron", "solve_then_local.mod",
                 "solve_then_local.mod: nrnivmodl refused it: Illegal block at line 34",
                 marks=requires_neuron, id="neuron"),
])
def test_check_with_a_refused_mod_file_is_exit_2_with_the_compilers_reason(
        tmp_path, backend, mod, words):
    done = subprocess.run([sys.executable, "-m", "crosssim", "check",
                           str(_model_using(tmp_path, mod)), "--backend", backend,
                           "--quiet", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == EXIT_USAGE, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and words in errors[0], done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
