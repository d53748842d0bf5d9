"""``run``'s trace plot, drawn with Pillow instead of matplotlib.

Why: importing matplotlib costs a process 0.5-0.9 s of CPU before it draws anything, and
``crosssim run`` on the built-in example does all its own work in about 0.5 s.  On two
cores no figure process can hide that (benchmarks/README.md, "Whole commands").  A plot of
a few lines over time needs little of matplotlib: this module draws one with Pillow
(imported in about 20 ms) in matplotlib's manner -- its font (DejaVu Sans), its default
colour cycle, its dash patterns scaled by the line width, "nice" ticks, a grid, a legend
beside the axes -- anti-aliased by drawing at :data:`SUPERSAMPLE` times the size and
reducing.  Every other figure of crosssim is matplotlib's (:mod:`crosssim.report.figures`).

Input is a :class:`~crosssim.report.figures.TracesFigure` (plain data); what was placed
where comes back as a :class:`Layout`, so that tests can find the lines in the pixels.
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

    from crosssim.report.figures import TracesFigure

__all__ = ["IMPORTS", "SUPERSAMPLE", "Layout", "colour", "dash_pattern", "nice_ticks", "render",
           "save_png", "tick_labels"]

#: What drawing imports (a command imports them while its simulators run).
IMPORTS = ("crosssim.report.lineplot", "PIL.Image", "PIL.ImageColor", "PIL.ImageDraw",
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


def tick_labels(ticks: np.ndarray) -> list[str]:
    """Labels of evenly spaced ``ticks``: as many decimals as the step needs, a proper
    minus sign; ``%g``-style for very large or very small numbers."""
    if len(ticks) < 2:
        return [_number(float(value), 6) for value in ticks]
    step = float(ticks[1] - ticks[0])
    biggest = float(np.max(np.abs(ticks)))
    if biggest >= 1e6 or step < 1e-5:
        return [_number(float(value), None) for value in ticks]
    decimals = 0
    while decimals < 6 and abs(round(step, decimals) - step) > 1e-9 * abs(step):
        decimals += 1
    return [_number(float(value), decimals) for value in ticks]


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
    side (a single value: by one unit, or 5 % of it)."""
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
    if high - low <= 1e-12 * max(abs(low), abs(high), 1e-300):
        half = max(abs(low) * 0.05, 1.0) if low == 0.0 or abs(low) < 1e-300 else abs(low) * 0.05
        return low - half, high + half
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
    pieces = []
    first = np.searchsorted(along, starts, side="right")
    last = np.searchsorted(along, stops, side="left")
    for start, stop, a, b in zip(starts, stops, first.tolist(), last.tolist()):
        ends = np.column_stack([np.interp([start, stop], along, points[:, 0]),
                                np.interp([start, stop], along, points[:, 1])])
        pieces.append(np.vstack([ends[:1], points[a:b], ends[1:]]))
    return pieces


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


