"""Safe handling of user input.

* nothing in crosssim evaluates or unpickles anything (an ``ast`` scan of the sources, with a
  self-test proving the scan finds each forbidden construct);
* user strings are escaped in the HTML report (text and attributes) and in JUnit XML (which
  an XML parser reads back, control characters included);
* names from model files (model, cell, probe) can never point outside, or hide inside, the
  output folder: only ``[A-Za-z0-9_.-]``, never starting with ``.``.
"""

from __future__ import annotations

import ast
import html.parser
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssim
from crosssim.errors import InvalidModelError

PACKAGE = Path(crosssim.__file__).resolve().parent

#: Modules that turn bytes into arbitrary objects (or run code while doing so).
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle",
                  "jsonpickle", "joblib"}
#: Builtins that run strings as code.
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}
#: module.function calls that run a shell or build objects from data.
UNSAFE_ATTRIBUTES = {("os", "system"), ("os", "popen"), ("yaml", "load"), ("yaml", "load_all"),
                     ("yaml", "unsafe_load"), ("yaml", "full_load"), ("pd", "read_pickle"),
                     ("pandas", "read_pickle"), ("torch", "load"),
                     ("asyncio", "create_subprocess_shell")}
#: Methods that pickle whatever object they are called on.
UNSAFE_METHODS = {"to_pickle", "read_pickle"}


