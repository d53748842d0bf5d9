"""Numerical inversion of Laplace transforms on shared hyperbolic contours.

The method is the trapezoidal rule on a hyperbola (Weideman & Trefethen, "Parabolic and
hyperbolic contours for computing the Bromwich integral", Math. Comp. 76 (2007) 1341-1356)
with one *fixed* contour per time window ``[t_lo, t_hi]``, so the transform is evaluated
once per node and reused for every time of the window::

    s(theta) = mu * (1 + i sinh(theta + i phi)),   theta_k = (k + 1/2) h,  k = 0 .. N-1
    f(t) ~= Im( sum_k  h/pi * s'(theta_k) * exp(s_k t) * F(s_k) )

(real ``f``: ``F(conj s) = conj F(s)``, so only the upper half of the contour is summed).
Parameters, with ``Lambda = t_hi / t_lo`` and ``phi = 1.09``::

    A  = arccosh(((pi - 2 phi) Lambda + 4 phi - pi) / ((4 phi - pi) sin phi))
    mu = (4 pi phi - pi^2) N / (t_hi A),   h = A / N.

Requirements on ``F``: analytic off the negative real axis (poles or cuts on
``(-inf, 0]`` are fine, a pole at 0 included) and decaying like a power of ``1/|s|``.
Every transform of the passive cable network meets this: its poles are real and <= 0.
Times are split into windows with ``Lambda <= 1000``; a window narrower than
``Lambda = 10`` is widened to 10 downwards (a narrow window has a large ``mu t`` and
amplifies roundoff).  Nodes per window ``N = ceil(10 + 23.5 log10(Lambda))``: 34 for one
decade, 81 for three.  Measured on ``1/(s(s+1))``, ``1/(s sqrt(s+1))`` and
``1/(s+0.01) - 1/(s+100)`` (unit-size functions) for time ranges from one point to seven
decades, at time scales 1e-3 to 1e3: largest absolute error 4e-14.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Opening angle parameter of the hyperbola (radians), Weideman & Trefethen's choice.
PHI = 1.09
#: Largest ratio t_hi / t_lo covered by one contour.
MAX_WINDOW_RATIO = 1000.0
#: Complex entries per block when summing nodes x times (bounds temporary memory).
_BLOCK = 4_000_000


#: Narrowest window ratio used for the contour parameters (narrower windows are widened).
MIN_WINDOW_RATIO = 10.0


def nodes_for_ratio(ratio: float) -> int:
    """Contour nodes for a window with ``t_hi / t_lo = ratio`` (about 1e-14 relative error)."""
    return int(math.ceil(10.0 + 23.5 * math.log10(max(ratio, MIN_WINDOW_RATIO))))


def hyperbola_contour(t_lo: float, t_hi: float, n_nodes: int | None = None,
                      phi: float = PHI) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``s_k`` (1/ms) and weights ``w_k`` of the contour for times in ``[t_lo, t_hi]`` ms.

    ``f(t) ~= Im(sum_k w_k exp(s_k t) F(s_k))`` for ``t_lo <= t <= t_hi``.
    """
    if not 0.0 < t_lo <= t_hi:
        raise ValueError(f"need 0 < t_lo <= t_hi, got t_lo={t_lo!r}, t_hi={t_hi!r}")
    # a very narrow window makes mu * t large and amplifies roundoff: widen it downwards
    ratio = max(t_hi / t_lo, MIN_WINDOW_RATIO)
    if n_nodes is None:
        n_nodes = nodes_for_ratio(ratio)
    a_param = math.acosh(((math.pi - 2.0 * phi) * ratio + 4.0 * phi - math.pi)
                         / ((4.0 * phi - math.pi) * math.sin(phi)))
    mu = (4.0 * math.pi * phi - math.pi**2) * n_nodes / (t_hi * a_param)
    step = a_param / n_nodes
    theta = (np.arange(n_nodes) + 0.5) * step
    nodes = mu * (1.0 + 1j * np.sinh(theta + 1j * phi))
    weights = (step / math.pi) * 1j * mu * np.cosh(theta + 1j * phi)
    return nodes, weights


@dataclass
class ContourPlan:
    """Contours covering all times in ``[edges[0], edges[-1]]`` (ms), one per window.

    ``nodes`` / ``weights`` concatenate the windows; ``slices[w]`` selects window w.
    """

    edges: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    slices: list[slice]

    @classmethod
    def covering(cls, t_min: float, t_max: float) -> ContourPlan:
        """The plan for positive times between ``t_min`` and ``t_max`` ms."""
        if not 0.0 < t_min <= t_max:
            raise ValueError(f"need 0 < t_min <= t_max, got {t_min!r}, {t_max!r}")
        total = t_max / t_min
        count = max(1, math.ceil(math.log(total) / math.log(MAX_WINDOW_RATIO) - 1e-9))
        edges = t_min * total ** (np.arange(count + 1) / count)
        edges[0], edges[-1] = t_min, t_max
        nodes, weights, slices = [], [], []
        start = 0
        for lo, hi in zip(edges[:-1], edges[1:]):
            s, w = hyperbola_contour(lo, hi)
            nodes.append(s)
            weights.append(w)
            slices.append(slice(start, start + s.size))
            start += s.size
        return cls(edges, np.concatenate(nodes), np.concatenate(weights), slices)

    @property
    def n_nodes(self) -> int:
        """Total number of Laplace-domain nodes (transform evaluations per source)."""
        return int(self.nodes.size)

    def window_of(self, times: np.ndarray) -> np.ndarray:
        """Index of the window that holds each time (times outside go to the nearest)."""
        inner = self.edges[1:-1]
        return np.searchsorted(inner, times, side="right")

    def invert(self, values: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Time-domain values at ``times`` (all > 0, ms) of transforms sampled on ``nodes``.

        ``values`` has shape ``(..., n_nodes)``; the result ``(..., len(times))``.
        """
        times = np.asarray(times, dtype=float)
        values = np.asarray(values)
        lead = values.shape[:-1]
        flat = values.reshape(-1, values.shape[-1])
        out = np.empty((flat.shape[0], times.size))
        if times.size == 0:
            return out.reshape(*lead, 0)
        if np.any(times <= 0.0):
            raise ValueError("contour inversion needs times > 0")
        window = self.window_of(times)
        for w, nodes_slice in enumerate(self.slices):
            chosen = np.flatnonzero(window == w)
            if chosen.size == 0:
                continue
            s = self.nodes[nodes_slice]
            kernel = np.exp(np.outer(times[chosen], s)) * self.weights[nodes_slice]
            rows = max(1, _BLOCK // max(1, chosen.size * s.size))
            for first in range(0, flat.shape[0], rows):
                block = flat[first:first + rows, nodes_slice]
                out[first:first + rows, chosen] = (block @ kernel.T).imag
        return out.reshape(*lead, times.size)


def invert_laplace(transform, times: np.ndarray) -> np.ndarray:
    """``f(t)`` at ``times`` (ms, all > 0) for a transform ``F``: callable on an array of s.

    ``transform(s)`` must return shape ``(..., len(s))``; see the module notes for what
    ``F`` must satisfy.  Uses the windows of :meth:`ContourPlan.covering`.
    """
    times = np.asarray(times, dtype=float)
    plan = ContourPlan.covering(float(times.min()), float(times.max()))
    return plan.invert(transform(plan.nodes), times)
