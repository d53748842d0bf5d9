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

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosssim.check import REFERENCES, UNSET, Runner, check, render_table
from crosssim.errors import BackendError, ToleranceExceededError

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.outcome import CheckOutcome

__all__ = ["assert_agree", "save_artifacts"]


def _effective_model(model: Model, overrides: dict[str, Any],
                     window_start_ms: float | None) -> Model:
    """``model`` with the tolerances :func:`check` applied written into ``[tolerance]``.

    A tolerance argument replaces the model-wide value and the per-probe ones (as in
    :func:`crosssim.check.probe_tolerance`), so ``crosssim check model.toml`` on the saved
    file gates exactly as the failing test did.  None ("report only") can be written for
    ``lumped_abs_mV`` only; the other two keep the model's value then.
    """
    tolerance = model.tolerance.model_dump(mode="json", exclude_none=True)
    given = {key: value for key, value in overrides.items()
             if value is not UNSET and (value is not None or key == "lumped_abs_mV")}
    for key, value in given.items():
        if value is None:
            tolerance.pop(key, None)
        else:
            tolerance[key] = float(value)
        for per_probe in tolerance.get("probes", {}).values():
            per_probe.pop(key, None)
    probes = {label: values for label, values in tolerance.pop("probes", {}).items() if values}
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
    from crosssim.result import results_to_frame
    from crosssim.io import atomic_open, atomic_write_text
    from crosssim.model import dumps_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "model.toml", dumps_model(model or outcome.model))
    atomic_write_text(folder / "check.json",
                      json.dumps(outcome.to_document(), indent=2, allow_nan=False) + "\n")
    if outcome.results:
        with atomic_open(folder / "traces.csv") as handle:
            results_to_frame(list(outcome.results.values())).to_csv(
                handle, index=False)
    return folder


def assert_agree(model: Model, *, backends: Sequence[str] | None = None,
                 references: Sequence[str] = REFERENCES,
                 backends_abs_mV: float | None = UNSET, analytic_abs_mV: float | None = UNSET,
                 lumped_abs_mV: float | None = UNSET, window_start_ms: float | None = None,
                 interpolate: bool = False, runner: Runner | None = None,
                 save_to: Path | str | None = None) -> CheckOutcome:
    """Check ``model`` (see :func:`crosssim.check.check`) and raise unless it passes.

    Tolerances in mV replace the model's (None: report only).  ``save_to``: a folder where
    the model, traces and check document are written when the check does not pass.
    Returns the outcome when every gated comparison is within tolerance.
    """
    __tracebackhide__ = True
    outcome = check(model, backends=backends, references=references,
                    backends_abs_mV=backends_abs_mV, analytic_abs_mV=analytic_abs_mV,
                    lumped_abs_mV=lumped_abs_mV, window_start_ms=window_start_ms,
                    interpolate=interpolate, runner=runner)
    if outcome.verdict == "pass":
        return outcome
    table = render_table(outcome)
    message = table.rsplit("\n", 1)[-1] + "\n\n" + table  # the verdict line first
    if save_to is not None:
        folder = save_artifacts(outcome, save_to, model=_effective_model(
            model, {"backends_abs_mV": backends_abs_mV, "analytic_abs_mV": analytic_abs_mV,
                    "lumped_abs_mV": lumped_abs_mV}, window_start_ms))
        command = f"crosssim check {folder / 'model.toml'}"
        if backends is not None:
            command += f" --backend {','.join(backends)}"
        message += (f"\nTo reproduce: model, traces and check document saved in {folder}; "
                    f"run: {command}")
    error: BackendError | ToleranceExceededError
    if outcome.verdict == "error":
        first = sorted(outcome.failures)[0]
        error = BackendError(first, "source(s) failed\n" + message)
    else:
        error = ToleranceExceededError(message)
    error.outcome = outcome  # type: ignore[attr-defined]
    raise error


def _fixture_factory(folder_for_failure: Any):  # used by the pytest plugin
    """An ``assert_agree`` that saves artifacts into ``folder_for_failure()`` on failure."""

    def agree(model: Model, **kwargs: Any) -> CheckOutcome:
        __tracebackhide__ = True
        kwargs.setdefault("save_to", folder_for_failure())
        return assert_agree(model, **kwargs)

    return agree
