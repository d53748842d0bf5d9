"""The MOD compile cache: crosssim's NMODL mechanisms, compiled once per machine and version.

:func:`ensure_mechanisms` compiles the MOD files with ``nrnivmodl`` on first use (never at
import time) into ``<cache>/mod-<hash>``, where ``<cache>`` is ``$CROSSSIM_CACHE_DIR``, else
``$XDG_CACHE_HOME/crosssim``, else ``~/.cache/crosssim``, and ``<hash>`` is the SHA-256 of
the MOD sources, the NEURON version and the machine type.  Later calls find the folder and
compile nothing.  Concurrent first calls are safe: the build happens in a temporary folder
beside the target, renamed into place atomically while holding a ``filelock.FileLock``.
Every ``nrnivmodl`` run appends one line to ``<cache>/compiles.log`` (see
:func:`compile_count`).

``ensure_mechanisms(user_mod_files)`` compiles a user's MOD files together with crosssim's
own into one library (NEURON loads one mechanism library per process reliably), in a folder
keyed by all their contents: the same cache, lock and log.  A file ``nocmodl`` or the C++
compiler refuses raises :class:`MechanismSourceError` (exit code 2) whose one-line message
names the file and carries nrnivmodl's reason.

The parent process compiles (so a missing compiler is a clear :class:`MechanismBuildError`);
the NEURON child only loads the library (:func:`load_mechanisms`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from crosssim.errors import MechanismBuildError, MechanismSourceError
from crosssim.files import atomic_folder
from crosssim.provenance import (
    build_once,
    cache_base,
    check_mod_files,
    mod_source_dir,
    package_version,
)

__all__ = [
    "MECHANISM_NAME",
    "compile_count",
    "ensure_mechanisms",
    "find_compiler",
    "find_nrnivmodl",
    "load_mechanisms",
    "mechanism_hash",
    "mechanism_library",
    "nrnivmodl_reason",
]

#: The point process every compiled library must provide (``mod/crosssim_gap.mod``).
MECHANISM_NAME = "CrosssimGap"
#: File in a finished cache folder that names the compiled library.
MANIFEST = "crosssim-mechanisms.json"
#: One line per ``nrnivmodl`` run, in the cache root.
COMPILE_LOG = "compiles.log"

_BACKEND = "neuron"
_INSTALL_COMPILER = (
    "install one, e.g. apt-get install build-essential (Debian/Ubuntu), "
    "dnf install gcc-c++ make (Fedora), xcode-select --install (macOS)"
)


def _mod_files() -> list[Path]:
    folder = mod_source_dir()
    files = sorted(folder.glob("*.mod")) if folder.is_dir() else []
    if not files:
        raise MechanismBuildError(
            _BACKEND, f"no MOD files found in {folder}; reinstall crosssim (pip install crosssim)")
    return files


def _neuron_version() -> str:
    version = package_version("neuron")
    if version is not None:
        return version
    try:  # a source build without package metadata: ask NEURON itself (slow, rare)
        import neuron
    except ImportError as exc:
        raise MechanismBuildError(_BACKEND, "NEURON is not installed: pip install neuron") from exc
    return str(getattr(neuron, "__version__", "unknown"))


def mechanism_hash(files: list[Path] | None = None) -> str:
    """SHA-256 (hex) of the MOD sources, the NEURON version and the machine type."""
    digest = hashlib.sha256()
    for path in files if files is not None else _mod_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(b"neuron=" + _neuron_version().encode() + b"\0")
    digest.update(b"machine=" + platform.machine().encode())
    return digest.hexdigest()


def find_nrnivmodl() -> Path | None:
    """``nrnivmodl`` on PATH, or next to the running Python (a venv's bin need not be on
    PATH); None if neither exists."""
    found = shutil.which("nrnivmodl")
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / "nrnivmodl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    return None


def find_compiler(path: str | None = None) -> str | None:
    """The C++ compiler nrnivmodl will use (``$CXX``, c++, g++ or clang++), or None.

    NEURON 9 translates MOD files to C++, so a C++ compiler is what is needed.
    """
    explicit = os.environ.get("CXX", "").split()
    candidates = explicit[:1] + ["c++", "g++", "clang++"]
    for name in candidates:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def _manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    library = folder / str(data.get("library", ""))
    return data if data.get("library") and library.is_file() else None


def mechanism_library(folder: Path) -> Path:
    """The compiled library (``libnrnmech.so``) inside a cache folder from
    :func:`ensure_mechanisms`."""
    data = _manifest(Path(folder))
    if data is None:
        raise MechanismBuildError(_BACKEND, f"{folder} is not a complete mechanism build; "
                                  "delete it and run again")
    return Path(folder) / data["library"]


def compile_count(root: Path | None = None) -> int:
    """How many times ``nrnivmodl`` has run for the cache ``root`` (lines of compiles.log)."""
    log = (root if root is not None else cache_base()) / COMPILE_LOG
    try:
        return len(log.read_text(encoding="utf-8").splitlines())
    except FileNotFoundError:
        return 0


def _check_tools() -> Path:
    nrnivmodl = find_nrnivmodl()
    if nrnivmodl is None:
        raise MechanismBuildError(
            _BACKEND, "nrnivmodl not found (not on PATH, not next to "
            f"{sys.executable}): pip install neuron")
    search_path = os.pathsep.join([str(nrnivmodl.parent), os.environ.get("PATH", "")])
    if find_compiler(search_path) is None:
        raise MechanismBuildError(
            _BACKEND, f"no C++ compiler (c++, g++ or clang++) found to compile MOD files: "
            f"{_INSTALL_COMPILER}")
    if shutil.which("make", path=search_path) is None:
        raise MechanismBuildError(_BACKEND, f"make not found (nrnivmodl needs it): "
                                  f"{_INSTALL_COMPILER}")
    return nrnivmodl


def _find_library(folder: Path) -> Path | None:
    for pattern in ("*/libnrnmech.so", "*/.libs/libnrnmech.so", "*/libnrnmech.dylib",
                    "*/libnrnmech.*", "*/nrnmech.dll"):
        matches = sorted(folder.glob(pattern))
        if matches:
            return matches[0]
    return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CXX_ERROR = re.compile(r"(?P<file>\S+?):(?P<line>\d+):(?:\d+:)?\s*(?:fatal )?error:\s*"
                        r"(?P<what>.*)")
#: Lines of nrnivmodl's output that never explain a failure: its Python wrapper's traceback,
#: make's summary and NEURON 9's note on porting to C++.
_NOISE = ("Traceback", "File ", "raise ", "subprocess.", "make:", "make[", "NOTE:", "refer to",
          "^", "-> ", "Translating ", "Thread Safe", "compilation terminated")


def nrnivmodl_reason(output: str) -> str:
    """The line of nrnivmodl's ``output`` that says why it failed, as one line.

    In order: nocmodl's ``Error: ...`` (with the source line it quotes), the C++ compiler's
    first ``error:`` on the generated code (with nocmodl's first warning, which usually names
    the cause), else the last line that is not wrapper noise.
    """
    lines = [_ANSI.sub("", line).rstrip() for line in output.splitlines()]
    lines = [line for line in lines if line.strip()]
    for number, line in enumerate(lines):
        text = line.strip()
        if text.startswith("Error:"):
            reason = text[len("Error:"):].strip()
            quoted = lines[number + 1].strip() if number + 1 < len(lines) else ""
            if quoted and not quoted.startswith(_NOISE):
                reason += f": {quoted}"
            return reason
    for line in lines:
        found = _CXX_ERROR.match(line.strip())
        if found:
            reason = (f"{Path(found['file']).name}:{found['line']}: error: "
                      f"{found['what'].strip()}")
            warnings = [item.strip() for item in lines if item.strip().startswith("Warning:")]
            if warnings:
                reason += f" (nocmodl: {warnings[0][len('Warning:'):].strip()})"
            return reason
    useful = [line.strip() for line in lines if not line.strip().startswith(_NOISE)]
    return useful[-1] if useful else (lines[-1].strip() if lines else "no output")


def _culprit(reason: str, user_files: Sequence[Path]) -> Path | None:
    """The user's MOD file that ``reason`` is about (by its name or its generated C++
    file's), or None when it names none of them."""
    for path in user_files:
        for name in (path.name, f"{path.stem}.cpp", f"{path.stem}.c"):
            if re.search(rf"(?<![\w.-]){re.escape(name)}\b", reason):
                return path
    return None


