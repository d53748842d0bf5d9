"""Align traces from two sources onto one time grid and measure how far apart they are.

Alignment rules (:func:`align`):

* every source must be on a uniform grid ``t = t0 + k * step``; times may drift from it by
  rounding (up to :data:`GRID_RTOL` of a step), so samples are matched by *index*, never by
  comparing floats with ``==``;
* grids coincide when one step is a whole multiple of the other and the offsets agree: the
  common samples are then taken by index (on the coarser grid), exactly, with no copy;
* grids that do not coincide are an :class:`AlignmentError`, unless ``interpolate=True``:
  then the other source is interpolated linearly onto the coarser grid, and the result says so;
* nothing is ever extrapolated: the comparison covers the span both sources cover, and a
  source that does not cover a requested ``start_ms .. stop_ms`` span is an error naming it.

Metrics (:func:`deviation_metrics`, :func:`compare_results`) are computed for all probes of a
pair at once in numpy: no loop over samples or probes in Python (only over blocks of probes,
which bounds the temporary memory to a few MB whatever the model size).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import numpy as np

from crosssim.errors import AlignmentError
from crosssim.outcome import Comparison, PairKind

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.result import RunResult

__all__ = [
    "GRID_RTOL",
    "Aligned",
    "AlignmentError",
    "Grid",
    "Metrics",
    "align",
    "compare_results",
    "deviation_metrics",
    "infer_grid",
    "suggest_tolerance",
]

#: A sample time may sit this fraction of its grid step away from the grid point (rounding
#: drift of accumulated ``t += dt``); grids, multiples and offsets are checked with it too.
GRID_RTOL = 1e-3

#: Values per block of rows in :func:`deviation_metrics`: 3 buffers of 512 kB stay in cache.
_BLOCK_VALUES = 1 << 16

AlignMethod = Literal["exact", "interpolated"]


@dataclass(frozen=True)
class Grid:
    """A uniform sample grid ``start_ms + k * step_ms`` for ``k = 0 .. count - 1``."""

    start_ms: float
    step_ms: float
    count: int

    @property
    def stop_ms(self) -> float:
        """The last sample time in ms."""
        return self.start_ms + (self.count - 1) * self.step_ms

    def describe(self) -> str:
        """``t = 0..5 ms every 0.01 ms (501 samples)``."""
        return (f"t = {self.start_ms:g}..{self.stop_ms:g} ms every {self.step_ms:g} ms "
                f"({self.count} samples)")


def infer_grid(times_ms: np.ndarray, *, label: str = "trace") -> Grid:
    """The uniform grid of ``times_ms``; AlignmentError if the times are not on one.

    The step is ``(t[-1] - t[0]) / (n - 1)``; each time may differ from its grid point by
    :data:`GRID_RTOL` of a step.  At least two samples are needed to define a step.
    """
    times = np.asarray(times_ms, dtype=float)
    if times.ndim != 1 or times.size < 2:
        raise AlignmentError(f"{label}: needs at least 2 sample times to define a grid, "
                             f"got {times.size}")
    if not np.all(np.isfinite(times)):
        raise AlignmentError(f"{label}: sample times are not all finite")
    count = times.size
    step = (times[-1] - times[0]) / (count - 1)
    if not step > 0:
        raise AlignmentError(f"{label}: sample times do not increase "
                             f"(t = {times[0]:g} .. {times[-1]:g} ms)")
    drift = np.abs(times - (times[0] + np.arange(count) * step))
    worst = int(np.argmax(drift))
    if drift[worst] > GRID_RTOL * step:
        raise AlignmentError(
            f"{label}: sample times are not on a uniform grid: t[{worst}] = "
            f"{times[worst]:.12g} ms is {drift[worst]:.3g} ms from {times[0]:g} + "
            f"{worst} * {step:.12g} ms (allowed: {GRID_RTOL:g} of a step)")
    return Grid(float(times[0]), float(step), int(count))


def _whole_ratio(value: float, unit: float) -> int | None:
    """``round(value / unit)`` if it is a whole number >= 1 within GRID_RTOL, else None."""
    ratio = value / unit
    nearest = round(ratio)
    if nearest >= 1 and abs(ratio - nearest) <= GRID_RTOL:
        return int(nearest)
    return None


def _on_grid(offset: float, step: float) -> bool:
    """True if ``offset`` is a whole number of ``step`` (within GRID_RTOL of a step)."""
    ratio = offset / step
    return abs(ratio - round(ratio)) <= GRID_RTOL


@dataclass
class Aligned:
    """Two sources' traces on one grid.

    ``a`` and ``b``: shape (n_probes, n_samples), rows in ``probes`` order, often views into
    the sources' arrays.  ``method`` is ``exact`` (common samples taken by index) or
    ``interpolated`` (``interpolated_source`` was interpolated linearly onto the other's grid).
    """

    a_name: str
    b_name: str
    probes: list[str]
    times_ms: np.ndarray
    a: np.ndarray
    b: np.ndarray
    method: AlignMethod = "exact"
    interpolated_source: str | None = None

    @property
    def step_ms(self) -> float:
        """The common grid's step in ms (NaN for a single sample)."""
        if self.times_ms.size < 2:
            return math.nan
        return float(self.times_ms[1] - self.times_ms[0])


def _probe_rows(a: RunResult, b: RunResult,
                probes: Sequence[str] | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The probe names to compare and their row indices in ``a`` and ``b``."""
    names = list(a.probes) if probes is None else list(probes)
    rows = []
    for result in (a, b):
        index = {name: i for i, name in enumerate(result.probes)}
        missing = [name for name in names if name not in index]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise AlignmentError(f"{result.backend}: has no probe {shown} "
                                 f"(it has {len(result.probes)} probes)")
        rows.append(np.fromiter((index[name] for name in names), dtype=np.intp,
                                count=len(names)))
    return names, rows[0], rows[1]


def _take_rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]``, as a view when ``rows`` is simply ``0 .. n-1``."""
    if rows.size == values.shape[0] and np.array_equal(rows, np.arange(values.shape[0])):
        return values
    return values[rows]


def _span(a_name: str, a_grid: Grid, b_name: str, b_grid: Grid,
          start_ms: float | None, stop_ms: float | None) -> tuple[float, float]:
    """The time span to compare: the requested one (each source must cover it) or the overlap."""
    slack = GRID_RTOL * min(a_grid.step_ms, b_grid.step_ms)
    for name, grid in ((a_name, a_grid), (b_name, b_grid)):
        too_late = start_ms is not None and grid.start_ms > start_ms + slack
        too_early = stop_ms is not None and grid.stop_ms < stop_ms - slack
        if too_late or too_early:
            wanted = (f"{start_ms if start_ms is not None else grid.start_ms:g}.."
                      f"{stop_ms if stop_ms is not None else grid.stop_ms:g} ms")
            raise AlignmentError(
                f"{name} covers t = {grid.start_ms:g}..{grid.stop_ms:g} ms, the comparison needs "
                f"t = {wanted}; not extrapolating ({grid.count} samples every "
                f"{grid.step_ms:g} ms)")
    low = max(a_grid.start_ms, b_grid.start_ms)
    high = min(a_grid.stop_ms, b_grid.stop_ms)
    if start_ms is not None:
        low = max(low, start_ms)
    if stop_ms is not None:
        high = min(high, stop_ms)
    if high < low - slack:
        raise AlignmentError(
            f"{a_name} ({a_grid.describe()}) and {b_name} ({b_grid.describe()}) "
            "do not overlap in time; not extrapolating")
    return low, high


def _grid_indices(grid: Grid, low: float, high: float, step_ratio: int,
                  first_time: float | None = None) -> slice:
    """The slice of ``grid`` from the first sample >= ``low`` (or at ``first_time``) to ``high``,
    every ``step_ratio`` samples."""
    slack = GRID_RTOL
    start_time = low if first_time is None else first_time
    first = math.ceil((start_time - grid.start_ms) / grid.step_ms - slack)
    last = math.floor((high - grid.start_ms) / grid.step_ms + slack)
    first = max(first, 0)
    last = min(last, grid.count - 1)
    if last < first:
        return slice(first, first)
    count = (last - first) // step_ratio + 1
    return slice(first, first + (count - 1) * step_ratio + 1, step_ratio)


def align(a: RunResult, b: RunResult, *, probes: Sequence[str] | None = None,
          start_ms: float | None = None, stop_ms: float | None = None,
          interpolate: bool = False) -> Aligned:
    """Put ``a`` and ``b`` on one time grid (see the module docstring for the rules).

    ``probes``: the probe names to compare (default: all of ``a``'s; each must exist in both).
    ``start_ms``/``stop_ms``: a span both sources must cover (default: their overlap).
    ``interpolate``: allow linear interpolation when the grids do not coincide.
    Returns an :class:`Aligned`; raises :class:`AlignmentError` with the reason.
    """
    names, a_rows, b_rows = _probe_rows(a, b, probes)
    a_grid = infer_grid(a.times_ms, label=a.backend)
    b_grid = infer_grid(b.times_ms, label=b.backend)
    low, high = _span(a.backend, a_grid, b.backend, b_grid, start_ms, stop_ms)
    a_values = _take_rows(a.values_mV, a_rows)
    b_values = _take_rows(b.values_mV, b_rows)

    # Equal steps (within rounding): ``a`` counts as the coarser one.
    if b_grid.step_ms > a_grid.step_ms * (1 + GRID_RTOL):
        fine, coarse = a_grid, b_grid
    else:
        fine, coarse = b_grid, a_grid
    ratio = _whole_ratio(coarse.step_ms, fine.step_ms)
    coincide = ratio is not None and _on_grid(coarse.start_ms - fine.start_ms, fine.step_ms)
    if coincide:
        assert ratio is not None  # coincide implies a whole ratio
        # The coarser grid's samples inside the span, and the same instants on the finer grid.
        coarse_slice = _grid_indices(coarse, low, high, 1)
        first_time = coarse.start_ms + coarse_slice.start * coarse.step_ms
        fine_slice = _grid_indices(fine, low, high, ratio, first_time=first_time)
        n = min(len(range(coarse.count)[coarse_slice]), len(range(fine.count)[fine_slice]))
        if n == 0:
            raise AlignmentError(f"{a.backend} and {b.backend} share no sample time in "
                                 f"t = {low:g}..{high:g} ms")
        coarse_slice = slice(coarse_slice.start, coarse_slice.start + n)
        fine_slice = slice(fine_slice.start, fine_slice.start + (n - 1) * ratio + 1, ratio)
        a_slice, b_slice = ((coarse_slice, fine_slice) if a_grid is coarse
                            else (fine_slice, coarse_slice))
        # The coarser source's own times (the first source's when the steps are equal).
        times = np.asarray(a.times_ms if a_grid is coarse else b.times_ms)[coarse_slice]
        return Aligned(a.backend, b.backend, names, times, a_values[:, a_slice],
                       b_values[:, b_slice], "exact", None)

    if not interpolate:
        why = ("steps are not whole multiples of each other" if ratio is None
               else "grids are offset from each other")
        raise AlignmentError(
            f"{a.backend} ({a_grid.describe()}) and {b.backend} ({b_grid.describe()}) do not "
            f"share sample times ({why}); pass interpolate=True to interpolate linearly")

    # Interpolate the finer source onto the coarser grid inside the span (never beyond it).
    target_is_a = a_grid is coarse
    target_grid, source_grid = (a_grid, b_grid) if target_is_a else (b_grid, a_grid)
    target_slice = _grid_indices(target_grid, low, high, 1)
    n = len(range(target_grid.count)[target_slice])
    if n == 0:
        raise AlignmentError(f"no sample of {a.backend if target_is_a else b.backend} lies in "
                             f"t = {low:g}..{high:g} ms")
    times = np.asarray(a.times_ms if target_is_a else b.times_ms)[target_slice]
    source_values = b_values if target_is_a else a_values
    interpolated = _interpolate(source_values, source_grid, times)
    target_values = (a_values if target_is_a else b_values)[:, target_slice]
    if target_is_a:
        return Aligned(a.backend, b.backend, names, times, target_values, interpolated,
                       "interpolated", b.backend)
    return Aligned(a.backend, b.backend, names, times, interpolated, target_values,
                   "interpolated", a.backend)


def _interpolate(values: np.ndarray, grid: Grid, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of every row of ``values`` (on ``grid``) at ``times`` (inside it)."""
    position = (times - grid.start_ms) / grid.step_ms
    if position.size and (position[0] < -GRID_RTOL or position[-1] > grid.count - 1 + GRID_RTOL):
        raise AlignmentError("interpolation would extrapolate; refusing")  # guarded by _span
    position = np.clip(position, 0.0, grid.count - 1)
    left = np.minimum(np.floor(position).astype(np.intp), grid.count - 2)
    weight = position - left
    return values[:, left] * (1.0 - weight) + values[:, left + 1] * weight


@dataclass
class Metrics:
    """Deviation of ``a`` from ``b`` per probe (arrays of shape (n_probes,); mV and ms).

    ``max_rel_diff`` is numpy.testing's "max relative difference": ``max |a - b| / |b|``
    (``/ max(|a|, |b|)`` when symmetric), over samples where the denominator is not zero.
    ``max_rel_range``/``rms_rel_range`` divide by the range (max - min) of ``b``'s trace in the
    window, or by max |b| when that trace is flat.  ``n_mismatched`` counts samples with
    ``|a - b| > tolerance`` (or NaN); 0 where the tolerance is NaN (not gated).
    """

    max_abs_mV: np.ndarray
    t_max_abs_ms: np.ndarray
    a_at_max_mV: np.ndarray
    b_at_max_mV: np.ndarray
    rms_mV: np.ndarray
    max_rel_range: np.ndarray
    rms_rel_range: np.ndarray
    max_rel_diff: np.ndarray
    final_abs_mV: np.ndarray
    n_mismatched: np.ndarray
    n_samples: int
    window_start_ms: float
    #: Per probe: the time of the last mismatched sample and of the sample after it (NaN
    #: where nothing is mismatched; the next time is NaN when the last sample mismatches).
    t_last_mismatch_ms: np.ndarray | None = None
    t_after_mismatch_ms: np.ndarray | None = None


def _window_start_index(times: np.ndarray, window_start_ms: float) -> int:
    """Index of the first sample at or after ``window_start_ms`` (rounding drift tolerated)."""
    if window_start_ms <= times[0]:
        return 0
    step = float(times[1] - times[0]) if times.size > 1 else 1.0
    return int(np.searchsorted(times, window_start_ms - GRID_RTOL * step, side="left"))


def deviation_metrics(times_ms: np.ndarray, a: np.ndarray, b: np.ndarray, *,
                      tolerance_mV: np.ndarray | float | None = None,
                      window_start_ms: float = 0.0, symmetric: bool = False) -> Metrics:
    """Deviation metrics of ``a`` against ``b`` (shape (n_probes, n_samples), same grid).

    ``tolerance_mV``: one value or one per probe (NaN or None: not gated).  Samples before
    ``window_start_ms`` are skipped.  Vectorised over probes; blocks of rows bound memory.
    """
    times = np.asarray(times_ms, dtype=float)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != times.size:
        raise ValueError(f"shapes differ: a {a.shape}, b {b.shape}, times {times.shape}")
    n_probes = a.shape[0]
    tolerance = np.full(n_probes, np.nan) if tolerance_mV is None else np.broadcast_to(
        np.asarray(tolerance_mV, dtype=float), (n_probes,))
    first = _window_start_index(times, window_start_ms) if times.size else 0
    n = times.size - first
    if n <= 0:
        raise AlignmentError(f"no sample at or after the window start {window_start_ms:g} ms "
                             f"(last common sample at {times[-1]:g} ms)")
    a = a[:, first:]
    b = b[:, first:]
    window_times = times[first:]

    out = {name: np.empty(n_probes) for name in (
        "max_abs_mV", "t_max_abs_ms", "a_at_max_mV", "b_at_max_mV", "rms_mV",
        "max_rel_range", "rms_rel_range", "max_rel_diff", "final_abs_mV")}
    mismatched = np.zeros(n_probes, dtype=np.int64)
    last = np.full(n_probes, -1, dtype=np.int64)
    rows_per_block = max(1, min(n_probes, _BLOCK_VALUES // n))
    buffers = np.empty((3, rows_per_block, n))  # reused by every block: no page faults
    for lo in range(0, n_probes, rows_per_block):
        hi = min(lo + rows_per_block, n_probes)
        block = slice(lo, hi)
        _block_metrics(a[block], b[block], tolerance[block], window_times, symmetric,
                       {name: array[block] for name, array in out.items()},
                       mismatched[block], buffers[:, : hi - lo], last[block])
    found = last >= 0
    t_last = np.where(found, window_times[np.maximum(last, 0)], np.nan)
    after = np.minimum(last + 1, n - 1)
    t_after = np.where(found & (last + 1 < n), window_times[after], np.nan)
    return Metrics(n_samples=int(n), window_start_ms=float(window_start_ms),
                   n_mismatched=mismatched, t_last_mismatch_ms=t_last,
                   t_after_mismatch_ms=t_after, **out)


def _block_metrics(a: np.ndarray, b: np.ndarray, tolerance: np.ndarray, times: np.ndarray,
                   symmetric: bool, out: dict[str, np.ndarray], mismatched: np.ndarray,
                   buffers: np.ndarray, last: np.ndarray) -> None:
    """Fill ``out``/``mismatched``/``last`` (index of the last mismatched sample, -1 for
    none) (views) for one block of rows, using ``buffers`` (3 x a)."""
    rows = np.arange(a.shape[0])
    n = a.shape[1]
    diff, denominator, scratch = buffers
    np.subtract(a, b, out=diff)
    rms = np.sqrt(np.einsum("ij,ij->i", diff, diff) / n)
    out["final_abs_mV"][:] = np.abs(diff[:, -1])
    np.abs(diff, out=diff)  # diff now holds |a - b|
    worst = np.argmax(diff, axis=1)  # NaN counts as the largest, as it should
    max_abs = diff[rows, worst]
    out["max_abs_mV"][:] = max_abs
    out["t_max_abs_ms"][:] = times[worst]
    out["a_at_max_mV"][:] = a[rows, worst]
    out["b_at_max_mV"][:] = b[rows, worst]
    out["rms_mV"][:] = rms

    # Count mismatches only in rows whose maximum exceeds the tolerance (or is NaN).
    with np.errstate(invalid="ignore"):
        over = ~np.isnan(tolerance) & ~(max_abs <= tolerance)
    if over.any():
        bad = ~(diff[over] <= tolerance[over, None])  # NaN counts as mismatched
        mismatched[over] = np.count_nonzero(bad, axis=1)
        last[over] = n - 1 - np.argmax(bad[:, ::-1], axis=1)

    # Normalisation by the reference trace's range (max |b| if flat).
    high = b.max(axis=1)
    low = b.min(axis=1)
    scale = high - low
    flat = scale == 0
    if flat.any():
        scale = np.where(flat, np.maximum(np.abs(high), np.abs(low)), scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["max_rel_range"][:] = np.where(scale > 0, max_abs / scale,
                                           np.where(max_abs == 0, 0.0, np.inf))
        out["rms_rel_range"][:] = np.where(scale > 0, rms / scale,
                                           np.where(rms == 0, 0.0, np.inf))
        # numpy.testing's max relative difference, over samples with a non-zero denominator.
        np.abs(b, out=denominator)
        if symmetric:
            np.maximum(denominator, np.abs(a, out=scratch), out=denominator)
        np.divide(diff, denominator, out=scratch)  # x/0 -> inf, 0/0 -> nan (ignored)
        relative = np.fmax.reduce(scratch, axis=1)
        bad = ~np.isfinite(relative)
        if bad.any():  # a zero denominator in these rows: leave those samples out
            masked = np.where(denominator[bad] != 0, scratch[bad], 0.0)
            relative[bad] = np.fmax.reduce(masked, axis=1)
        out["max_rel_diff"][:] = relative


def suggest_tolerance(observed_mV: float, headroom: float = 1.5) -> float:
    """``observed_mV * headroom`` rounded *up* to 2 significant figures (0.02531 -> 0.038).

    Returns 0.0 for 0, NaN for a non-finite observation and inf when ``observed * headroom``
    overflows.  Works over the whole float range (subnormal deviations included).
    """
    if not math.isfinite(observed_mV):
        return math.nan
    value = abs(observed_mV) * headroom
    if value == 0:
        return 0.0
    if not math.isfinite(value):
        return math.inf
    exponent = math.floor(math.log10(value)) - 1
    # Decimal scaling: 10.0 ** exponent underflows to 0 (or overflows) at the float extremes
    scaled = float(Decimal(value).scaleb(-exponent))
    digits = math.ceil(scaled - 1e-9 * scaled)  # 37.950000000001 -> 38, not 39
    if digits >= 100:  # 99.6 rounded up to 100 -> keep two figures
        digits //= 10
        exponent += 1
        digits = math.ceil(float(Decimal(value).scaleb(-exponent)) - 1e-9)
    suggested = float(f"{digits}e{exponent}")
    if value < sys.float_info.min:  # subnormal: too few digits to round up exactly
        suggested = max(suggested, value)
    return suggested


def _plain(value: float) -> float:
    return float(value)


def _time_or_none(times: np.ndarray | None, index: int) -> float | None:
    if times is None or not math.isfinite(times[index]):
        return None
    return float(times[index])


def compare_results(a: RunResult, b: RunResult, *, kind: PairKind,
                    tolerance_mV: Sequence[float | None] | float | None = None,
                    probes: Sequence[str] | None = None, window_start_ms: float = 0.0,
                    start_ms: float | None = None, stop_ms: float | None = None,
                    interpolate: bool = False) -> list[Comparison]:
    """Align ``a`` and ``b`` and return one :class:`Comparison` per probe.

    ``kind`` ``backends`` is symmetric (relative differences use max(|a|, |b|)); for the
    other kinds ``b`` is the reference.  ``tolerance_mV``: one value, one per probe, or None
    (reported, not gated).  Other arguments as in :func:`align` and :func:`deviation_metrics`.
    """
    aligned = align(a, b, probes=probes, start_ms=start_ms, stop_ms=stop_ms,
                    interpolate=interpolate)
    n_probes = len(aligned.probes)
    if tolerance_mV is None or isinstance(tolerance_mV, (int, float)):
        tolerances: list[float | None] = [tolerance_mV] * n_probes
    else:
        tolerances = list(tolerance_mV)
        if len(tolerances) != n_probes:
            raise ValueError(f"{len(tolerances)} tolerances for {n_probes} probes")
    tolerance_array = np.array([math.nan if t is None else float(t) for t in tolerances])
    metrics = deviation_metrics(aligned.times_ms, aligned.a, aligned.b,
                                tolerance_mV=tolerance_array, window_start_ms=window_start_ms,
                                symmetric=kind == "backends")
    comparisons = []
    for i, probe in enumerate(aligned.probes):
        tolerance = tolerances[i]
        max_abs = _plain(metrics.max_abs_mV[i])
        n_mismatched = int(metrics.n_mismatched[i])
        comparisons.append(Comparison(
            a=a.backend, b=b.backend, probe=probe, kind=kind,
            max_abs_mV=max_abs,
            t_max_abs_ms=_plain(metrics.t_max_abs_ms[i]),
            a_at_max_mV=_plain(metrics.a_at_max_mV[i]),
            b_at_max_mV=_plain(metrics.b_at_max_mV[i]),
            rms_mV=_plain(metrics.rms_mV[i]),
            max_rel_range=_plain(metrics.max_rel_range[i]),
            rms_rel_range=_plain(metrics.rms_rel_range[i]),
            final_abs_mV=_plain(metrics.final_abs_mV[i]),
            n_samples=metrics.n_samples,
            n_mismatched=n_mismatched if tolerance is not None else 0,
            tolerance_mV=None if tolerance is None else float(tolerance),
            passed=None if tolerance is None else n_mismatched == 0,
            window_start_ms=float(window_start_ms),
            max_rel_diff=_plain(metrics.max_rel_diff[i]),
            suggested_tolerance_mV=suggest_tolerance(max_abs),
            alignment=aligned.method,
            t_last_mismatch_ms=_time_or_none(metrics.t_last_mismatch_ms, i),
            t_after_mismatch_ms=_time_or_none(metrics.t_after_mismatch_ms, i),
        ))
    return comparisons
