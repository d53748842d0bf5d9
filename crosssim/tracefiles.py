"""Traces read from files, as sources to compare like any simulator or reference.

Two kinds of file, told apart by the extension:

* a **long-form table** as crosssim writes it, ``.csv`` or ``.parquet``: columns ``probe``,
  ``t_ms``, ``v_mV``, optionally ``backend`` (the source each row belongs to; without it the
  file's stem names the one source) and ``kind`` (``simulator`` or ``reference``, one per
  source).  Rows of one probe must be in increasing time order; probes may interleave.
* a **descriptor** ``.toml`` for per-probe column files, as other tools and published
  benchmarks ship their data::

      name = "rallpack"          # the source name (default: the descriptor's stem)
      kind = "reference"         # or "simulator" (the default)
      time_unit = "s"            # s | ms | us   (required: a unit is never guessed)
      voltage_unit = "V"         # V | mV        (required)
      description = "..."        # optional
      [files]                    # probe name -> file with two columns: time, voltage
      v0 = "ref/v0.txt"          # relative to the descriptor's folder
      vx = "ref/vx.txt"

  A column file is whitespace- or comma-separated; ``#`` starts a comment (whole line or
  trailing); the first line that is not a comment may be a header (a line with no number in
  it).  Fortran exponents (``1.0D-3``) read as ``1.0e-3``.

Choices (see :func:`load_traces`):

* **kind** is ``simulator`` unless the file says otherwise (descriptor ``kind``, a ``kind``
  column); in a long-form table without a ``kind`` column, a source named like a registered
  one takes its kind (``analytic`` and ``lumped`` rows stay references).
* **One time grid per source.**  A :class:`~crosssim.result.RunResult` holds one time vector,
  so every probe of a source must be sampled at the same times: equal within the rounding of
  times written with 7 significant digits (:data:`TIME_RTOL`) and crosssim's
  :data:`~crosssim.compare.GRID_RTOL` of a step.  Otherwise the file is refused, naming the
  first sample that differs; it is not split into several sources (which would need
  made-up names) and never resampled.
* **The model's grid.**  With a model, times that lie on its sample grid (within the same
  tolerance) are replaced by the exact grid ``k * sample_dt_ms``, as every simulator adapter
  does (:func:`crosssim.result.nominal_grid`), so comparisons align by index however many
  samples a file holds.  Times off the grid are kept as written: comparing them needs
  ``interpolate=True``; nothing is extrapolated.
* Times are converted to ms, voltages to mV.

Every problem is one :class:`~crosssim.errors.TraceFileError` (exit code 2): the file, the
line (``row N`` in a Parquet table, the key's line in a descriptor) and what is wrong.
Numbers are read with ``float`` (no ``eval``), TOML with ``tomllib``, Parquet with pyarrow.
"""

from __future__ import annotations

import csv
import difflib
import functools
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from crosssim.compare import GRID_RTOL
from crosssim.errors import TraceFileError
from crosssim.model import NAME_ALLOWED, NAME_PATTERN
from crosssim.notes import Note
from crosssim.result import RunResult
from crosssim.sources import KINDS, SIMULATOR, SourceKind

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from crosssim.model import Model

__all__ = [
    "DESCRIPTOR_KEYS",
    "LONG_FORM_COLUMNS",
    "TIME_RTOL",
    "TIME_UNITS",
    "VOLTAGE_UNITS",
    "TraceSource",
    "load_trace_files",
    "load_traces",
]

#: Factor from each accepted time unit to ms.
TIME_UNITS: dict[str, float] = {"s": 1e3, "ms": 1.0, "us": 1e-3}
#: Factor from each accepted voltage unit to mV.
VOLTAGE_UNITS: dict[str, float] = {"V": 1e3, "mV": 1.0}
#: Times written with 7 significant digits differ from the true ones by up to 5e-7 of their
#: value; two probes' times (or a time and the model's grid) agree within this fraction.
TIME_RTOL = 1e-6
#: Columns of a long-form table: required, then optional.
LONG_FORM_REQUIRED = ("probe", "t_ms", "v_mV")
LONG_FORM_OPTIONAL = ("backend", "kind")
LONG_FORM_COLUMNS = ("backend", "kind", "probe", "t_ms", "v_mV")
#: Keys of a descriptor (``files`` is a table of probe name -> column file).
DESCRIPTOR_KEYS = ("name", "kind", "description", "time_unit", "voltage_unit", "files")
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".toml": "descriptor"}
_NUMERIC = ("t_ms", "v_mV")

