"""Several models checked as one suite: one verdict, one exit code, one JSON document.

A suite is made of *members*: a model (a file or a built-in network) with the overrides,
tolerances and window it is checked with, under a *label* that names its output folder.
Members come from the command line (``crosssim check a.toml 'models/*.toml' ring``) and
from suite files, TOML files that list models with their settings::

    # ci/suite.toml
    [[models]]
    model = "../models/soma.toml"        # a path relative to this file, a glob, or a built-in
    [[models]]
    model = "ring"
    name = "ring-20"                     # the label (default: the model's name)
    params = { n_cells = 20 }            # generator parameters (built-in networks only)
    set = ["discretization.cvs_per_cell=3"]
    tolerance = { analytic = 0.5, backends = 1e-9 }   # gate -> mV ("none": report only)
    window_start_ms = 0.02

:func:`load_members` resolves every argument into members (refusing before anything runs
when one is invalid); :func:`check_suite` checks each with :func:`crosssim.check.check` and
returns a :class:`SuiteOutcome`, whose verdict is the worst of its members' (error, then
fail, then pass) and whose :meth:`SuiteOutcome.to_document` is the JSON document of
``crosssim check`` with several models (schema ``crosssim schema suite``).
"""

from __future__ import annotations

import glob
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crosssim.errors import EXIT_BACKEND, EXIT_DEVIATION, EXIT_OK, InvalidModelError, UsageError
from crosssim.model import NAME_PATTERN, Model, apply_overrides, load_model, parse_override

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.outcome import CheckOutcome, Verdict

__all__ = ["SuiteEntry", "SuiteFile", "SuiteMember", "SuiteOutcome", "SuiteResult",
           "check_suite", "is_suite_file", "load_members", "load_model_spec"]

_GLOB = re.compile(r"[*?\[]")


class SuiteEntry(BaseModel):
    """One ``[[models]]`` entry of a suite file."""

    # validators built when a suite file is first read, not by every ``check``
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    model: str = Field(min_length=1, description="a model file (relative to the suite "
                       "file), a glob of model files, or a built-in model name")
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NAME_PATTERN,
                             description="the label of this member (its output folder); "
                             "default: the model's name")
    set: list[str] = Field(default_factory=list,
                           description="overrides PATH=VALUE, as --set")
    params: dict[str, bool | int | float | str] = Field(
        default_factory=dict, description="parameters of a built-in network generator")
    tolerance: dict[str, float | Literal["none"]] = Field(
        default_factory=dict, description="gate (backends or a reference's name) -> mV, "
        "or 'none' to report only; replaces the model's tolerance for every probe")
    window_start_ms: float | None = Field(default=None, ge=0,
                                          description="ignore samples before this time")


class SuiteFile(BaseModel):
    """A suite file: the models a CI job checks, with their settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    description: str | None = None
    models: list[SuiteEntry] = Field(min_length=1)


@dataclass
class SuiteMember:
    """A model as the suite checks it.

    ``label`` names it in every output (and its output folder); ``source`` says where it
    came from (a path, ``<built-in ring>``, ``suite.toml: models.2``); ``tolerances`` (gate
    -> mV or None) and ``window_start_ms`` come from a suite file (empty / None: the
    model's own).
    """

    label: str
    source: str
    model: Model
    tolerances: dict[str, float | None] = field(default_factory=dict)
    window_start_ms: float | None = None


@dataclass
class SuiteResult:
    """One member's check and the files written for it (role -> path)."""

    member: SuiteMember
    outcome: CheckOutcome
    outputs: dict[str, str] = field(default_factory=dict)


_SEVERITY: dict[str, int] = {"pass": 0, "fail": 1, "error": 2}


@dataclass
class SuiteOutcome:
    """Every member's check; the verdict is the worst of theirs."""

    results: list[SuiteResult]
    #: The suite files the members came from.
    suite_files: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """``error`` if any member's is, else ``fail`` if any member's is, else ``pass``."""
        worst = max((r.outcome.verdict for r in self.results), key=_SEVERITY.__getitem__,
                    default="pass")
        return worst  # type: ignore[return-value]

    @property
    def exit_code(self) -> int:
        """3 for error, 1 for fail, 0 for pass (as one check)."""
        return {"pass": EXIT_OK, "fail": EXIT_DEVIATION, "error": EXIT_BACKEND}[self.verdict]

    def counts(self) -> dict[str, int]:
        """How many members passed, failed and erred."""
        counts = {"pass": 0, "fail": 0, "error": 0}
        for result in self.results:
            counts[result.outcome.verdict] += 1
        return counts

    def to_document(self) -> dict[str, Any]:
        """The JSON document of ``crosssim check`` with several models."""
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "suite_files": list(self.suite_files),
            "models": [{"label": r.member.label, "source": r.member.source,
                        "outputs": dict(r.outputs), "check": r.outcome.to_document()}
                       for r in self.results],
        }


def is_suite_file(path: Path) -> bool:
    """Whether ``path`` is a TOML file with a top-level ``models`` list (a model file never
    has one: unknown keys are errors there)."""
    if path.suffix.lower() != ".toml" or not path.is_file():
        return False
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # load_model says what is wrong with it
    return isinstance(data.get("models"), list) and "cells" not in data


