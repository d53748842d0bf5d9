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
    "HHParameters",
    "Mechanism",
    "Model",
    "NeuronOptions",
    "ROOT_SECTION",
    "Probe",
    "ProbeTolerance",
    "Section",
    "Simulation",
    "SpikeDetection",
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

    def __hash__(self) -> int:
        # pydantic's frozen hash fails on dict fields (channel parameters): hash them frozen
        return hash((type(self), tuple(_frozen(value) for value in self.__dict__.values())))

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


def _frozen(value: Any) -> Any:
    """``value`` with every dict turned into a sorted tuple of items (hashable)."""
    if isinstance(value, dict):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    return value


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
    celsius: float = Field(default=6.3, ge=-273.15,
                           description="temperature in degrees Celsius (hh rates, q10 = 3)")

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
    """How cables are cut into control volumes (CVs): a count per cell or per section, or a
    largest CV length.  A section may override it (``cvs`` or ``max_extent_um`` on the
    section)."""

    cvs_per_cell: int | None = Field(default=None, ge=1)
    cvs_per_section: int | None = Field(default=None, ge=1)
    max_extent_um: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> Discretization:
        given = [value for value in (self.cvs_per_cell, self.cvs_per_section,
                                     self.max_extent_um) if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of cvs_per_cell or cvs_per_section (a whole number >= 1) "
                "or max_extent_um (> 0)"
            )
        for name in ("cvs_per_cell", "cvs_per_section"):
            count = getattr(self, name)
            if count is not None and count > MAX_CVS_PER_CELL:
                raise _FieldError(name, f"{count} CVs", _CVS_ALLOWED)
        return self

    @property
    def count(self) -> int | None:
        """The fixed CV count per cable (``cvs_per_cell`` or ``cvs_per_section``), or None."""
        return self.cvs_per_cell if self.cvs_per_cell is not None else self.cvs_per_section

    @property
    def count_key(self) -> str | None:
        """``cvs_per_cell`` or ``cvs_per_section``, whichever is given (None: an extent)."""
        if self.cvs_per_cell is not None:
            return "cvs_per_cell"
        return "cvs_per_section" if self.cvs_per_section is not None else None

    def describe(self) -> str:
        """For people: ``11 CV/cell``, ``5 CV/section`` or ``CVs <= 10 um``."""
        if self.cvs_per_cell is not None:
            return f"{self.cvs_per_cell} CV/cell"
        if self.cvs_per_section is not None:
            return f"{self.cvs_per_section} CV/section"
        return f"CVs <= {self.max_extent_um:g} um"

    def cvs_for(self, length_um: float) -> int:
        """Control volumes for a cable of ``length_um``: the count, or ceil(length / extent).

        Both backends take their CV count from here, so they always agree.
        """
        if self.count is not None:
            return self.count
        assert self.max_extent_um is not None  # exactly one of the three is set (validated)
        return cvs_for_extent(length_um, self.max_extent_um)


def cvs_for_extent(length_um: float, max_extent_um: float) -> int:
    """``ceil(length / extent)`` CVs, at least 1; a length that is a whole multiple of the
    extent up to rounding gets exactly that many (ceil(1000.0000000000001) would add one)."""
    ratio = length_um / max_extent_um
    if not math.isfinite(ratio):  # refused by Model validation; guards direct use
        raise ValueError(f"max_extent_um {max_extent_um:g} gives no finite CV count "
                         f"for a cable of {length_um:g} um")
    nearest = round(ratio)
    if nearest >= 1 and abs(ratio - nearest) <= 1e-9 * ratio:
        return int(nearest)
    return max(1, math.ceil(ratio))


Membrane = Literal["passive", "hh"]
#: The initial voltage of an hh cell that names neither v_init_mV nor a passive leak
#: (NEURON's default v_init).
HH_V_INIT_MV = -65.0


class HHParameters(_Frozen):
    """Hodgkin-Huxley channels as NEURON's and Arbor's built-in ``hh`` (defaults: theirs).

    Conductance densities in S/cm^2, reversal potentials in mV; the rates follow
    ``simulation.celsius`` (q10 = 3).  The leak ``gl``/``el`` is part of hh.
    """

    gnabar_S_per_cm2: float = Field(default=0.12, ge=0)
    gkbar_S_per_cm2: float = Field(default=0.036, ge=0)
    gl_S_per_cm2: float = Field(default=0.0003, ge=0)
    el_mV: float = -54.3
    ena_mV: float = 50.0
    ek_mV: float = -77.0


#: A density mechanism's parameters by name, in the units of its MOD file.
ChannelParameters = dict[str, float]


