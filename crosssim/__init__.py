"""crosssim: do two neuron simulators agree, by how much, and with the mathematics?

Importing crosssim imports neither ``arbor`` nor ``neuron``: backends load lazily.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Every public name, imported on first use: ``import crosssim`` (and so the ``crosssim``
#: command before it picks a subcommand) loads neither pydantic nor numpy; a command can
#: start its child processes first.
_LAZY = {"load_model": "crosssim.builtin",  # a file, or a built-in model by name
         "CrossSimError": "crosssim.errors", "InvalidModelError": "crosssim.errors",
         **dict.fromkeys(("Cell", "Discretization", "GapJunction", "Model", "Probe",
                          "Simulation", "Stimulus", "Tolerance", "apply_overrides",
                          "loads_model", "model_from_dict"), "crosssim.model"),
         "RunResult": "crosssim.result", "CheckOutcome": "crosssim.outcome",
         "Note": "crosssim.notes"}

if TYPE_CHECKING:  # pragma: no cover - what the lazy names are, for type checkers
    from crosssim.builtin import load_model
    from crosssim.errors import CrossSimError, InvalidModelError
    from crosssim.model import (
        Cell,
        Discretization,
        GapJunction,
        Model,
        Probe,
        Simulation,
        Stimulus,
        Tolerance,
        apply_overrides,
        loads_model,
        model_from_dict,
    )


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'crosssim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Cell",
    "CheckOutcome",
    "CrossSimError",
    "Discretization",
    "GapJunction",
    "InvalidModelError",
    "Model",
    "Note",
    "Probe",
    "RunResult",
    "Simulation",
    "Stimulus",
    "Tolerance",
    "__version__",
    "apply_overrides",
    "load_model",
    "loads_model",
    "model_from_dict",
]
