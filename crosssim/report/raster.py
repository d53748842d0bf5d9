"""``run``'s trace plot and ``sweep``'s heatmap, drawn with Pillow instead of matplotlib.

Why: importing matplotlib costs a process 0.5-0.9 s of CPU before it draws anything, and
``crosssim run`` on the built-in example does all its own work in about 0.5 s, a sweep
served from the cache in under 1 s.  On two cores no figure process can hide that
(benchmarks/README.md, "Whole commands").  A few lines over time, or a grid of coloured
cells, need little of matplotlib: this module draws them with Pillow (imported in about
20 ms) in matplotlib's manner -- its font (DejaVu Sans), its default colour cycle and
viridis, its dash patterns scaled by the line width, its tick rule, a grid, a legend beside
the axes, a colour bar -- anti-aliased by drawing at :data:`SUPERSAMPLE` times the size and
reducing.  The report's figures are matplotlib's (:mod:`crosssim.report.figures`).

Input is plain data, a :class:`TracesFigure` or a :class:`HeatmapFigure` (defined here);
what was placed where comes back as a :class:`Layout` or a :class:`HeatmapLayout`, so that
tests can find things in the pixels.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image, ImageFont

__all__ = ["IMPORTS", "SUPERSAMPLE", "VIRIDIS", "HeatmapFigure", "HeatmapLayout", "Layout",
           "TracesFigure", "colour",
           "colour_bar_ticks", "colour_scale", "dash_pattern", "log_ticks", "nice_ticks",
           "power_label", "render", "render_heatmap", "save_heatmap_png", "save_png",
           "scale_exponent", "scale_label", "tick_labels", "viridis"]

#: What drawing imports (a command imports them while its simulators run).
IMPORTS = ("crosssim.report.raster", "PIL.Image", "PIL.ImageColor", "PIL.ImageDraw",
           "PIL.ImageFont", "PIL.PngImagePlugin")
#: Drawn at this many times the size, then reduced: anti-aliased lines and text.
SUPERSAMPLE = 2
#: matplotlib's default colour cycle ("C0" ... "C9", tab10).
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
         "#7f7f7f", "#bcbd22", "#17becf")
#: matplotlib's named dash patterns (on, off, ... in units of the line width).
_NAMED_DASHES = {"--": (3.7, 1.6), "dashed": (3.7, 1.6), "-.": (6.4, 1.6, 1.0, 1.6),
                 "dashdot": (6.4, 1.6, 1.0, 1.6), ":": (1.0, 1.65), "dotted": (1.0, 1.65)}
_SOLID = ("-", "solid")
#: Sizes in points (matplotlib's defaults): figure, fonts, ticks, frame, paddings.
_FIGURE_IN = (9.5, 4.8)
_TICK_PT, _LABEL_PT, _TITLE_PT, _SMALL_TITLE_PT, _LEGEND_PT = 10.0, 10.0, 12.0, 10.0, 8.0
_TICK_LENGTH_PT, _FRAME_PT, _GRID_PT = 3.5, 0.8, 0.8
_PAD_PT = 4.0  # between tick and label, label and edge, title and axes (about)
_MARGIN = 0.05  # of the data range, each side (matplotlib's axes margins)
_GREY_GRID = (0xB0, 0xB0, 0xB0)
_WHITE = (255, 255, 255)
_SUPERSCRIPTS = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075"
                              "\u2076\u2077\u2078\u2079")


@dataclass(frozen=True)
class TracesFigure:
    """What :func:`~crosssim.report.figures.plot_traces` draws, as plain data (drawing needs
    neither the model layer nor the results'): the title (``small``: a note is in it), one
    line per probe and source ``(times_ms, values_mV, label, style)`` with matplotlib's
    style keys (``color``, ``linestyle``, ``linewidth``, ``alpha``), and the equilibria
    ``(mV, label)`` drawn dashed."""

    title: str
    small: bool
    lines: list[tuple[np.ndarray, np.ndarray, str, dict[str, Any]]]
    equilibria: list[tuple[float, str]]


@dataclass(frozen=True)
class HeatmapFigure:
    """A sweep's heatmap as plain data (from :func:`crosssim.report.sweep.heatmap_data`):
    ``grid[row, column]`` the values (NaN: nothing; log colour scale when they span a
    range), each cell's text, the outlines ``(column, row, colour, dashed)``, the axis
    labels and ticks ``(positions, labels)`` (no y axis: one row), the colour-bar label,
    the title and the size in inches."""

    grid: np.ndarray
    texts: list[list[str]]
    outlines: list[tuple[int, int, str, bool]]
    x_label: str
    y_label: str | None
    x_ticks: tuple[list[int], list[str]]
    y_ticks: tuple[list[int], list[str]] | None
    colour_label: str
    title: str
    size_in: tuple[float, float]


def colour(spec: str, alpha: float = 1.0) -> tuple[int, int, int]:
    """RGB of a matplotlib colour ``spec`` ("C3", a name, "#rrggbb"), blended with white
    by ``alpha`` (lines are drawn opaque on a white figure)."""
    from PIL import ImageColor

    text = str(spec)
    if len(text) >= 2 and text[0] == "C" and text[1:].isdigit():
        text = TAB10[int(text[1:]) % len(TAB10)]
    rgb = ImageColor.getrgb(text)[:3]
    return tuple(round(alpha * c + (1.0 - alpha) * 255) for c in rgb)  # type: ignore[return-value]


def dash_pattern(linestyle: Any, linewidth_pt: float) -> tuple[float, tuple[float, ...]] | None:
    """``(offset, (on, off, ...))`` in points for a matplotlib ``linestyle`` drawn
    ``linewidth_pt`` wide (patterns scale with the width, as matplotlib's do); None for a
    solid line."""
    if isinstance(linestyle, str):
        if linestyle in _SOLID:
            return None
        if linestyle not in _NAMED_DASHES:
            raise ValueError(f"line style {linestyle!r}: allowed are '-', '--', '-.', ':' "
                             "or (offset, (on, off, ...))")
        offset, pattern = 0.0, _NAMED_DASHES[linestyle]
    else:
        offset, pattern = linestyle
    scale = max(linewidth_pt, 1e-9)
    return float(offset) * scale, tuple(float(length) * scale for length in pattern)


def nice_ticks(low: float, high: float, bins: int) -> np.ndarray:
    """The ticks inside ``[low, high]`` matplotlib's ``MaxNLocator(bins, steps=[1, 2, 2.5,
    5, 10])`` puts there: the least step of 1, 2, 2.5 or 5 times a power of ten that is at
    least ``(high - low) / bins`` (a smaller one while fewer than two ticks would show)."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return np.array([low])
    bins = max(int(bins), 1)
    scale = 10.0 ** math.floor(math.log10(span / bins))
    steps = [mantissa * scale * 10.0 ** k for k in (-1, 0, 1)
             for mantissa in (1.0, 2.0, 2.5, 5.0)]
    larger = [step for step in steps if step >= span / bins * (1 - 1e-12)]
    for step in [larger[0], *reversed([step for step in steps if step < larger[0]])]:
        first, last = math.ceil(low / step - 1e-12), math.floor(high / step + 1e-12)
        if last - first >= 1:
            break
    ticks = np.arange(first, last + 1) * step
    ticks[np.abs(ticks) < step * 1e-9] = 0.0
    return ticks


