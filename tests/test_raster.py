"""run's trace plot drawn with Pillow (crosssim.report.raster): ticks as matplotlib
places them, lines where the data are, matplotlib's dash patterns, the legend beside the
axes, and a run that never imports matplotlib."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import requires_arbor
from PIL import Image

from crosssim.report.raster import (
    TracesFigure,
    dash_pattern,
    nice_ticks,
    render,
    save_png,
    scale_exponent,
    scale_label,
    tick_labels,
)


def _figure(lines, equilibria=(), title="t", small=False) -> TracesFigure:
    return TracesFigure(title, small, list(lines), list(equilibria))


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=int)


def _near(pixels: np.ndarray, rgb, tolerance: int = 60) -> np.ndarray:
    return np.abs(pixels - np.array(rgb)).sum(axis=2) < tolerance


@pytest.mark.parametrize(("low", "high", "bins", "expected"), [
    (0.0, 100.0, 5, [0, 20, 40, 60, 80, 100]),
    (-96.8, -58.2, 8, [-95, -90, -85, -80, -75, -70, -65, -60]),
    (-96.8, -58.2, 7, [-90, -80, -70, -60]),
    (-0.5, 10.5, 9, [0, 2, 4, 6, 8, 10]),
    (0.0, 1.0, 4, [0, 0.25, 0.5, 0.75, 1.0]),
    (-65.000025, -64.999975, 5, [-65.00002, -65.00001, -65.0, -64.99999, -64.99998]),
])
def test_ticks_by_hand(low, high, bins, expected):
    assert np.allclose(nice_ticks(low, high, bins), expected, rtol=0, atol=1e-12)


def test_ticks_are_matplotlibs():
    """The independent reference: matplotlib's own MaxNLocator on random ranges."""
    from matplotlib.ticker import MaxNLocator

    rng = np.random.default_rng(7)
    for _ in range(500):
        low = rng.uniform(-200, 200) * 10.0 ** rng.integers(-6, 6)
        high = low + rng.uniform(1e-3, 50) * 10.0 ** rng.integers(-6, 6)
        bins = int(rng.integers(1, 10))
        theirs = MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
        theirs = theirs[(theirs >= low) & (theirs <= high)]
        assert np.allclose(nice_ticks(low, high, bins), theirs, rtol=1e-9,
                           atol=1e-9 * (high - low)), (low, high, bins)


def test_tick_labels():
    assert tick_labels(np.array([-95.0, -90.0, -85.0])) == ["\u221295", "\u221290", "\u221285"]
    assert tick_labels(np.array([0.0, 0.25, 0.5])) == ["0.00", "0.25", "0.50"]
    assert tick_labels(np.array([-1e-17, 2.5, 5.0])) == ["0.0", "2.5", "5.0"]
    # beyond matplotlib's limits (1e6, 1e-5) the power of ten goes to the axis, once
    assert tick_labels(np.array([0.0, 5e5, 1e6, 1.5e6])) == ["0.0", "0.5", "1.0", "1.5"]
    assert scale_label(scale_exponent(np.array([0.0, 5e5, 1e6, 1.5e6]))) == "\u00d710\u2076"
    assert tick_labels(np.array([-2e-6, 0.0, 2e-6])) == ["\u22122", "0", "2"]
    assert scale_exponent(np.array([-95.0, -90.0])) == 0
    # a step far below the values' size: every label still differs
    labels = tick_labels(np.array([-65.0000002, -65.0, -64.9999998]))
    assert len(set(labels)) == 3 and labels[1] == "\u221265.0000000"


def test_dash_patterns_are_matplotlibs_scaled_by_the_width():
    assert dash_pattern("-", 2.0) is None
    assert dash_pattern("--", 2.0) == (0.0, (7.4, 3.2))
    assert dash_pattern(":", 1.0) == (0.0, (1.0, 1.65))
    assert dash_pattern((1, (4, 2)), 1.5) == (1.5, (6.0, 3.0))
    with pytest.raises(ValueError, match="allowed are"):
        dash_pattern("~", 1.0)


