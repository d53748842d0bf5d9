"""Users' NMODL mechanisms for Arbor: MOD files compiled once into a cached catalogue.

:func:`build_catalogue` compiles MOD files with the ``arbor-build-catalogue`` script that
Arbor's wheel ships (it needs cmake, make and a C++ compiler) into
``<cache>/arbor-cat-<hash>/crosssim_<hash>-catalogue.so``: ``<cache>`` as for NEURON's
mechanisms (:func:`crosssim.provenance.cache_base`), ``<hash>`` the SHA-256 of the sources as
handed to Arbor, the Arbor version and the machine type.  Later calls find it and compile
nothing; concurrent first calls are safe (a ``filelock.FileLock``, a build in a hidden folder
renamed into place).  Load it with ``arbor.load_catalogue(path)`` and register it in the cable
properties: ``props = arbor.neuron_cable_properties();
props.catalogue.extend(arbor.load_catalogue(path), "")``.

One MOD file for both simulators.  Arbor 0.12's modcc refuses declarations that NEURON's
nocmodl requires: the ``NONSPECIFIC_CURRENT`` and the ``USEION`` variables declared in
``ASSIGNED`` ("internal compiler error: the symbol i already exists", "... is defined as a
ion variable and cannot be used as an ASSIGNED"), and ``v``, ``celsius`` and ``diam`` in
``ASSIGNED`` ("defined as a builtin").  No file that carries a current satisfies both, so
:func:`modcc_source` removes those declarations (Arbor declares these names itself) and moves
``celsius`` / ``diam`` to ``PARAMETER``, where Arbor reads them from the cell; lines keep their
numbers, so modcc's messages point into the user's file.  Arbor also names a mechanism after
its file, so each file is handed over as ``<SUFFIX>.mod``.  Everything else Arbor's dialect
refuses (``TABLE``, ``VERBATIM``, ``celsius`` inside a ``PROCEDURE`` or ``FUNCTION``, ``LOCAL``
before ``SOLVE`` in ``BREAKPOINT``, several ``NONSPECIFIC_CURRENT`` names, ``t``) is reported:
each file goes through modcc alone first, and a refusal raises :class:`MechanismSourceError`
(exit code 2) naming the file, the line and modcc's reason.

Nothing here imports arbor: the wheel's tools are found with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crosssim.backends.neuron.mechanisms import find_compiler
from crosssim.errors import MechanismBuildError, MechanismSourceError
from crosssim.files import atomic_folder
from crosssim.provenance import build_once, check_mod_files, package_version

__all__ = [
    "CATALOGUE_MANIFEST",
    "build_catalogue",
    "mechanism_name",
    "modcc_reason",
    "modcc_source",
]

#: File in a finished cache folder that names the catalogue and its mechanisms.
CATALOGUE_MANIFEST = "crosssim-catalogue.json"

_BACKEND = "arbor"
_INSTALL_TOOLS = (
    "install them, e.g. apt-get install cmake build-essential (Debian/Ubuntu), "
    "dnf install cmake gcc-c++ make (Fedora), or pip install cmake for cmake alone"
)
#: Builtins Arbor declares itself and refuses in ASSIGNED; the first two it reads from the
#: cell when they are PARAMETERs, ``v`` needs no declaration at all.
_TO_PARAMETER = ("celsius", "diam")
_BUILTIN = ("v",)


# The NMODL text -------------------------------------------------------------------------------


def _code_only(text: str) -> str:
    """``text`` with comments, ``TITLE`` lines, ``COMMENT`` and ``VERBATIM`` blocks blanked out
    (same length, same line breaks), so that offsets found in it are offsets into ``text``."""
    out = []
    inside: str | None = None
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        words = body.split()
        first = words[0] if words else ""
        if inside is not None:
            if first.startswith("END" + inside):
                inside = None
            out.append(" " * len(body) + ending)
            continue
        if first in ("COMMENT", "VERBATIM"):
            inside = first
            out.append(" " * len(body) + ending)
            continue
        if first == "TITLE":
            out.append(" " * len(body) + ending)
            continue
        cut = min([index for index in (body.find(":"), body.find("?")) if index >= 0],
                  default=len(body))
        out.append(body[:cut] + " " * (len(body) - cut) + ending)
    return "".join(out)


def _blocks(code: str, keyword: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the inside of every ``KEYWORD { ... }`` block of ``code``
    (declaration blocks hold no nested braces)."""
    found = []
    for match in re.finditer(rf"\b{keyword}\s*\{{", code):
        end = code.find("}", match.end())
        found.append((match.end(), end if end >= 0 else len(code)))
    return found


