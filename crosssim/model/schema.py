"""The model format: frozen pydantic classes, their validators and the format's limits.

Field names carry their units (``length_um``, ``g_uS``).  Validators raise ``ValueError``
or :class:`_FieldError` (which knows its dotted field path);
:mod:`crosssim.model.validation_errors` turns what pydantic collects into one
:class:`~crosssim.errors.InvalidModelError`.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = [
    "MAX_CVS_PER_CELL",
    "MAX_STEPS",
    "NAME_ALLOWED",
    "NAME_PATTERN",
    "ArborOptions",
    "BackendOptions",
    "Cell",
    "Discretization",
    "GapJunction",
    "Model",
    "NeuronOptions",
    "Probe",
    "ProbeTolerance",
    "Simulation",
    "Stimulus",
    "Tolerance",
]

#: Relative slack when checking that one time is a whole multiple of another.
_MULTIPLE_RTOL = 1e-9

#: Names of models, cells and probes become file names, folder names and CSV columns:
#: letters, digits, ``_``, ``.`` and ``-``, not starting with ``.`` (so never ``.``, ``..``
#: or a hidden file) -- a name can never leave or hide inside the output folder.
NAME_PATTERN = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$"
NAME_ALLOWED = ("letters, digits and _ . - only, not starting with '.' "
                "(it names files, folders and columns)")

#: Largest number of integration steps (t_stop_ms / dt_ms) and of CVs per cell.  The CV
#: limit is NEURON's: ``nseg`` is at most 32767, and NEURON 9 already fails at 32767
#: (std::bad_array_new_length), so a model both simulators can run has at most 32766.
MAX_STEPS = 10**10
MAX_CVS_PER_CELL = 32_766
_CVS_ALLOWED = (f"at most {MAX_CVS_PER_CELL} CVs per cell (NEURON's nseg limit; "
                "both simulators use the same CV count)")

PositiveFloat = float


class _Frozen(BaseModel):
    """Base of all model parts: immutable, unknown keys rejected, no type coercion of str."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=False,
        allow_inf_nan=False,
        validate_default=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        """Refuse strings and booleans where a number is expected ("5" is a typo, not 5)."""
        if isinstance(data, Mapping):
            for name in _numeric_fields(cls):
                value = data.get(name)
                if isinstance(value, (str, bool)):
                    raise _FieldError(name, f"expected a number, got {value!r}",
                                      "a number (no quotes)")
            for name in _numeric_pair_fields(cls):
                value = data.get(name)
                if isinstance(value, (list, tuple)):
                    for i, item in enumerate(value):
                        if isinstance(item, (str, bool)):
                            raise _FieldError(f"{name}.{i}", f"expected a number, got {item!r}",
                                              "a number (no quotes)")
        return data


@functools.cache  # once per model class, not once per validated cell
def _numeric_pair_fields(cls: type[BaseModel]) -> frozenset[str]:
    """Names of the fields of ``cls`` that hold a tuple of numbers (e.g. junction ``x``)."""
    return frozenset(name for name, info in cls.model_fields.items()
                     if typing.get_origin(info.annotation) is tuple
                     and set(typing.get_args(info.annotation)) <= {float, int})


@functools.cache  # once per model class, not once per validated cell
def _numeric_fields(cls: type[BaseModel]) -> frozenset[str]:
    """Names of the fields of ``cls`` that hold numbers (float/int, optionally None)."""
    names = set()
    for name, info in cls.model_fields.items():
        text = str(info.annotation)
        if info.annotation in (float, int) or text in ("float | None", "int | None",
                                                        "typing.Optional[float]",
                                                        "typing.Optional[int]"):
            names.add(name)
    return frozenset(names)


def _validated_multiple(value: float, unit: float) -> int:
    """:func:`_whole_multiple` of a validated model, where it is always whole."""
    count = _whole_multiple(value, unit)
    if count is None:  # pragma: no cover - refused by validation
        raise ValueError(f"{value:g} is not a whole multiple of {unit:g}")
    return count