class Mechanism(_Frozen):
    """A user's NMODL density mechanism (``[[mechanisms]] mod = "file.mod"``), compiled for
    every simulator that runs it; cells use it by its SUFFIX in ``channels``.  A relative
    path is read from the model file's folder."""

    mod: str = Field(min_length=1)

    @model_validator(mode="after")
    def _readable(self) -> Mechanism:
        from crosssim.nmodl import describe_mod

        try:
            describe_mod(self.mod)
        except ValueError as exc:
            raise _FieldError("mod", str(exc), "a readable NMODL file with a SUFFIX "
                              "(a density mechanism)") from None
        return self

    @property
    def suffix(self) -> str:
        """The mechanism's name (its NEURON block's SUFFIX)."""
        from crosssim.nmodl import describe_mod

        return describe_mod(self.mod).suffix

    @property
    def parameters(self) -> tuple[str, ...]:
        """Names of the mechanism's PARAMETERs (what a cell may set)."""
        from crosssim.nmodl import describe_mod

        return describe_mod(self.mod).parameters


class SpikeDetection(_Frozen):
    """How crosssim finds spikes in sampled traces (never a simulator's own detector):
    upward crossings of ``threshold_mV``, crossing times interpolated linearly, no second
    spike within ``refractory_ms``; voltages are compared away from spikes, outside
    +-``away_half_width_ms`` of every spike of either trace."""

    threshold_mV: float = 0.0
    refractory_ms: float = Field(default=1.0, ge=0)
    away_half_width_ms: float = Field(default=3.0, ge=0)


#: The name of the one section of an unbranched cell (a site without ``section`` means the
#: root section of any cell).
ROOT_SECTION = "cable"

#: Cell-wide membrane and cable properties a section may override.
SECTION_PROPERTIES = ("cm_F_per_m2", "ra_ohm_cm", "g_leak_S_per_cm2", "e_leak_mV")


class Section(_Frozen):
    """One unbranched piece of a cell: a cylinder, a linear taper or a radius profile.

    The first section of a cell is its root (no ``parent``); every other section attaches
    with its x = 0 end to ``parent`` at ``parent_x`` (0 or 1: an attachment inside a
    parent cannot be discretized identically by Arbor and NEURON).  Geometry: exactly one
    of ``radius_um`` (uniform), ``radius_start_um`` + ``radius_end_um`` (linear taper) or
    ``profile_um`` (``[distance_um, radius_um]`` points, piecewise linear, from 0 to
    ``length_um``).  Unset membrane properties come from the cell; ``cvs`` or
    ``max_extent_um`` override the model's discretization for this section.
    """

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    parent: str | None = None
    parent_x: float = 1.0
    length_um: float = Field(gt=0)
    radius_um: float | None = Field(default=None, gt=0)
    radius_start_um: float | None = Field(default=None, gt=0)
    radius_end_um: float | None = Field(default=None, gt=0)
    profile_um: tuple[tuple[float, float], ...] | None = None
    cm_F_per_m2: float | None = Field(default=None, gt=0)
    ra_ohm_cm: float | None = Field(default=None, gt=0)
    g_leak_S_per_cm2: float | None = Field(default=None, gt=0)
    e_leak_mV: float | None = None
    membrane: Membrane | None = None
    hh: HHParameters | None = None
    channels: dict[str, ChannelParameters] = Field(default_factory=dict)
    cvs: int | None = Field(default=None, ge=1)
    max_extent_um: float | None = Field(default=None, gt=0)

    @field_validator("parent_x")
    @classmethod
    def _ends_only(cls, value: float) -> float:
        if value not in (0.0, 1.0):
            raise ValueError(
                f"parent_x {value:g}: a section can attach only at an end of its parent "
                "(an attachment inside a parent is discretized differently by Arbor and "
                "NEURON); allowed: 0 or 1")
        return float(value)

    @model_validator(mode="after")
    def _one_geometry(self) -> Section:
        forms = [self.radius_um is not None,
                 self.radius_start_um is not None or self.radius_end_um is not None,
                 self.profile_um is not None]
        if sum(forms) != 1:
            raise ValueError("give exactly one of radius_um, radius_start_um + radius_end_um, "
                             "or profile_um")
        if forms[1] and (self.radius_start_um is None or self.radius_end_um is None):
            raise ValueError("a tapered section needs both radius_start_um and radius_end_um")
        if self.profile_um is not None:
            points = self.profile_um
            if len(points) < 2:
                raise _FieldError("profile_um", f"{len(points)} point(s)",
                                  "at least two [distance_um, radius_um] points")
            if points[0][0] != 0.0 or not math.isclose(points[-1][0], self.length_um,
                                                       rel_tol=1e-9, abs_tol=1e-12):
                raise _FieldError("profile_um",
                                  f"runs from {points[0][0]:g} to {points[-1][0]:g} um",
                                  f"distances from 0 to length_um ({self.length_um:g})")
            for i, (distance, radius) in enumerate(points):
                if radius <= 0:
                    raise _FieldError(f"profile_um.{i}", f"radius {radius:g} um",
                                      "a radius > 0")
                if i and distance < points[i - 1][0]:
                    raise _FieldError(f"profile_um.{i}", f"distance {distance:g} um goes back",
                                      "distances in increasing order")
        if self.cvs is not None and self.max_extent_um is not None:
            raise ValueError("give at most one of cvs and max_extent_um")
        if self.cvs is not None and self.cvs > MAX_CVS_PER_CELL:
            raise _FieldError("cvs", f"{self.cvs} CVs", _CVS_ALLOWED)
        return self

    def points(self) -> tuple[tuple[float, float], ...]:
        """The radius profile as ``(distance_um, radius_um)`` points from 0 to length_um."""
        if self.profile_um is not None:
            return tuple((float(d), float(r)) for d, r in self.profile_um)
        if self.radius_um is not None:
            return ((0.0, self.radius_um), (self.length_um, self.radius_um))
        assert self.radius_start_um is not None and self.radius_end_um is not None
        return ((0.0, self.radius_start_um), (self.length_um, self.radius_end_um))

    @property
    def is_uniform(self) -> bool:
        """True when the radius is the same everywhere (a cylinder)."""
        return len({radius for _, radius in self.points()}) == 1

    @property
    def area_um2(self) -> float:
        """Lateral membrane area in um^2 (frustums with slant height; no end caps)."""
        points = self.points()
        return sum(math.pi * (r0 + r1) * math.hypot(d1 - d0, r1 - r0)
                   for (d0, r0), (d1, r1) in zip(points, points[1:]))


