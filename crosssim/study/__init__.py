"""Studies over many runs: convergence, parameter sweeps, their executors and results cache.

* :func:`converge` (:mod:`.convergence`): error against the exact cable solution as dt and the
  control volumes shrink, observed orders, Richardson extrapolation.
* :func:`sweep` (:mod:`.sweeps`): a full check at every point of a parameter grid.
* :mod:`.executors`: every simulation in its own process, on a local pool
  (:class:`LocalExecutor`) or a Dask cluster (:class:`DaskExecutor`); progress goes to any
  :class:`~crosssim.study.executors.TaskProgress` (the command line's is
  :class:`crosssim.report.progress.StudyProgress`).
* :mod:`.cache`: the content-addressed results cache (:class:`ResultsCache`).

Scripts that call these functions start child processes: put the call under
``if __name__ == "__main__":`` (as for :mod:`multiprocessing`).  Names are imported lazily,
so ``import crosssim.study`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "converge": "crosssim.study.convergence",
    "ConvergenceResult": "crosssim.study.convergence",
    "sweep": "crosssim.study.sweeps",
    "SweepResult": "crosssim.study.sweeps",
    "parse_grid": "crosssim.study.sweeps",
    "GridDimension": "crosssim.study.sweeps",
    "LocalExecutor": "crosssim.study.executors",
    "DaskExecutor": "crosssim.study.executors",
    "TaskProgress": "crosssim.study.executors",
    "SourceTask": "crosssim.study.executors",
    "make_executor": "crosssim.study.executors",
    "run_tasks": "crosssim.study.executors",
    "ResultsCache": "crosssim.study.cache",
    "cache_key": "crosssim.study.cache",
}

__all__ = [
    "ConvergenceResult",
    "DaskExecutor",
    "GridDimension",
    "LocalExecutor",
    "ResultsCache",
    "SourceTask",
    "SweepResult",
    "TaskProgress",
    "cache_key",
    "converge",
    "make_executor",
    "parse_grid",
    "run_tasks",
    "sweep",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crosssim.study' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