def test_lines_land_where_their_values_are():
    times = np.linspace(0.0, 10.0, 201)
    image, layout = render(_figure([
        (times, np.full_like(times, -70.0), "low", {"color": "#ff0000", "linewidth": 2.0}),
        (times, np.full_like(times, -50.0), "high", {"color": "#0000ff", "linewidth": 2.0}),
    ]))
    assert image.size == (1140, 576)
    # limits: the data and 5 % either side (by hand)
    assert np.allclose(layout.x_limits, (-0.5, 10.5))
    assert np.allclose(layout.y_limits, (-71.0, -49.0))
    pixels = _pixels(image)
    for value, rgb in ((-70.0, (255, 0, 0)), (-50.0, (0, 0, 255))):
        rows, columns = np.nonzero(_near(pixels, rgb))
        assert abs(np.median(rows) - layout.y_pixel(value)) <= 1.0
        inside = columns[columns < layout.axes[2]]  # not the legend's handle
        assert abs(inside.min() - layout.x_pixel(0.0)) <= 2.5
        assert abs(inside.max() - layout.x_pixel(10.0)) <= 2.5
    labels = [text for text, _ in layout.texts]
    assert all(label in labels for label in tick_labels(np.array(layout.y_ticks)))
    assert layout.y_ticks[0] >= layout.y_limits[0] and layout.y_ticks[-1] <= layout.y_limits[1]


def _on_fraction(pixels: np.ndarray, row: int, left: int, right: int) -> float:
    """The share of the columns ``left:right`` where a line through ``row`` covers at
    least half a pixel (anti-aliased rims do not count)."""
    strip = pixels[row - 1:row + 2, left:right]
    return float((np.abs(strip - 255).sum(axis=2) > 595 / 2).any(axis=0).mean())


