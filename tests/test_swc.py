"""SWC files as section lists (crosssim.model.swc).

The expected sections are worked out by hand from the sample coordinates in
tests/data/swc (steps along one axis or on 3-4-5 triangles, so every length is exact);
NEURON's Import3d, run in a child process, is a second, independent reading of the same
files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_neuron
from hypothesis import given
from hypothesis import strategies as st

from crosssim.errors import EXIT_USAGE, InvalidModelError
from crosssim.model.swc import read_swc, sections_from_swc_text

DATA = Path(__file__).parent / "data" / "swc"


def read(name: str) -> list[dict]:
    return read_swc(DATA / name)


def test_y_without_soma():
    # parent: (0,0,0) -> (3,4,0) -> (6,8,0), two 5 um steps at radius 1
    # daughter 1: (6,8,0) r 1 -> (6,8,12) r 0.5, starting at the fork with the fork's radius
    # daughter 2: (6,8,0) r 1 -> (9,12,0) r 0.5 (5 um) -> (9,12,20) r 0.5 (20 um)
    assert read("y.swc") == [
        {"name": "dend_1", "length_um": 10.0, "radius_um": 1.0},
        {"name": "dend_2", "parent": "dend_1", "parent_x": 1.0, "length_um": 12.0,
         "radius_start_um": 1.0, "radius_end_um": 0.5},
        {"name": "dend_3", "parent": "dend_1", "parent_x": 1.0, "length_um": 25.0,
         "profile_um": [[0.0, 1.0], [5.0, 0.5], [25.0, 0.5]]},
    ]


def test_three_point_soma_with_two_dendrites_and_an_axon():
    # soma: centre r 10 and +-10 um along y -> one cylinder 2r = 20 um long, radius 10
    # dend_1 starts at its own first sample (0,10,0): 30 um along y at r 1, then a
    #   30-40-50 step to r 0.5; no segment back to the soma centre
    # dend_2: (0,-10,0) -> (0,-25,-20), a 15-20-25 step at r 1.5
    # axon_1: (10,0,0) -> (40,40,0), a 30-40-50 step at r 0.5
    sections = read("three_point_soma.swc")
    assert sections == [
        {"name": "soma", "length_um": 20.0, "radius_um": 10.0},
        {"name": "dend_1", "parent": "soma", "parent_x": 1.0, "length_um": 80.0,
         "profile_um": [[0.0, 1.0], [30.0, 1.0], [80.0, 0.5]]},
        {"name": "dend_2", "parent": "soma", "parent_x": 1.0, "length_um": 25.0,
         "radius_um": 1.5},
        {"name": "axon_1", "parent": "soma", "parent_x": 1.0, "length_um": 50.0,
         "radius_um": 0.5},
    ]
    soma = sections[0]
    lateral_area = 2 * np.pi * soma["radius_um"] * soma["length_um"]
    assert lateral_area == pytest.approx(4 * np.pi * 10.0**2)  # the sphere's area


def test_tapered_run_duplicate_sample_and_custom_type():
    # one-sample soma r 5 -> cylinder 10 um, radius 5
    # dend_1: (0,5,0) r 2 -> (3,9,0) r 1.5 -> [same point again] -> (6,13,0) r 1: two 5 um
    #   steps with the radius falling 0.5 per step: linear, so start/end
    # type 7 continues from (6,13,0) r 1 to (6,13,12) r 1: its own section, 12 um
    assert read("tapered.swc") == [
        {"name": "soma", "length_um": 10.0, "radius_um": 5.0},
        {"name": "dend_1", "parent": "soma", "parent_x": 1.0, "length_um": 10.0,
         "radius_start_um": 2.0, "radius_end_um": 1.0},
        {"name": "custom7_1", "parent": "dend_1", "parent_x": 1.0, "length_um": 12.0,
         "radius_um": 1.0},
    ]


def test_unordered_file_gives_the_y_numbered_in_file_order():
    # the Y's samples shuffled: the same geometry; names count in the order in which each
    # section's first sample appears (daughter 2 on line 2, root on line 5, daughter 1 on
    # line 6), and the list still starts at the root with parents before children
    y_by_geometry = {(s["length_um"], s.get("parent") is None) for s in read("y.swc")}
    sections = read("unordered.swc")
    assert [s["name"] for s in sections] == ["dend_2", "dend_1", "dend_3"]
    assert {(s["length_um"], s.get("parent") is None) for s in sections} == y_by_geometry
    assert sections[0] == {"name": "dend_2", "length_um": 10.0, "radius_um": 1.0}
    assert sections[1]["parent"] == sections[2]["parent"] == "dend_2"
    assert sections[1]["profile_um"] == [[0.0, 1.0], [5.0, 0.5], [25.0, 0.5]]
    assert sections[2]["radius_start_um"] == 1.0 and sections[2]["length_um"] == 12.0


def test_soma_contour_is_a_section_along_its_samples():
    # (0,0,0) r 4 -> (3,4,0) r 5 -> (6,8,0) r 4: 10 um of frustums; the dendrite hangs from
    # the middle sample but attaches at the soma's end; it runs 10 um along y at r 1
    assert read("soma_contour.swc") == [
        {"name": "soma", "length_um": 10.0,
         "profile_um": [[0.0, 4.0], [5.0, 5.0], [10.0, 4.0]]},
        {"name": "dend_1", "parent": "soma", "parent_x": 1.0, "length_um": 10.0,
         "radius_um": 1.0},
    ]


def test_three_soma_samples_of_unequal_radius_are_a_chain_through_the_root():
    # sides r 5, centre r 4: not the three-point soma; the chain runs from the first side
    # (3,4,0) through the centre to (-3,-4,0): two 5 um steps
    assert read("soma_two_sided.swc") == [
        {"name": "soma", "length_um": 10.0,
         "profile_um": [[0.0, 5.0], [5.0, 4.0], [10.0, 5.0]]},
        {"name": "apic_1", "parent": "soma", "parent_x": 1.0, "length_um": 20.0,
         "radius_um": 1.0},
    ]


def test_a_root_fork_is_a_point_and_its_first_branch_the_root():
    # branches from (0,0,0): 5 um to (3,4,0) and 10 um along z; the second attaches at the
    # start of the first (x = 0), where the root point is
    assert read("root_fork.swc") == [
        {"name": "dend_1", "length_um": 5.0, "radius_um": 1.0},
        {"name": "dend_2", "parent": "dend_1", "parent_x": 0.0, "length_um": 10.0,
         "radius_um": 1.0},
    ]


def test_a_fork_at_a_neurites_first_sample_hangs_both_branches_from_the_soma():
    # (0,5,0) is the neurite's first sample and a fork: no section of its own; the
    # branches run 5 um to (3,9,0) and 10 um to (-6,13,0), both from the soma's end
    assert read("soma_fork.swc") == [
        {"name": "soma", "length_um": 10.0, "radius_um": 5.0},
        {"name": "dend_1", "parent": "soma", "parent_x": 1.0, "length_um": 5.0,
         "radius_um": 1.0},
        {"name": "dend_2", "parent": "soma", "parent_x": 1.0, "length_um": 10.0,
         "radius_um": 1.0},
    ]


def test_text_comments_blank_lines_and_integral_floats():
    text = ("# header\n\n1 1 0 0 0 2.0 -1.0   # root\n"
            "2\t3\t0\t2\t0\t0.5\t1\n3 3 0 2 7.5 0.5 2\n")
    assert sections_from_swc_text(text) == [
        {"name": "soma", "length_um": 4.0, "radius_um": 2.0},
        {"name": "dend_1", "parent": "soma", "parent_x": 1.0, "length_um": 7.5,
         "radius_um": 0.5},
    ]


BAD = [
    ("bad_columns.swc", 2, "found 6 columns", "7 columns"),
    ("bad_number.swc", 2, "'five' is not a number", "finite decimal number"),
    ("bad_integer.swc", 2, "2.5 is not an integer", "an integer"),
    ("bad_duplicate.swc", 3, "sample id 2 is used again (first on line 2)", "each id once"),
    ("bad_missing_parent.swc", 3, "parent 7 of sample 3 is not in the file", "-1 (the root)"),
    ("bad_cycle.swc", 3, "cycle 3 -> 4 -> 3", "lead to the root"),
    ("bad_two_roots.swc", 3, "a second root", "exactly one sample with parent -1"),
    ("bad_no_root.swc", 1, "no root", "exactly one sample with parent -1"),
    ("bad_radius_zero.swc", 2, "0 is not positive", "radius > 0"),
    ("bad_radius_negative.swc", 3, "-0.5 is not positive", "radius > 0"),
    ("bad_type_zero.swc", 2, "unknown sample type 0", "5 or more custom"),
    ("bad_type_negative.swc", 2, "unknown sample type -3", "5 or more custom"),
    ("bad_empty.swc", 1, "no samples", "7 columns"),
    ("bad_zero_length.swc", 4, "sample 4 ends a section of length 0", "positive length"),
    ("bad_one_sample_neurite.swc", 4, "hangs from the soma", "positive length"),
    ("bad_soma_branched.swc", 4, "more soma children", "unbranched chain"),
    ("bad_soma_not_root.swc", 3, "soma sample 3 (type 1) but the root on line 1",
     "unbranched chain"),
]


@pytest.mark.parametrize(("name", "line", "says", "allowed"), BAD,
                         ids=[case[0].removesuffix(".swc") for case in BAD])
def test_bad_file_names_file_line_and_what_is_allowed(name, line, says, allowed):
    path = DATA / name
    with pytest.raises(InvalidModelError) as caught:
        read_swc(path)
    error = caught.value
    message = error.one_line()
    assert message.startswith(f"{path}:{line}: "), message
    assert error.source == f"{path}:{line}"
    assert says in message and allowed in message
    assert "\n" not in str(error)
    assert error.exit_code == EXIT_USAGE and isinstance(error, ValueError)


@pytest.mark.parametrize(("text", "line", "says"), [
    ("1 1 0 0 0 5 -1\n2 3 0 5 0 1 2\n", 2, "its own parent"),
    ("1 1 0 0 0 5 -1\n2 3 0 5 0 1 0\n", 2, "0 is not a sample id"),
    ("0 1 0 0 0 5 -1\n", 1, "0 is not a positive integer"),
    ("1 1 0 0 0 1e999 -1\n", 1, "too large"),
    ("1 1 0 0 nan 5 -1\n", 1, "'nan' is not a number"),
    ("1 1 0 0 0 5 -1\n2 1 0 0 0 5 1\n", 1, "the soma's samples all lie at one point"),
    ("1 3 0 0 0 1 -1\n", 1, "sample 1 ends a section of length 0"),
])
def test_more_refusals_name_the_source_and_line(text, line, says):
    with pytest.raises(InvalidModelError, match=re.escape(says)) as caught:
        sections_from_swc_text(text, source="cell.swc")
    assert caught.value.source == f"cell.swc:{line}"


def test_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(InvalidModelError, match="cannot read the SWC file"):
        read_swc(tmp_path / "missing.swc")
    latin = tmp_path / "latin.swc"
    latin.write_bytes(b"# ok\n1 1 0 0 0 5 -1 # caf\xe9\n")
    with pytest.raises(InvalidModelError, match=re.escape(f"{latin}:2: not UTF-8")):
        read_swc(latin)


@st.composite
def neurite_trees(draw):
    """A tree without soma: each sample 1..n hangs from an earlier one, one integer step
    away (never zero), of type 3 or 4; the lines in a random order."""
    count = draw(st.integers(2, 25))
    samples = [(1, draw(st.sampled_from([3, 4])), (0, 0, 0), 1.0, -1)]
    for sample_id in range(2, count + 1):
        parent = draw(st.integers(1, sample_id - 1))
        step = draw(st.tuples(*[st.integers(-3, 3)] * 3).filter(any))
        origin = samples[parent - 1][2]
        samples.append((sample_id, draw(st.sampled_from([3, 4])),
                        tuple(a + b for a, b in zip(origin, step)),
                        draw(st.sampled_from([0.5, 1.0, 2.0])), parent))
    lines = [" ".join(str(v) for v in (i, t, *xyz, r, p)) for i, t, xyz, r, p in samples]
    return samples, draw(st.permutations(lines))


@given(neurite_trees())
def test_any_tree_keeps_its_total_length_and_lists_parents_first(tree):
    samples, lines = tree
    sections = sections_from_swc_text("\n".join(lines))
    steps = sum(float(np.linalg.norm(np.subtract(xyz, samples[parent - 1][2])))
                for _, _, xyz, _, parent in samples[1:])
    assert sum(s["length_um"] for s in sections) == pytest.approx(steps)
    assert "parent" not in sections[0]
    seen: set[str] = set()
    for section in sections:
        assert section.get("parent", sections[0]["name"]) in seen | {sections[0]["name"]}
        assert section.get("parent_x", 1.0) in (0.0, 1.0)
        assert section["length_um"] > 0
        assert len({"radius_um", "radius_start_um", "profile_um"} & set(section)) == 1
        assert section["name"] not in seen
        seen.add(section["name"])


_IMPORT3D = """
import json, re, sys
from neuron import h
h.load_file("stdlib.hoc"); h.load_file("import3d.hoc")
class Cell: pass
cell = Cell()
reader = h.Import3d_SWC_read(); reader.quiet = 1; reader.input(sys.argv[1])
h.Import3d_GUI(reader, False).instantiate(cell)
def name(sec):
    return re.sub(r".*\\.", "", sec.name())
