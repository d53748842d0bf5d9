"""crosssim: do two neuron simulators agree, by how much, and with the mathematics?

Importing crosssim imports neither ``arbor`` nor ``neuron``: backends load lazily.
"""

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
    load_model,
    loads_model,
    model_from_dict,
)

__version__ = "0.1.0"

__all__ = [
    "Cell",
    "CrossSimError",
    "Discretization",
    "GapJunction",
    "InvalidModelError",
    "Model",
    "Probe",
    "Simulation",
    "Stimulus",
    "Tolerance",
    "__version__",
    "apply_overrides",
    "load_model",
    "loads_model",
    "model_from_dict",
]