def _whole_multiple(value: float, unit: float) -> int | None:
    """``round(value / unit)`` if ``value`` is a whole multiple of ``unit``, else None."""
    ratio = value / unit
    if not math.isfinite(ratio) or ratio > MAX_STEPS:
        return None
    steps = round(ratio)
    if steps >= 1 and abs(ratio - steps) <= _MULTIPLE_RTOL * max(1.0, ratio):
        return int(steps)
    return None


class Simulation(_Frozen):
    """Run settings: stop time, integration step and sampling interval, all in ms."""

    t_stop_ms: float = Field(gt=0, description="simulated time in ms")
    dt_ms: float = Field(gt=0, description="integration time step in ms")
    sample_dt_ms: float | None = Field(
        default=None, gt=0, description="sampling interval in ms; defaults to dt_ms"
    )

    @model_validator(mode="after")
    def _check_grid(self) -> Simulation:
        steps = self.t_stop_ms / self.dt_ms
        if self.dt_ms <= self.t_stop_ms and not steps <= MAX_STEPS:
            raise ValueError(
                f"t_stop_ms / dt_ms = {steps:.3g} steps; allowed: at most {MAX_STEPS:.0e} "
                "steps (a larger dt_ms or a smaller t_stop_ms)")
        if self.sample_dt_ms is not None and not self.t_stop_ms / self.sample_dt_ms <= MAX_STEPS:
            raise ValueError(
                f"t_stop_ms / sample_dt_ms = {self.t_stop_ms / self.sample_dt_ms:.3g} samples; "
                f"allowed: at most {MAX_STEPS:.0e} samples")
        if self.dt_ms > self.t_stop_ms:
            raise ValueError(
                f"dt_ms ({self.dt_ms:g}) is larger than t_stop_ms ({self.t_stop_ms:g}); "
                "allowed: 0 < dt_ms <= t_stop_ms"
            )
        if _whole_multiple(self.t_stop_ms, self.dt_ms) is None:
            raise ValueError(
                f"t_stop_ms ({self.t_stop_ms:g}) is not a whole multiple of dt_ms ({self.dt_ms:g})"
            )
        sample = self.sample_interval_ms
        if _whole_multiple(sample, self.dt_ms) is None:
            raise ValueError(
                f"sample_dt_ms ({sample:g}) is not a whole multiple of dt_ms ({self.dt_ms:g})"
            )
        if _whole_multiple(self.t_stop_ms, sample) is None:
            raise ValueError(
                f"t_stop_ms ({self.t_stop_ms:g}) is not a whole multiple of "
                f"sample_dt_ms ({sample:g})"
            )
        return self

    @property
    def sample_interval_ms(self) -> float:
        """The sampling interval in ms (``sample_dt_ms`` or, if unset, ``dt_ms``)."""
        return self.sample_dt_ms if self.sample_dt_ms is not None else self.dt_ms

    @property
    def n_steps(self) -> int:
        """Number of integration steps, ``t_stop_ms / dt_ms``."""
        return _validated_multiple(self.t_stop_ms, self.dt_ms)

    @property
    def steps_per_sample(self) -> int:
        """Integration steps between two samples."""
        return _validated_multiple(self.sample_interval_ms, self.dt_ms)

    @property
    def n_samples(self) -> int:
        """Samples per probe: ``t_stop_ms / sample_dt_ms + 1`` (t = 0 and t = t_stop included)."""
        return _validated_multiple(self.t_stop_ms, self.sample_interval_ms) + 1

    def sample_times_ms(self):
        """The nominal sample times in ms as a numpy array, ``k * sample_dt_ms``."""
        import numpy as np

        return np.arange(self.n_samples, dtype=float) * self.sample_interval_ms


