"""Notes that explain a result before it confuses: data that travels with the result.

A :class:`Note` names what it is about (``subject``: a junction, a source, a stimulus), says
what is going on (``message``) and, where one exists, the change that would fix it
(``action``).  :func:`model_notes` finds the notes a model deserves before anything runs;
``check`` adds notes of its own (a source left out, ...) and every output carries them:
the terminal, the JSON document, JUnit, HTML, Markdown, ``assert_agree`` and sweep tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

NoteKind = Literal["stiff-junction", "mixed-methods", "idle-stimulus", "source-left-out",
                   "source-skipped", "roundoff-floor", "unit-slip", "probe-not-compared",
                   "partial-span", "active-membrane", "other"]

__all__ = ["Note", "NoteKind", "model_notes", "unit_slip_notes"]


@dataclass(frozen=True)
class Note:
    """One explanation attached to a result.

    ``kind``: a stable machine-readable tag; ``subject``: the model path or source it is
    about (``gap_junctions.0``, ``neuron``); ``message``: one sentence for people;
    ``action``: the change that would fix it, or None when nothing needs fixing.
    """

    kind: NoteKind
    subject: str
    message: str
    action: str | None = None

    def text(self) -> str:
        """One line: ``note: SUBJECT: MESSAGE (fix: ACTION)``."""
        fix = f" (fix: {self.action})" if self.action else ""
        return f"note: {self.subject}: {self.message}{fix}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the four fields."""
        return asdict(self)


def stiff_junction_note(model: Model) -> Note | None:
    """A note when a junction is too strong for dt (see :meth:`Model.stiff_junctions`)."""
    stiff = model.stiff_junctions()
    if not stiff:
        return None
    index, cell, ratio = max(stiff, key=lambda item: item[2])
    dt = model.simulation.dt_ms
    more = f" (and {len(stiff) - 1} more)" if len(stiff) > 1 else ""
    return Note(
        "stiff-junction", f"gap_junctions.{index}{more}",
        f"g*dt/C = {ratio:.3g} > 1 at its CV on cell {cell!r}; both simulators read the peer "
        "voltage once per step, so the two sites overshoot each other every step and both "
        "simulators stay off the exact solution",
        f"simulation.dt_ms < {dt / ratio:.3g} (or a weaker junction, or larger CVs)")


#: Likely unit slips, per cell field: (is it suspicious?, what it probably is, the value
#: that was probably meant).  A warning, never a refusal: unusual cells exist.
_UNIT_SLIPS: dict[str, tuple[Callable[[float], bool], str, Callable[[float], float]]] = {
    "cm_F_per_m2": (lambda v: v >= 0.5,
                    "a value in uF/cm^2 (1 uF/cm^2 = 0.01 F/m^2; membranes are ~0.01 F/m^2)",
                    lambda v: v / 100),
    "g_leak_S_per_cm2": (lambda v: v >= 0.5,
                         "a value in mS/cm^2 (1 mS/cm^2 = 0.001 S/cm^2) or S/m^2 "
                         "(1 S/m^2 = 1e-4 S/cm^2); leaks are ~1e-5..1e-2 S/cm^2",
                         lambda v: v / 1000),
    "e_leak_mV": (lambda v: 0 < abs(v) < 1,
                  "a value in volts (-0.1 V = -100 mV); potentials are tens of mV",
                  lambda v: v * 1000),
    "v_init_mV": (lambda v: 0 < abs(v) < 1,
                  "a value in volts (-0.1 V = -100 mV); potentials are tens of mV",
                  lambda v: v * 1000),
    "ra_ohm_cm": (lambda v: v < 1,
                  "a value in ohm*m (1 ohm*m = 100 ohm*cm); axoplasm is ~30..300 ohm*cm",
                  lambda v: v * 100),
}


def unit_slip_notes(model: Model) -> list[Note]:
    """A ``unit-slip`` note per cell field whose value is typical of another unit (a
    uF/cm^2 value in an F/m^2 field, volts in a mV field, ...), naming the probable slip and
    the value that was probably meant.  Cells with the same slip share one note."""
    found: dict[tuple[str, float], list[str]] = {}
    for cell in model.cells:
        for field, (suspicious, _, _) in _UNIT_SLIPS.items():
            value = getattr(cell, field)
            if value is not None and suspicious(value):
                found.setdefault((field, value), []).append(cell.name)
    notes = []
    for (field, value), cells in found.items():
        _, probably, meant = _UNIT_SLIPS[field]
        shown = ", ".join(cells[:3]) + (f" and {len(cells) - 3} more" if len(cells) > 3 else "")
        subject = (f"cells.{cells[0]}.{field}" if len(cells) == 1
                   else f"cells.{{{shown}}}.{field}")
        notes.append(Note(
            "unit-slip", subject,
            f"{field} = {value:g} looks like {probably}; checked as given",
            f"{field} = {meant(value):g} if that was meant"))
    return notes


def model_notes(model: Model, sources: Sequence[str]) -> list[Note]:
    """Notes that explain a deviation before it is seen: a junction too strong for dt,
    simulators set to different numerical methods, clamps outside the run, values that
    look like a unit slip.

    ``sources``: the names of the sources that will run (a note about two simulators is
    made only when both run).
    """
    notes = []
    stiff = stiff_junction_note(model)
    if stiff:
        notes.append(stiff)
    order = model.backends.neuron.secondorder
    if order != 0 and "neuron" in sources and "arbor" in sources:
        notes.append(Note(
            "mixed-methods", "backends.neuron.secondorder",
            f"secondorder = {order} (Crank-Nicolson) while Arbor integrates with implicit "
            "Euler: arbor vs neuron then differs by the method's O(dt) error by design, not "
            "by a bug; compare each with the analytic solution",
            "backends.neuron.secondorder = 0 to compare like with like"))
    t_stop = model.simulation.t_stop_ms
    late = [i for i, stimulus in enumerate(model.stimuli)
            if stimulus.delay_ms >= t_stop or stimulus.duration_ms == 0]
    if late:
        listed = ", ".join(f"stimuli.{i}" for i in late[:5]) + (" ..." if len(late) > 5 else "")
        notes.append(Note(
            "idle-stimulus", listed,
            f"starts at or after t_stop_ms ({t_stop:g} ms) or lasts 0 ms, so it injects no "
            "current in this run"))
    active = model.first_active()
    if active is not None:
        tolerance = model.tolerance
        notes.append(Note(
            "active-membrane", f"cells.{active.name}.membrane",
            "active membrane: spikes are found by crosssim in the sampled traces (upward "
            f"crossings of {model.spikes.threshold_mV:g} mV) and gated by count (equal"
            f"{'' if not tolerance.spike_count_abs else f' within {tolerance.spike_count_abs}'}"
            f") and time ({tolerance.spike_time_abs_ms * 1e3:g} us), simulators' voltages "
            f"away from spikes by {tolerance.subthreshold_abs_mV:g} mV; whole-trace voltage "
            "differences (a spike shift times the upstroke slope) are reported, not gated",
            "tolerance.spike_time_abs_ms / subthreshold_abs_mV to change the gates"))
    notes.extend(unit_slip_notes(model))
    return notes