def unsafe_constructs(source: str, filename: str = "<string>") -> list[str]:
    """Every forbidden construct in Python ``source``, as ``file:line: what``."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                found.append(f"{where}: from {node.module} import ...")
            found += [f"{where}: from {node.module} import {alias.name}" for alias in node.names
                      if (node.module.split(".")[0], alias.name) in UNSAFE_ATTRIBUTES]
        elif isinstance(node, ast.Call):
            function = node.func
            keywords = {k.arg: k.value for k in node.keywords}
            if isinstance(function, ast.Name) and function.id in UNSAFE_BUILTINS:
                found.append(f"{where}: {function.id}()")
            if isinstance(function, ast.Attribute):
                owner = function.value.id if isinstance(function.value, ast.Name) else None
                if (owner, function.attr) in UNSAFE_ATTRIBUTES:
                    found.append(f"{where}: {owner}.{function.attr}()")
                elif function.attr in UNSAFE_METHODS:
                    found.append(f"{where}: .{function.attr}()")
            shell = keywords.get("shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and not shell.value):
                found.append(f"{where}: a call with shell=True")
            pickle = keywords.get("allow_pickle")
            if pickle is not None and not (isinstance(pickle, ast.Constant) and not pickle.value):
                found.append(f"{where}: allow_pickle=True")
    return found


def test_the_scan_finds_every_forbidden_construct():
    snippet = "\n".join([
        "import pickle", "import marshal as m", "from shelve import open", "import dill",
        "eval('1')", "exec('x = 1')", "compile('1', 'f', 'eval')", "__import__('os')",
        "os.system('ls')", "os.popen('ls')", "yaml.load(text)", "yaml.unsafe_load(text)",
        "subprocess.run('ls', shell=True)", "subprocess.Popen(['ls'], shell=flag)",
        "np.load(path, allow_pickle=True)", "frame.to_pickle(path)", "pd.read_pickle(path)",
        "from yaml import load",
    ])
    found = unsafe_constructs(snippet)
    flagged = sorted(int(item.split(":")[1]) for item in found)
    assert flagged == list(range(1, 19)), "\n".join(found)  # each line, once
    harmless = "\n".join([
        "import json, tomllib, re", "re.compile('x')", "yaml.safe_load(text)",
        "subprocess.run(['ls'], shell=False)", "subprocess.run(['ls'])",
        "np.load(path, allow_pickle=False)", "model.evaluate()", "json.loads(text)",
    ])
    assert unsafe_constructs(harmless) == []


#: The one module allowed to pickle, and why: a command sends its figures' arguments to
#: its own child process over an anonymous pipe the parent created (no file, no socket:
#: nothing another party can write to), and reads back what that child returns.
PICKLES_OVER_OWN_PIPE = {"crosssim/report/figure_process.py": ["import pickle"]}


def test_no_crosssim_source_evaluates_or_unpickles_anything():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE.parent))
        allowed = PICKLES_OVER_OWN_PIPE.get(name, [])
        found += [line for line in unsafe_constructs(path.read_text(encoding="utf-8"), name)
                  if line.split(": ", 1)[1] not in allowed]
    assert found == [], "\n".join(found)


# Escaping --------------------------------------------------------------------------------------

HOSTILE = "<script>alert('x')</script> & \"quotes\" 'single' <&\"'>"
CONTROL = "\x00\x01\x08\x0b\x0c\x1b[31m\x7f"


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data):
        self.text += data


def test_html_report_escapes_user_strings_in_text_and_attributes(seed_model):
    from report_fixtures import handmade_outcome

    from crosssim.report.html import render_html

    model = seed_model.model_copy(update={"description": HOSTILE + CONTROL})
    outcome = handmade_outcome(model, probe=HOSTILE, failures={"neuron": HOSTILE + CONTROL})
    page = render_html(outcome, {"date_utc": HOSTILE}, given_toml=HOSTILE,
                       resolved_toml=HOSTILE + CONTROL, run_id=HOSTILE)
    parsed = _Collect()
    parsed.feed(page)
    parsed.close()
    assert "script" not in parsed.tags
    assert not [name for name, _ in parsed.attributes if name.startswith("on")]
    assert (HOSTILE + CONTROL) in parsed.text  # shown literally, control characters too
    # a probe name inside a quoted attribute comes back whole: the quotes did not end it
    assert ("data-probe", HOSTILE) in parsed.attributes


def test_junit_xml_round_trips_hostile_names_and_reasons(seed_model):
    from report_fixtures import handmade_outcome

    from crosssim.report.junit import junit_bytes

    outcome = handmade_outcome(seed_model, probe=HOSTILE + CONTROL,
                               failures={"neuron": HOSTILE + CONTROL + "\ufffd\U0001f600"})
    root = ET.fromstring(junit_bytes(outcome))  # well-formed, whatever the strings
    cases = root.iter("testcase")
    names = [case.get("name") for case in cases]
    shown = "?" * 6 + "[31m\x7f"  # characters XML 1.0 cannot carry become "?"
    assert f"arbor vs neuron @ {HOSTILE}{shown}" in names
    error = root.find(".//testcase[@name='source neuron']/error")
    assert error.text == HOSTILE + shown + "\ufffd\U0001f600"
    assert error.get("message") == f"neuron failed: {HOSTILE}{shown}\ufffd\U0001f600"


# Names cannot leave the output folder ----------------------------------------------------------


def _model_named(seed_model, **names: str):
    data = seed_model.to_dict()
    if "model" in names:
        data["name"] = names["model"]
    if "cell" in names:
        data["cells"][0]["name"] = names["cell"]
        data["gap_junctions"][0]["cells"][0] = names["cell"]
        data["probes"][0]["cell"] = names["cell"]
    if "probe" in names:
        data["probes"][0]["name"] = names["probe"]
    return crosssim.model_from_dict(data, source="names.toml")


@pytest.mark.parametrize("kind", ["model", "cell", "probe"])
@pytest.mark.parametrize("name", [".", "..", ".hidden", "../x", "a/b", "a\\b", "/abs", "",
                                  "a b", "a\x00", "~", "$HOME", "*"])
def test_names_that_could_escape_or_hide_are_refused(seed_model, kind, name):
    with pytest.raises(InvalidModelError) as caught:
        _model_named(seed_model, **{kind: name})
    assert "names.toml" in str(caught.value) and "name" in caught.value.field


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=12), st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True),
                 st.sampled_from(["..", ".", "...", "-", "_", "a..b", "..a", "a.."])))
def test_any_accepted_name_stays_a_visible_child_of_the_output_folder(name):
    from crosssim.builtin import builtin_model

    seed = builtin_model("two_cells")
    try:
        model = seed.replace(name=name)
    except InvalidModelError:
        return
    root = Path("/tmp/reports-root")
    target = root / model.name
    assert os.path.normpath(target) == str(target)  # no '.', '..' or '/' to resolve
    assert target.parent == root and not model.name.startswith(".")


@pytest.mark.parametrize("name", ["a..b", "x.", "-dash", "_under", "1.2.3"])
def test_unusual_but_safe_names_are_accepted_and_used_inside_the_folder(tmp_path, seed_model,
                                                                        name):
    """Default output folder reports/<model name> relative to the working directory."""
    import argparse

    from crosssim.commands.common import DEFAULT_REPORTS, output_dir

    model = _model_named(seed_model, model=name, cell=name, probe=name)
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        folder = output_dir(argparse.Namespace(out=None), model)
    finally:
        os.chdir(previous)
    assert folder == DEFAULT_REPORTS / name
    assert (tmp_path / folder).resolve().parent == (tmp_path / DEFAULT_REPORTS).resolve()


def test_junit_xml_survives_noncharacters(seed_model):
    from report_fixtures import handmade_outcome

    from crosssim.report.junit import junit_bytes

    outcome = handmade_outcome(seed_model, failures={"neuron": "x\ufffey\uffffz"})
    error = ET.fromstring(junit_bytes(outcome)).find(".//testcase[@name='source neuron']/error")
    assert error.text == "x?y?z"