def render(traces: TracesFigure, *, dpi: int = 120) -> tuple[Image.Image, Layout]:
    """Draw ``traces``: one axes, the lines in order (colour, line style, width, alpha of
    each), the equilibria dashed and labelled at the right, the legend beside the axes;
    returns the image and its :class:`Layout`."""
    from PIL import Image, ImageDraw

    scale = SUPERSAMPLE
    px = dpi / 72.0 * scale  # pixels (of the large image) per point

    def font(points: float) -> ImageFont.FreeTypeFont:
        return _font(max(1, round(points * px)))

    def text_size(text: str, points: float) -> tuple[float, float]:
        left, top, right, bottom = font(points).getbbox(text, anchor="ls")
        return right - left, font(points).getmetrics()[0] + font(points).getmetrics()[1]

    width, height = round(_FIGURE_IN[0] * dpi) * scale, round(_FIGURE_IN[1] * dpi) * scale
    image = Image.new("RGB", (width, height), _WHITE)
    draw = ImageDraw.Draw(image)
    texts: list[tuple[str, tuple[float, float, float, float]]] = []

    def put(xy: tuple[float, float], text: str, points: float, anchor: str,
            fill: tuple[int, int, int] = (0, 0, 0)) -> None:
        draw.text(xy, text, font=font(points), anchor=anchor, fill=fill)
        box = draw.textbbox(xy, text, font=font(points), anchor=anchor)
        texts.append((text, tuple(value / scale for value in box)))  # type: ignore[arg-type]

    x_limits = _limits([times for times, _, _, _ in traces.lines])
    y_limits = _limits([values for _, values, _, _ in traces.lines],
                       [value for value, _ in traces.equilibria])
    # the margins: tick labels (widest y label), axis labels, title lines, the legend
    pad, tick = _PAD_PT * px, _TICK_LENGTH_PT * px
    line_height = text_size("Ag", _TICK_PT)[1]
    title_points = _SMALL_TITLE_PT if traces.small else _TITLE_PT
    title_lines = traces.title.split("\n")
    title_height = len(title_lines) * text_size("Ag", title_points)[1] * 1.15
    top = pad + title_height + pad * 1.5
    bottom = height - (pad + line_height + pad + line_height + tick + pad)
    legend_entries = [label for _, _, label, _ in traces.lines]
    legend_row = text_size("Ag", _LEGEND_PT)[1] * 1.3
    legend_pad = 0.5 * _LEGEND_PT * px
    handle = 2.0 * _LEGEND_PT * px
    label_width = max((text_size(label, _LEGEND_PT)[0] for label in legend_entries),
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
    widest = max((text_size(label, _TICK_PT)[0] for label in y_texts), default=0.0)
    left = pad + line_height + pad + widest + tick + pad
    right = max(right, left + 0.3 * width)  # labels far too long: the legend is cut instead
    x_ticks = nice_ticks(*x_limits, min(9, max(1, int((right - left) / px / (_TICK_PT * 3)))))
    layout = Layout((left / scale, top / scale, right / scale, bottom / scale), x_limits,
                    y_limits, [float(v) for v in x_ticks], [float(v) for v in y_ticks], None,
                    texts)

    def to_px(x: Any, y: Any) -> tuple[Any, Any]:
        """Data to pixels of the large image (arrays or numbers)."""
        return (left + (x - x_limits[0]) / (x_limits[1] - x_limits[0]) * (right - left),
                bottom - (y - y_limits[0]) / (y_limits[1] - y_limits[0]) * (bottom - top))

    def x_px(value: float) -> float:
        return float(to_px(float(value), 0.0)[0])

    def y_px(value: float) -> float:
        return float(to_px(0.0, float(value))[1])

    grid = colour("#{:02x}{:02x}{:02x}".format(*_GREY_GRID), 0.3)
    grid_width = max(1, round(_GRID_PT * px))
    for value in x_ticks:
        x = x_px(value)
        draw.line([(x, top), (x, bottom)], fill=grid, width=grid_width)
    for value in y_ticks:
        y = y_px(value)
        draw.line([(left, y), (right, y)], fill=grid, width=grid_width)

    def stroke(x: np.ndarray, y: np.ndarray, style: dict[str, Any]) -> None:
        """The line through data points ``x``, ``y``."""
        stroke_px(*to_px(np.asarray(x, float), np.asarray(y, float)), style)

    def stroke_px(x: np.ndarray, y: np.ndarray, style: dict[str, Any]) -> None:
        """The line through pixels ``x``, ``y`` in ``style`` (matplotlib's keys)."""
        linewidth = float(style.get("linewidth", 1.5))
        fill = colour(style.get("color", "C0"), float(style.get("alpha", 1.0)))
        line_px = max(1, round(linewidth * px))
        dashes = dash_pattern(style.get("linestyle", "-"), linewidth)
        for piece in _pieces(x, y):
            piece = _thinned(piece, (right - left) / scale)
            parts = ([piece] if dashes is None else _dashes(piece, dashes[0] * px, [
                # Pillow fills both end pixels of a segment: one pixel less on, one more off
                max(length * px - 1.0, 0.5) if index % 2 == 0 else length * px + 1.0
                for index, length in enumerate(dashes[1])]))
            for part in parts:
                if len(part) < 2:
                    continue
                draw.line([tuple(point) for point in part.tolist()], fill=fill, width=line_px)
                bends: list[list[float]] = _bends(part).tolist() if line_px > 2 else []
                for bend_x, bend_y in bends:  # round joints where the line turns
                    draw.ellipse([bend_x - line_px / 2, bend_y - line_px / 2,
                                  bend_x + line_px / 2, bend_y + line_px / 2], fill=fill)

    for times, values, _, style in traces.lines:
        stroke(times, values, style)
    equilibrium_style = {"linestyle": "--", "color": "black", "alpha": 0.45,
                         "linewidth": 0.9}
    for value, label in traces.equilibria:
        stroke(np.array(x_limits), np.array([value, value]), equilibrium_style)
        y = y_px(value)
        put((right - 4 * px, y - 3 * px), label, _LEGEND_PT, "rd")

    # the frame, the ticks and their labels, the axis labels, the title
    frame = max(1, round(_FRAME_PT * px))
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0), width=frame)
    for value, label in zip(x_ticks, tick_labels(x_ticks)):
        x = x_px(value)
        draw.line([(x, bottom), (x, bottom + tick)], fill=(0, 0, 0), width=frame)
        put((x, bottom + tick + pad), label, _TICK_PT, "ma")
    for value, label in zip(y_ticks, y_texts):
        y = y_px(value)
        draw.line([(left - tick, y), (left, y)], fill=(0, 0, 0), width=frame)
        put((left - tick - pad, y), label, _TICK_PT, "rm")
    put(((left + right) / 2, bottom + tick + pad + line_height + pad), "t (ms)", _LABEL_PT, "ma")
    _vertical_text(image, "membrane potential (mV)", font(_LABEL_PT), pad,
                   (top + bottom) / 2, texts, scale)
    y = top - pad * 1.5 - title_height
    for line in title_lines:
        put(((left + right) / 2, y), line, title_points, "ma")
        y += text_size("Ag", title_points)[1] * 1.15

    if legend_entries:
        x0 = right + 0.01 * width
        box = (x0, top, x0 + legend_width, top + 2 * legend_pad + per_column * legend_row)
        draw.rounded_rectangle(box, radius=legend_pad, fill=_WHITE,
                               outline=colour("#cccccc"), width=frame)
        layout.legend = tuple(value / scale for value in box)  # type: ignore[assignment]
        for index, (_, _, label, style) in enumerate(traces.lines):
            column, row = divmod(index, per_column)
            x = x0 + legend_pad + column * (column_width + legend_pad)
            y = top + legend_pad + (row + 0.5) * legend_row
            stroke_px(np.array([x, x + handle]), np.array([y, y]), style)
            put((x + handle + 0.8 * _LEGEND_PT * px, y), label, _LEGEND_PT, "lm")

    return image.reduce(scale), layout


def _vertical_text(image: Image.Image, text: str, font: ImageFont.FreeTypeFont, x: float,
                   middle: float, texts: list, scale: int) -> None:
    """``text`` rotated a quarter turn, its top at ``x``, centred on ``middle``."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(text)
    strip = Image.new("L", (int(right - left) + 2, int(bottom - top) + 2), 0)
    ImageDraw.Draw(strip).text((-left + 1, -top + 1), text, font=font, fill=255)
    turned = strip.rotate(90, expand=True)
    where = (round(x), round(middle - turned.height / 2))
    image.paste((0, 0, 0), (*where, where[0] + turned.width, where[1] + turned.height), turned)
    texts.append((text, (where[0] / scale, where[1] / scale, (where[0] + turned.width) / scale,
                         (where[1] + turned.height) / scale)))


def save_png(traces: TracesFigure, path: Path, *, dpi: int = 120) -> Path:
    """:func:`render` ``traces`` and save the PNG at ``path`` atomically; returns ``path``."""
    from crosssim.files import atomic_open

    image, _ = render(traces, dpi=dpi)
    path = Path(path)
    with atomic_open(path, "wb", encoding=None) as handle:
        image.save(handle, format="PNG", dpi=(dpi, dpi))
    return path