class Cell(_Frozen):
    """One cell with sealed ends: an unbranched cable (``length_um``, ``radius_um``)
    or a tree of ``sections`` (the first is the root).  Membrane and cable properties are
    cell-wide (a passive leak, hh, user channels); a section may override them."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _swc_schema(schema))

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    length_um: float | None = Field(default=None, gt=0)
    radius_um: float | None = Field(default=None, gt=0)
    sections: tuple[Section, ...] = ()
    cm_F_per_m2: float = Field(gt=0, description="specific membrane capacitance, F/m^2")
    ra_ohm_cm: float = Field(gt=0, description="axial resistivity, ohm*cm")
    g_leak_S_per_cm2: float | None = Field(
        default=None, gt=0,
        description="leak conductance density, S/cm^2 (a passive leak; optional with hh)")
    e_leak_mV: float | None = Field(default=None, description="leak reversal, mV")
    v_init_mV: float | None = Field(
        default=None, description="defaults to e_leak_mV, or -65 mV for an hh cell without "
                                  "a passive leak")
    membrane: Membrane = Field(default="passive",
                               description="passive (a leak) or hh (Hodgkin-Huxley)")
    hh: HHParameters | None = None
    channels: dict[str, ChannelParameters] = Field(
        default_factory=dict,
        description="user mechanisms ([[mechanisms]]) by SUFFIX with their parameters")

    @model_validator(mode="after")
    def _membrane(self) -> Cell:
        if self.hh is not None and self.membrane != "hh" and not any(
                section.membrane == "hh" for section in self.sections):
            raise _FieldError("hh", "Hodgkin-Huxley parameters on a passive cell",
                              'membrane = "hh" (or leave out the [cells.hh] table)')
        for i, section in enumerate(self.sections):
            if section.hh is not None and (section.membrane or self.membrane) != "hh":
                raise _FieldError(f"sections.{i}.hh",
                                  "Hodgkin-Huxley parameters on a passive section",
                                  'membrane = "hh" on the section or the cell')
        leak = (self.g_leak_S_per_cm2, self.e_leak_mV)
        if (leak[0] is None) != (leak[1] is None):
            missing = "g_leak_S_per_cm2" if leak[0] is None else "e_leak_mV"
            raise _FieldError(missing, "missing",
                              "both g_leak_S_per_cm2 and e_leak_mV (a passive leak), or "
                              "neither on an hh cell")
        if leak[0] is None:
            for section in self.tree():
                if (section.membrane or self.membrane) == "passive" and (
                        section.g_leak_S_per_cm2 is None or section.e_leak_mV is None):
                    where = "" if not self.sections else f" (section {section.name!r})"
                    raise _FieldError("g_leak_S_per_cm2", f"missing{where}",
                                      "g_leak_S_per_cm2 and e_leak_mV: a passive membrane "
                                      "needs its leak")
        return self

    @model_validator(mode="after")
    def _one_shape(self) -> Cell:
        cable = self.length_um is not None or self.radius_um is not None
        if cable and self.sections:
            raise ValueError("give either length_um + radius_um (an unbranched cable) or "
                             "sections (a tree), not both")
        if not self.sections and (self.length_um is None or self.radius_um is None):
            missing = "length_um" if self.length_um is None else "radius_um"
            raise _FieldError(missing, "missing",
                              "length_um and radius_um (an unbranched cable), or sections")
        if not self.sections:
            return self
        index: dict[str, int] = {}
        for i, section in enumerate(self.sections):
            if section.name in index:
                raise _FieldError(f"sections.{i}.name",
                                  f"duplicate section name {section.name!r}",
                                  "each section name once per cell")
            index[section.name] = i
        if self.sections[0].parent is not None:
            raise _FieldError("sections.0.parent", f"the first section "
                              f"{self.sections[0].name!r} has parent "
                              f"{self.sections[0].parent!r}",
                              "no parent: the first section is the root")
        for i, section in enumerate(self.sections[1:], start=1):
            if section.parent is None:
                raise _FieldError(f"sections.{i}.parent", "missing",
                                  "the name of another section (only the first section is "
                                  "the root)")
            if section.parent not in index:
                raise _FieldError(f"sections.{i}.parent",
                                  f"unknown section {section.parent!r}",
                                  "one of: " + ", ".join(sorted(index)[:10]))
        for i, section in enumerate(self.sections):  # every parent chain reaches the root
            seen = {i}
            at = section
            while at.parent is not None:
                step = index[at.parent]
                if step in seen:
                    raise _FieldError(f"sections.{i}.parent",
                                      f"section {section.name!r} is its own ancestor (a cycle)",
                                      "a tree: every chain of parents ends at the root")
                seen.add(step)
                at = self.sections[step]
        return self

    # The tree ------------------------------------------------------------------------------

    @property
    def is_cable(self) -> bool:
        """True when the cell is one uniform unbranched cable with cell-wide properties: no
        sections, or one cylindrical section that overrides nothing (see :meth:`as_cable`)."""
        if not self.sections:
            return True
        (section, *rest) = self.sections
        return (not rest and section.is_uniform and self.uniform_properties
                and section.cvs is None and section.max_extent_um is None)

    def as_cable(self) -> Cell:
        """This cell written as ``length_um`` + ``radius_um`` (``is_cable`` must be True)."""
        if not self.sections:
            return self
        if not self.is_cable:
            raise ValueError(f"cell {self.name!r} is not one uniform unbranched cable")
        section = self.sections[0]
        return self.model_copy(update={"sections": (), "length_um": section.length_um,
                                       "radius_um": section.points()[0][1]})

    def tree(self) -> tuple[Section, ...]:
        """The sections, root first; an unbranched cell is one section named
        :data:`ROOT_SECTION`."""
        if self.sections:
            return self.sections
        assert self.length_um is not None and self.radius_um is not None  # validated
        return _cable_sections(self.length_um, self.radius_um)

    @property
    def root(self) -> str:
        """The name of the root section (a site without ``section`` is on it)."""
        return self.tree()[0].name

    def section(self, name: str | None) -> Section:
        """The section called ``name`` (None: the root).  Raises KeyError."""
        tree = self.tree()
        if name is None:
            return tree[0]
        for section in tree:
            if section.name == name:
                return section
        raise KeyError(name)

    def section_index(self, name: str | None) -> int:
        """Position of section ``name`` (None: the root) in :meth:`tree`.  Raises KeyError."""
        if name is None:
            return 0
        for i, section in enumerate(self.tree()):
            if section.name == name:
                return i
        raise KeyError(name)

    def parents(self) -> tuple[int, ...]:
        """Index of each section's parent in :meth:`tree` (-1 for the root)."""
        names = {section.name: i for i, section in enumerate(self.tree())}
        return tuple(-1 if s.parent is None else names[s.parent] for s in self.tree())

    def value(self, section: Section, name: str) -> float:
        """Property ``name`` (one of :data:`SECTION_PROPERTIES`) of ``section``: its own
        value, else the cell's."""
        own = getattr(section, name)
        return getattr(self, name) if own is None else own

    @property
    def uniform_properties(self) -> bool:
        """True when no section overrides a membrane or cable property."""
        return all(getattr(section, name) is None for section in self.sections
                   for name in (*SECTION_PROPERTIES, "membrane", "hh")) and not any(
            section.channels for section in self.sections)

    # Unbranched-cable views (``length_um`` / ``radius_um`` of a tree are None) -------------

    @property
    def initial_mV(self) -> float:
        """The initial membrane potential in mV: ``v_init_mV``, else ``e_leak_mV``, else
        :data:`HH_V_INIT_MV` (an hh cell without a passive leak)."""
        if self.v_init_mV is not None:
            return self.v_init_mV
        return self.e_leak_mV if self.e_leak_mV is not None else HH_V_INIT_MV

    # Membranes -----------------------------------------------------------------------------

    def membrane_of(self, section: Section) -> Membrane:
        """The membrane of ``section``: its own, else the cell's."""
        return section.membrane or self.membrane

    def hh_of(self, section: Section) -> HHParameters | None:
        """The hh parameters of ``section`` (None when it is passive): the section's table,
        else the cell's, else the defaults."""
        if self.membrane_of(section) != "hh":
            return None
        return section.hh or self.hh or HHParameters()

    def leak_of(self, section: Section) -> tuple[float, float] | None:
        """``(g_leak_S_per_cm2, e_leak_mV)`` of ``section``'s passive leak, or None (an hh
        section without one)."""
        g = self.value(section, "g_leak_S_per_cm2")
        e = self.value(section, "e_leak_mV")
        return None if g is None or e is None else (g, e)

    def channels_of(self, section: Section) -> dict[str, ChannelParameters]:
        """User mechanisms on ``section``: the cell's, each updated by the section's."""
        merged = {name: dict(values) for name, values in self.channels.items()}
        for name, values in section.channels.items():
            merged[name] = {**merged.get(name, {}), **values}
        return merged

    def active_parts(self) -> list[str]:
        """What makes the cell active, for people: ``hh`` and the user mechanisms' names."""
        parts = ["hh"] if any(self.membrane_of(s) == "hh" for s in self.tree()) else []
        for section in self.tree():
            parts += [name for name in self.channels_of(section) if name not in parts]
        return parts

    @property
    def is_active(self) -> bool:
        """True when some section is not passive (hh or a user mechanism)."""
        return (self.membrane != "passive" or bool(self.channels)
                or any(section.membrane not in (None, "passive") or section.channels
                       for section in self.sections))

    @property
    def area_um2(self) -> float:
        """Lateral membrane area in um^2 (end caps excluded, as both simulators do)."""
        return sum(section.area_um2 for section in self.tree())

    @property
    def total_length_um(self) -> float:
        """Summed length of all sections in um."""
        return sum(section.length_um for section in self.tree())

    @property
    def resting_g_S_per_cm2(self) -> float:
        """The cell-wide leak conductance density in S/cm^2: the passive leak's, else hh's
        leak ``gl`` (the conductance at rest that time and length constants use)."""
        if self.g_leak_S_per_cm2 is not None:
            return self.g_leak_S_per_cm2
        return (self.hh or HHParameters()).gl_S_per_cm2

    @property
    def tau_ms(self) -> float:
        """Membrane time constant cm / g_leak in ms (cell-wide values)."""
        return self.cm_F_per_m2 * 1e-4 / self.resting_g_S_per_cm2 * 1e3

    @property
    def length_constant_um(self) -> float:
        """Length constant lambda = sqrt(r_m / r_a) in um (cell-wide values; the root's
        radius for a tree)."""
        radius = self.radius_um if self.radius_um is not None else self.tree()[0].points()[0][1]
        radius_cm = radius * 1e-4
        lam_cm = math.sqrt(radius_cm / (2.0 * self.ra_ohm_cm * self.resting_g_S_per_cm2))
        return lam_cm * 1e4