def scale_exponent(ticks: np.ndarray) -> int:
    """The power of ten taken out of the tick labels and shown once by the axis (as
    matplotlib's ``ScalarFormatter`` does beyond its limits 1e-5 and 1e6); 0 otherwise."""
    biggest = float(np.max(np.abs(ticks))) if len(ticks) else 0.0
    if not biggest or not math.isfinite(biggest):
        return 0
    exponent = math.floor(math.log10(biggest))
    return exponent if exponent >= 6 or exponent < -5 else 0


def tick_labels(ticks: np.ndarray) -> list[str]:
    """Labels of evenly spaced ``ticks`` (divided by ten to the :func:`scale_exponent`):
    as many decimals as the step needs, the same for all, and a proper minus sign."""
    scaled = np.asarray(ticks, dtype=float) / 10.0 ** scale_exponent(ticks)
    step = float(scaled[1] - scaled[0]) if len(scaled) >= 2 else 0.0
    decimals = 0
    while step and decimals < 12 and abs(round(step, decimals) - step) > 1e-6 * abs(step):
        decimals += 1
    return [_number(float(value), decimals if step else None) for value in scaled]


def _power_of_ten(exponent: int) -> str:
    """``10⁻¹²``."""
    return "10" + str(exponent).translate(_SUPERSCRIPTS)


def scale_label(exponent: int) -> str:
    """``×10⁶``: what an axis shows when its labels are divided by ``10**exponent``."""
    return f"\u00d7{_power_of_ten(exponent)}" if exponent else ""


def _number(value: float, decimals: int | None) -> str:
    text = f"{value:.6g}" if decimals is None else f"{value:.{decimals}f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    return text.replace("-", "\N{MINUS SIGN}")


