"""Helpers for users' own test suites: ``assert_agree(model, ...)``.

    from crosssim.testing import assert_agree

    def test_my_model_agrees():
        assert_agree(my_model, backends=["arbor", "neuron"], analytic_abs_mV=0.05)

A deviation beyond tolerance raises :class:`~crosssim.errors.ToleranceExceededError` (an
``AssertionError``) whose message is the comparison table with numpy.testing style details;
a backend that is missing or failed raises :class:`~crosssim.errors.BackendError`.  Both
carry the :class:`~crosssim.outcome.CheckOutcome` as ``.outcome``.  The pytest plugin
(:mod:`crosssim.pytest_plugin`) adds a ``crosssim_agree`` fixture that also saves the model,
the traces and the check document for reproduction when the assertion fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosssim.check import UNSET, Runner, check
from crosssim.errors import BackendError, ToleranceExceededError

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.outcome import CheckOutcome

__all__ = ["assert_agree", "save_artifacts"]


def _effective_model(model: Model, overrides: Mapping[str, float | None],
                     window_start_ms: float | None) -> Model:
    """``model`` with the tolerances :func:`check` applied written into ``[tolerance]``.

    ``overrides``: gate (``backends`` or a reference's name) -> mV or None.  A tolerance
    argument replaces the model-wide value and the per-probe ones (as in
    :func:`crosssim.check.probe_tolerance`), so ``crosssim check model.toml`` on the saved
    file gates exactly as the failing test did.  None ("report only") is written by removing
    the value where the model allows that (``lumped_abs_mV``, any ``reference_abs_mV``);
    ``backends_abs_mV`` and ``analytic_abs_mV`` keep the model's value then.
    """
    from crosssim.model import Tolerance

    tolerance = model.tolerance.model_dump(mode="json", exclude_defaults=True)
    probes = tolerance.pop("probes", {})
    for gate, value in overrides.items():
        field = f"{gate}_abs_mV"
        named = field in Tolerance.model_fields
        if value is None and named and Tolerance.model_fields[field].default is not None:
            continue  # cannot be switched off in a model file
        tables = [tolerance, *probes.values()]
        for table in tables:
            if named:
                table.pop(field, None)
            else:
                table.get("reference_abs_mV", {}).pop(gate, None)
        if value is not None:
            if named:
                tolerance[field] = float(value)
            else:
                tolerance.setdefault("reference_abs_mV", {})[gate] = float(value)
    probes = {label: {key: value for key, value in values.items() if value not in ({}, None)}
              for label, values in probes.items()}
    probes = {label: values for label, values in probes.items() if values}
    if probes:
        tolerance["probes"] = probes
    if window_start_ms is not None:
        tolerance["window_start_ms"] = float(window_start_ms)
    return model.replace(tolerance=tolerance)


def save_artifacts(outcome: CheckOutcome, folder: Path | str, *,
                   model: Model | None = None) -> Path:
    """Write ``model.toml``, ``check.json`` and ``traces.csv`` (every source) into ``folder``.

    ``model``: the model to save instead of ``outcome.model`` (``assert_agree`` passes it
    with the tolerances it applied, so the saved file reproduces the verdict).
    """
    from crosssim.report.artifacts import write_check_artifacts

    write_check_artifacts(outcome, folder, model=model or outcome.model)
    return Path(folder)


def assert_agree(model: Model, *, backends: Sequence[str] | None = None,
                 references: Sequence[str] | None = None,
                 backends_abs_mV: float | None = UNSET, analytic_abs_mV: float | None = UNSET,
                 lumped_abs_mV: float | None = UNSET,
                 tolerances: Mapping[str, float | None] | None = None,
                 window_start_ms: float | None = None,
                 interpolate: bool = False, runner: Runner | None = None,
                 save_to: Path | str | None = None) -> CheckOutcome:
    """Check ``model`` (see :func:`crosssim.check.check`) and raise unless it passes.

    Tolerances in mV replace the model's (None: report only); ``tolerances`` is keyed by
    gate (``backends`` or a reference's name).  ``save_to``: a folder where the model,
    traces and check document are written when the check does not pass.  Returns the
    outcome when every gated comparison is within tolerance.  The message is the
    comparison table, notes included.
    """
    __tracebackhide__ = True
    outcome = check(model, backends=backends, references=references,
                    backends_abs_mV=backends_abs_mV, analytic_abs_mV=analytic_abs_mV,
                    lumped_abs_mV=lumped_abs_mV, tolerances=tolerances,
                    window_start_ms=window_start_ms, interpolate=interpolate, runner=runner)
    if outcome.verdict == "pass":
        return outcome
    from crosssim.report.text import render_table

    table = render_table(outcome)
    message = table.rsplit("\n", 1)[-1] + "\n\n" + table  # the verdict line first
    if save_to is not None:
        given = {gate: value for gate, value in (("backends", backends_abs_mV),
                                                 ("analytic", analytic_abs_mV),
                                                 ("lumped", lumped_abs_mV))
                 if value is not UNSET}
        given.update(tolerances or {})
        folder = save_artifacts(outcome, save_to,
                                model=_effective_model(model, given, window_start_ms))
        command = f"crosssim check {folder / 'model.toml'}"
        if backends is not None:
            command += f" --backend {','.join(backends)}"
        if references is not None:
            command += f" --references {','.join(references) or 'none'}"
        message += (f"\nTo reproduce: model, traces and check document saved in {folder}; "
                    f"run: {command}")
    error: BackendError | ToleranceExceededError
    if outcome.verdict == "error":
        first = sorted(outcome.failures)[0]
        error = BackendError(first, "source(s) failed\n" + message)
    else:
        error = ToleranceExceededError(message)
    setattr(error, "outcome", outcome)  # noqa: B010 - documented attribute of both errors
    raise error


def _fixture_factory(folder_for_failure: Any):  # used by the pytest plugin
    """An ``assert_agree`` that saves artifacts into ``folder_for_failure()`` on failure."""

    def agree(model: Model, **kwargs: Any) -> CheckOutcome:
        __tracebackhide__ = True
        kwargs.setdefault("save_to", folder_for_failure())
        return assert_agree(model, **kwargs)

    return agree
