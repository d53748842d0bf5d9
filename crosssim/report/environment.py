"""Where a result came from: package versions, platform, source hashes, date, wall times.

Nothing here imports a simulator: versions come from ``importlib.metadata`` (installed
distribution metadata), so collecting the environment is cheap and cannot crash.
"""

from __future__ import annotations

import datetime as _datetime
import hashlib
import importlib.metadata
import importlib.resources
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.outcome import CheckOutcome

#: Distribution names under which each package may be installed, tried in order.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "crosssim": ("crosssim",),
    "neuron": ("neuron", "NEURON", "neuron-nightly", "neuron-gpu"),
    "arbor": ("arbor",),
    "numpy": ("numpy",),
}

#: Files of the MOD folder that are sources (hashed); anything else is a build product.
MOD_SUFFIXES = (".mod", ".inc")


def package_version(names: Iterable[str]) -> str | None:
    """The installed version of the first distribution in ``names`` found, else None."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def mod_directory() -> Path | None:
    """The folder of crosssim's NMODL sources: packaged ``crosssim/mod``, else ``<repo>/mod``."""
    try:
        packaged = importlib.resources.files("crosssim") / "mod"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - odd installs
        pass
    repo_mod = Path(__file__).resolve().parents[2] / "mod"
    return repo_mod if repo_mod.is_dir() else None


def mod_source_hash(directory: Path | None = None) -> dict[str, Any]:
    """sha256 over the NMODL sources (:data:`MOD_SUFFIXES`) of the MOD folder: their sorted
    relative paths and contents (build products such as ``x86_64/`` do not count).

    Returns ``{"sha256": hex or None, "files": [relative paths]}``; ``sha256`` is None when
    the folder is missing or empty.
    """
    directory = mod_directory() if directory is None else directory
    if directory is None or not directory.is_dir():
        return {"sha256": None, "files": []}
    files = sorted(path for path in directory.rglob("*")
                   if path.is_file() and path.suffix.lower() in MOD_SUFFIXES
                   and not any(part.startswith(".")
                               for part in path.relative_to(directory).parts))
    if not files:
        return {"sha256": None, "files": []}
    digest = hashlib.sha256()
    names = []
    for path in files:
        relative = path.relative_to(directory).as_posix()
        names.append(relative)
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {"sha256": digest.hexdigest(), "files": names}


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