#: (file as shown to the user, place in it: ``line 7``, ``row 7``, ``line 4 (time_unit)``)
Place = tuple[str, "str | None"]


@dataclass(frozen=True)
class TraceSource:
    """One source read from a file.

    ``name``: the source name (``result.backend``); ``kind``: ``simulator`` (compared
    symmetrically with the other simulators) or ``reference`` (one-sided);
    ``result``: the traces in ms and mV; ``path``: the file it came from (the descriptor for
    column files); ``notes``: what the reader wants the user to know (probes of the model the
    file lacks, a span shorter than the model's run).
    """

    name: str
    kind: SourceKind
    result: RunResult
    path: Path
    notes: tuple[Note, ...] = ()

    @property
    def probes(self) -> list[str]:
        """The probe names the file holds, in file order."""
        return self.result.probes


@dataclass
class _Series:
    """One probe's trace as read, with a way back to where each sample was written."""

    probe: str
    times_ms: np.ndarray
    values_mV: np.ndarray
    #: sample index (None: where the probe is first named) -> the file and place in it
    locate: Callable[[int | None], Place]


# ---------------------------------------------------------------------------------------------
# public API


def load_traces(path: str | Path, *, model: Model | None = None) -> list[TraceSource]:
    """Read the traces in ``path`` as sources (one per ``backend`` value of a long-form table).

    ``path``: ``.csv`` or ``.parquet`` (long-form table) or ``.toml`` (descriptor of column
    files).  With ``model``: a probe the model does not have is an error, a model probe the
    file lacks is a note (``probe-not-compared``), and times on the model's sample grid are
    snapped to it exactly.  Returns the sources in file order, times in ms and voltages in
    mV; raises :class:`~crosssim.errors.TraceFileError` naming the file, line and problem.
    """
    path = Path(path)
    shown = str(path)
    kind_of_file = _SUFFIXES.get(path.suffix.lower())
    if kind_of_file is None:
        raise TraceFileError(
            f"unknown trace file type {path.suffix or '(no extension)'!r}", path=shown,
            allowed=".csv or .parquet (long-form table: probe, t_ms, v_mV), .toml (descriptor "
            "of per-probe column files)")
    _check_readable(path, shown)
    if kind_of_file == "descriptor":
        return [_load_descriptor(path, shown, model)]
    if kind_of_file == "csv":
        frame, place_of_row = _read_csv(path, shown)
    else:
        frame, place_of_row = _read_parquet(path, shown)
    return _long_form_sources(frame, path, shown, kind_of_file, place_of_row, model)


def load_trace_files(paths: Iterable[str | Path], *, model: Model | None = None,
                     reserved: Iterable[str] = ()) -> list[TraceSource]:
    """:func:`load_traces` for every path in turn; every source name must be unique.

    ``reserved``: names already in use (the sources that will run); a file source with one of
    them, or two file sources of one name, is a TraceFileError naming both.
    """
    taken: dict[str, str] = {name: f"the source {name!r} that runs" for name in reserved}
    sources: list[TraceSource] = []
    for path in paths:
        for source in load_traces(path, model=model):
            if source.name in taken:
                raise TraceFileError(
                    f"source name {source.name!r} is already taken by {taken[source.name]}",
                    path=str(source.path),
                    allowed="a unique name: set 'name' in a descriptor, edit the backend "
                    "column of a table, or leave the clashing source out")
            taken[source.name] = f"{source.path}"
            sources.append(source)
    return sources


# ---------------------------------------------------------------------------------------------
# reading files