_TOKEN = re.compile(r"(?P<units>\([^()]*\))|(?P<limits><[^<>]*>)|(?P<index>\[[^\]]*\])"
                    r"|(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                    r"|(?P<name>[A-Za-z_]\w*)|(?P<other>\S)")


@dataclass(frozen=True)
class _Declaration:
    name: str
    start: int  # offset of the name
    end: int  # offset after the name and its units, if any


def _declarations(code: str, keyword: str) -> list[_Declaration]:
    """The variables declared in every ``KEYWORD`` block (ASSIGNED, PARAMETER, STATE)."""
    declared = []
    for start, end in _blocks(code, keyword):
        tokens = list(_TOKEN.finditer(code, start, end))
        for number, token in enumerate(tokens):
            if token.lastgroup != "name" or token.group() in ("FROM", "TO", "START"):
                continue
            stop = token.end()
            following = tokens[number + 1] if number + 1 < len(tokens) else None
            if (following is not None and following.lastgroup == "units"
                    and "\n" not in code[stop:following.start()]):
                stop = following.end()
            declared.append(_Declaration(token.group(), token.start(), stop))
    return declared


def _neuron_block(code: str) -> str:
    spans = _blocks(code, "NEURON")
    return " ".join(code[start:end] for start, end in spans)


def _name_list(block: str, keyword: str) -> list[str]:
    names = []
    for match in re.finditer(rf"\b{keyword}\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)", block):
        names += [name.strip() for name in match.group(1).split(",")]
    return names


def mechanism_name(text: str) -> str | None:
    """The mechanism's name (its ``SUFFIX``, ``POINT_PROCESS`` or ``JUNCTION_PROCESS``) in
    NMODL ``text``, or None when the NEURON block names none."""
    found = re.search(r"\b(?:SUFFIX|POINT_PROCESS|JUNCTION_PROCESS|ARTIFICIAL_CELL)\s+"
                      r"([A-Za-z_]\w*)", _neuron_block(_code_only(text)))
    return found.group(1) if found else None


def modcc_source(text: str) -> str:
    """NMODL ``text`` as Arbor's modcc (0.12) accepts it: the ``ASSIGNED`` declarations NEURON
    requires and modcc refuses removed, ``celsius`` and ``diam`` moved to ``PARAMETER``.

    Removed from ``ASSIGNED``: ``v``, the ``NONSPECIFIC_CURRENT`` names, the variables of every
    ``USEION ... READ ... WRITE ...``.  Removed text becomes spaces and nothing else moves
    across lines, so line numbers stay those of ``text``.  A file that needs none of this
    comes back unchanged.
    """
    code = _code_only(text)
    block = _neuron_block(code)
    drop = set(_BUILTIN) | set(_name_list(block, "NONSPECIFIC_CURRENT"))
    for match in re.finditer(r"\bUSEION\s+\w+((?:\s+(?:READ|WRITE)\s+[A-Za-z_]\w*"
                             r"(?:\s*,\s*[A-Za-z_]\w*)*)*)", block):
        drop |= set(_name_list(match.group(1), "READ")) | set(_name_list(match.group(1), "WRITE"))
    drop |= set(_TO_PARAMETER)
    removals = [item for item in _declarations(code, "ASSIGNED") if item.name in drop]
    if not removals:
        return text
    chars = list(text)
    for item in removals:
        chars[item.start:item.end] = " " * (item.end - item.start)
    parameters = {item.name for item in _declarations(code, "PARAMETER")}
    moved = [name for name in _TO_PARAMETER
             if name in {item.name for item in removals} and name not in parameters]
    units = {"celsius": "degC", "diam": "um"}
    addition = " ".join(f"{name} ({units[name]})" for name in moved)
    result = "".join(chars)
    if moved:
        spans = _blocks(code, "PARAMETER")
        if spans:  # same offsets: removals replaced characters one for one
            at = spans[0][0]
            result = result[:at] + f" {addition} " + result[at:]
        else:
            result = result.rstrip("\n") + f"\n\nPARAMETER {{ {addition} }}\n"
    return result


# modcc's messages -------------------------------------------------------------------------------


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOCATED = re.compile(r"^(?:error:|\*)\s*(?P<file>.*?)\s*:?\s*\(line (?P<line>\d+),\s*col "
                      r"(?P<col>\d+)\)\s*(?P<what>.*)$")
_GENERIC = re.compile(r"There were \d+ errors? in the semantic analysis")
#: Statements Arbor's NMODL lacks, whose refusal modcc words as a parse error: a TABLE on
#: the line it names, C code between VERBATIM and ENDVERBATIM around it.
_NO_TABLE = "Arbor's NMODL has no TABLE statement: remove it"
_NO_VERBATIM = "Arbor's NMODL has no VERBATIM blocks: write the C code in NMODL"


def _hint(source: str, row: int) -> str:
    """What a cryptic parse error at line ``row`` of ``source`` means, or ''."""
    lines = source.splitlines()
    if 0 < row <= len(lines) and re.search(r"\bTABLE\b", _code_only(lines[row - 1])):
        return f" ({_NO_TABLE})"
    opened = [number for number, line in enumerate(lines[:row], 1)
              if line.split()[:1] == ["VERBATIM"]]
    closed = [number for number, line in enumerate(lines[:row], 1)
              if line.split()[:1] == ["ENDVERBATIM"]]
    if len(opened) > len(closed):  # the line is inside a VERBATIM block (or opens one)
        return f" ({_NO_VERBATIM})"
    return ""


def modcc_reason(output: str, source: str | None = None) -> tuple[int | None, str]:
    """(line number or None, message) of the first error in modcc's ``output``, one line.

    ``source`` (the text modcc read) lets a cryptic parse error on a ``TABLE`` or
    ``VERBATIM`` line say so.
    """
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    for number, line in enumerate(lines):
        located = _LOCATED.match(line)
        if located:
            what = located["what"].strip()
            if not what and line.startswith("error:") and number + 1 < len(lines):
                what = lines[number + 1]
            if not what or _GENERIC.search(what):
                continue
            row = int(located["line"])
            what = re.sub(r"\s*\(line \d+,\s*col \d+\)\.?$", "", what)
            if source is not None:
                what += _hint(source, row)
            return row, what
        if line == "internal compiler error:" and number + 1 < len(lines):
            return None, lines[number + 1]
    for line in lines:
        if "error" in line.lower() and line.lower() not in ("error trace:", "error:"):
            return None, line
    return None, lines[-1] if lines else "no output"


# Tools ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tools:
    script: Path  # arbor-build-catalogue
    modcc: Path
    cxx: str
    path: str  # PATH for the build: cmake, make, the compiler


def _arbor_dir() -> Path:
    try:
        spec = importlib.util.find_spec("arbor")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MechanismBuildError(_BACKEND, "Arbor is not installed: pip install arbor")
    return Path(list(spec.submodule_search_locations)[0])


def _find_tools() -> _Tools:
    arbor_dir = _arbor_dir()
    script, modcc = arbor_dir / "bin" / "arbor-build-catalogue", arbor_dir / "bin" / "modcc"
    for tool in (script, modcc):
        if not tool.is_file():
            raise MechanismBuildError(_BACKEND, f"{tool} is missing: Arbor's wheel ships it "
                                      "(pip install --force-reinstall arbor)")
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if shutil.which("cmake", path=search) is None:
        raise MechanismBuildError(_BACKEND, f"cmake not found (arbor-build-catalogue needs "
                                  f"it to compile MOD files): {_INSTALL_TOOLS}")
    if shutil.which("make", path=search) is None:
        raise MechanismBuildError(_BACKEND, f"make not found (arbor-build-catalogue needs "
                                  f"it to compile MOD files): {_INSTALL_TOOLS}")
    cxx = find_compiler(search)
    if cxx is None:
        raise MechanismBuildError(_BACKEND, "no C++ compiler (c++, g++ or clang++) found to "
                                  f"compile MOD files: {_INSTALL_TOOLS}")
    return _Tools(script, modcc, cxx, search)


# The cache -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    path: Path  # the user's file
    name: str  # the mechanism's name: the file name Arbor needs
    text: str  # as handed to modcc


def _sources(mod_paths: Sequence[str | os.PathLike[str]]) -> list[_Source]:
    sources: list[_Source] = []
    seen: dict[str, Path] = {}
    for path in check_mod_files(mod_paths, _BACKEND):
        original = path.read_bytes().decode("utf-8", "replace")
        name = mechanism_name(original) or path.stem
        if name in seen:
            raise MechanismSourceError(
                _BACKEND, f"{path}: mechanism {name} is also defined in {seen[name]}",
                path=str(path), reason="duplicate mechanism name")
        seen[name] = path
        sources.append(_Source(path, name, modcc_source(original)))
    return sources


def _arbor_version() -> str:
    return package_version("arbor") or "unknown"


def _catalogue_hash(sources: Sequence[_Source]) -> str:
    """SHA-256 (hex) of the sources as handed to modcc (name and text), the Arbor version and
    the machine type."""
    digest = hashlib.sha256()
    for source in sorted(sources, key=lambda item: item.name):
        digest.update(source.name.encode() + b"\0" + source.text.encode() + b"\0")
    digest.update(b"arbor=" + _arbor_version().encode() + b"\0")
    digest.update(b"machine=" + platform.machine().encode())
    return digest.hexdigest()


def _manifest_library(folder: Path) -> Path | None:
    try:
        data = json.loads((folder / CATALOGUE_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    library = folder / str(data.get("library", ""))
    return library if data.get("library") and library.is_file() else None


def _run(command: list[str], cwd: Path, tools: _Tools, timeout: float) -> tuple[int, str]:
    env = dict(os.environ, PATH=tools.path)
    try:
        done = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MechanismBuildError(_BACKEND, f"could not run {command[0]}: {exc}") from exc
    return done.returncode, done.stdout.decode("utf-8", "replace")


def _check_with_modcc(sources: Sequence[_Source], tools: _Tools) -> None:
    """Run modcc on each file alone (a fraction of a second each), so that a refusal names
    its file; raises :class:`MechanismSourceError` with modcc's reason."""
    with tempfile.TemporaryDirectory(prefix="crosssim-modcc-") as scratch:
        folder = Path(scratch)
        for source in sources:
            staged = folder / f"{source.name}.mod"
            staged.write_text(source.text, encoding="utf-8")
            code, output = _run([str(tools.modcc), "-t", "cpu", "-o", str(folder),
                                 str(staged)], folder, tools, timeout=120)
            if code != 0:
                line, what = modcc_reason(output, source.text)
                where = f"{source.path}:{line}" if line is not None else str(source.path)
                raise MechanismSourceError(
                    _BACKEND, f"{where}: Arbor's NMODL compiler (modcc) refuses it: {what}",
                    path=str(source.path), reason=what)


def _compile(sources: Sequence[_Source], digest: str, target: Path, tools: _Tools) -> None:
    """Build the catalogue in a staging folder renamed to ``target`` (caller holds the lock)."""
    _check_with_modcc(sources, tools)
    name = f"crosssim_{digest[:12]}"
    print(f"crosssim: compiling {len(sources)} MOD file(s) for Arbor (first use; cached in "
          f"{target}) ...", file=sys.stderr, flush=True)
    with atomic_folder(target, prefix=f".arbor-cat-{digest[:16]}-", replace=True) as staged:
        staging = staged.path
        (staging / "mod").mkdir()
        for source in sources:
            (staging / "mod" / f"{source.name}.mod").write_text(source.text, encoding="utf-8")
        started = time.perf_counter()
        code, output = _run([sys.executable, str(tools.script), name, "mod", "--cxx",
                             tools.cxx, "--quiet"], staging, tools, timeout=1800)
        seconds = time.perf_counter() - started
        library = staging / f"{name}-catalogue.so"
        if code != 0 or not library.is_file():
            build_log = target.parent / f"{target.name}.build.log"
            build_log.write_text(output, encoding="utf-8")
            _, what = modcc_reason(output)
            raise MechanismBuildError(
                _BACKEND, f"arbor-build-catalogue failed (exit code {code}): {what} "
                f"(full log: {build_log})")
        manifest = {
            "hash": digest,
            "arbor_version": _arbor_version(),
            "machine": platform.machine(),
            "mechanisms": {source.name: str(source.path) for source in sources},
            "library": library.name,
            "compiler": tools.cxx,
            "compile_seconds": round(seconds, 3),
        }
        (staging / CATALOGUE_MANIFEST).write_text(json.dumps(manifest, indent=1),
                                                  encoding="utf-8")
    print(f"crosssim: compiled the Arbor catalogue in {seconds:.1f} s", file=sys.stderr,
          flush=True)


def build_catalogue(mod_paths: Sequence[str | os.PathLike[str]]) -> Path:
    """The compiled Arbor catalogue (``.so``) of the MOD files ``mod_paths``, compiling it on
    first use (a few seconds; a line on stderr says so) and reusing it afterwards.

    The catalogue holds one mechanism per file, named by its ``SUFFIX`` / ``POINT_PROCESS``
    (as in NEURON).  Raises :class:`MechanismSourceError` (exit code 2) for a file that is
    missing, defines a mechanism twice or that Arbor's NMODL dialect refuses (the one-line
    message names the file and line and carries modcc's reason), and
    :class:`MechanismBuildError` (exit code 3) when Arbor, cmake, make or a C++ compiler is
    missing or the build fails otherwise.
    """
    sources = _sources(mod_paths)
    if not sources:
        raise MechanismSourceError(_BACKEND, "no MOD files given", reason="no MOD files")
    digest = _catalogue_hash(sources)
    return build_once(f"arbor-cat-{digest[:16]}", _BACKEND, _manifest_library,
                      lambda target: _compile(sources, digest, target, _find_tools()))