out = []
for sec in h.allsec():
    parent = sec.parentseg()
    out.append({"name": name(sec), "parent": None if parent is None else name(parent.sec),
                "parent_x": None if parent is None else parent.x,
                "points": [[sec.arc3d(i), sec.diam3d(i) / 2] for i in range(sec.n3d())]})
print(json.dumps(out))
"""


def _neuron_name(name: str) -> str:
    """NEURON Import3d's ``dend[0]``, ``dend_7[0]`` as crosssim's ``dend_1``, ``custom7_1``."""
    match = re.fullmatch(r"(\w+?)(?:_(\d+))?\[(\d+)\]", name)
    assert match, name
    prefix, custom, index = match.groups()
    if prefix == "soma":
        return "soma"
    return f"custom{custom}_{int(index) + 1}" if custom else f"{prefix}_{int(index) + 1}"


def _radius_points(section: dict) -> list[list[float]]:
    length = section["length_um"]
    if "radius_um" in section:
        return [[0.0, section["radius_um"]], [length, section["radius_um"]]]
    if "radius_start_um" in section:
        return [[0.0, section["radius_start_um"]], [length, section["radius_end_um"]]]
    return section["profile_um"]


@requires_neuron
@pytest.mark.parametrize("name", ["y.swc", "three_point_soma.swc", "tapered.swc",
                                  "root_fork.swc"])
def test_neuron_import3d_reads_the_same_sections(name):
    """Names, lengths, radius profiles and parents as NEURON's Import3d builds them; the one
    intended difference is where neurites hang from the soma (NEURON 0.5, crosssim 1).

    Not unordered.swc: NEURON 9.0.2's Import3d_SWC_read crashes on it (SIGSEGV in
    check_pid, "Section access unspecified")."""
    completed = subprocess.run([sys.executable, "-c", _IMPORT3D, str(DATA / name)],
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    neuron_sections = {_neuron_name(s["name"]): s for s in json.loads(completed.stdout)}
    ours = read(name)
    assert sorted(s["name"] for s in ours) == sorted(neuron_sections)  # NEURON lists by type
    for section in ours:
        theirs = neuron_sections[section["name"]]
        points = np.array(_radius_points(section))
        their_points = np.array(theirs["points"])
        assert their_points[-1, 0] == pytest.approx(section["length_um"], rel=1e-6)
        at = np.union1d(points[:, 0], their_points[:, 0])
        np.testing.assert_allclose(np.interp(at, *points.T), np.interp(at, *their_points.T),
                                   rtol=1e-6)
        if "parent" not in section:
            assert theirs["parent"] is None
            continue
        assert _neuron_name(theirs["parent"]) == section["parent"]
        expected_x = 0.5 if section["parent"] == "soma" else section["parent_x"]
        assert theirs["parent_x"] == expected_x
