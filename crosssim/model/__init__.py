"""The neutral model: passive cells (unbranched cables or section trees) joined by gap junctions.

A model is plain frozen data (pydantic models) whose field names carry their units.  It is
built from a TOML file (:func:`load_model`), a dict (:func:`model_from_dict`) or Python
objects, validated once, and never belongs to one simulator.

Conventions used everywhere in crosssim:

* positions ``x`` run from 0 to 1 along a cable (0 is the first end);
* cables have sealed ends;
* a sample grid is ``t = k * sample_dt_ms`` for ``k = 0 .. t_stop_ms / sample_dt_ms``
  (both ends included).

The package, imported in one direction (each module only from those above it):

* :mod:`~crosssim.model.schema`: the frozen classes, their validators, the format's limits;
* :mod:`~crosssim.model.validation_errors`: pydantic's errors as one-line
  :class:`~crosssim.errors.InvalidModelError`;
* :mod:`~crosssim.model.loading`: TOML in and out;
* :mod:`~crosssim.model.overrides`: the ``--set PATH=VALUE`` path language
  (:func:`resolve_path`, :func:`path_problem`, :func:`apply_overrides`).
"""

from crosssim.model.loading import (
    dump_model,
    dumps_model,
    load_model,
    loads_model,
    model_from_dict,
)
from crosssim.model.overrides import (
    ResolvedPath,
    apply_overrides,
    parse_override,
    path_problem,
    resolve_path,
)
from crosssim.model.schema import (
    MAX_CVS_PER_CELL,
    MAX_STEPS,
    NAME_ALLOWED,
    NAME_PATTERN,
    ROOT_SECTION,
    ArborOptions,
    BackendOptions,
    Cell,
    Discretization,
    GapJunction,
    Model,
    NeuronOptions,
    Probe,
    ProbeTolerance,
    Section,
    Simulation,
    Stimulus,
    Tolerance,
)

__all__ = [
    "MAX_CVS_PER_CELL",
    "MAX_STEPS",
    "NAME_ALLOWED",
    "NAME_PATTERN",
    "ArborOptions",
    "BackendOptions",
    "Cell",
    "Discretization",
    "GapJunction",
    "Model",
    "NeuronOptions",
    "ROOT_SECTION",
    "Probe",
    "ProbeTolerance",
    "ResolvedPath",
    "Section",
    "Simulation",
    "Stimulus",
    "Tolerance",
    "apply_overrides",
    "dump_model",
    "dumps_model",
    "load_model",
    "loads_model",
    "model_from_dict",
    "parse_override",
    "path_problem",
    "resolve_path",
]