class Discretization(_Frozen):
    """How each cable is cut into control volumes (CVs): a count, or a largest CV length."""

    cvs_per_cell: int | None = Field(default=None, ge=1)
    max_extent_um: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> Discretization:
        if (self.cvs_per_cell is None) == (self.max_extent_um is None):
            raise ValueError(
                "give exactly one of cvs_per_cell (a whole number >= 1) or max_extent_um (> 0)"
            )
        if self.cvs_per_cell is not None and self.cvs_per_cell > MAX_CVS_PER_CELL:
            raise _FieldError("cvs_per_cell", f"{self.cvs_per_cell} CVs per cell",
                              _CVS_ALLOWED)
        return self

    def cvs_for(self, length_um: float) -> int:
        """Control volumes for a cable of ``length_um``: the count, or ceil(length / extent).

        Both backends take their CV count from here, so they always agree.
        """
        if self.cvs_per_cell is not None:
            return self.cvs_per_cell
        assert self.max_extent_um is not None  # exactly one of the two is set (validated)
        ratio = length_um / self.max_extent_um
        if not math.isfinite(ratio):  # refused by Model validation; guards direct use
            raise ValueError(f"max_extent_um {self.max_extent_um:g} gives no finite CV count "
                             f"for a cable of {length_um:g} um")
        nearest = round(ratio)
        # A length that is a whole multiple of the extent up to rounding needs exactly that
        # many CVs; ceil() of 1000.0000000000001 would otherwise add one.
        if nearest >= 1 and abs(ratio - nearest) <= 1e-9 * ratio:
            return int(nearest)
        return max(1, math.ceil(ratio))


class Cell(_Frozen):
    """One passive unbranched cable with sealed ends."""

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    length_um: float = Field(gt=0)
    radius_um: float = Field(gt=0)
    cm_F_per_m2: float = Field(gt=0, description="specific membrane capacitance, F/m^2")
    ra_ohm_cm: float = Field(gt=0, description="axial resistivity, ohm*cm")
    g_leak_S_per_cm2: float = Field(gt=0, description="leak conductance density, S/cm^2")
    e_leak_mV: float
    v_init_mV: float | None = Field(default=None, description="defaults to e_leak_mV")

    @property
    def initial_mV(self) -> float:
        """The initial membrane potential in mV (``v_init_mV`` or ``e_leak_mV``)."""
        return self.e_leak_mV if self.v_init_mV is None else self.v_init_mV

    @property
    def area_um2(self) -> float:
        """Lateral membrane area in um^2 (end caps excluded, as both simulators do)."""
        return 2.0 * math.pi * self.radius_um * self.length_um

    @property
    def tau_ms(self) -> float:
        """Membrane time constant cm / g_leak in ms."""
        return self.cm_F_per_m2 * 1e-4 / self.g_leak_S_per_cm2 * 1e3

    @property
    def length_constant_um(self) -> float:
        """Length constant lambda = sqrt(r_m / r_a) in um."""
        radius_cm = self.radius_um * 1e-4
        lam_cm = math.sqrt(radius_cm / (2.0 * self.ra_ohm_cm * self.g_leak_S_per_cm2))
        return lam_cm * 1e4


_Position = Field(ge=0.0, le=1.0)


class GapJunction(_Frozen):
    """An ohmic gap junction between a site on one cell and a site on another (or the same)."""

    cells: tuple[str, str]
    x: tuple[float, float] = (0.5, 0.5)
    g_uS: float = Field(ge=0)

    @field_validator("x")
    @classmethod
    def _positions(cls, value: tuple[float, float]) -> tuple[float, float]:
        for position in value:
            if not 0.0 <= position <= 1.0:
                raise ValueError(f"position {position:g} is outside [0, 1]")
        return value


class Probe(_Frozen):
    """A membrane-voltage probe at position ``x`` of a cell."""

    cell: str
    x: float = _Position
    name: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=NAME_PATTERN
    )

    @property
    def label(self) -> str:
        """The probe's name, or the stable default ``<cell>_x<x>`` (e.g. ``a_x0.5``)."""
        return self.name if self.name is not None else f"{self.cell}_x{self.x:g}"