def _matplotlib_on_fraction(style) -> float:
    """The same line (2 pt, 120 dpi) drawn by matplotlib's Agg: the reference."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.5, 4.8), dpi=120)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.plot([0, 100], [1, 1], color="#00aa00", linewidth=2.0, linestyle=style)
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 2)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[:, :, :3].astype(int)
    return _on_fraction(pixels, pixels.shape[0] // 2, 100, 1000)


@pytest.mark.parametrize("style", ["-", "--", ":", "-.", (0, (4, 2)), (0, (1, 1.5))])
def test_line_styles_leave_matplotlibs_gaps(style):
    times = np.linspace(0.0, 100.0, 2001)
    image, layout = render(_figure([
        (times, np.full_like(times, 1.0), "x", {"color": "#00aa00", "linewidth": 2.0,
                                                "linestyle": style}),
        (times, np.zeros_like(times), "y", {"color": "#ff0000", "linewidth": 1.0})]))
    ours = _on_fraction(_pixels(image), round(layout.y_pixel(1.0)),
                        round(layout.x_pixel(5.0)), round(layout.x_pixel(95.0)))
    assert ours == pytest.approx(_matplotlib_on_fraction(style), abs=0.06)


def test_not_a_number_breaks_the_line():
    times = np.linspace(0.0, 10.0, 101)
    values = np.sin(times)
    values[40:60] = np.nan
    image, layout = render(_figure([(times, values, "s", {"color": "#ff0000"})]))
    red = _near(_pixels(image), (255, 0, 0))
    columns = np.flatnonzero(red[:, : round(layout.axes[2])].any(axis=0))
    gap = [x for x in range(round(layout.x_pixel(4.2)), round(layout.x_pixel(5.7)))]
    assert not set(gap) & set(columns.tolist())
    assert columns.min() < layout.x_pixel(0.5) and columns.max() > layout.x_pixel(9.5)


def test_a_trace_finer_than_the_image_keeps_its_extremes():
    """A million noisy samples: drawn from a few points per pixel column, but the highest
    and the lowest sample still reach their rows."""
    rng = np.random.default_rng(3)
    times = np.linspace(0.0, 1000.0, 1_000_000)
    values = rng.normal(0.0, 1.0, times.size)
    values[123_456], values[654_321] = 9.0, -7.0
    image, layout = render(_figure([(times, values, "noise", {"color": "#ff0000",
                                                               "linewidth": 0.5})]))
    pixels = _pixels(image)[:, : round(layout.axes[2])]
    red = pixels[:, :, 0] - np.maximum(pixels[:, :, 1], pixels[:, :, 2]) > 60
    rows = np.nonzero(red)[0]
    assert abs(rows.min() - layout.y_pixel(9.0)) <= 2
    assert abs(rows.max() - layout.y_pixel(-7.0)) <= 2


def test_legend_beside_the_axes_and_labels_in_the_picture():
    times = np.linspace(0.0, 50.0, 501)
    lines = [(times, np.full_like(times, float(k)), f"c{k:02d}_mid (arbor)", {"color": f"C{k}"})
             for k in range(12)]
    image, layout = render(_figure(lines, [(3.0, "c03: lumped equilibrium 3.0000 mV")],
                                   title="ring\na note", small=True))
    left, top, right, bottom = layout.legend
    assert left > layout.axes[2] and right <= image.width and bottom <= image.height
    texts = dict(layout.texts)
    box = texts["c03: lumped equilibrium 3.0000 mV"]
    assert box[3] <= layout.y_pixel(3.0) and box[2] <= layout.axes[2]  # above, inside
    assert "ring" in texts and "a note" in texts
    assert texts["ring"][3] <= texts["a note"][1] <= layout.axes[1]  # two title lines


def test_many_entries_take_columns_not_the_space_below():
    times = np.linspace(0.0, 50.0, 11)
    lines = [(times, times * k, f"p{k} (src)", {"color": f"C{k % 10}"}) for k in range(48)]
    image, layout = render(_figure(lines))
    assert layout.legend[3] <= image.height
    assert layout.axes[2] - layout.axes[0] >= 0.3 * image.width


def test_a_flat_trace_gets_a_range():
    """As matplotlib widens a flat range (its own limits are the reference)."""
    from matplotlib.figure import Figure

    times = np.linspace(0.0, 5.0, 11)
    for level in (-65.0, 0.0, 1e-9):
        _, layout = render(_figure([(times, np.full_like(times, level), "flat", {})]))
        axes = Figure().add_subplot()
        axes.plot(times, np.full_like(times, level))
        assert np.allclose(layout.y_limits, axes.get_ylim(), rtol=1e-12, atol=0), level


def test_saved_png_is_atomic_and_readable(tmp_path):
    times = np.linspace(0.0, 5.0, 11)
    path = save_png(_figure([(times, times, "x", {})]), tmp_path / "p.png", dpi=100)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (950, 480)
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


@requires_arbor
def test_run_draws_its_plot_without_matplotlib(tmp_path):
    """What makes run fast: the plot costs Pillow, not matplotlib's import."""
    arguments = ["run", "--backend", "arbor", "--quiet", "--out", str(tmp_path)]
    code = ("import sys\nfrom crosssim import cli\n"
            f"code = cli.main({arguments!r})\n"
            "print(code, 'matplotlib' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.split()[-2:] == ["0", "False"]
    with Image.open(tmp_path / "traces.png") as image:
        assert image.size == (1140, 576)


# the sweep heatmap ---------------------------------------------------------------------


def _heatmap(grid, texts=None, outlines=(), title="m: largest |a - b| (mV)"):
    from crosssim.report.raster import HeatmapFigure

    grid = np.asarray(grid, dtype=float)
    rows, columns = grid.shape
    return HeatmapFigure(grid, texts or [[""] * columns for _ in range(rows)], list(outlines),
                         "g_uS", "cvs" if rows > 1 else None,
                         (list(range(columns)), [f"{k}" for k in range(columns)]),
                         (list(range(rows)), [f"{k}" for k in range(rows)]) if rows > 1
                         else None, "largest |a - b| (mV)", title,
                         (max(4.8, 1.0 + 0.9 * columns), max(3.0, 1.4 + 0.6 * rows)))


def test_viridis_is_matplotlibs():
    from matplotlib import colormaps

    from crosssim.report.raster import viridis

    where = np.linspace(0.0, 1.0, 200)
    theirs = colormaps["viridis"](where)[:, :3] * 255
    assert np.abs(viridis(where).astype(float) - theirs).max() <= 3.0


@pytest.mark.parametrize(("low", "high", "expected"), [
    (3.6e-13, 6.1e-12, [5e-13, 1e-12, 2e-12, 5e-12]),
    (1e-13, 1e-9, [1e-13, 1e-12, 1e-11, 1e-10, 1e-9]),
    (1e-20, 1e-2, [1e-20, 1e-16, 1e-12, 1e-8, 1e-4]),
    (2.2e-3, 8.8e-3, [3e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3]),
])
def test_log_ticks_by_hand(low, high, expected):
    from crosssim.report.raster import log_ticks

    assert np.allclose(log_ticks(low, high), expected, rtol=1e-12)


def test_a_colour_bar_too_narrow_for_powers_of_ten_gets_plain_numbers():
    from crosssim.report.raster import colour_bar_ticks

    ticks = colour_bar_ticks(True, 2.1e-3, 2.9e-3)
    assert [label for _, label in ticks] == ["0.0022", "0.0024", "0.0026", "0.0028"]
    assert colour_bar_ticks(False, 0.0, 1.0)[-1] == (1.0, "1.0")


def test_power_labels():
    from crosssim.report.raster import power_label

    assert power_label(6e-13) == "6\u00d710\u207b\u00b9\u00b3"
    assert power_label(1e-12) == "10\u207b\u00b9\u00b2"
    assert power_label(1000.0) == "10\u00b3"


def test_heatmap_cells_take_the_colour_of_their_value():
    """Three decades on a log scale: the cells are viridis at 0, 0.5 and 1 (matplotlib's
    own viridis is the reference); NaN is left white; an outlined cell has a red rim."""
    from matplotlib import colormaps

    from crosssim.report.raster import render_heatmap

    grid = [[1e-3, 1e-2, 1e-1], [np.nan, 1e-2, 1e-1]]
    image, layout = render_heatmap(_heatmap(grid, outlines=[(2, 0, "red", False)]))
    pixels = _pixels(image)

    def centre(row, column):
        left, top, right, bottom = layout.cell(row, column)
        return pixels[round((top + bottom) / 2), round((left + right) / 2)]

    for column, fraction in enumerate((0.0, 0.5, 1.0)):
        expected = np.array(colormaps["viridis"](fraction)[:3]) * 255
        assert np.abs(centre(0, column) - expected).max() <= 4, column
    assert (centre(1, 0) == 255).all()
    left, top, right, bottom = layout.cell(0, 2)
    rim = pixels[round((top + bottom) / 2), round(left) + 1: round(left) + 4]
    assert _near(rim[None], (255, 0, 0), 120).any()
    assert [label for _, label in layout.colour_ticks] == [
        "10\u207b\u00b3", "10\u207b\u00b2", "10\u207b\u00b9"]


def test_heatmap_text_sits_in_its_cell_and_the_colour_bar_reads_its_scale():
    from crosssim.report.raster import render_heatmap, viridis

    texts = [["4.1e-13", "6.5e-13\nFAIL"]]
    image, layout = render_heatmap(_heatmap([[4.1e-13, 6.5e-13]], texts=texts))
    boxes = dict(layout.texts)
    for column, text in enumerate(("4.1e-13", "FAIL")):
        left, top, right, bottom = layout.cell(0, column)
        box = boxes[text]
        assert left < box[0] and box[2] < right and top < box[1] and box[3] < bottom
    left, top, right, bottom = layout.colour_bar
    pixels = _pixels(image)
    for fraction in (0.1, 0.5, 0.9):
        y = round(bottom - fraction * (bottom - top))
        found = pixels[y, round((left + right) / 2)]
        assert np.abs(found - viridis(np.array(fraction)).astype(int)).max() <= 8


def test_a_title_wider_than_the_figure_is_wrapped_inside_it():
    times = np.linspace(0.0, 5.0, 11)
    note = " ".join(["a rather long note about what the plot does not show"] * 4)
    image, layout = render(_figure([(times, times, "x", {})], title=f"model\n{note}",
                                   small=True))
    title = [(text, box) for text, box in layout.texts if box[3] <= layout.axes[1]]
    assert len(title) >= 3 and " ".join(text for text, _ in title).split() == [
        "model", *note.split()]
    assert all(box[0] >= 0 and box[2] <= image.width for _, box in title)


def test_every_heatmap_text_is_inside_the_picture():
    """One row of 1,000 points (no y axis): the first x label, centred on the first cell,
    still fits; so do the colour bar's labels."""
    from crosssim.report.raster import render_heatmap

    grid = np.abs(np.random.default_rng(0).normal(1e-12, 5e-13, (1, 1000)))
    figure = _heatmap(grid)
    figure = type(figure)(**{**figure.__dict__, "x_ticks": (list(range(0, 1000, 42)), [
        f"{0.001 * (k + 1):g}" for k in range(0, 1000, 42)]), "size_in": (16.0, 3.0)})
    image, layout = render_heatmap(figure)
    for text, (left, top, right, bottom) in layout.texts:
        assert 0 <= left and right <= image.width and 0 <= top and bottom <= image.height, text
