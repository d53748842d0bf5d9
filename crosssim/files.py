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
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    "write_rows_csv",
    "write_rows_parquet",
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


def _csv_cell(value: Any, float_format: str) -> Any:
    """A table cell as pandas' ``to_csv`` writes it: empty for None and NaN, ``True`` /
    ``False``, floats with ``float_format``."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else float_format % value
    return value


def write_rows_csv(path: Path, columns: list[str], rows: Iterable[Mapping[str, Any]], *,
                   float_format: str = "%.12g") -> Path:
    """Write ``rows`` (dicts with every column) as CSV to ``path`` atomically, the way
    :func:`write_csv` writes the same table as a DataFrame, without pandas."""
    import csv

    path = Path(path)
    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_csv_cell(row[column], float_format) for column in columns]
                         for row in rows)
    return path


def write_rows_parquet(path: Path, columns: list[str], rows: Sequence[Mapping[str, Any]], *,
                       types: Mapping[str, str] | None = None) -> Path:
    """Write ``rows`` as Parquet to ``path`` atomically (pyarrow, without pandas).

    ``types``: column -> ``"bool"``, ``"float64"`` or ``"int64"``; other columns are
    ``int64`` or ``float64`` when every value is such a number, else text (JSON-free
    strings).  None is a null; NaN stays NaN in float columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = types or {}
    table = pa.table({column: _arrow_column([row[column] for row in rows],
                                            types.get(column)) for column in columns})
    path = Path(path)
    with atomic_open(path, "wb", encoding=None) as handle:
        pq.write_table(table, handle)
    return path


def _arrow_column(values: list[Any], kind: str | None) -> Any:
    """``values`` as an Arrow array built from its buffers: ``pyarrow.array`` imports pandas
    (0.5 s) to look at any Python or numpy input."""
    import numpy as np
    import pyarrow as pa

    present = [value is not None for value in values]
    validity = (None if all(present) else
                pa.py_buffer(np.packbits(np.array(present, dtype=bool), bitorder="little")))
    n = len(values)
    if kind is None and not any(present):
        return pa.nulls(n)
    if kind is None:
        numbers = [value for value in values if value is not None]
        if numbers and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                           for v in numbers):
            kind = "int64"
        elif numbers and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                             for v in numbers):
            kind = "float64"
    if kind in ("int64", "float64"):
        data = np.array([0 if value is None else value for value in values], dtype=kind)
        arrow_type = pa.int64() if kind == "int64" else pa.float64()
        return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(data)])
    if kind == "bool":
        bits = np.packbits(np.array([bool(value) for value in values], dtype=bool),
                           bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), n, [validity, pa.py_buffer(bits)])
    encoded = [b"" if value is None else str(value).encode("utf-8") for value in values]
    offsets = np.concatenate([[0], np.cumsum([len(text) for text in encoded])]).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets),
                                                  pa.py_buffer(b"".join(encoded))])
