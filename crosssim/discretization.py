"""The discretization every simulator adapter shares: which CV a point source acts on, how a
probe reads between CV centres, and which steps a step clamp is on.

These are Arbor's native rules (measured against Arbor in ``tests/test_backends.py``); the
NEURON and Jaxley adapters reproduce them with these functions, so the three agree to
round-off wherever the sites are.  Pure Python: no numpy, no simulator, no model import.

* A cell of ``n`` CVs: CV ``i`` is ``[i/n, (i+1)/n]``, its centre ``(i + 0.5)/n``
  (:func:`cv_centre`).
* A point source (junction half, clamp) at ``x`` acts on the CV containing ``x``
  (:func:`site_cv`); a site exactly on an interior boundary belongs to the distal CV.
* A probe at ``x`` reads the linear interpolation between the neighbouring CV centres,
  extrapolated from the outermost pair towards x = 0 and 1 (:func:`probe_stencil`).
* A step clamp is on for the step from ``j*dt`` to ``(j+1)*dt`` when
  ``delay <= j*dt < delay + duration`` (:func:`clamp_steps`).
"""

from __future__ import annotations

import math

__all__ = ["clamp_steps", "cv_centre", "probe_stencil", "site_cv"]


def site_cv(x: float, n_cvs: int) -> int:
    """Index of the CV (0 .. n_cvs-1) that Arbor assigns position ``x`` to.

    Arbor's CV boundaries for ``n`` CVs per branch are ``k * (1/n)`` (k < n) and 1; a point
    is in CV ``i`` when ``b_i <= x < b_(i+1)`` (boundary sites go distal), x = 1 is in the
    last CV.
    """
    if n_cvs <= 1:
        return 0
    step = 1.0 / n_cvs
    index = min(max(int(x * n_cvs), 0), n_cvs - 1)
    while index + 1 < n_cvs and (index + 1) * step <= x:
        index += 1
    while index > 0 and index * step > x:
        index -= 1
    return index


def cv_centre(index: int, n_cvs: int) -> float:
    """Position (0..1) of the centre of CV ``index``: NEURON's segment node ``(i + 0.5)/n``."""
    return (index + 0.5) / n_cvs


def probe_stencil(x: float, n_cvs: int) -> tuple[int, int, float]:
    """``(i, j, w)`` such that the probe at ``x`` reads ``(1 - w) * V_i + w * V_j``.

    Linear interpolation between neighbouring CV centres, extrapolated from the first or
    last pair beyond the outermost centres (``w`` < 0 or > 1 there).  One CV: ``(0, 0, 0)``.
    """
    if n_cvs <= 1:
        return 0, 0, 0.0
    position = x * n_cvs - 0.5  # in units of CV lengths from the first centre
    first = min(max(math.floor(position), 0), n_cvs - 2)
    return first, first + 1, position - first


def clamp_steps(delay_ms: float, duration_ms: float, dt_ms: float,
                n_steps: int) -> tuple[int, int] | None:
    """First and last integration step (0-based) a step clamp is on, or None if never.

    Arbor's rule: step ``j`` (from ``j*dt`` to ``(j+1)*dt``) carries the amplitude when
    ``delay <= j*dt < delay + duration`` (floating-point products and sum).  Only steps
    ``0 .. n_steps-1`` matter.
    """
    end = delay_ms + duration_ms
    first = max(0, math.ceil(delay_ms / dt_ms))
    while first > 0 and (first - 1) * dt_ms >= delay_ms:
        first -= 1
    while first * dt_ms < delay_ms:
        first += 1
    last = max(-1, math.ceil(end / dt_ms) - 1)
    while (last + 1) * dt_ms < end:
        last += 1
    while last >= 0 and last * dt_ms >= end:
        last -= 1
    last = min(last, n_steps - 1)
    if last < first:
        return None
    return first, last
