"""The one registry of sources: simulators and references alike.

A *source* produces traces of a model: a simulator adapter (``arbor``, ``neuron``) or a
reference crosssim computes itself (``analytic``, ``lumped``).  Each entry has a name, a
kind (``simulator`` or ``reference``), the packages it needs, a one-line description and a
``run(model, **options) -> RunResult``.  Pairing and gating follow the kind, never the name
(see :mod:`crosssim.check`).

Availability is checked with ``importlib.util.find_spec`` (imports nothing) and a source's
module is imported only when it runs, so ``import crosssim`` imports no simulator.

Third-party packages add sources through the entry-point group ``crosssim.sources``: the
entry-point name is the source name, its value a module that provides ``run`` and may set
``KIND`` (default ``"simulator"``), ``REQUIRES`` (top-level package names) and
``DESCRIPTION``.  Entry points are read once, the first time the registry is asked; they feed
the same :func:`register_source` as the built-ins (one registration path).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from crosssim.errors import BackendError, BackendUnavailableError, SourceNotApplicableError
from crosssim.provenance import distribution_name

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model
    from crosssim.result import RunResult

SourceKind = Literal["simulator", "reference"]
SIMULATOR: SourceKind = "simulator"
REFERENCE: SourceKind = "reference"
KINDS: tuple[SourceKind, ...] = (SIMULATOR, REFERENCE)

#: The exact solution of the continuous model (the truth of convergence studies and of the
#: curve ``run`` draws) and the isopotential one (its equilibria label ``run``'s plot).
ANALYTIC = "analytic"
LUMPED = "lumped"
#: The simulators' CV system exact in time, and their recurrences (implicit Euler,
#: Crank-Nicolson) solved exactly: the three references of the error decomposition.
SEMIDISCRETE = "semidiscrete"
DISCRETE = "discrete"
DISCRETE_CN = "discrete_cn"
#: Above this many CVs in all, ``semidiscrete`` is left out of default runs (about 2 s at
#: this size; 20 s at 110,000 CVs): name it to run it anyway.
SEMIDISCRETE_DEFAULT_MAX_CVS = 20_000

#: The entry-point group third-party sources register under.
ENTRY_POINT_GROUP = "crosssim.sources"

__all__ = [
    "ANALYTIC",
    "DISCRETE",
    "DISCRETE_CN",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "LUMPED",
    "REFERENCE",
    "SEMIDISCRETE",
    "SIMULATOR",
    "SourceKind",
    "SourceSpec",
    "available_sources",
    "default_sources",
    "known_sources",
    "prestart_sources",
    "register_source",
    "run_source",
    "source_spec",
    "source_table",
]


@dataclass(frozen=True)
class SourceSpec:
    """A registered source.

    ``target``: ``"package.module:function"`` or ``"package.module"`` (its ``run``);
    ``requires``: top-level packages that must be importable; ``origin``: ``built-in`` or
    the distribution that registered it; ``default``: whether it runs when the user names
    no sources (every simulator and every default reference that is installed).
    ``steps_like_simulators``: a reference that computes the very recurrence a simulator
    steps (``info["scheme"]`` names it): a simulator is compared with it only when their
    schemes match, the pair is held to simulator-vs-simulator standards (``backends_abs_mV``
    unless the model names a tolerance for the reference, raised to the round-off floor)
    and its difference is the simulator's implementation error.  ``leave_out``: given a
    model, the reason to leave this default source out of a default run (too costly), or
    None.  ``optional``: a default source whose packages are missing is left out of default
    runs with a note (plugins, optional extras); a source that is not optional (crosssim's
    own dependencies) is run anyway and fails with the install hint, so a broken install
    never passes quietly.
    ``install``: what to ``pip install`` to get it (a requirement such as
    ``crosssim[jaxley]``); by default the distributions of the missing packages.
    ``trees``: the source handles cells with sections (branched, tapered, per-section
    properties).  A source without it is skipped on such models ("not applicable") and
    reads models whose cells are all plain cables written as cables (:meth:`Model.cables`).
    ``active``: the source handles active membranes (hh, user mechanisms); one without it
    is skipped on such models ("not applicable: active membrane").
    ``child``: the module of a source that runs in a child process, with ``start(model)``
    (returns at once an object with ``finish() -> RunResult`` and ``cancel()``, so other
    sources run meanwhile) and ``prestart()`` (starts that child before the model is known;
    :func:`prestart_sources`).
    """

    name: str
    kind: SourceKind
    target: str
    requires: tuple[str, ...] = ()
    description: str = ""
    origin: str = "built-in"
    default: bool = True
    steps_like_simulators: bool = False
    leave_out: Callable[[Model], str | None] | None = None
    #: Whether leaving this source out of a default run deserves a note.
    note_left_out: bool = True
    optional: bool = False
    install: str | None = None
    trees: bool = False
    active: bool = False
    child: str | None = None

    def missing(self) -> list[str]:
        """The required top-level packages that ``find_spec`` cannot locate."""
        missing = []
        for package in self.requires:
            try:
                found = importlib.util.find_spec(package) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(package)
        return missing

    def is_available(self) -> bool:
        """True when every required package can be found (nothing is imported)."""
        return not self.missing()

    def install_hint(self) -> str:
        """What to run to make this source available, e.g. ``pip install 'crosssim[jaxley]'``."""
        if self.install:  # quoted: shells expand the brackets of an extra
            return f"pip install '{self.install}'"
        missing = self.missing() or list(self.requires)
        return "pip install " + " ".join(distribution_name(name) for name in missing)

    def not_applicable(self, model: Model) -> str | None:
        """Why this source cannot describe ``model`` (an active membrane, a tree it does
        not handle), or None."""
        if not self.active:
            cell = model.first_active()
            if cell is not None:
                return (f"active membrane (cell {cell.name!r}: "
                        f"{', '.join(cell.active_parts())}); this source handles passive "
                        "membranes only")
        if not self.trees:
            tree = model.first_tree()
            if tree is not None:
                return (f"cell {tree.name!r} has sections (branched, tapered or with "
                        "per-section properties); this source handles unbranched uniform "
                        "cables only")
        return None

    def load(self) -> Callable[..., RunResult]:
        """Import the source and return its run function (the real import error chained)."""
        missing = self.missing()
        if missing:
            raise BackendUnavailableError(
                self.name, f"not installed: cannot import {', '.join(missing)} "
                f"({self.install_hint()})")
        module_name, _, attribute = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BackendUnavailableError(self.name, f"failed to import: {exc}") from exc
        function = getattr(module, attribute or "run", None)
        if not callable(function):
            raise BackendUnavailableError(
                self.name, f"{self.target} provides no callable {attribute or 'run'!r}")
        return function


_REGISTRY: dict[str, SourceSpec] = {}
_ENTRY_POINTS_READ = False


def register_source(spec: SourceSpec) -> None:
    """Add ``spec`` to the registry (the one registration path; a later spec of the same
    name replaces the earlier one)."""
    if spec.kind not in KINDS:
        raise ValueError(f"source {spec.name!r}: kind {spec.kind!r}; allowed: "
                         f"{', '.join(KINDS)}")
    _REGISTRY[spec.name] = spec


register_source(SourceSpec(
    "arbor", SIMULATOR, "crosssim.backends.arbor:run", ("arbor",),
    "Arbor cable cells, junction mechanism 'gj'", trees=True, active=True))
register_source(SourceSpec(
    "neuron", SIMULATOR, "crosssim.backends.neuron:run", ("neuron",),
    "NEURON sections with crosssim's NMODL gap junction, in a child process", trees=True,
    active=True, child="crosssim.backends.neuron"))
register_source(SourceSpec(
    "jaxley", SIMULATOR, "crosssim.backends.jaxley:run", ("jaxley", "jax"),
    "Jaxley networks (JAX, float64), junction halves implicit in their own site",
    install="crosssim[jaxley]", optional=True, active=True))
register_source(SourceSpec(
    ANALYTIC, REFERENCE, "crosssim.analytic.tree:exact", (),
    "exact solution of the continuous model, cables and trees of uniform sections (Laplace "
    "transform, contour inversion)", trees=True))
register_source(SourceSpec(
    LUMPED, REFERENCE, "crosssim.analytic.lumped_model:lumped", (),
    "each cell isopotential (one compartment), the linear ODE solved exactly",
    trees=True))


def _semidiscrete_too_large(model: Model) -> str | None:
    total = sum(model.cvs(cell) for cell in model.cells)
    if total <= SEMIDISCRETE_DEFAULT_MAX_CVS:
        return None
    return (f"{total} CVs (default runs take it up to {SEMIDISCRETE_DEFAULT_MAX_CVS}); the "
            "error decomposition needs it")


def _no_crank_nicolson(model: Model) -> str | None:
    if model.backends.neuron.secondorder == 0:
        return "no simulator steps Crank-Nicolson (backends.neuron.secondorder = 0)"
    return None


register_source(SourceSpec(
    SEMIDISCRETE, REFERENCE, "crosssim.analytic.discretized:semidiscrete", (),
    "the simulators' CV discretization solved exactly in time (space error only)",
    leave_out=_semidiscrete_too_large, trees=True))
register_source(SourceSpec(
    DISCRETE, REFERENCE, "crosssim.analytic.discretized:discrete", (),
    "the implicit-Euler recurrence Arbor and NEURON (secondorder 0) step, solved exactly",
    steps_like_simulators=True, trees=True))
register_source(SourceSpec(
    DISCRETE_CN, REFERENCE, "crosssim.analytic.discretized:discrete_crank_nicolson", (),
    "the Crank-Nicolson recurrence NEURON steps at secondorder 1 or 2, solved exactly",
    steps_like_simulators=True, leave_out=_no_crank_nicolson, note_left_out=False,
    trees=True))


def _entry_point_spec(entry_point: Any) -> SourceSpec:
    """A spec for one ``crosssim.sources`` entry point, read from its module's constants.

    A module that cannot be imported (or sets an unknown ``KIND``) is still registered, as a
    simulator whose ``load`` raises with the reason, so ``crosssim sources`` can show it.
    """
    origin = "entry point"
    if getattr(entry_point, "dist", None) is not None:
        origin = f"entry point of {entry_point.dist.name}"
    target = entry_point.value
    module_name = target.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break crosssim
        return SourceSpec(entry_point.name, SIMULATOR, target, (), f"(failed to import: {exc})",
                          origin, default=False)
    kind = getattr(module, "KIND", SIMULATOR)
    if kind not in KINDS:
        return SourceSpec(entry_point.name, SIMULATOR, target, (),
                          f"(KIND {kind!r} is not one of {', '.join(KINDS)})", origin,
                          default=False)
    return SourceSpec(entry_point.name, kind, target,
                      tuple(getattr(module, "REQUIRES", ())),
                      str(getattr(module, "DESCRIPTION", "")), origin,
                      bool(getattr(module, "DEFAULT", True)), optional=True,
                      trees=bool(getattr(module, "TREES", False)),
                      active=bool(getattr(module, "ACTIVE", False)))


def _read_entry_points() -> None:
    global _ENTRY_POINTS_READ
    if _ENTRY_POINTS_READ:
        return
    _ENTRY_POINTS_READ = True
    import importlib.metadata  # 20-50 ms: only when a plugin could matter

    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in _REGISTRY and _REGISTRY[entry_point.name].origin == "built-in":
            continue  # a plugin cannot silently replace a built-in source
        register_source(_entry_point_spec(entry_point))


def known_sources(kind: SourceKind | None = None) -> list[str]:
    """Registered source names (installed or not), simulators first, in registration order."""
    _read_entry_points()
    names = [name for name, spec in _REGISTRY.items() if kind in (None, spec.kind)]
    return sorted(names, key=lambda name: KINDS.index(_REGISTRY[name].kind))


def available_sources(kind: SourceKind | None = None) -> list[str]:
    """Registered sources whose required packages are installed."""
    return [name for name in known_sources(kind) if _REGISTRY[name].is_available()]


def default_sources(kind: SourceKind | None = None) -> list[str]:
    """The sources that run when the user names none: every default source, installed or
    not (a missing one is reported by :func:`crosssim.check.check` and left out)."""
    return [name for name in known_sources(kind) if _REGISTRY[name].default]


def source_spec(name: str) -> SourceSpec:
    """The spec of ``name``; BackendUnavailableError lists the known and installed names."""
    _read_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BackendUnavailableError(
            name, f"unknown source; known simulators: {', '.join(known_sources(SIMULATOR))}; "
            f"references: {', '.join(known_sources(REFERENCE))}; "
            f"installed: {', '.join(available_sources()) or 'none'}") from None


def prestart_sources(names: Sequence[str] | None = None) -> None:
    """Start now the child processes of the installed sources among ``names`` (None: the
    default simulators) that run in one (``SourceSpec.child``), before the caller loads
    its model: their start-up (Python, the simulator's import) overlaps the caller's.  The
    built-in sources start before the plugins' metadata is read (tens of ms).  Unknown
    names are left to whoever runs them; nothing here raises."""
    started: set[str] = set()
    for plugins in (False, True):
        if plugins:
            _read_entry_points()
        chosen = names if names is not None else [
            name for name, spec in _REGISTRY.items() if spec.kind == SIMULATOR and spec.default]
        for name in chosen:
            spec = _REGISTRY.get(name)
            if name in started or spec is None or spec.child is None or spec.missing():
                continue
            started.add(name)
            try:
                importlib.import_module(spec.child).prestart()
            except Exception:  # noqa: BLE001 - the run itself reports what is wrong
                continue


def run_source(name: str, model: Model, **options: Any) -> RunResult:
    """Run source ``name`` on ``model`` and return its result, checked to be a finite
    RunResult labelled ``name`` (BackendError otherwise)."""
    from crosssim.result import RunResult

    spec = source_spec(name)
    reason = spec.not_applicable(model)
    if reason is not None:
        raise SourceNotApplicableError(name, reason)
    if not spec.trees:
        model = model.cables()
    result = spec.load()(model, **options)
    if not isinstance(result, RunResult):
        raise BackendError(name, f"returned {type(result).__name__}, not a RunResult")
    if result.backend != name:
        raise BackendError(name, f"returned traces labelled {result.backend!r}")
    result.check_finite()
    return result


def source_table() -> list[dict[str, Any]]:
    """Every registered source as a JSON-ready row: name, kind, installed, missing packages,
    how to install, default, origin, description."""
    rows = []
    for name in known_sources():
        spec = _REGISTRY[name]
        missing = spec.missing()
        rows.append({"name": name, "kind": spec.kind, "installed": not missing,
                     "missing": missing, "install": spec.install_hint() if missing else None,
                     "default": spec.default, "origin": spec.origin,
                     "description": spec.description})
    return rows
