"""What crosssim reads from a user's NMODL file itself: its SUFFIX and PARAMETER names.

Enough to validate a model (``channels`` name a declared mechanism and its parameters)
before anything is compiled; the simulators' compilers (``nrnivmodl``,
``arbor-build-catalogue``) judge the rest.  Pure Python, cached per file version.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ModDescription", "describe_mod"]

_COMMENT = re.compile(r"(?s)COMMENT.*?ENDCOMMENT|:[^\n]*|\?[^\n]*")
_BLOCK = r"(?s)\b{name}\s*\{{(.*?)\}}"
_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


@dataclass(frozen=True)
class ModDescription:
    """A MOD file's ``suffix`` (the mechanism's name) and ``parameters`` (names, in file
    order)."""

    suffix: str
    parameters: tuple[str, ...]


def describe_mod(path: str | Path) -> ModDescription:
    """Read ``path``'s SUFFIX and PARAMETER names.  Raises ValueError saying what is wrong
    (unreadable, no NEURON block, a POINT_PROCESS, no SUFFIX)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise ValueError(f"MOD file {str(path)!r} not found") from None
    return _describe(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _describe(path: str, _mtime_ns: int, _size: int) -> ModDescription:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ValueError(f"cannot read MOD file {path!r}: {exc.strerror}") from None
    text = _COMMENT.sub("", text)
    neuron = re.search(_BLOCK.format(name="NEURON"), text)
    if neuron is None:
        raise ValueError(f"{path}: no NEURON block")
    block = neuron.group(1)
    if re.search(r"\b(POINT_PROCESS|ARTIFICIAL_CELL)\b", block):
        raise ValueError(f"{path}: a point process; crosssim runs density mechanisms "
                         "(SUFFIX) only")
    suffix = re.search(r"\bSUFFIX\s+([A-Za-z_][A-Za-z0-9_]*)", block)
    if suffix is None:
        raise ValueError(f"{path}: the NEURON block names no SUFFIX")
    parameters = re.search(_BLOCK.format(name="PARAMETER"), text)
    names = tuple(dict.fromkeys(_NAME.findall(parameters.group(1)))) if parameters else ()
    return ModDescription(suffix.group(1), names)