class Stimulus(_Frozen):
    """A step current clamp: ``amplitude_nA`` from ``delay_ms`` for ``duration_ms``."""

    cell: str
    x: float = _Position
    delay_ms: float = Field(ge=0)
    duration_ms: float = Field(ge=0)
    amplitude_nA: float


class ProbeTolerance(_Frozen):
    """Per-probe tolerances in mV that override the model-wide ones."""

    backends_abs_mV: float | None = Field(default=None, ge=0)
    analytic_abs_mV: float | None = Field(default=None, ge=0)
    lumped_abs_mV: float | None = Field(default=None, ge=0)
    reference_abs_mV: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    def for_source(self, key: str) -> float | None:
        """The tolerance in mV for pairs gated by ``key`` (``backends`` or a reference's
        name), None when this table does not set it."""
        return _tolerance_for(self, key)


class Tolerance(_Frozen):
    """Largest allowed deviations in mV.

    ``backends_abs_mV`` gates simulator against simulator, ``analytic_abs_mV`` each simulator
    against the exact cable solution, ``lumped_abs_mV`` against the lumped (isopotential)
    solution (None: reported, not gated).  Any other reference is gated by its entry in
    ``reference_abs_mV`` (``[tolerance.reference_abs_mV] discrete = 1e-9``), else reported.
    Samples before ``window_start_ms`` are ignored.
    """

    backends_abs_mV: float = Field(default=1e-6, ge=0)
    analytic_abs_mV: float = Field(default=0.1, ge=0)
    lumped_abs_mV: float | None = Field(default=None, ge=0)
    reference_abs_mV: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    window_start_ms: float = Field(default=0.0, ge=0)
    probes: dict[str, ProbeTolerance] = Field(default_factory=dict)

    def for_source(self, key: str) -> float | None:
        """The tolerance in mV for pairs gated by ``key``: ``backends`` (simulator vs
        simulator) or a reference's name; None: reported, not gated."""
        return _tolerance_for(self, key)


def _tolerance_for(table: Tolerance | ProbeTolerance, key: str) -> float | None:
    """``<key>_abs_mV`` when the table has that field (backends, analytic, lumped), else
    ``reference_abs_mV[key]``, else None."""
    field = f"{key}_abs_mV"
    if field in type(table).model_fields:
        return getattr(table, field)
    return table.reference_abs_mV.get(key)


class ArborOptions(_Frozen):
    """Options of the Arbor backend."""

    threads: int = Field(default=1, ge=1, le=1024)


class NeuronOptions(_Frozen):
    """Options of the NEURON backend.

    ``secondorder``: 0 implicit Euler (default, like Arbor), 1 or 2 Crank-Nicolson variants.
    ``nthread``: NEURON threads.  ``mpi_ranks``: run under ``mpiexec -n`` (needs mpi4py).
    """

    secondorder: Literal[0, 1, 2] = 0
    nthread: int = Field(default=1, ge=1, le=1024)
    mpi_ranks: int = Field(default=1, ge=1, le=4096)
    timeout_s: float | None = Field(default=None, gt=0)


class BackendOptions(_Frozen):
    """Per-backend options, the ``[backends.<name>]`` tables of a model file."""

    arbor: ArborOptions = Field(default_factory=ArborOptions)
    neuron: NeuronOptions = Field(default_factory=NeuronOptions)


