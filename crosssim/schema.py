"""JSON Schemas of what crosssim reads and writes, generated from the types that define it.

* ``model``: the model file (TOML, or the same data as JSON), from the pydantic
  :class:`~crosssim.model.Model`;
* ``check``: the document of ``crosssim check --format json`` and ``check.json``, from the
  dataclasses of :mod:`crosssim.outcome` and :mod:`crosssim.notes`;
* ``report``: ``report.json``, the check document plus ``schema_version``, ``environment``
  and an optional ``convergence`` block;
* ``suite``: the document of ``crosssim check`` with several models (one check document per
  model, with its label, source and output paths), from :class:`crosssim.suite.SuiteOutcome`;
* ``suite-file``: a suite file (TOML) listing models with their settings, from the pydantic
  :class:`~crosssim.suite.SuiteFile`.

Nothing is written by hand twice: the field names, types and required keys come from the
classes.  One convention is added on top: JSON has no NaN, so every number may be ``null``
(a non-finite value).  ``crosssim schema NAME`` prints one; the same text ships in the
package (``crosssim/schemas/NAME.schema.json``, checked by the tests to be current).
"""

import functools
import json
import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from crosssim.decomposition import Decomposition
from crosssim.notes import Note
from crosssim.outcome import Comparison, SpikeCheck, Verdict
from crosssim.sources import SourceKind

SchemaName = Literal["model", "check", "report", "suite", "suite-file"]
SCHEMA_NAMES: tuple[SchemaName, ...] = ("model", "check", "report", "suite", "suite-file")
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

__all__ = ["SCHEMA_NAMES", "SchemaName", "schema", "schema_text"]


def _nullable_numbers(node: Any) -> Any:
    """``node`` with every ``"type": "number"`` widened to ``["number", "null"]`` (and a
    non-finite default, which JSON cannot carry, written as null)."""
    if isinstance(node, float) and not math.isfinite(node):
        return None
    if isinstance(node, dict):
        node = {key: _nullable_numbers(value) for key, value in node.items()}
        if node.get("type") == "number":
            node["type"] = ["number", "null"]
        return node
    if isinstance(node, list):
        return [_nullable_numbers(item) for item in node]
    return node


class SourceEntry(BaseModel):
    """A source that was asked for, and its kind."""

    name: str
    kind: SourceKind


class SourceError(BaseModel):
    """A source (or a pair of sources) that failed, and why."""

    source: str
    reason: str


class CheckDocument(BaseModel):
    """The document of ``crosssim check --format json`` (``CheckOutcome.to_document()``)."""

    model: str
    verdict: Verdict
    sources: list[SourceEntry]
    comparisons: list[Comparison]
    errors: list[SourceError]
    notes: list[Note]
    #: Written by every check since the decomposition was added; optional, so documents
    #: of earlier versions still validate.
    decomposition: list[Decomposition] = []
    #: Spike trains per pair and probe (active membranes); optional likewise.
    spikes: list[SpikeCheck] = []
    wall_time_s: dict[str, float]
    #: The files written for this check (role -> path), when any were written: ``folder``,
    #: ``check_json``, ``traces_csv``, ``report_html``, ``report_md``, ``junit``, ...
    outputs: dict[str, str] | None = None


class SuiteMemberDocument(BaseModel):
    """One model of a suite: its label (output folder), where it came from, its files and
    its check document."""

    label: str
    source: str
    outputs: dict[str, str]
    check: CheckDocument


class SuiteCounts(BaseModel):
    """How many models passed, failed and erred."""

    # a field called ``pass`` is not a Python name: aliases keep the JSON keys
    passed: int = Field(alias="pass")
    failed: int = Field(alias="fail")
    error: int


class SuiteDocument(BaseModel):
    """The document of ``crosssim check`` with several models
    (:meth:`crosssim.suite.SuiteOutcome.to_document`)."""

    verdict: Verdict
    exit_code: int
    counts: SuiteCounts
    suite_files: list[str]
    models: list[SuiteMemberDocument]
    #: Files written for the whole suite (``junit``, ``summary``).
    outputs: dict[str, str] | None = None


@functools.cache
def schema(name: SchemaName) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) called ``name`` (one of :data:`SCHEMA_NAMES`)."""
    if name == "model":
        from crosssim.model import Model

        body = Model.model_json_schema(mode="validation")
        title = "crosssim model file"
    elif name in ("check", "report"):
        body = _nullable_numbers(
            CheckDocument.model_json_schema(mode="serialization"))
        title = "crosssim check document"
        if name == "report":
            from crosssim.report.document import SCHEMA_VERSION

            title = "crosssim report.json"
            body["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
            body["properties"]["environment"] = {"type": "object"}
            body["properties"]["convergence"] = {"type": "object"}
            body["required"] = [*body["required"], "schema_version", "environment"]
    elif name == "suite":
        body = _nullable_numbers(SuiteDocument.model_json_schema(mode="serialization",
                                                                 by_alias=True))
        title = "crosssim suite document"
    elif name == "suite-file":
        from crosssim.suite import SuiteFile

        body = SuiteFile.model_json_schema(mode="validation")
        title = "crosssim suite file"
    else:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    body.pop("title", None)
    return {"$schema": _DRAFT, "title": title, **body}


def schema_text(name: SchemaName) -> str:
    """``schema(name)`` as indented JSON text ending in a newline (what ships)."""
    return json.dumps(schema(name), indent=2, sort_keys=False) + "\n"
