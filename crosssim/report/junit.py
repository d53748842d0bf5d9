"""JUnit XML of a check, for CI systems: one test case per comparison, one per failed source.

A check of several models (a suite) is one ``<testsuite>`` per model in one file.

* ``classname`` is the model name, ``name`` is ``"<a> vs <b> @ <probe>"``;
* a comparison over its tolerance carries a ``<failure>`` whose text is the numpy.testing
  style message (:func:`crosssim.report.text.failure_message`);
* a comparison that is only reported (not gated) is ``<skipped>`` with its numbers, so a CI
  never counts it as a passing test;
* a source that is missing or failed is a test case ``"source <name>"`` with an ``<error>``;
* every note that explains the result is a suite property ``note.<i>.<kind>`` and is
  appended to each failure's text and to the suite's ``<system-out>``.

The XML is built with :mod:`xml.etree.ElementTree`, which escapes every name and message.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.outcome import CheckOutcome
    from crosssim.suite import SuiteOutcome

__all__ = ["junit_bytes", "junit_element", "write_junit"]


def _clean(text: str) -> str:
    """``text`` without the control characters XML 1.0 cannot carry (escaping is ET's job)."""
    return "".join(ch if _xml_allowed(ord(ch)) else "?" for ch in text)


def _xml_allowed(code: int) -> bool:
    """True for the code points XML 1.0 may carry (its ``Char`` production)."""
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def junit_element(outcome: CheckOutcome | SuiteOutcome) -> ET.Element:
    """The ``<testsuites>`` element of ``outcome``: one ``<testsuite>`` for a check, one per
    model for a suite (:class:`~crosssim.suite.SuiteOutcome`), named by its label."""
    from crosssim.suite import SuiteOutcome

    if isinstance(outcome, SuiteOutcome):
        members = [(result.member.label, result.outcome) for result in outcome.results]
        name = f"crosssim check ({len(members)} models)"
    else:
        members = [(outcome.model.name, outcome)]
        name = f"crosssim check {outcome.model.name}"
    suites = [_testsuite(label, member) for label, member in members]
    totals = {key: sum(int(suite.attrib[key]) for suite in suites)
              for key in ("tests", "failures", "errors", "skipped")}
    seconds = sum(float(suite.attrib["time"]) for suite in suites)
    root = ET.Element("testsuites", {"name": name, **{k: str(v) for k, v in totals.items()},
                                     "time": f"{seconds:.3f}"})
    root.extend(suites)
    return root


def _testsuite(label: str, outcome: CheckOutcome) -> ET.Element:
    """The ``<testsuite>`` of one check, its test cases named ``classname`` = ``label``."""
    from crosssim.report.text import failure_message

    model = label
    comparisons = outcome.comparisons
    notes_text = "".join("\n" + note.text() for note in outcome.notes)
    spikes = outcome.spikes
    n_failures = (sum(1 for c in comparisons if c.passed is False)
                  + sum(1 for spike in spikes if spike.passed is False))
    n_errors = len(outcome.failures)
    n_skipped = (sum(1 for c in comparisons if c.passed is None)
                 + sum(1 for spike in spikes if spike.passed is None))
    total_time = sum(outcome.wall_time_s.values())
    attributes = {
        "name": f"crosssim check {model}",
        "tests": str(len(comparisons) + len(spikes) + n_errors),
        "failures": str(n_failures),
        "errors": str(n_errors),
        "skipped": str(n_skipped),
        "time": f"{total_time:.3f}",
    }
    suite = ET.Element("testsuite", attributes)
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "verdict", "value": outcome.verdict})
    for index, note in enumerate(outcome.notes):
        ET.SubElement(properties, "property",
                      {"name": f"note.{index}.{_clean(note.kind)}", "value": _clean(note.text())})
    for name, seconds in sorted(outcome.wall_time_s.items()):
        ET.SubElement(properties, "property",
                      {"name": f"wall_time_s.{_clean(name)}", "value": f"{seconds:.3f}"})

    for name, reason in sorted(outcome.failures.items()):
        case = ET.SubElement(suite, "testcase", {
            "classname": _clean(model), "name": _clean(f"source {name}"),
            "time": f"{outcome.wall_time_s.get(name, 0.0):.3f}"})
        error = ET.SubElement(case, "error", {"message": _clean(f"{name} failed: {reason}"),
                                              "type": "BackendError"})
        error.text = _clean(reason)

    for c in comparisons:
        case = ET.SubElement(suite, "testcase", {
            "classname": _clean(model), "name": _clean(f"{c.a} vs {c.b} @ {c.probe}"),
            "time": "0"})
        if c.passed is False:
            message = failure_message(c, outcome.decomposition) + notes_text
            failure = ET.SubElement(case, "failure", {
                "message": _clean(f"max |{c.a} - {c.b}| = {c.max_abs_mV:.6g} mV at "
                                  f"t = {c.t_max_abs_ms:g} ms > tolerance {c.tolerance_mV:g} mV"),
                "type": "ToleranceExceededError"})
            failure.text = _clean(message)
        else:
            numbers = (f"max |{c.a} - {c.b}| = {c.max_abs_mV:.6g} mV at "
                       f"t = {c.t_max_abs_ms:g} ms, rms {c.rms_mV:.6g} mV")
            if c.passed is None:
                ET.SubElement(case, "skipped", {
                    "message": _clean(f"reported, not gated: {numbers}")})
            else:
                out = ET.SubElement(case, "system-out")
                out.text = _clean(f"{numbers}; within tolerance {c.tolerance_mV:g} mV")
    for spike in spikes:
        case = ET.SubElement(suite, "testcase", {
            "classname": _clean(model),
            "name": _clean(f"spikes {spike.a} vs {spike.b} @ {spike.probe}"), "time": "0"})
        if spike.passed is False:
            failure = ET.SubElement(case, "failure", {"message": _clean(spike.message),
                                                      "type": "SpikeMismatchError"})
            failure.text = _clean(spike.message + notes_text)
        elif spike.passed is None:
            ET.SubElement(case, "skipped", {"message": _clean(f"reported, not gated: "
                                                              f"{spike.message}")})
        else:
            ET.SubElement(case, "system-out").text = _clean(spike.message)
    if outcome.notes:
        out = ET.SubElement(suite, "system-out")
        out.text = _clean(notes_text.lstrip("\n"))
    return suite


def junit_bytes(outcome: CheckOutcome | SuiteOutcome) -> bytes:
    """The JUnit XML document as UTF-8 bytes, with an XML declaration."""
    root = junit_element(outcome)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(outcome: CheckOutcome | SuiteOutcome, path: Path | str) -> Path:
    """Write the JUnit XML of ``outcome`` to ``path`` atomically; return the path."""
    from crosssim.files import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, junit_bytes(outcome))
    return path