@functools.lru_cache(maxsize=4096)
def _cable_sections(length_um: float, radius_um: float) -> tuple[Section, ...]:
    """The one section of an unbranched cable (cached: ring models repeat one shape)."""
    return (Section(name=ROOT_SECTION, length_um=length_um, radius_um=radius_um),)


_Position = Field(ge=0.0, le=1.0)


class GapJunction(_Frozen):
    """An ohmic gap junction between a site on one cell and a site on another (or the same).

    Written ``cells = ["a", "b"]`` with ``x`` (and ``sections`` for branched cells), or
    ``sites = [{cell = "a", section = "dend1", x = 1.0}, {cell = "b", x = 0.2}]``.  A site
    without a section is on its cell's root section.
    """

    model_config = ConfigDict(json_schema_extra=lambda schema: _sites_schema(schema))

    cells: tuple[str, str]
    x: tuple[float, float] = (0.5, 0.5)
    sections: tuple[str | None, str | None] = (None, None)
    g_uS: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _sites_form(cls, data: Any) -> Any:
        """``sites = [{cell, section, x}, {cell, section, x}]`` -> cells, sections, x."""
        if not isinstance(data, Mapping) or "sites" not in data:
            return data
        data = dict(data)
        sites = data.pop("sites")
        clash = [key for key in ("cells", "x", "sections") if key in data]
        if clash:
            raise _FieldError("sites", f"given together with {', '.join(clash)}",
                              "either sites, or cells + x (+ sections)")
        if not isinstance(sites, (list, tuple)) or len(sites) != 2:
            raise _FieldError("sites", f"expected two sites, got {sites!r}",
                              "two tables {cell = ..., section = ..., x = ...}")
        cells, sections, xs = [], [], []
        for i, site in enumerate(sites):
            if not isinstance(site, Mapping):
                raise _FieldError(f"sites.{i}", f"expected a table, got {site!r}",
                                  "{cell = ..., section = ..., x = ...}")
            unknown = sorted(set(site) - {"cell", "section", "x"})
            if unknown:
                raise _FieldError(f"sites.{i}.{unknown[0]}", "unknown key",
                                  "cell, section, x")
            if "cell" not in site:
                raise _FieldError(f"sites.{i}.cell", "missing", "a cell name")
            x = site.get("x", 0.5)
            if isinstance(x, (str, bool)):
                raise _FieldError(f"sites.{i}.x", f"expected a number, got {x!r}",
                                  "a number (no quotes)")
            cells.append(site["cell"])
            sections.append(site.get("section"))
            xs.append(x)
        data.update(cells=cells, sections=sections, x=xs)
        return data

    @field_validator("x")
    @classmethod
    def _positions(cls, value: tuple[float, float]) -> tuple[float, float]:
        for position in value:
            if not 0.0 <= position <= 1.0:
                raise ValueError(f"position {position:g} is outside [0, 1]")
        return value