@lru_cache(maxsize=16)
def _font(size_px: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (matplotlib's font, from its package data) at ``size_px`` pixels."""
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size_px)
    return ImageFont.load_default(size_px)  # type: ignore[return-value]


@dataclass
class Layout:
    """Where :func:`render` put things, in pixels of the saved image (origin top left):
    the axes box ``(left, top, right, bottom)``, the data limits and ticks of each axis,
    the legend box, and every text with its box."""

    axes: tuple[float, float, float, float]
    x_limits: tuple[float, float]
    y_limits: tuple[float, float]
    x_ticks: list[float]
    y_ticks: list[float]
    legend: tuple[float, float, float, float] | None
    texts: list[tuple[str, tuple[float, float, float, float]]] = field(default_factory=list)

    def x_pixel(self, value: float) -> float:
        left, _, right, _ = self.axes
        low, high = self.x_limits
        return left + (value - low) / (high - low) * (right - left)

    def y_pixel(self, value: float) -> float:
        _, top, _, bottom = self.axes
        low, high = self.y_limits
        return bottom - (value - low) / (high - low) * (bottom - top)


def _limits(values: Sequence[np.ndarray], extra: Sequence[float] = ()) -> tuple[float, float]:
    """The range of the finite ``values`` and ``extra``, widened by :data:`_MARGIN` each
    side."""
    lows, highs = [], []
    for array in values:
        finite = np.asarray(array, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lows.append(float(finite.min()))
            highs.append(float(finite.max()))
    lows += [value for value in extra if math.isfinite(value)]
    highs += [value for value in extra if math.isfinite(value)]
    if not lows:
        return 0.0, 1.0
    low, high = min(lows), max(highs)
    if high - low <= 1e-12 * max(abs(low), abs(high)):  # flat: first 5 % of the value
        half = 0.05 * abs(low) if low else 0.05  # either side, as matplotlib's nonsingular()
        low, high = low - half, high + half
    pad = (high - low) * _MARGIN
    return low - pad, high + pad


def _pieces(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """``(n, 2)`` point arrays of the finite runs of a line (NaN and inf break it)."""
    finite = np.isfinite(x) & np.isfinite(y)
    points = np.column_stack([x, y])
    if finite.all():
        return [points]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    return [points[start:stop] for start, stop in zip(edges[::2], edges[1::2])]


def _thinned(points: np.ndarray, columns: float) -> np.ndarray:
    """``points`` (x increasing) with at most the first, lowest, highest and last point of
    each of ``columns`` pixel columns: what the eye sees of a trace sampled far finer than
    the image, at a bounded cost (and a bounded number of dashes)."""
    if len(points) <= 4 * columns or not np.all(np.diff(points[:, 0]) >= 0):
        return points
    span = points[-1, 0] - points[0, 0]
    if span <= 0:
        return points
    column = np.minimum(((points[:, 0] - points[0, 0]) / span * columns).astype(np.int64),
                        int(columns) - 1)
    starts = np.flatnonzero(np.diff(np.concatenate([[-1], column])))
    ends = np.concatenate([starts[1:], [len(points)]]) - 1
    by_value = np.lexsort((points[:, 1], column))  # per column, lowest first
    keep = np.unique(np.concatenate([starts, ends, by_value[starts], by_value[ends]]))
    return points[keep]


def _dashes(points: np.ndarray, offset: float, pattern: Sequence[float]) -> list[np.ndarray]:
    """The "on" stretches of ``pattern`` (lengths in pixels, starting ``offset`` into it)
    along the polyline ``points``, each as a polyline."""
    if len(points) < 2:
        return []
    steps = np.hypot(*np.diff(points, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    total = along[-1]
    period = float(sum(pattern))
    if total <= 0 or period <= 0:
        return []
    starts, stops = [], []
    position = -(offset % period)
    while position < total:
        for index in range(0, len(pattern) - 1, 2):
            start, stop = position, position + pattern[index]
            if stop > 0 and start < total:
                starts.append(max(start, 0.0))
                stops.append(min(stop, total))
            position = stop + pattern[index + 1]
        if len(pattern) % 2:  # an odd pattern repeats with on and off swapped
            position += pattern[-1]
    first = np.searchsorted(along, starts, side="right").tolist()
    last = np.searchsorted(along, stops, side="left").tolist()
    heads = np.column_stack([np.interp(starts, along, points[:, 0]),
                             np.interp(starts, along, points[:, 1])])
    tails = np.column_stack([np.interp(stops, along, points[:, 0]),
                             np.interp(stops, along, points[:, 1])])
    return [np.concatenate([heads[k:k + 1], points[a:b], tails[k:k + 1]])
            for k, (a, b) in enumerate(zip(first, last))]


def _bends(points: np.ndarray, degrees: float = 20.0) -> np.ndarray:
    """The inner points of a polyline where it turns by more than ``degrees``: there a
    wide line gets a round joint (everywhere else the segments overlap seamlessly)."""
    if len(points) < 3:
        return points[:0]
    steps = np.diff(points, axis=0)
    a, b = steps[:-1], steps[1:]
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    dot = (a * b).sum(axis=1)
    return points[1:-1][np.abs(np.arctan2(cross, dot)) > np.radians(degrees)]


def _legend_columns(rows: int, row_px: float, room_px: float) -> int:
    return max(1, math.ceil(rows * row_px / max(room_px, row_px)))


class _Canvas:
    """A white figure ``size_in`` inches at ``dpi``, drawn :data:`SUPERSAMPLE` times as
    large (coordinates here are the large image's pixels; ``px`` of them per point); the
    texts placed are recorded (text, box in the saved image's pixels)."""

    def __init__(self, size_in: tuple[float, float], dpi: int) -> None:
        from PIL import Image, ImageDraw

        self.scale = SUPERSAMPLE
        self.px = dpi / 72.0 * self.scale
        self.width = round(size_in[0] * dpi) * self.scale
        self.height = round(size_in[1] * dpi) * self.scale
        self.image = Image.new("RGB", (self.width, self.height), _WHITE)
        self.draw = ImageDraw.Draw(self.image)
        self.texts: list[tuple[str, tuple[float, float, float, float]]] = []

    def font(self, points: float) -> ImageFont.FreeTypeFont:
        return _font(max(1, round(points * self.px)))

    def width_of(self, text: str, points: float) -> float:
        return float(self.font(points).getlength(text))

    def line_height(self, points: float) -> float:
        ascent, descent = self.font(points).getmetrics()
        return float(ascent + descent)

    def box(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """``box`` in the saved image's pixels."""
        left, top, right, bottom = box
        return left / self.scale, top / self.scale, right / self.scale, bottom / self.scale

    def put(self, xy: tuple[float, float], text: str, points: float, anchor: str,
            fill: tuple[int, int, int] = (0, 0, 0)) -> tuple[float, float, float, float]:
        """One line of ``text`` at ``xy`` (Pillow's ``anchor``); returns its box."""
        font = self.font(points)
        self.draw.text(xy, text, font=font, anchor=anchor, fill=fill)
        box = self.draw.textbbox(xy, text, font=font, anchor=anchor)
        self.texts.append((text, self.box(box)))
        return tuple(float(value) for value in box)  # type: ignore[return-value]

    def vertical(self, text: str, points: float, x: float, middle: float) -> None:
        """``text`` turned a quarter (reading upwards), its top at ``x``, centred on
        ``middle``."""
        from PIL import Image, ImageDraw

        font = self.font(points)
        left, top, right, bottom = font.getbbox(text)
        strip = Image.new("L", (int(right - left) + 2, int(bottom - top) + 2), 0)
        ImageDraw.Draw(strip).text((-left + 1, -top + 1), text, font=font, fill=255)
        turned = strip.rotate(90, expand=True)
        where = (round(x), round(middle - turned.height / 2))
        corner = (where[0] + turned.width, where[1] + turned.height)
        self.image.paste((0, 0, 0), (*where, *corner), turned)
        self.texts.append((text, self.box((*where, *corner))))

    def stroke(self, x: np.ndarray, y: np.ndarray, style: dict[str, Any], *,
               columns: float | None = None) -> None:
        """The line through pixels ``x``, ``y`` in ``style`` (matplotlib's keys: color,
        linestyle, linewidth in points, alpha); NaN breaks it, and beyond ``columns``
        points per column of the image it is thinned (:func:`_thinned`)."""
        linewidth = float(style.get("linewidth", 1.5))
        fill = colour(style.get("color", "C0"), float(style.get("alpha", 1.0)))
        line_px = max(1, round(linewidth * self.px))
        dashes = dash_pattern(style.get("linestyle", "-"), linewidth)
        for piece in _pieces(np.asarray(x, float), np.asarray(y, float)):
            if columns is not None:
                piece = _thinned(piece, columns)
            parts = ([piece] if dashes is None else _dashes(piece, dashes[0] * self.px, [
                # Pillow fills both end pixels of a segment: one pixel less on, one more off
                max(length * self.px - 1.0, 0.5) if index % 2 == 0 else length * self.px + 1.0
                for index, length in enumerate(dashes[1])]))
            for part in parts:
                if len(part) < 2:
                    continue
                self.draw.line([tuple(point) for point in part.tolist()], fill=fill,
                               width=line_px)
                # (a dash is too short to turn visibly)
                bends: list[list[float]] = (_bends(part).tolist()
                                            if line_px > 2 and dashes is None else [])
                for bend_x, bend_y in bends:  # round joints where the line turns
                    self.draw.ellipse([bend_x - line_px / 2, bend_y - line_px / 2,
                                       bend_x + line_px / 2, bend_y + line_px / 2], fill=fill)

    def rectangle(self, box: Sequence[float], style: dict[str, Any]) -> None:
        """The outline of ``box`` (left, top, right, bottom) in ``style``."""
        left, top, right, bottom = box
        self.stroke(np.array([left, right, right, left, left]),
                    np.array([top, top, bottom, bottom, top]), style)

    def finish(self) -> Image.Image:
        """The figure at its size (anti-aliased by the reduction)."""
        return self.image.reduce(self.scale)


def render(traces: TracesFigure, *, dpi: int = 120) -> tuple[Image.Image, Layout]:
    """Draw ``traces``: one axes, the lines in order (colour, line style, width, alpha of
    each), the equilibria dashed and labelled at the right, the legend beside the axes;
    returns the image and its :class:`Layout`."""
    canvas = _Canvas(_FIGURE_IN, dpi)
    px, width, height = canvas.px, canvas.width, canvas.height
    x_limits = _limits([times for times, _, _, _ in traces.lines])
    y_limits = _limits([values for _, values, _, _ in traces.lines],
                       [value for value, _ in traces.equilibria])
    # the margins: tick labels (widest y label), axis labels, title lines, the legend
    pad, tick = _PAD_PT * px, _TICK_LENGTH_PT * px
    line_height = canvas.line_height(_TICK_PT)
    title_points = _SMALL_TITLE_PT if traces.small else _TITLE_PT
    title_lines = _wrapped(canvas, traces.title, title_points, width - 2 * pad)
    title_step = canvas.line_height(title_points) * 1.15
    top = pad + len(title_lines) * title_step + pad * 1.5
    bottom = height - (pad + line_height + pad + line_height + tick + pad)
    legend_entries = [label for _, _, label, _ in traces.lines]
    legend_row = canvas.line_height(_LEGEND_PT) * 1.3
    legend_pad = 0.5 * _LEGEND_PT * px
    handle = 2.0 * _LEGEND_PT * px
    label_width = max((canvas.width_of(label, _LEGEND_PT) for label in legend_entries),
                      default=0.0)
    columns = _legend_columns(len(legend_entries), legend_row, bottom - top - 2 * legend_pad)
    per_column = math.ceil(len(legend_entries) / columns) if legend_entries else 0
    column_width = handle + 0.8 * _LEGEND_PT * px + label_width
    legend_width = (columns * column_width + (columns - 1) * legend_pad + 2 * legend_pad
                    if legend_entries else 0.0)
    right = width - pad - legend_width - (0.01 * width if legend_entries else 0.0)
    y_room = max(bottom - top, 1.0)
    y_ticks = nice_ticks(*y_limits, min(9, max(1, int(y_room / px / (_TICK_PT * 2)))))
    y_texts = tick_labels(y_ticks)
    widest = max((canvas.width_of(label, _TICK_PT) for label in y_texts), default=0.0)
    left = pad + line_height + pad + widest + tick + pad
    right = max(right, left + 0.3 * width)  # labels far too long: the legend is cut instead
    x_ticks = nice_ticks(*x_limits, min(9, max(1, int((right - left) / px / (_TICK_PT * 3)))))
    layout = Layout(canvas.box((left, top, right, bottom)), x_limits, y_limits,
                    [float(v) for v in x_ticks], [float(v) for v in y_ticks], None,
                    canvas.texts)

    def to_px(x: Any, y: Any) -> tuple[Any, Any]:
        """Data to pixels of the large image (arrays or numbers)."""
        return (left + (x - x_limits[0]) / (x_limits[1] - x_limits[0]) * (right - left),
                bottom - (y - y_limits[0]) / (y_limits[1] - y_limits[0]) * (bottom - top))

    def x_px(value: float) -> float:
        return float(to_px(float(value), 0.0)[0])

    def y_px(value: float) -> float:
        return float(to_px(0.0, float(value))[1])

    grid = {"color": "#{:02x}{:02x}{:02x}".format(*_GREY_GRID), "alpha": 0.3,
            "linewidth": _GRID_PT}
    for value in x_ticks:
        canvas.stroke(np.array([x_px(value)] * 2), np.array([top, bottom]), grid)
    for value in y_ticks:
        canvas.stroke(np.array([left, right]), np.array([y_px(value)] * 2), grid)
    columns_px = (right - left) / canvas.scale
    for times, values, _, style in traces.lines:
        canvas.stroke(*to_px(np.asarray(times, float), np.asarray(values, float)), style,
                      columns=columns_px)
    equilibrium_style = {"linestyle": "--", "color": "black", "alpha": 0.45,
                         "linewidth": 0.9}
    for value, label in traces.equilibria:
        canvas.stroke(np.array([left, right]), np.array([y_px(value)] * 2), equilibrium_style)
        canvas.put((right - 4 * px, y_px(value) - 3 * px), label, _LEGEND_PT, "rd")

    # the frame, the ticks and their labels, the axis labels, the title
    frame = {"color": "black", "linewidth": _FRAME_PT}
    canvas.rectangle((left, top, right, bottom), frame)
    for value, label in zip(x_ticks, tick_labels(x_ticks)):
        x = x_px(value)
        canvas.stroke(np.array([x, x]), np.array([bottom, bottom + tick]), frame)
        canvas.put((x, bottom + tick + pad), label, _TICK_PT, "ma")
    for value, label in zip(y_ticks, y_texts):
        y = y_px(value)
        canvas.stroke(np.array([left - tick, left]), np.array([y, y]), frame)
        canvas.put((left - tick - pad, y), label, _TICK_PT, "rm")
    canvas.put(((left + right) / 2, bottom + tick + pad + line_height + pad), "t (ms)",
               _LABEL_PT, "ma")
    canvas.vertical("membrane potential (mV)", _LABEL_PT, pad, (top + bottom) / 2)
    y = top - pad * 1.5 - len(title_lines) * title_step
    for line in title_lines:  # centred over the axes, as far as the figure allows
        half = canvas.width_of(line, title_points) / 2
        middle = min(max((left + right) / 2, pad + half), width - pad - half)
        canvas.put((middle, y), line, title_points, "ma")
        y += title_step
    for ticks, xy, anchor in ((x_ticks, (right, bottom + tick + pad + line_height + pad), "ra"),
                              (y_ticks, (left, top - pad / 2), "ld")):
        if scale_exponent(ticks):  # the power of ten the tick labels leave out
            canvas.put(xy, scale_label(scale_exponent(ticks)), _TICK_PT, anchor)

    if legend_entries:
        x0 = right + 0.01 * width
        box = (x0, top, x0 + legend_width, top + 2 * legend_pad + per_column * legend_row)
        canvas.draw.rounded_rectangle(box, radius=legend_pad, fill=_WHITE,
                                      outline=colour("#cccccc"),
                                      width=max(1, round(_FRAME_PT * px)))
        layout.legend = canvas.box(box)
        for index, (_, _, label, style) in enumerate(traces.lines):
            column, row = divmod(index, per_column)
            x = x0 + legend_pad + column * (column_width + legend_pad)
            y = top + legend_pad + (row + 0.5) * legend_row
            canvas.stroke(np.array([x, x + handle]), np.array([y, y]), style)
            canvas.put((x + handle + 0.8 * _LEGEND_PT * px, y), label, _LEGEND_PT, "lm")
    return canvas.finish(), layout


def save_png(traces: TracesFigure, path: Path, *, dpi: int = 120) -> Path:
    """:func:`render` ``traces`` and save the PNG at ``path`` atomically; returns ``path``."""
    image, _ = render(traces, dpi=dpi)
    return _save(image, path, dpi)


def _save(image: Image.Image, path: Path, dpi: int) -> Path:
    from crosssim.files import atomic_open

    path = Path(path)
    with atomic_open(path, "wb", encoding=None) as handle:
        image.save(handle, format="PNG", dpi=(dpi, dpi))
    return path


#: matplotlib's viridis at 33 evenly spaced points (linear between them: within 2.5/255 of
#: its 256-entry table).
VIRIDIS = ("#440154", "#470d60", "#48186a", "#482374", "#472d7b", "#453781", "#424086",
           "#3e4989", "#3b528b", "#375b8d", "#33638d", "#2f6b8e", "#2c728e", "#297a8e",
           "#26828e", "#23898e", "#21918c", "#1f988b", "#1fa088", "#22a785", "#28ae80",
           "#32b67a", "#3fbc73", "#4ec36b", "#5ec962", "#70cf57", "#84d44b", "#98d83e",
           "#addc30", "#c2df23", "#d8e219", "#ece51b", "#fde725")
_HEATMAP_TICK_PT, _CELL_TEXT_PT, _HEATMAP_TITLE_PT = 10.0, 7.0, 10.0


def viridis(fractions: np.ndarray) -> np.ndarray:
    """RGB (0-255, uint8) of ``fractions`` in [0, 1] on :data:`VIRIDIS`."""
    anchors = np.array([colour(spec) for spec in VIRIDIS], dtype=float)
    where = np.linspace(0.0, 1.0, len(VIRIDIS))
    clipped = np.clip(np.asarray(fractions, dtype=float), 0.0, 1.0)
    return np.stack([np.interp(clipped, where, anchors[:, k]) for k in range(3)],
                    axis=-1).round().astype(np.uint8)


def colour_scale(grid: np.ndarray) -> tuple[bool, float, float]:
    """``(log, low, high)``: a log scale over the positive values when they span a range
    (then zero and negative cells show nothing), else a linear one over the finite values;
    as :func:`crosssim.report.figures.draw_heatmap` chose with matplotlib."""
    finite = grid[np.isfinite(grid)]
    positive = finite[finite > 0]
    if positive.size and positive.min() < positive.max():
        return True, float(positive.min()), float(positive.max())
    if finite.size:
        return False, float(finite.min()), float(finite.max())
    return False, 0.0, 1.0


def _fraction(values: np.ndarray, log: bool, low: float, high: float) -> np.ndarray:
    """Where ``values`` sit on the colour scale, 0..1 (NaN: not shown)."""
    values = np.asarray(values, dtype=float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)
        return (logs - math.log10(low)) / (math.log10(high) - math.log10(low))
    if high == low:
        return np.where(np.isfinite(values), 0.0, np.nan)
    return (values - low) / (high - low)


def power_label(value: float) -> str:
    """``6×10⁻¹³``, ``10⁻¹²``: a tick label of a log scale."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = round(value / 10.0 ** exponent)
    power = _power_of_ten(exponent)
    return power if mantissa == 1 else f"{mantissa}\u00d7{power}"


def log_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Ticks of a log scale over ``[low, high]``: the powers of ten, every k-th when there
    are too many; within one decade or two, also 2, 5 (or every multiple) of them, so that
    at least two show."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** k for k in range(first, last + 1) for m in mantissas
                 if low * (1 - 1e-9) <= m * 10.0 ** k <= high * (1 + 1e-9)]
        if len(ticks) >= 2:
            break
    step = max(1, math.ceil(len(ticks) / most))
    return ticks[::step]


def colour_bar_ticks(log: bool, low: float, high: float) -> list[tuple[float, str]]:
    """``(value, label)`` of a colour bar's ticks: :func:`log_ticks` labelled as powers of
    ten on a log scale (plain numbers where fewer than two of those fit, as matplotlib
    falls back to its linear locator), else :func:`nice_ticks`."""
    if log:
        ticks = log_ticks(low, high)
        if len(ticks) >= 2:
            return [(value, power_label(value)) for value in ticks]
    values = nice_ticks(low, high, 5) if high > low else np.array([low])
    power = scale_label(scale_exponent(values))  # on each label: a bar has no corner for it
    return [(value, label + power) for value, label in zip(values.tolist(), tick_labels(values))]


@dataclass
class HeatmapLayout:
    """Where :func:`render_heatmap` put things, in pixels of the saved image: the axes and
    colour bar boxes ``(left, top, right, bottom)``, the grid's shape, the colour bar's
    ticks ``(value, label)`` and every text with its box."""

    axes: tuple[float, float, float, float]
    colour_bar: tuple[float, float, float, float]
    shape: tuple[int, int]
    colour_ticks: list[tuple[float, str]]
    texts: list[tuple[str, tuple[float, float, float, float]]]

    def cell(self, row: int, column: int) -> tuple[float, float, float, float]:
        """The box of ``grid[row, column]`` (row 0 at the bottom)."""
        left, top, right, bottom = self.axes
        rows, columns = self.shape
        width, height = (right - left) / columns, (bottom - top) / rows
        return (left + column * width, bottom - (row + 1) * height,
                left + (column + 1) * width, bottom - row * height)


def _wrapped(canvas: _Canvas, text: str, points: float, room: float) -> list[str]:
    """``text``'s lines, each broken between words to fit ``room`` pixels."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and canvas.width_of(candidate, points) > room:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def render_heatmap(heatmap: HeatmapFigure, *, dpi: int = 110,
                   ) -> tuple[Image.Image, HeatmapLayout]:
    """Draw a sweep's :class:`~crosssim.report.figures.HeatmapFigure`: the cells coloured
    on viridis (a log scale when the values span a range), each cell's text on a darkened
    box, the outlines, the axes' ticks and labels, a colour bar with its label, the title
    wrapped to the axes' width; returns the image and its :class:`HeatmapLayout`."""
    from PIL import Image

    canvas = _Canvas(heatmap.size_in, dpi)
    px, width, height = canvas.px, canvas.width, canvas.height
    pad, tick = _PAD_PT * px, _TICK_LENGTH_PT * px
    grid = np.asarray(heatmap.grid, dtype=float)
    rows, columns = grid.shape
    log, low, high = colour_scale(grid)
    colour_ticks = colour_bar_ticks(log, low, high)
    label_height = canvas.line_height(_HEATMAP_TICK_PT)
    # right to left: the colour bar's label, tick labels, ticks, the bar, a gap
    bar_width = max(10.0 * px, 0.035 * width)
    tick_room = max((canvas.width_of(label, _HEATMAP_TICK_PT) for _, label in colour_ticks),
                    default=0.0)
    bar_right = width - pad - label_height - pad - tick_room - pad - tick
    bar_left = bar_right - bar_width
    right = bar_left - 3 * pad
    y_texts = heatmap.y_ticks[1] if heatmap.y_ticks is not None else []
    widest = max((canvas.width_of(label, _HEATMAP_TICK_PT) for label in y_texts), default=0.0)
    left = pad + ((label_height + pad + widest + tick + pad) if heatmap.y_ticks is not None
                  else 0.0)
    if heatmap.x_ticks[1]:  # room for half the first x label, centred on its cell
        left = max(left, pad + canvas.width_of(heatmap.x_ticks[1][0], _HEATMAP_TICK_PT) / 2)
    title = _wrapped(canvas, heatmap.title, _HEATMAP_TITLE_PT, max(right - left, 10 * px))
    title_step = canvas.line_height(_HEATMAP_TITLE_PT) * 1.1
    top = pad + len(title) * title_step + pad
    bottom = height - (pad + label_height + pad + label_height + tick + pad)
    bottom = max(bottom, top + 10 * px)
    layout = HeatmapLayout(canvas.box((left, top, right, bottom)),
                           canvas.box((bar_left, top, bar_right, bottom)), (rows, columns),
                           colour_ticks, canvas.texts)

    # the cells, coloured in one go (rows from the bottom), white where nothing is shown
    fractions = _fraction(grid, log, low, high)[::-1]
    cells = viridis(np.nan_to_num(fractions))
    cells[~np.isfinite(fractions)] = _WHITE
    size = (max(1, round(right - left)), max(1, round(bottom - top)))
    canvas.image.paste(Image.fromarray(cells, "RGB").resize(size, Image.Resampling.NEAREST),
                       (round(left), round(top)))

    def cell_box(row: int, column: int) -> tuple[float, float, float, float]:
        return tuple(value * canvas.scale for value in layout.cell(row, column))  # type: ignore[return-value]

    outline_px = 2.0 * px
    for column, row, edge, dashed in heatmap.outlines:
        x0, y0, x1, y1 = cell_box(row, column)
        inset = outline_px / 2  # inside the cell, as far as its border
        canvas.rectangle((x0 + inset, y0 + inset, x1 - inset, y1 - inset),
                         {"color": edge, "linewidth": 2.0, "linestyle": "--" if dashed else "-"})
    text_height = canvas.line_height(_CELL_TEXT_PT)
    for row, texts in enumerate(heatmap.texts):
        for column, text in enumerate(texts):
            if not text:
                continue
            x0, y0, x1, y1 = cell_box(row, column)
            lines = text.split("\n")
            block_width = max(canvas.width_of(line, _CELL_TEXT_PT) for line in lines)
            middle_x, middle_y = (x0 + x1) / 2, (y0 + y1) / 2
            first = middle_y - len(lines) * text_height / 2
            fill = (cells[rows - 1 - row, column].astype(float) * 0.65).round()
            canvas.draw.rectangle(
                (middle_x - block_width / 2 - px, first - px,
                 middle_x + block_width / 2 + px, first + len(lines) * text_height + px),
                fill=tuple(int(value) for value in fill))
            for k, line in enumerate(lines):
                canvas.put((middle_x, first + (k + 0.5) * text_height), line, _CELL_TEXT_PT,
                           "mm", fill=_WHITE)

    frame = {"color": "black", "linewidth": _FRAME_PT}
    canvas.rectangle((left, top, right, bottom), frame)
    for position, label in zip(*heatmap.x_ticks):
        x = (cell_box(0, position)[0] + cell_box(0, position)[2]) / 2
        canvas.stroke(np.array([x, x]), np.array([bottom, bottom + tick]), frame)
        canvas.put((x, bottom + tick + pad), label, _HEATMAP_TICK_PT, "ma")
    canvas.put(((left + right) / 2, bottom + tick + pad + label_height + pad),
               heatmap.x_label, _HEATMAP_TICK_PT, "ma")
    if heatmap.y_ticks is not None:
        for position, label in zip(*heatmap.y_ticks):
            y = (cell_box(position, 0)[1] + cell_box(position, 0)[3]) / 2
            canvas.stroke(np.array([left - tick, left]), np.array([y, y]), frame)
            canvas.put((left - tick - pad, y), label, _HEATMAP_TICK_PT, "rm")
        canvas.vertical(heatmap.y_label or "", _HEATMAP_TICK_PT, pad, (top + bottom) / 2)
    y = pad
    for line in title:
        canvas.put(((left + right) / 2, y), line, _HEATMAP_TITLE_PT, "ma")
        y += title_step

    # the colour bar: the scale from the bottom (low) to the top (high), its ticks, label
    bar_height = max(1, round(bottom - top))
    ramp = viridis(np.linspace(1.0, 0.0, bar_height))[:, None, :]
    canvas.image.paste(Image.fromarray(np.repeat(ramp, max(1, round(bar_width)), axis=1),
                                       "RGB"), (round(bar_left), round(top)))
    canvas.rectangle((bar_left, top, bar_right, bottom), frame)
    for value, label in colour_ticks:
        where = float(_fraction(np.array([value]), log, low, high)[0]) if high > low else 0.5
        y = bottom - where * (bottom - top)
        canvas.stroke(np.array([bar_right, bar_right + tick]), np.array([y, y]), frame)
        canvas.put((bar_right + tick + pad, y), label, _HEATMAP_TICK_PT, "lm")
    canvas.vertical(heatmap.colour_label, _HEATMAP_TICK_PT, width - pad - label_height,
                    (top + bottom) / 2)
    return canvas.finish(), layout


def save_heatmap_png(heatmap: HeatmapFigure, path: Path, *, dpi: int = 110) -> Path:
    """:func:`render_heatmap` and save the PNG at ``path`` atomically; returns ``path``."""
    image, _ = render_heatmap(heatmap, dpi=dpi)
    return _save(image, path, dpi)