def load_suite_file(path: Path) -> SuiteFile:
    """Read and validate a suite file (InvalidModelError naming the file and the key)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return SuiteFile.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidModelError(f"not valid TOML: {exc}", source=str(path)) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidModelError(error["msg"], source=str(path), field=where,
                                allowed="see 'crosssim schema suite-file'") from None


def load_model_spec(spec: str, *, params: Mapping[str, Any] | None = None,
                    overrides: Sequence[str] = (), base: Path | None = None,
                    ) -> tuple[Model, str]:
    """The model named by ``spec`` (a ``.toml`` file, relative to ``base`` when given, or a
    built-in name) with ``params`` (built-ins only) and ``overrides`` applied, and the
    source that names it in messages.  Raises InvalidModelError / UsageError."""
    path = Path(spec) if base is None else base / spec
    if Path(spec).suffix.lower() == ".toml" or path.exists() or "/" in spec:
        if params:
            raise UsageError(f"{spec}: --param applies to built-in network models, not to "
                             "model files")
        model = load_model(path)
        source = str(path)
    else:
        from crosssim.builtin import builtin_model

        model = builtin_model(spec, dict(params or {}))
        source = f"<built-in {spec}>"
    if overrides:
        source = f"{source} --set"
        model = apply_overrides(model, list(overrides), source=source)
    return model, source


def _expand(spec: str, base: Path | None) -> list[str]:
    """A glob as the sorted files it matches (UsageError when none), anything else as is."""
    if not _GLOB.search(spec):
        return [spec]
    pattern = str(base / spec) if base is not None else spec
    matches = sorted(glob.glob(pattern))
    if not matches:
        raise UsageError(f"{spec}: matches no file")
    if base is not None:
        return [str(Path(match).relative_to(base)) if Path(match).is_relative_to(base)
                else match for match in matches]
    return matches


def _tolerances(entry: SuiteEntry) -> dict[str, float | None]:
    return {gate: None if value == "none" else float(value)
            for gate, value in entry.tolerance.items()}


def load_members(specs: Sequence[str], *, params: Mapping[str, Any] | None = None,
                 overrides: Sequence[str] = (),
                 check: Callable[[Model, str], None] | None = None,
                 ) -> tuple[list[SuiteMember], list[str]]:
    """Every model ``specs`` name (files, globs, built-in names, suite files), as members
    with unique labels, and the suite files read.

    ``params`` apply to every built-in model of the command line (UsageError when there is
    none), ``overrides`` (``--set``) to every member after its suite file's own.
    ``check(model, source)`` vets each model (e.g. its size) before anything runs.
    """
    members: list[SuiteMember] = []
    suite_files: list[str] = []
    used_params = False
    for spec in specs:
        for item in _expand(spec, None):
            path = Path(item)
            if is_suite_file(path):
                suite_files.append(str(path))
                members += _suite_members(path, overrides, check)
                continue
            builtin = not (path.suffix.lower() == ".toml" or path.exists() or "/" in item)
            used_params = used_params or builtin
            model, source = load_model_spec(item, params=params if builtin else None,
                                            overrides=overrides)
            if check is not None:
                check(model, source)
            members.append(SuiteMember(label=model.name, source=source, model=model))
    if params and not used_params:
        raise UsageError("--param applies to built-in network models, not to model files")
    _unique_labels(members)
    return members, suite_files


def _suite_members(path: Path, overrides: Sequence[str],
                   check: Callable[[Model, str], None] | None) -> list[SuiteMember]:
    suite = load_suite_file(path)
    base = path.parent
    members = []
    for index, entry in enumerate(suite.models):
        items = _expand(entry.model, base)
        for item in items:
            try:
                model, source = load_model_spec(item, params=entry.params, base=base,
                                                overrides=[*entry.set, *overrides])
            except UsageError as exc:
                raise UsageError(f"{path}: models.{index}: {exc.one_line()}") from None
            if check is not None:
                check(model, source)
            label = entry.name or model.name
            if entry.name and len(items) > 1:
                label = f"{entry.name}-{model.name}"
            members.append(SuiteMember(label=label, source=source, model=model,
                                       tolerances=_tolerances(entry),
                                       window_start_ms=entry.window_start_ms))
    return members


def _unique_labels(members: list[SuiteMember]) -> None:
    """Make labels unique in place: a repeated one gets ``-2``, ``-3``, ..."""
    seen: dict[str, int] = {}
    taken = {member.label for member in members}
    for member in members:
        count = seen.get(member.label, 0) + 1
        seen[member.label] = count
        if count > 1:
            label = f"{member.label}-{count}"
            while label in taken:
                count += 1
                label = f"{member.label}-{count}"
            taken.add(label)
            member.label = label


def check_suite(members: Iterable[SuiteMember], *,
                tolerances: Mapping[str, float | None] | None = None,
                window_start_ms: float | None = None,
                on_result: Callable[[SuiteResult], None] | None = None,
                suite_files: Sequence[str] = (), **options: Any) -> SuiteOutcome:
    """Check every member with :func:`crosssim.check.check` and return the suite's outcome.

    ``tolerances`` (gate -> mV) and ``window_start_ms`` replace the members' own (the
    command line wins over a suite file, which wins over the model).  ``options`` go to
    every check (backends, references, progress, traces, ...).  ``on_result`` is called
    after each member (to write its files while the next one runs).
    """
    from crosssim.check import check

    results = []
    for member in members:
        gates = {**member.tolerances, **(tolerances or {})}
        window = window_start_ms if window_start_ms is not None else member.window_start_ms
        outcome = check(member.model, tolerances=gates, window_start_ms=window, **options)
        result = SuiteResult(member, outcome)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return SuiteOutcome(results, suite_files=list(suite_files))


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``--param KEY=VALUE`` items as a dict (values parsed as in ``--set``)."""
    params: dict[str, Any] = {}
    for item in items:
        key, value = parse_override(item)
        params[key] = value
    return params