def _sites_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema of a junction also accepts the ``sites`` form (read by a validator)."""
    site = {"type": "object", "additionalProperties": False, "required": ["cell"],
            "properties": {"cell": {"type": "string"}, "section": {"type": "string"},
                           "x": {"type": "number", "minimum": 0, "maximum": 1}}}
    schema["properties"]["sites"] = {"type": "array", "items": site, "minItems": 2,
                                     "maxItems": 2}
    schema["required"] = [name for name in schema.get("required", []) if name != "cells"]
    schema["oneOf"] = [{"required": ["cells"]}, {"required": ["sites"]}]


def _swc_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema of a cell also accepts ``swc`` (the loader reads the file)."""
    schema["properties"]["swc"] = {
        "type": "string",
        "description": "an SWC morphology file (relative to the model file), read into "
                       "sections"}


class Probe(_Frozen):
    """A membrane-voltage probe at position ``x`` of a cell's section (default: the root)."""

    cell: str
    section: str | None = None
    x: float = _Position
    name: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=NAME_PATTERN
    )

    @property
    def label(self) -> str:
        """The probe's name, or the stable default ``<cell>_x<x>`` (e.g. ``a_x0.5``), with
        the section when one is named: ``<cell>.<section>_x<x>`` (``a.dend1_x1``)."""
        return self.name if self.name is not None else probe_label(self.cell, self.section,
                                                                   self.x)