def _check_readable(path: Path, shown: str, mentioned_at: Place | None = None) -> None:
    """TraceFileError if ``path`` is missing, a folder or unreadable."""
    def fail(problem: str) -> TraceFileError:
        if mentioned_at is None:
            return TraceFileError(problem, path=shown)
        return _error(mentioned_at, f"{problem}: {shown}")

    if not path.exists():
        raise fail("file not found")
    if path.is_dir():
        raise fail("is a folder, not a trace file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise fail(f"cannot read ({exc.strerror})") from None


def _read_text(path: Path, shown: str) -> str:
    """The file as text (UTF-8, a byte-order mark allowed); TraceFileError naming the line
    of the first byte that is not UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TraceFileError(f"cannot read ({exc.strerror})", path=shown) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TraceFileError("not UTF-8 text", path=shown, line=line,
                             allowed="a UTF-8 (or ASCII) text file") from None


def _error(place: Place, message: str, *, value: Any = None,
           allowed: str | None = None) -> TraceFileError:
    path, where = place
    match = re.match(r"line (\d+)", where or "")
    return TraceFileError(message, path=path, where=where,
                          line=int(match.group(1)) if match else None, value=value,
                          allowed=allowed)


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number(text: str, *, fortran: bool = False) -> float | None:
    """``text`` as a float, or None if it is not a plain decimal number (``nan``/``inf`` are
    numbers here; the caller rejects them as not finite)."""
    text = text.strip()
    if not text or "_" in text:
        return None
    if fortran:
        text = text.replace("D", "e").replace("d", "e")
    try:
        return float(text)
    except ValueError:
        return None


def _shown_value(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _check_name(name: Any, place: Place | Callable[[], Place], what: str) -> str:
    """``name`` if it can name a source (as a model name can); ``place`` may be a callable,
    called only to report an error."""
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name) or len(name) > 200:
        raise _error(place() if callable(place) else place,
                     f"{what} {name!r} cannot name a source", allowed=NAME_ALLOWED)
    return name


# --- long-form CSV ---------------------------------------------------------------------------


def _csv_records(path: Path, shown: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank CSV record, the header included.

    Blank means what pandas skips: an empty or whitespace-only line.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:  # streamed: header only
        reader = csv.reader(handle)                                 # costs the first lines
        try:
            for fields in reader:
                if len(fields) <= 1 and not "".join(fields).strip():
                    continue
                yield reader.line_num, fields
        except UnicodeDecodeError:
            _read_text(path, shown)  # raises, naming the line
            raise
        except csv.Error as exc:
            raise TraceFileError(f"not a CSV table: {exc}", path=shown,
                                 line=reader.line_num + 1) from None


def _check_columns(header: list[str], place: Place) -> list[str]:
    names = [name.strip() for name in header]
    for name in names:
        if name not in LONG_FORM_COLUMNS:
            raise _error(place, f"unknown column {name!r}{_did_you_mean(name, LONG_FORM_COLUMNS)}",
                         value=name, allowed=", ".join(LONG_FORM_COLUMNS) +
                         " (a long-form table as 'crosssim run' writes it)")
        if names.count(name) > 1:
            raise _error(place, f"column {name!r} appears twice", value=name)
    missing = [name for name in LONG_FORM_REQUIRED if name not in names]
    if missing:
        raise _error(place, f"missing column {', '.join(map(repr, missing))}",
                     allowed="columns " + ", ".join(LONG_FORM_REQUIRED) + " and optionally "
                     + ", ".join(LONG_FORM_OPTIONAL))
    return names


def _diagnose_csv(path: Path, shown: str, header: list[str]) -> None:
    """Find the first record pandas could not read and raise its TraceFileError."""
    width = len(header)
    records = _csv_records(path, shown)
    next(records)  # the header
    for line, fields in records:
        place = (shown, f"line {line}")
        if len(fields) != width:
            raise _error(place, f"wrong column count: {len(fields)} fields, expected {width} "
                         f"({', '.join(header)})")
        for name, text in zip(header, fields):
            if name in _NUMERIC:
                value = _number(text)
                if value is None:
                    what = "empty value" if not text.strip() else \
                        f"non-numeric value {_shown_value(text)}"
                    raise _error(place, f"{what} in column {name}", value=text,
                                 allowed="a decimal number")
                if not math.isfinite(value):
                    raise _error(place, f"{name} = {text.strip()} is not a finite number",
                                 value=text, allowed="a finite number (no NaN or infinity)")
            elif not text.strip():
                raise _error(place, f"empty value in column {name}")


def _read_csv(path: Path, shown: str) -> tuple[pd.DataFrame, Callable[[int], Place]]:
    """The long-form CSV as a DataFrame (pandas' fast reader), and row index -> place.

    Anything pandas rejects or reads as not finite is looked up again with the csv module,
    which knows line numbers; well-formed files never take that slower path.
    """
    import pandas as pd

    records = _csv_records(path, shown)
    first = next(records, None)
    if first is None:
        raise TraceFileError("empty file: no header and no data", path=shown, line=1,
                             allowed="a header line 'backend,probe,t_ms,v_mV' and data rows")
    header_line, header = first
    header = _check_columns(header, (shown, f"line {header_line}"))
    dtypes = {name: ("float64" if name in _NUMERIC else str) for name in header}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, index_col=False,
                                encoding="utf-8-sig", skiprows=header_line - 1)
    except (ValueError, Warning) as exc:
        _diagnose_csv(path, shown, header)
        raise TraceFileError(f"not a readable CSV table: {' '.join(str(exc).split())}",
                             path=shown) from None
    frame.columns = header
    if len(frame) == 0:
        raise TraceFileError("no data rows after the header", path=shown, line=header_line)
    if not (np.isfinite(frame["t_ms"].to_numpy()).all()
            and np.isfinite(frame["v_mV"].to_numpy()).all()):
        _diagnose_csv(path, shown, header)
    for name in header:
        if name not in _NUMERIC and (frame[name].str.strip() == "").any():
            _diagnose_csv(path, shown, header)

    lines: list[int] = []

    def place_of_row(row: int) -> Place:
        if not lines:  # only when reporting an error: one scan for every row's line
            lines.extend(line for line, _ in _csv_records(path, shown))
        return shown, f"line {lines[row + 1]}"

    return frame, place_of_row


# --- long-form Parquet -----------------------------------------------------------------------


def _read_parquet(path: Path, shown: str) -> tuple[pd.DataFrame, Callable[[int], Place]]:
    """The long-form Parquet table as a DataFrame (checked cell by cell), and row -> place."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise TraceFileError(f"not a Parquet file: {' '.join(str(exc).split())}",
                             path=shown) from None
    header = _check_columns(list(table.column_names), (shown, "columns"))

    def place_of_row(row: int) -> Place:
        return shown, f"row {row + 1}"

    frame = table.to_pandas()
    if len(frame) == 0:
        raise TraceFileError("no data rows", path=shown)
    for name in header:
        column = frame[name]
        missing = column.isna().to_numpy()
        if missing.any():
            raise _error(place_of_row(int(np.argmax(missing))), f"missing value in column {name}")
        if name in _NUMERIC:
            numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            bad = np.isnan(numbers)
            if bad.any():
                row = int(np.argmax(bad))
                raise _error(place_of_row(row), f"non-numeric value "
                             f"{_shown_value(str(column.iloc[row]))} in column {name}",
                             value=column.iloc[row], allowed="a number")
            infinite = ~np.isfinite(numbers)
            if infinite.any():
                row = int(np.argmax(infinite))
                raise _error(place_of_row(row), f"{name} = {numbers[row]} is not a finite number",
                             allowed="a finite number (no NaN or infinity)")
            frame[name] = numbers
        else:
            text = column.astype(str)
            empty = (text.str.strip() == "").to_numpy()
            if empty.any():
                raise _error(place_of_row(int(np.argmax(empty))), f"empty value in column {name}")
            frame[name] = text
    return frame, place_of_row


# --- long-form table -> sources -----------------------------------------------------------


def _registered_kind(name: str) -> SourceKind:
    """The kind of the registered source ``name``, or ``simulator`` for any other name."""
    from crosssim.sources import known_sources, source_spec

    return source_spec(name).kind if name in known_sources() else SIMULATOR


def _long_form_sources(frame: pd.DataFrame, path: Path, shown: str, file_format: str,
                       place_of_row: Callable[[int], Place],
                       model: Model | None) -> list[TraceSource]:
    """Group a checked long-form table into sources (order of first appearance)."""
    import pandas as pd

    n_rows = len(frame)
    if "backend" in frame.columns:
        source_codes, source_names = pd.factorize(frame["backend"].to_numpy(dtype=object))
    else:
        source_codes = np.zeros(n_rows, dtype=np.intp)
        source_names = np.array([path.stem], dtype=object)
    probe_codes, probe_names = pd.factorize(frame["probe"].to_numpy(dtype=object))
    key = source_codes.astype(np.int64) * len(probe_names) + probe_codes
    order = np.argsort(key, kind="stable")  # rows of one (source, probe) together, file order
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    ends = np.r_[starts[1:], n_rows]
    times = frame["t_ms"].to_numpy(dtype=float)
    values = frame["v_mV"].to_numpy(dtype=float)
    kinds = frame["kind"].to_numpy(dtype=object) if "kind" in frame.columns else None

    grouped: dict[int, list[_Series]] = {}
    for start, end in zip(starts, ends):
        rows = order[start:end]
        source = int(source_codes[rows[0]])

        def locate(index: int | None, rows: np.ndarray = rows) -> Place:
            return place_of_row(int(rows[0 if index is None else index]))

        grouped.setdefault(source, []).append(_Series(
            str(probe_names[probe_codes[rows[0]]]), times[rows], values[rows], locate))

    sources = []
    for code in sorted(grouped):  # factorize numbers sources in order of first appearance
        series = grouped[code]
        first_row = int(np.argmax(source_codes == code))
        name = str(source_names[code])
        if "backend" in frame.columns:
            _check_name(name, functools.partial(place_of_row, first_row), "backend")
        else:
            _check_name(name, (shown, None),
                        "the file's stem (the source name without a backend column)")
        kind: str
        if kinds is None:
            kind = _registered_kind(name)
        else:
            rows = np.flatnonzero(source_codes == code)
            kind = str(kinds[rows[0]]).strip()
            differs = np.flatnonzero(np.char.strip(kinds[rows].astype(str)) != kind)
            for row in (rows[0], *(rows[differs[:1]])):
                value = str(kinds[row]).strip()
                if value not in KINDS:
                    raise _error(place_of_row(int(row)), f"unknown kind {value!r}"
                                 f"{_did_you_mean(value, KINDS)}", value=value,
                                 allowed=", ".join(KINDS))
            if differs.size:
                row = int(rows[differs[0]])
                raise _error(place_of_row(row), f"kind {str(kinds[row]).strip()!r} of source "
                             f"{name!r} differs from {kind!r} on its first row",
                             allowed="one kind per source")
        info = {"file": shown, "format": f"long-form {file_format}", "time_unit": "ms",
                "voltage_unit": "mV"}
        sources.append(_assemble(name, cast(SourceKind, kind), series, path, shown, info,
                                 model))
    return sources


# --- descriptor and column files ---------------------------------------------------------


def _toml_place(text: str, key: str, table: str | None = None) -> str:
    """``line N (key)``: the line where ``key`` is set (in ``[table]``), else just the key."""
    label = f"{table}.{key}" if table else key
    current: str | None = None
    quoted = re.escape(key)
    pattern = re.compile(rf"""\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*=""")
    header = re.compile(r"\s*\[\s*([^\]]+?)\s*\]\s*(?:#.*)?$")
    for number, line in enumerate(text.splitlines(), start=1):
        match = header.match(line)
        if match:
            current = match.group(1).strip("\"'")
            continue
        if current == table and pattern.match(line):
            return f"line {number} ({label})"
    return label


def _read_column_file(path: Path, shown: str, mentioned_at: Place
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, voltages (file units) and line numbers of a two-column file, checked."""
    _check_readable(path, shown, mentioned_at)
    text = _read_text(path, shown)
    times: list[float] = []
    voltages: list[float] = []
    lines: list[int] = []
    header_line = 0
    number = 0
    previous = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [field.strip() for field in line.split(",")] if "," in line else line.split()
        parsed = [_number(field, fortran=True) for field in fields]
        if not times and not header_line and all(value is None for value in parsed):
            header_line = number  # a header: names only, no number
            continue
        place = (shown, f"line {number}")
        if len(fields) != 2:
            raise _error(place, f"wrong column count: {len(fields)} columns, expected 2 "
                         "(time, voltage)")
        for column, field, value in zip(("time", "voltage"), fields, parsed):
            if value is None:
                what = "empty value" if not field else f"non-numeric value {_shown_value(field)}"
                raise _error(place, f"{what} in column {1 if column == 'time' else 2} "
                             f"({column})", value=field, allowed="a decimal number")
            if not math.isfinite(value):
                raise _error(place, f"{column} {field} is not a finite number", value=field,
                             allowed="a finite number (no NaN or infinity)")
        if times and not parsed[0] > times[-1]:  # type: ignore[operator]
            raise _error(place, f"times not increasing: t = {fields[0]} after {previous} "
                         f"(line {lines[-1]})", value=fields[0],
                         allowed="strictly increasing times, one sample per line")
        previous = fields[0]
        times.append(parsed[0])  # type: ignore[arg-type]
        voltages.append(parsed[1])  # type: ignore[arg-type]
        lines.append(number)
    if not times:
        what = ("empty file" if not text.strip() else
                "no data lines (only comments" + (" and a header)" if header_line else ")"))
        raise _error((shown, f"line {max(number, 1)}"), what,
                     allowed="lines of two numbers: time, voltage")
    return np.array(times), np.array(voltages), np.array(lines)


def _load_descriptor(path: Path, shown: str, model: Model | None) -> TraceSource:
    """The one source a descriptor describes."""
    text = _read_text(path, shown)
    if not text.strip():
        raise TraceFileError("empty file", path=shown, line=1,
                             allowed="a descriptor: time_unit, voltage_unit and [files]")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = " ".join(str(exc).split())
        match = re.search(r"line (\d+)", message)
        raise TraceFileError(f"not valid TOML: {message}", path=shown,
                             line=int(match.group(1)) if match else None) from None

    def place(key: str, table: str | None = None) -> Place:
        return shown, _toml_place(text, key, table)

    for key in data:
        if key not in DESCRIPTOR_KEYS:
            raise _error(place(key), f"unknown key {key!r}{_did_you_mean(key, DESCRIPTOR_KEYS)}",
                         value=key, allowed=", ".join(DESCRIPTOR_KEYS))

    def string(key: str, default: str | None, allowed: Sequence[str] | None = None) -> str:
        if key not in data:
            if default is None:
                raise TraceFileError(f"missing key {key!r}", path=shown,
                                     allowed=" | ".join(allowed or ()) or None)
            return default
        value = data[key]
        if not isinstance(value, str):
            raise _error(place(key), f"{key} must be a string, got {value!r}", value=value)
        if allowed is not None and value not in allowed:
            raise _error(place(key), f"unknown {key.replace('_', ' ')} {value!r}"
                         f"{_did_you_mean(value, allowed)}", value=value,
                         allowed=" | ".join(allowed))
        return value

    name = _check_name(string("name", path.stem), place("name") if "name" in data else
                       (shown, None), "name")
    kind = string("kind", SIMULATOR, KINDS)
    time_unit = string("time_unit", None, tuple(TIME_UNITS))
    voltage_unit = string("voltage_unit", None, tuple(VOLTAGE_UNITS))
    description = string("description", "")
    files = data.get("files")
    if not isinstance(files, Mapping) or not files:
        raise _error(place("files") if "files" in data else (shown, None),
                     "missing [files] table" if files is None else
                     "[files] must be a table of probe name -> file, with at least one entry",
                     allowed='e.g. [files] v0 = "ref/v0.txt"')

    time_factor = TIME_UNITS[time_unit]
    voltage_factor = VOLTAGE_UNITS[voltage_unit]
    folder = path.parent
    series = []
    for probe, relative in files.items():
        key_place = place(probe, "files")
        if not probe.strip():
            raise _error(key_place, "empty probe name")
        if not isinstance(relative, str) or not relative.strip():
            raise _error(key_place, f"the file of probe {probe!r} must be a path string, got "
                         f"{relative!r}", value=relative)
        column_file = folder / relative  # an absolute path stays absolute
        column_shown = str(Path(shown).parent / relative)
        raw_times, raw_volts, lines = _read_column_file(column_file, column_shown, key_place)

        def locate(index: int | None, key_place: Place = key_place, shown: str = column_shown,
                   lines: np.ndarray = lines) -> Place:
            return key_place if index is None else (shown, f"line {lines[index]}")

        series.append(_Series(str(probe), raw_times * time_factor, raw_volts * voltage_factor,
                              locate))
    info: dict[str, Any] = {"file": shown, "format": "descriptor", "time_unit": time_unit,
                            "voltage_unit": voltage_unit,
                            "files": {probe: str(relative) for probe, relative in files.items()}}
    if description:
        info["description"] = description
    return _assemble(name, kind, series, path, shown, info, model,  # type: ignore[arg-type]
                     unit=(time_unit, time_factor))


# ---------------------------------------------------------------------------------------------
# one source from its series


def _times_agree(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per sample: True where ``a`` and ``b`` are the same instant, within 7-digit rounding
    (TIME_RTOL of the value) and GRID_RTOL of the smallest step."""
    step = float(np.min(np.diff(a))) if a.size > 1 else 0.0
    allowed = TIME_RTOL * np.maximum(np.abs(a), np.abs(b)) + GRID_RTOL * step
    return np.abs(a - b) <= allowed


def _snap_to_model_grid(times_ms: np.ndarray, model: Model) -> tuple[np.ndarray, float] | None:
    """``(k * sample_dt_ms, largest offset)`` if every time lies on the model's sample grid
    (within GRID_RTOL of a step plus TIME_RTOL of the time, at most a quarter step) at
    distinct grid points; else None."""
    step = model.simulation.sample_interval_ms
    index = np.rint(times_ms / step)
    offset = np.abs(times_ms - index * step)
    allowed = np.minimum(GRID_RTOL * step + TIME_RTOL * np.abs(times_ms), 0.25 * step)
    if not np.all(offset <= allowed) or np.any(np.diff(index) <= 0):
        return None
    return index * step, float(offset.max())


def _assemble(name: str, kind: SourceKind, series: list[_Series], path: Path, shown: str,
              info: dict[str, Any], model: Model | None,
              unit: tuple[str, float] = ("ms", 1.0)) -> TraceSource:
    """Check the series of one source (probes, order, one grid) and build its TraceSource."""
    unit_name, factor = unit

    def in_file_unit(t_ms: float) -> str:
        return f"{t_ms / factor:.10g} {unit_name}"

    model_probes = [probe.label for probe in model.effective_probes()] if model else []
    for item in series:
        if model is not None and item.probe not in model_probes:
            hint = _did_you_mean(item.probe, model_probes)
            raise _error(item.locate(None), f"unknown probe {item.probe!r}: model "
                         f"{model.name!r} has no such probe{hint}",
                         value=item.probe, allowed=", ".join(model_probes[:10]) +
                         (" ..." if len(model_probes) > 10 else ""))
        if item.times_ms.size < 2:
            raise _error(item.locate(0), f"probe {item.probe!r} has only 1 sample; at least 2 "
                         "are needed to define a time grid")
        steps = np.diff(item.times_ms)
        if not np.all(steps > 0):
            i = int(np.argmax(~(steps > 0))) + 1
            raise _error(item.locate(i), f"times not increasing: probe {item.probe!r} has "
                         f"t = {in_file_unit(item.times_ms[i])} after "
                         f"{in_file_unit(item.times_ms[i - 1])}",
                         allowed="strictly increasing times per probe")

    first = series[0]
    for item in series[1:]:
        n = min(first.times_ms.size, item.times_ms.size)
        agree = _times_agree(first.times_ms[:n], item.times_ms[:n])
        if agree.all() and item.times_ms.size == first.times_ms.size:
            continue
        i = int(np.argmax(~agree)) if not agree.all() else (
            n if item.times_ms.size > n else n - 1)
        if agree.all():
            problem = (f"probe {item.probe!r} has {item.times_ms.size} samples, probe "
                       f"{first.probe!r} has {first.times_ms.size}")
        else:
            problem = (f"probe {item.probe!r} has t = {in_file_unit(item.times_ms[i])} where "
                       f"probe {first.probe!r} has {in_file_unit(first.times_ms[i])} "
                       f"(sample {i + 1})")
        raise _error(item.locate(i), f"{problem}: every probe of source {name!r} must be "
                     "sampled at the same times (crosssim does not resample within a file)",
                     allowed="one time grid per source")

    times = first.times_ms
    notes: list[Note] = []
    if model is not None:
        snapped = _snap_to_model_grid(times, model)
        info["snapped_to_model_grid"] = snapped is not None
        if snapped is not None:
            times, info["largest_time_offset_ms"] = snapped
        present = {item.probe for item in series}
        lacking = [probe for probe in model_probes if probe not in present]
        if lacking:
            listed = ", ".join(lacking[:10]) + (f" and {len(lacking) - 10} more"
                                                if len(lacking) > 10 else "")
            notes.append(Note(
                "probe-not-compared", name,
                f"{shown} has no trace of probe{'s' if len(lacking) > 1 else ''} {listed}: "
                f"not compared with {name}"))
        grid = model.simulation.sample_times_ms()
        slack = GRID_RTOL * model.simulation.sample_interval_ms
        if times[0] > grid[0] + slack or times[-1] < grid[-1] - slack:
            notes.append(Note(
                "partial-span", name,
                f"{shown} covers t = {times[0]:g}..{times[-1]:g} ms of the model's "
                f"{grid[0]:g}..{grid[-1]:g} ms: {name} is compared on that span only"))
    values = np.vstack([item.values_mV for item in series])
    result = RunResult(name, [item.probe for item in series], times, values, info=info)
    return TraceSource(name, kind, result, path, tuple(notes))