class Model(_Frozen):
    """A complete neutral model: cells, junctions, probes, clamps, run settings, tolerances."""

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    description: str | None = None
    simulation: Simulation
    discretization: Discretization = Field(
        default_factory=lambda: Discretization(cvs_per_cell=1)
    )
    cells: tuple[Cell, ...] = Field(min_length=1)
    gap_junctions: tuple[GapJunction, ...] = ()
    probes: tuple[Probe, ...] = ()
    stimuli: tuple[Stimulus, ...] = ()
    tolerance: Tolerance = Field(default_factory=Tolerance)
    backends: BackendOptions = Field(default_factory=BackendOptions)

    @model_validator(mode="after")
    def _check_sizes(self) -> Model:
        """Refuse CV counts and windows that cannot work before anything is allocated."""
        extent = self.discretization.max_extent_um
        if extent is not None:
            for cell in self.cells:
                ratio = cell.length_um / extent
                # compare the count cvs_for() gives (ceil), not the ratio; also catches inf
                if not ratio <= MAX_CVS_PER_CELL + 1 or (
                        self.discretization.cvs_for(cell.length_um) > MAX_CVS_PER_CELL):
                    raise _FieldError(
                        "discretization.max_extent_um",
                        f"{extent:g} um cuts cell {cell.name!r} ({cell.length_um:g} um) into "
                        f"{math.ceil(ratio) if math.isfinite(ratio) else ratio:.6g} CVs",
                        f"{_CVS_ALLOWED} (max_extent_um >= "
                        f"{cell.length_um / MAX_CVS_PER_CELL:.6g} for this cell)")
        window = self.tolerance.window_start_ms
        if window > self.simulation.t_stop_ms:
            raise _FieldError("tolerance.window_start_ms",
                              f"{window:g} ms is after t_stop_ms "
                              f"({self.simulation.t_stop_ms:g} ms)",
                              "0 <= window_start_ms <= t_stop_ms")
        return self

    @model_validator(mode="after")
    def _check_references(self) -> Model:
        index: dict[str, int] = {}
        for i, cell in enumerate(self.cells):
            if cell.name in index:
                raise _FieldError(f"cells.{i}.name", f"duplicate cell name {cell.name!r}",
                                  "each cell name once")
            index[cell.name] = i
        known = ", ".join(sorted(index)[:10]) + (" ..." if len(index) > 10 else "")
        for i, junction in enumerate(self.gap_junctions):
            for name in junction.cells:
                if name not in index:
                    raise _FieldError(f"gap_junctions.{i}.cells", f"unknown cell {name!r}",
                                      f"one of: {known}")
            if (junction.cells[0] == junction.cells[1]
                    and abs(junction.x[0] - junction.x[1]) < 1e-12):
                raise _FieldError(f"gap_junctions.{i}", "joins a site to itself",
                                  "two different sites (another cell, or another x)")
        names: set[str] = set()
        for i, probe in enumerate(self.probes):
            if probe.cell not in index:
                raise _FieldError(f"probes.{i}.cell", f"unknown cell {probe.cell!r}",
                                  f"one of: {known}")
            if probe.label in names:
                raise _FieldError(f"probes.{i}.name", f"duplicate probe name {probe.label!r}",
                                  "each probe name once")
            names.add(probe.label)
        for i, stimulus in enumerate(self.stimuli):
            if stimulus.cell not in index:
                raise _FieldError(f"stimuli.{i}.cell", f"unknown cell {stimulus.cell!r}",
                                  f"one of: {known}")
        if not self.probes:  # the default probes, one at the middle of each cell
            names = {probe.label for probe in self.effective_probes()}
        for probe_name in self.tolerance.probes:
            if probe_name not in names:
                raise _FieldError(f"tolerance.probes.{probe_name}",
                                  f"unknown probe {probe_name!r}",
                                  "one of: " + ", ".join(sorted(names)))
        return self

    # Convenience views -------------------------------------------------------------------

    def cell_index(self) -> dict[str, int]:
        """Map cell name -> position in ``cells`` (the gid used by the backends)."""
        return {cell.name: i for i, cell in enumerate(self.cells)}

    def cvs(self, cell: Cell) -> int:
        """Control volumes of ``cell`` under this model's discretization."""
        return self.discretization.cvs_for(cell.length_um)

    def cv_capacitance_pF(self, cell: Cell) -> float:
        """Membrane capacitance of one control volume of ``cell`` in pF (CVs are equal)."""
        area_um2 = cell.area_um2 / self.cvs(cell)
        return cell.cm_F_per_m2 * area_um2  # F/m^2 * um^2 = 1e-12 F

    def stiff_junctions(self, threshold: float = 1.0) -> list[tuple[int, str, float]]:
        """Junctions whose ``g * dt / C`` exceeds ``threshold`` at one of their sites.

        ``C`` is the capacitance of the CV the site acts on.  Both simulators take the peer
        voltage of a junction from the previous step, so above 1 the two sites overshoot
        each other every step (the difference changes sign) and neither simulator follows
        the exact solution until dt is refined.  Returns ``(index, cell, ratio)`` for the
        stiffer site of each such junction.
        """
        cells = {cell.name: cell for cell in self.cells}
        dt_s = self.simulation.dt_ms * 1e-3
        found: list[tuple[int, str, float]] = []
        for index, junction in enumerate(self.gap_junctions):
            ratios = [(junction.g_uS * 1e-6 * dt_s / (self.cv_capacitance_pF(cells[name]) * 1e-12),
                       name) for name in junction.cells]
            ratio, name = max(ratios)
            if ratio > threshold:
                found.append((index, name, ratio))
        return found

    @property
    def probe_labels(self) -> list[str]:
        """Probe names in model order."""
        return [probe.label for probe in self.probes]

    def effective_probes(self) -> tuple[Probe, ...]:
        """The probes, or (if none are given) one probe at the middle of every cell."""
        if self.probes:
            return self.probes
        return tuple(Probe(cell=cell.name, x=0.5) for cell in self.cells)

    def junctions_by_cell(self) -> dict[int, list[tuple[int, int, int]]]:
        """Index junctions by cell once: gid -> [(junction index, side, peer gid)]."""
        index = self.cell_index()
        by_cell: dict[int, list[tuple[int, int, int]]] = {}
        for j, junction in enumerate(self.gap_junctions):
            a, b = index[junction.cells[0]], index[junction.cells[1]]
            by_cell.setdefault(a, []).append((j, 0, b))
            by_cell.setdefault(b, []).append((j, 1, a))
        return by_cell

    def to_dict(self, *, resolved: bool = False) -> dict[str, Any]:
        """Plain dict (TOML/JSON ready).  ``resolved`` fills every default explicitly."""
        data = self.model_dump(mode="json", exclude_none=True, exclude_unset=not resolved)
        data["name"] = self.name
        data["simulation"] = self.simulation.model_dump(mode="json", exclude_none=True)
        if resolved:
            data["simulation"]["sample_dt_ms"] = self.simulation.sample_interval_ms
            data["cells"] = [
                {**cell.model_dump(mode="json"), "v_init_mV": cell.initial_mV}
                for cell in self.cells
            ]
            data["probes"] = [
                {**probe.model_dump(mode="json"), "name": probe.label}
                for probe in self.effective_probes()
            ]
            data["discretization"] = self.discretization.model_dump(mode="json",
                                                                    exclude_none=True)
        else:
            data["cells"] = [cell.model_dump(mode="json", exclude_none=True, exclude_unset=True)
                             for cell in self.cells]
        return data

    def replace(self, **changes: Any) -> Model:
        """A validated copy with top-level fields replaced."""
        # loading builds on this module; importing it here, when called, keeps the
        # package's import graph one-way (schema <- validation_errors <- loading)
        from crosssim.model.loading import model_from_dict

        return model_from_dict({**self.to_dict(), **changes}, source="<replace>")


class _FieldError(ValueError):
    """Internal: a cross-field error that knows its dotted field path."""

    def __init__(self, field: str, message: str, allowed: str) -> None:
        self.field = field
        self.message = message
        self.allowed = allowed
        super().__init__(message)

