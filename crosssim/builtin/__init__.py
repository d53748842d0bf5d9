"""Built-in models, addressed by name on the command line (``crosssim run two_cells``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crosssim.errors import UsageError
from crosssim.model import Model, model_from_dict

#: The seed tutorial's cell parameters (Arbor "two cells connected via a gap junction").
SEED_CELL: dict[str, float] = {
    "length_um": 100.0,
    "radius_um": 3.0,
    "cm_F_per_m2": 0.005,
    "ra_ohm_cm": 90.0,
    "g_leak_S_per_cm2": 0.001,
}


def two_cells() -> Model:
    """The seed example: leak -100 / -60 mV, one 0.01 uS junction at the middles, 1 CV/cell."""
    return model_from_dict(
        {
            "name": "two_cells",
            "description": "Arbor tutorial: two cells with different leak potentials "
            "joined by one gap junction",
            "simulation": {"t_stop_ms": 5.0, "dt_ms": 0.01},
            "discretization": {"cvs_per_cell": 1},
            "cells": [
                {"name": "a", **SEED_CELL, "e_leak_mV": -100.0},
                {"name": "b", **SEED_CELL, "e_leak_mV": -60.0},
            ],
            "gap_junctions": [{"cells": ["a", "b"], "x": [0.5, 0.5], "g_uS": 0.01}],
            "probes": [
                {"cell": "a", "x": 0.5, "name": "a_gj"},
                {"cell": "b", "x": 0.5, "name": "b_gj"},
            ],
            # One CV per cell is the lumped model. Against the exact cable it is off by
            # 0.105 mV at t = 0.01 ms (the junction site of a real cable moves faster at
            # first) and by 0.025 mV at equilibrium; 0.2 mV gates that with headroom.
            # Refine (--set discretization.cvs_per_cell=101) to see both converge.
            "tolerance": {"backends_abs_mV": 1e-6, "analytic_abs_mV": 0.2},
        },
        source="<built-in two_cells>",
    )


#: name -> factory(**params) returning a Model.  Network generators register here too.
BUILTINS: dict[str, Callable[..., Model]] = {"two_cells": two_cells}
#: name -> the generator parameters it takes and their defaults (None: derived).
PARAMETERS: dict[str, dict[str, Any]] = {"two_cells": {}}


def register(name: str, factory: Callable[..., Model],
             parameters: Mapping[str, Any] | None = None) -> None:
    """Make ``factory`` available as built-in model ``name``; ``parameters`` (name ->
    default) are those it takes besides the named arguments of its signature."""
    import inspect

    BUILTINS[name] = factory
    named = {key: (None if p.default is inspect.Parameter.empty else p.default)
             for key, p in inspect.signature(factory).parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    PARAMETERS[name] = {**named, **dict(parameters or {})}


def builtin_parameters(name: str) -> dict[str, Any]:
    """The generator parameters of built-in model ``name`` and their defaults."""
    _load_generators()
    _known(name)
    return dict(PARAMETERS.get(name, {}))


def _known(name: str) -> Callable[..., Model]:
    try:
        return BUILTINS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTINS))
        raise UsageError(f"unknown built-in model {name!r}; known: {known}") from None


def builtin_model(name: str, params: Mapping[str, Any] | None = None) -> Model:
    """The built-in model ``name`` built with ``params``; UsageError lists the known names,
    or the parameters this model takes."""
    _load_generators()
    factory = _known(name)
    params = dict(params or {})
    allowed = PARAMETERS.get(name, {})
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = (f"allowed: {', '.join(sorted(allowed))}" if allowed
                 else "it takes no --param (use --set to change a field)")
        raise UsageError(f"built-in model {name!r}: unknown --param {', '.join(unknown)}; "
                         f"{takes}")
    return factory(**params)


#: Modules whose import registers more built-ins (generators, tree models), in order.
GENERATOR_MODULES = ("crosssim.builtin.networks", "crosssim.builtin.trees",
                     "crosssim.builtin.active")


def _load_generators() -> None:
    """Import the modules of :data:`GENERATOR_MODULES` (they register themselves) if
    present."""
    import importlib

    for module in GENERATOR_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def load_model(spec: str | Path) -> Model:
    """A model file, or the built-in model of that name when no such file exists
    (``load_model("two_cells")``, as the command line accepts; generator parameters:
    :func:`builtin_model`).  Exported as ``crosssim.load_model``."""
    from crosssim.model import load_model as load_file

    text = str(spec)
    if (not Path(spec).exists() and Path(spec).suffix == "" and "/" not in text
            and re.fullmatch(r"[A-Za-z0-9_]+", text)):
        _load_generators()
        if text in BUILTINS:
            return builtin_model(text)
    return load_file(spec)
