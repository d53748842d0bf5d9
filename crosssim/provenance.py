"""Where results come from, in one place: the cache folder, package versions, the MOD
sources and their hash.

Nothing here imports a simulator: versions come from ``importlib.metadata`` (installed
distribution metadata), so asking is cheap and cannot crash.  Everything that records or
keys on provenance (the NEURON mechanism cache, the results cache, the report's
environment block, install hints) reads it from here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from crosssim.errors import MechanismBuildError, MechanismSourceError

_Built = TypeVar("_Built")

#: Distribution names under which each package may be installed, tried in order (the first
#: one is what ``pip install`` should be given).
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "crosssim": ("crosssim",),
    "neuron": ("neuron", "NEURON", "neuron-nightly", "neuron-gpu", "neuron-gpu-nightly"),
    "arbor": ("arbor",),
    "jaxley": ("jaxley",),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "numpy": ("numpy",),
}

#: Files of the MOD folder that are sources (hashed); anything else is a build product.
MOD_SUFFIXES = (".mod", ".inc")

__all__ = [
    "DISTRIBUTIONS",
    "MOD_SUFFIXES",
    "cache_base",
    "check_mod_files",
    "distribution_name",
    "mod_source_dir",
    "mod_source_hash",
    "package_version",
    "software_versions",
]


def cache_base() -> Path:
    """crosssim's cache folder: ``$CROSSSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/crosssim``,
    else ``~/.cache/crosssim`` (compiled mechanisms and the results cache live there)."""
    explicit = os.environ.get("CROSSSIM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "crosssim"


def build_once(name: str, backend: str, built: Callable[[Path], _Built | None],
               build: Callable[[Path], None]) -> _Built:
    """What ``built(folder)`` finds in the cache folder ``cache_base() / name``, building it
    first with ``build(folder)`` when it finds nothing.  Processes that ask at once build it
    once: the build runs under a file lock, and ``build`` must stage its work and rename it
    into place, so a folder is complete or absent.  Raises MechanismBuildError (for
    ``backend``) when the cache folder cannot be made."""
    root = cache_base()
    target = root / name
    found = built(target)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MechanismBuildError(
            backend, f"cannot create the cache folder {root}: {exc.strerror}; "
            "set CROSSSIM_CACHE_DIR to a writable folder") from exc
    from filelock import FileLock

    with FileLock(str(root / f".{name}.lock"), timeout=1800):
        if built(target) is None:
            build(target)
    found = built(target)
    if found is None:  # pragma: no cover - build() renames a complete folder into place
        raise MechanismBuildError(backend, f"the build left no result in {target}")
    return found


def distribution_name(package: str) -> str:
    """The name to give ``pip install`` for the top-level import name ``package``."""
    return DISTRIBUTIONS.get(package, (package,))[0]


def package_version(names: str | Iterable[str]) -> str | None:
    """The installed version of the first distribution in ``names`` found, else None.

    A single package name stands for every distribution it is known under
    (:data:`DISTRIBUTIONS`)."""
    import importlib.metadata  # 20-50 ms: imported by whoever asks for a version

    if isinstance(names, str):
        names = DISTRIBUTIONS.get(names, (names,))
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def mod_source_dir() -> Path:
    """The folder of crosssim's NMODL sources: ``crosssim/mod`` in a wheel, ``<repo>/mod`` in
    a source checkout (it may not exist in a broken install)."""
    try:
        packaged = importlib.resources.files("crosssim") / "mod"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError, TypeError):  # pragma: no cover
        pass
    return Path(__file__).resolve().parents[1] / "mod"


def check_mod_files(paths: Iterable[str | os.PathLike[str]], backend: str) -> list[Path]:
    """A user's MOD files as absolute paths, in the order given, after checking that each is
    a readable ``.mod`` file and that no two share a file name (both compilers need one
    folder of files).  Raises :class:`~crosssim.errors.MechanismSourceError` naming the file.
    """
    checked: list[Path] = []
    seen: dict[str, Path] = {}
    for given in paths:
        path = Path(given).expanduser().absolute()
        if path.suffix != ".mod":
            raise MechanismSourceError(backend, f"{path}: not a MOD file (the name must end "
                                       "in .mod)", path=str(path), reason="not a .mod file")
        if not path.is_file():
            raise MechanismSourceError(backend, f"{path}: no such MOD file", path=str(path),
                                       reason="no such file")
        try:
            path.read_bytes()
        except OSError as exc:
            raise MechanismSourceError(backend, f"{path}: cannot read it: {exc.strerror}",
                                       path=str(path), reason=str(exc.strerror)) from exc
        if path.name in seen:
            raise MechanismSourceError(
                backend, f"{path}: two MOD files named {path.name} (the other is "
                f"{seen[path.name]}); rename one", path=str(path), reason="duplicate name")
        seen[path.name] = path
        checked.append(path)
    return checked


def mod_source_hash(directory: Path | None = None) -> dict[str, Any]:
    """sha256 over the NMODL sources (:data:`MOD_SUFFIXES`) of the MOD folder: their sorted
    relative paths and contents (build products such as ``x86_64/`` do not count).

    Returns ``{"sha256": hex or None, "files": [relative paths]}``; ``sha256`` is None when
    the folder is missing or empty.
    """
    directory = mod_source_dir() if directory is None else directory
    if not directory.is_dir():
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


@functools.lru_cache(maxsize=1)
def software_versions() -> dict[str, str | None]:
    """Versions that change results: NEURON, Arbor, Jaxley and JAX, crosssim and the MOD
    sources' sha256."""
    from crosssim import __version__

    return {
        "neuron": package_version("neuron"),
        "arbor": package_version("arbor"),
        "jaxley": package_version("jaxley"),
        "jax": package_version("jax"),
        "crosssim": __version__,
        "mod_sha256": mod_source_hash()["sha256"],
    }
