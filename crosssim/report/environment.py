"""Where a result came from: package versions, platform, source hashes, date, wall times.

Nothing here imports a simulator: versions come from ``importlib.metadata`` (installed
distribution metadata), so collecting the environment is cheap and cannot crash.
"""

from __future__ import annotations

import datetime as _datetime
import hashlib
import platform
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crosssim.provenance import DISTRIBUTIONS, mod_source_hash, package_version

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.outcome import CheckOutcome

def model_hash(model: Model) -> str:
    """sha256 (hex) of the resolved model TOML: equal models give equal hashes."""
    from crosssim.model import dumps_model

    return hashlib.sha256(dumps_model(model, resolved=True).encode("utf-8")).hexdigest()


def wall_times(outcome: CheckOutcome) -> dict[str, float]:
    """Seconds per source: the check's own record, else each result's ``wall_time_s``."""
    times = {name: float(result.wall_time_s) for name, result in outcome.results.items()}
    times.update({name: float(value) for name, value in outcome.wall_time_s.items()})
    return times


def collect_environment(outcome: CheckOutcome, *,
                        now: _datetime.datetime | None = None) -> dict[str, Any]:
    """The ``environment`` block of a report (JSON-ready).

    Keys: ``crosssim``, ``neuron``, ``arbor``, ``numpy`` (installed versions or None),
    ``python``, ``platform``, ``machine``, ``mod_sha256``, ``mod_files``, ``model_sha256``,
    ``date_utc`` (ISO 8601, seconds, ``Z``), ``wall_time_s`` (source -> seconds).
    """
    now = now or _datetime.datetime.now(_datetime.timezone.utc)
    mod = mod_source_hash()
    environment: dict[str, Any] = {
        name: package_version(distributions) for name, distributions in DISTRIBUTIONS.items()
    }
    environment.update({
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "mod_sha256": mod["sha256"],
        "mod_files": mod["files"],
        "model_sha256": model_hash(outcome.model),
        "date_utc": now.astimezone(_datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_time_s": wall_times(outcome),
    })
    return environment


def source_details(outcome: CheckOutcome) -> dict[str, Mapping[str, Any]]:
    """Each source's ``RunResult.info`` (versions, CV counts, method) by source name."""
    return {name: dict(result.info) for name, result in outcome.results.items()}