def probe_label(cell: str, section: str | None, x: float) -> str:
    """The default label of a probe: ``<cell>_x<x>``, or ``<cell>.<section>_x<x>``."""
    where = cell if section is None else f"{cell}.{section}"
    return f"{where}_x{float(x):g}"


class Stimulus(_Frozen):
    """A step current clamp: ``amplitude_nA`` from ``delay_ms`` for ``duration_ms``, at
    position ``x`` of a cell's section (default: the root)."""

    cell: str
    section: str | None = None
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
    #: Active membranes: matched spike times may differ by this much (ms) ...
    spike_time_abs_ms: float = Field(default=0.01, ge=0)
    #: ... spike counts by this many (0: equal) ...
    spike_count_abs: int = Field(default=0, ge=0)
    #: ... and voltages away from spikes by this much (mV), simulator against simulator.
    subthreshold_abs_mV: float = Field(default=0.05, ge=0)

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
    ``hh_tables``: hh's rate tables on (``usetable_hh = 1``, NEURON's own default); off by
    default, the rates computed exactly as in Arbor.
    """

    secondorder: Literal[0, 1, 2] = 0
    hh_tables: bool = False
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
    mechanisms: tuple[Mechanism, ...] = ()
    spikes: SpikeDetection = Field(default_factory=SpikeDetection)

    @model_validator(mode="after")
    def _check_channels(self) -> Model:
        """Every channel a cell or section uses is a declared mechanism, with its own
        parameter names."""
        declared: dict[str, Mechanism] = {}
        for i, mechanism in enumerate(self.mechanisms):
            if mechanism.suffix in declared or mechanism.suffix in ("hh", "pas"):
                raise _FieldError(f"mechanisms.{i}.mod",
                                  f"SUFFIX {mechanism.suffix!r} is already taken",
                                  "one MOD file per SUFFIX, not hh or pas (built in)")
            declared[mechanism.suffix] = mechanism
        for i, cell in enumerate(self.cells):
            tables = [(f"cells.{i}.channels", cell.channels)] + [
                (f"cells.{i}.sections.{k}.channels", section.channels)
                for k, section in enumerate(cell.sections)]
            for field, channels in tables:
                for name, values in channels.items():
                    if name not in declared:
                        raise _FieldError(f"{field}.{name}", f"unknown mechanism {name!r}",
                                          "the SUFFIX of a [[mechanisms]] entry: "
                                          + (", ".join(sorted(declared)) or "none declared"))
                    known = declared[name].parameters
                    for parameter, value in values.items():
                        if parameter not in known:
                            raise _FieldError(f"{field}.{name}.{parameter}",
                                              f"unknown parameter {parameter!r}",
                                              f"one of {name}'s PARAMETERs: "
                                              + ", ".join(known))
                        if isinstance(value, bool) or not isinstance(value, (int, float)):
                            raise _FieldError(f"{field}.{name}.{parameter}",
                                              f"expected a number, got {value!r}",
                                              "a number (no quotes)")
        return self

    @property
    def is_active(self) -> bool:
        """True when some cell has an active membrane (hh or a user mechanism)."""
        return any(cell.is_active for cell in self.cells)

    def first_active(self) -> Cell | None:
        """The first cell with an active membrane, or None."""
        return next((cell for cell in self.cells if cell.is_active), None)

    @model_validator(mode="after")
    def _check_sizes(self) -> Model:
        """Refuse CV counts and windows that cannot work before anything is allocated."""
        if self.discretization.cvs_per_cell is not None:
            for cell in self.cells:
                if len(cell.tree()) > 1:
                    raise _FieldError(
                        "discretization.cvs_per_cell",
                        f"cell {cell.name!r} has {len(cell.tree())} sections",
                        "cvs_per_section (a count for every section) or max_extent_um when "
                        "a cell has sections")
        for i, cell in enumerate(self.cells):
            for k, section in enumerate(cell.tree()):
                extent = (section.max_extent_um if section.max_extent_um is not None
                          else None if section.cvs is not None
                          else self.discretization.max_extent_um)
                if extent is None:
                    continue
                ratio = section.length_um / extent
                if not ratio <= MAX_CVS_PER_CELL + 1 or (
                        cvs_for_extent(section.length_um, extent) > MAX_CVS_PER_CELL):
                    field = ("discretization.max_extent_um"
                             if section.max_extent_um is None
                             else f"cells.{i}.sections.{k}.max_extent_um")
                    what = (f"cell {cell.name!r}" if not cell.sections
                            else f"section {section.name!r} of cell {cell.name!r}")
                    raise _FieldError(
                        field,
                        f"{extent:g} um cuts {what} ({section.length_um:g} um) into "
                        f"{math.ceil(ratio) if math.isfinite(ratio) else ratio:.6g} CVs",
                        f"{_CVS_ALLOWED} (max_extent_um >= "
                        f"{section.length_um / MAX_CVS_PER_CELL:.6g} for this one)")
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
            for side, (name, section) in enumerate(zip(junction.cells, junction.sections)):
                self._check_section(f"gap_junctions.{i}.sections.{side}",
                                    self.cells[index[name]], section)
            if (junction.cells[0] == junction.cells[1]
                    and self.cells[index[junction.cells[0]]].section_index(junction.sections[0])
                    == self.cells[index[junction.cells[0]]].section_index(junction.sections[1])
                    and abs(junction.x[0] - junction.x[1]) < 1e-12):
                raise _FieldError(f"gap_junctions.{i}", "joins a site to itself",
                                  "two different sites (another cell, or another x)")
        names: set[str] = set()
        for i, probe in enumerate(self.probes):
            if probe.cell not in index:
                raise _FieldError(f"probes.{i}.cell", f"unknown cell {probe.cell!r}",
                                  f"one of: {known}")
            self._check_section(f"probes.{i}.section", self.cells[index[probe.cell]],
                                probe.section)
            if probe.label in names:
                raise _FieldError(f"probes.{i}.name", f"duplicate probe name {probe.label!r}",
                                  "each probe name once")
            names.add(probe.label)
        for i, stimulus in enumerate(self.stimuli):
            if stimulus.cell not in index:
                raise _FieldError(f"stimuli.{i}.cell", f"unknown cell {stimulus.cell!r}",
                                  f"one of: {known}")
            self._check_section(f"stimuli.{i}.section", self.cells[index[stimulus.cell]],
                                stimulus.section)
        if not self.probes:  # the default probes, one at the middle of each cell
            names = {probe.label for probe in self.effective_probes()}
        for probe_name in self.tolerance.probes:
            if probe_name not in names:
                raise _FieldError(f"tolerance.probes.{probe_name}",
                                  f"unknown probe {probe_name!r}",
                                  "one of: " + ", ".join(sorted(names)))
        return self

    @staticmethod
    def _check_section(field: str, cell: Cell, section: str | None) -> None:
        """Refuse a site's section that ``cell`` does not have."""
        if section is None:
            return
        try:
            cell.section_index(section)
        except KeyError:
            names = [s.name for s in cell.tree()]
            allowed = "one of: " + ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            if not cell.sections:
                allowed += f" (cell {cell.name!r} is one unbranched cable: leave section out)"
            raise _FieldError(field, f"cell {cell.name!r} has no section {section!r}",
                              allowed) from None

    # Convenience views -------------------------------------------------------------------

    def cell_index(self) -> dict[str, int]:
        """Map cell name -> position in ``cells`` (the gid used by the backends)."""
        return {cell.name: i for i, cell in enumerate(self.cells)}

    def cvs(self, cell: Cell) -> int:
        """Control volumes of ``cell`` under this model's discretization (summed over its
        sections for a tree)."""
        return sum(self.section_cvs(cell))

    def section_cvs(self, cell: Cell) -> tuple[int, ...]:
        """Control volumes of each section of ``cell`` (in :meth:`Cell.tree` order): the
        section's own ``cvs`` / ``max_extent_um``, else the model's discretization."""
        counts = []
        for section in cell.tree():
            if section.cvs is not None:
                counts.append(section.cvs)
            elif section.max_extent_um is not None:
                counts.append(cvs_for_extent(section.length_um, section.max_extent_um))
            else:
                counts.append(self.discretization.cvs_for(section.length_um))
        return tuple(counts)

    @property
    def has_trees(self) -> bool:
        """True when some cell is not one uniform unbranched cable (:attr:`Cell.is_cable`)."""
        return any(not cell.is_cable for cell in self.cells)

    def first_tree(self) -> Cell | None:
        """The first cell that is not one uniform unbranched cable, or None."""
        return next((cell for cell in self.cells if not cell.is_cable), None)

    def cables(self) -> Model:
        """This model with every cell written as an unbranched cable (``length_um``,
        ``radius_um``) and every site on its root: what sources that know only cables read.
        Raises ValueError when a cell is a tree (:attr:`has_trees`)."""
        if not any(cell.sections for cell in self.cells):
            return self
        tree = self.first_tree()
        if tree is not None:
            raise ValueError(f"cell {tree.name!r} is not one uniform unbranched cable")
        roots = {"section": None}
        return self.model_copy(update={
            "cells": tuple(cell.as_cable() for cell in self.cells),
            "gap_junctions": tuple(j.model_copy(update={"sections": (None, None)})
                                   for j in self.gap_junctions),
            "probes": tuple(p.model_copy(update={**roots, "name": p.label})
                            for p in self.probes),
            "stimuli": tuple(s.model_copy(update=roots) for s in self.stimuli),
        })

    def cv_capacitance_pF(self, cell: Cell, section: str | None = None) -> float:
        """Membrane capacitance of one control volume of ``section`` (default: the root) of
        ``cell`` in pF (the mean over the section's CVs when it is tapered)."""
        where = cell.section(section)
        count = self.section_cvs(cell)[cell.section_index(section)]
        area_um2 = where.area_um2 / count
        return cell.value(where, "cm_F_per_m2") * area_um2  # F/m^2 * um^2 = 1e-12 F

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
            ratios = [(junction.g_uS * 1e-6 * dt_s
                       / (self.cv_capacitance_pF(cells[name], section) * 1e-12), name)
                      for name, section in zip(junction.cells, junction.sections)]
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
                {**cell.model_dump(mode="json", exclude_none=True), "v_init_mV": cell.initial_mV}
                for cell in self.cells
            ]
            data["probes"] = [
                {**probe.model_dump(mode="json", exclude_none=True), "name": probe.label}
                for probe in self.effective_probes()
            ]
            data["discretization"] = self.discretization.model_dump(mode="json",
                                                                    exclude_none=True)
        else:
            data["cells"] = [cell.model_dump(mode="json", exclude_none=True, exclude_unset=True)
                             for cell in self.cells]
        if "gap_junctions" in data:
            data["gap_junctions"] = [_junction_dict(entry) for entry in data["gap_junctions"]]
        return data

    def replace(self, **changes: Any) -> Model:
        """A validated copy with top-level fields replaced."""
        # loading builds on this module; importing it here, when called, keeps the
        # package's import graph one-way (schema <- validation_errors <- loading)
        from crosssim.model.loading import model_from_dict

        return model_from_dict({**self.to_dict(), **changes}, source="<replace>")


def _junction_dict(entry: dict[str, Any]) -> dict[str, Any]:
    """A dumped junction as a model file writes it: without ``sections`` when both are the
    root, as ``sites`` when only one is named (TOML has no null)."""
    sections = entry.pop("sections", None) or [None, None]
    if all(section is None for section in sections):
        return entry
    if all(section is not None for section in sections):
        return {**entry, "sections": list(sections)}
    cells, xs = entry.pop("cells"), entry.pop("x", [0.5, 0.5])
    sites = [{"cell": cell, **({"section": section} if section is not None else {}), "x": x}
             for cell, section, x in zip(cells, sections, xs)]
    return {"sites": sites, **entry}


class _FieldError(ValueError):
    """Internal: a cross-field error that knows its dotted field path."""

    def __init__(self, field: str, message: str, allowed: str) -> None:
        self.field = field
        self.message = message
        self.allowed = allowed
        super().__init__(message)