def _compile(files: list[Path], digest: str, root: Path, target: Path,
             user_files: Sequence[Path] = ()) -> None:
    """Run nrnivmodl in a staging folder, then rename it to ``target`` (caller holds the lock;
    a ``target`` without manifest is an incomplete leftover and is replaced)."""
    nrnivmodl = _check_tools()
    # First use on this machine / NEURON version: say why this run takes longer.
    print(f"crosssim: compiling NEURON mechanisms ({', '.join(p.name for p in files)}) "
          f"into {target} (first use only) ...", file=sys.stderr, flush=True)
    with atomic_folder(target, prefix=f".mod-{digest[:16]}-", replace=True) as staged:
        staging = staged.path
        sources = staging / "mod"
        sources.mkdir()
        for path in files:
            shutil.copyfile(path, sources / path.name)
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(nrnivmodl.parent), env.get("PATH", "")])
        started = time.perf_counter()
        try:
            completed = subprocess.run(
                [str(nrnivmodl), "mod"], cwd=staging, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MechanismBuildError(_BACKEND, f"could not run {nrnivmodl}: {exc}") from exc
        seconds = time.perf_counter() - started
        with open(root / COMPILE_LOG, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} mod-{digest[:16]} "
                      f"pid={os.getpid()} rc={completed.returncode} seconds={seconds:.2f}\n")
        output = completed.stdout.decode("utf-8", "replace")
        library = _find_library(staging)
        if completed.returncode != 0 or library is None:
            build_log = root / f"mod-{digest[:16]}.build.log"
            build_log.write_text(output, encoding="utf-8")
            reason = nrnivmodl_reason(output)
            culprit = _culprit(reason, user_files)
            if culprit is not None:
                raise MechanismSourceError(
                    _BACKEND, f"{culprit}: nrnivmodl refused it: {reason} "
                    f"(full log: {build_log})", path=str(culprit), reason=reason)
            raise MechanismBuildError(
                _BACKEND, f"nrnivmodl failed (exit code {completed.returncode}): {reason} "
                f"(full log: {build_log})")
        manifest = {
            "hash": digest,
            "neuron_version": _neuron_version(),
            "machine": platform.machine(),
            "sources": [path.name for path in files],
            "library": str(library.relative_to(staging)),
            "compile_seconds": round(seconds, 3),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    print(f"crosssim: compiled NEURON mechanisms in {seconds:.1f} s", file=sys.stderr,
          flush=True)


def ensure_mechanisms(user_mod_files: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """The cache folder holding the compiled mechanisms, compiling them first if needed.

    ``user_mod_files`` are a user's MOD files, compiled together with crosssim's own into one
    library; the folder is keyed by the contents of all of them.  Raises
    :class:`MechanismSourceError` (exit code 2) for a user's file that is missing, shares a
    name with another, or that nrnivmodl refuses (the message carries nrnivmodl's reason),
    and :class:`MechanismBuildError` naming what to install when ``nrnivmodl``, a C++
    compiler or ``make`` is missing, or when compilation fails otherwise.
    """
    own = _mod_files()
    user = check_mod_files(user_mod_files, _BACKEND)
    for path in user:
        if path.name in {mod.name for mod in own}:
            raise MechanismSourceError(
                _BACKEND, f"{path}: crosssim's own mechanisms already have a file named "
                f"{path.name}; rename it", path=str(path), reason="name taken by crosssim")
    files = own + sorted(user, key=lambda path: path.name)  # one key for any order given
    digest = mechanism_hash(files)
    return build_once(f"mod-{digest[:16]}", _BACKEND,
                      lambda target: target if _manifest(target) is not None else None,
                      lambda target: _compile(files, digest, target.parent, target, user))


def load_mechanisms(folder: Path) -> None:
    """Load the compiled library into this process's NEURON (child side; loads at most once)."""
    from neuron import h

    if hasattr(h, MECHANISM_NAME):
        return
    library = mechanism_library(Path(folder))
    h.nrn_load_dll(str(library))
    if not hasattr(h, MECHANISM_NAME):
        raise RuntimeError(f"{library} did not define {MECHANISM_NAME}")
