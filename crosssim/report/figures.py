"""Figures (matplotlib, object API only: no pyplot global state, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from crosssim.backends.base import RunResult
from crosssim.model import Model

#: Line styles per source, so backends stay distinguishable in greyscale print.
_STYLES = {
    "arbor": {"linestyle": "-", "linewidth": 2.2, "alpha": 0.8},
    "neuron": {"linestyle": (0, (4, 2)), "linewidth": 1.4},
    "analytic": {"linestyle": ":", "linewidth": 1.6, "color": "black"},
    "lumped": {"linestyle": "-.", "linewidth": 1.0, "color": "grey"},
}
MAX_PROBES_PLOTTED = 12


def plot_traces(model: Model, results: Sequence[RunResult], path: Path, *,
                equilibria: Mapping[str, float] | None = None, dpi: int = 120) -> Path:
    """Plot every probe of every source on one axes and save a PNG at ``path``.

    Colour = probe, line style = source.  ``equilibria`` (cell name -> mV, e.g. the lumped
    steady state) are drawn dashed and labelled with the cell they belong to.
    """
    from matplotlib.figure import Figure

    from crosssim.io import atomic_open

    figure = Figure(figsize=(8, 4.8), layout="constrained")
    axes = figure.add_subplot()
    colours = [f"C{i}" for i in range(10)]
    probes = model.effective_probes()[:MAX_PROBES_PLOTTED]
    probe_cell = {probe.label: probe.cell for probe in probes}
    for result in results:
        style = dict(_STYLES.get(result.backend, {"linestyle": "-"}))
        for index, label in enumerate(probe_cell):
            if label not in result.probes:
                continue
            colour = style.get("color") or colours[index % len(colours)]
            axes.plot(result.times_ms, result.trace(label),
                      label=f"{label} ({result.backend})", **{**style, "color": colour})
    if equilibria:
        shown = {probe_cell[label] for label in probe_cell}
        for cell, value in equilibria.items():
            if cell not in shown:
                continue
            axes.axhline(value, linestyle="--", color="black", alpha=0.45, linewidth=0.9)
            axes.annotate(f"{cell}: lumped equilibrium {value:.4f} mV", xy=(1.0, value),
                          xycoords=("axes fraction", "data"), xytext=(-4, 3),
                          textcoords="offset points", ha="right", va="bottom", fontsize=8)
    title = model.name
    if len(model.effective_probes()) > MAX_PROBES_PLOTTED:
        title += f" (first {MAX_PROBES_PLOTTED} of {len(model.effective_probes())} probes)"
    axes.set_title(title)
    axes.set_xlabel("t (ms)")
    axes.set_ylabel("membrane potential (mV)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    path = Path(path)
    with atomic_open(path, "wb", encoding=None) as handle:
        figure.savefig(handle, format="png", dpi=dpi)
    return path
