"""crosssim: do two neuron simulators agree, by how much, and with the mathematics?

Importing crosssim imports neither ``arbor`` nor ``neuron``: backends load lazily.
"""

from crosssim.builtin import load_model  # a file, or a built-in model by name
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

__version__ = "0.1.0"

#: Names imported on first use (numpy and the registry are not needed by every import).
_LAZY = {"RunResult": "crosssim.result", "CheckOutcome": "crosssim.outcome",
         "Note": "crosssim.notes"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crosssim' has no attribute {name!r}")

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
