"""How crosssim writes any file for the user: atomic files and folders, JSON, tables.

(What is written -- traces, models, check documents -- is :mod:`crosssim.report.artifacts`,
built on these.)

Atomic output: a file is written to a temporary file in the same folder, then renamed; a
folder is built under a hidden name beside its place, then renamed.  A reader (or a later
run) never sees a half-written file or folder: until the rename the target keeps its old
content (or does not exist).  On any exception -- including Ctrl-C
(``KeyboardInterrupt``) and SIGTERM, which the command line turns into one -- the temporary
file or folder is removed.  Only a hard kill (SIGKILL, power loss) can leave a stray hidden
``.NAME.*.tmp`` beside the target; it is never mistaken for an output.  Every file
crosssim writes for the user goes through :func:`atomic_open` or :func:`atomic_folder`.

JSON: :func:`json_ready` is the one sanitiser (JSON has no NaN, no tuples, no numpy
scalars) and :func:`json_text` the one layout of a JSON document.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "StagedFolder",
    "atomic_folder",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "json_ready",
    "json_text",
    "write_csv",
    "write_json",
    "write_parquet",
]


# JSON ------------------------------------------------------------------------------------------


def json_ready(value: Any) -> Any:
    """A copy of ``value`` that :func:`json.dumps` writes as strict JSON.

    Non-finite floats become None, tuples become lists, mapping keys become strings, numpy
    scalars and arrays become Python numbers and lists, paths (and anything else JSON does
    not know) become their text.
    """
    numpy = sys.modules.get("numpy")  # numpy values exist only once numpy is imported
    if numpy is not None:
        if isinstance(value, numpy.generic):
            value = value.item()
        elif isinstance(value, numpy.ndarray):
            value = value.tolist()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return str(value)


def json_text(document: Any) -> str:
    """``document`` as indented, strict JSON text (no NaN), ending in a newline."""
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


# Atomic files ----------------------------------------------------------------------------------


def _umask() -> int:
    """The process umask (read without changing it for longer than an instant)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:  # name the file the caller asked for, not our temporary
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb", encoding=None) as handle:
        handle.write(data)


# Atomic folders --------------------------------------------------------------------------------


@dataclass
class StagedFolder:
    """A folder being built by :func:`atomic_folder`: write into ``path``; after the
    ``with`` block ``final`` is where it landed (the target, or one of its alternatives)."""

    path: Path
    final: Path


def _rename_folder(staging: Path, targets: Iterable[Path], replace: bool) -> Path:
    """Rename ``staging`` to the first of ``targets`` that is free (to the first one, its
    old content removed, with ``replace``); FileExistsError when every one is taken."""
    tried = []
    for target in targets:
        if replace and target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                tried.append(target)
                continue
            raise
        return target
    raise FileExistsError(errno.EEXIST, "already exists", str(tried[0] if tried else staging))


@contextlib.contextmanager
def atomic_folder(path: Path, *, alternatives: Iterable[Path] = (), prefix: str | None = None,
                  replace: bool = False) -> Iterator[StagedFolder]:
    """Build a folder under a hidden temporary name beside ``path``; on success rename it
    to ``path``.

    Yields a :class:`StagedFolder`: write into its ``path``.  When ``path`` is taken by
    another folder with content, the first free one of ``alternatives`` is used; when all
    are taken, FileExistsError (the folder that is there is left alone).  ``replace``
    removes an existing ``path`` first (an incomplete leftover).  ``prefix`` names the
    hidden folder (default ``.<name>.``; it ends in ``.tmp``).  On any exception the hidden
    folder is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix or f".{path.name}.", suffix=".tmp",
                                    dir=path.parent))
    staged = StagedFolder(staging, final=path)
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs are ordinary
        yield staged
        staged.final = _rename_folder(staging, [path, *alternatives], replace)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# What a check writes ---------------------------------------------------------------------------


def write_json(path: Path, document: Any) -> Path:
    """Write ``document`` (JSON-ready) as indented strict JSON to ``path`` atomically."""
    path = Path(path)
    atomic_write_text(path, json_text(document))
    return path


def write_csv(path: Path, frame: pd.DataFrame, *, float_format: str | None = None) -> Path:
    """Write ``frame`` as CSV (no index) to ``path`` atomically; ``float_format`` as in
    :meth:`pandas.DataFrame.to_csv` (default: full precision)."""
    path = Path(path)
    with atomic_open(path) as handle:
        frame.to_csv(handle, index=False, float_format=float_format)
    return path


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as Parquet (no index) to ``path`` atomically."""
    path = Path(path)
    with atomic_open(path, "wb", encoding=None) as handle:
        frame.to_parquet(handle, index=False)
    return path
