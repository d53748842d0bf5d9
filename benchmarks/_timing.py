"""Shared helpers of the benchmark scripts: interleaved timing, medians, table printing."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: The folder of the hand-written reference scripts.
HANDWRITTEN = Path(__file__).resolve().parent / "handwritten"


def interleaved(runs: dict[str, Callable[[], object]], repeats: int,
                warmup: bool = True) -> dict[str, list[float]]:
    """Wall-clock seconds of each callable, ``repeats`` rounds of A, B, A, B, ...

    The order alternates every round (A B, then B A) so that a slow period of a shared
    machine hits both sides alike; compare medians, never timings from different runs.
    """
    names = list(runs)
    if warmup:
        for name in names:
            runs[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            started = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def child_env() -> dict[str, str]:
    """The environment for a child Python process running NEURON."""
    env = dict(os.environ)
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    return env


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                stream=sys.stdout) -> None:
    """A plain, aligned text table (Markdown-compatible)."""
    cells = [[str(item) for item in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |",
          file=stream)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=stream)
    for row in cells:
        print("| " + " | ".join(item.rjust(w) for item, w in zip(row, widths)) + " |",
              file=stream)
