"""Model -> Jaxley network, and the compiled simulation of one network structure.

:func:`lower` splits a :class:`~crosssim.model.Model` into

* a :class:`Structure`: what the compiled program depends on (CVs per cell, which
  compartments carry junction halves and clamps, which are recorded, dt and the number of
  steps and samples), and
* :class:`Values`: every number that can change without changing the program (geometry,
  membrane and axial parameters, initial voltages, junction conductances, clamp amplitudes
  and on/off steps), as float64 arrays.

:func:`build` turns a structure into a Jaxley network whose own tables hold only Jaxley's
default values, and compiles one function of the values (``jax.jit``, ahead of time).  The
values reach Jaxley as its ``pstate`` (the mechanism ``make_trainable`` / ``data_set`` use),
so two models with one structure share the network and the compiled program: in one process
through :func:`compiled` (a small LRU cache), across processes through JAX's persistent
compilation cache (the program text is identical because no model value is baked into it).

Semantics (shared with the Arbor and NEURON adapters, :mod:`crosssim.discretization`):

* cell ``c`` is one unbranched Jaxley cell of ``model.cvs(cell)`` equal compartments;
  compartment ``i`` is the CV ``[i/n, (i+1)/n]`` (Jaxley puts compartment 0 at x = 0);
* a junction half or clamp at ``x`` acts on the compartment :func:`site_cv` assigns ``x``;
* a cell with hh carries :class:`~._compat.HodgkinHuxley` (NEURON's hh.mod, rates times
  ``q10``) in every compartment, and the leak channel with g = 0 unless it has a passive
  leak too; its gates start at steady state at the initial voltage;
* a junction is two :class:`~._compat.HalfJunction` synapses, one per side, each implicit
  in its own site and explicit in the peer (the previous step's voltage);
* a clamp carries its amplitude on the steps :func:`clamp_steps` gives (step ``j`` runs from
  ``j*dt`` to ``(j+1)*dt``);
* the compartments the probes need are recorded at the sample times and the probes read
  the interpolation of :func:`probe_stencil`;
* Jaxley's implicit Euler with its tree solver; sealed ends.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from crosssim.discretization import clamp_steps, probe_stencil, site_cv

if TYPE_CHECKING:  # pragma: no cover
    from crosssim.model import Model

__all__ = ["Compiled", "Structure", "Values", "build", "compiled", "lower"]

#: Compiled structures kept per process (each holds a Jaxley network and an executable).
CACHE_SIZE = 4


@dataclass(frozen=True)
class Structure:
    """What the compiled program depends on; equal structures share one program.

    Compartment indices are global (cells in model order, compartments from x = 0).
    ``hh_cells``: the cells with Hodgkin-Huxley channels (every compartment of each).
    ``half_site[k]`` carries the current of junction half ``k``, ``half_peer[k]`` is the
    compartment whose voltage it sees.
    """

    compartments: tuple[int, ...]
    hh_cells: tuple[int, ...]
    half_site: tuple[int, ...]
    half_peer: tuple[int, ...]
    clamp_site: tuple[int, ...]
    recorded: tuple[int, ...]
    dt_ms: float
    n_samples: int
    steps_per_sample: int

    @property
    def n_compartments(self) -> int:
        return int(sum(self.compartments))

    def key(self) -> str:
        """A short digest of the structure (the cache key)."""
        digest = hashlib.sha256(repr(self).encode()).hexdigest()
        return digest[:16]


@dataclass
class Values:
    """The numbers of one model on a :class:`Structure`, float64 (steps as int64).

    ``nodes``: shape (6, n_compartments), rows in the order of
    ``_compat.NODE_PARAMETERS``: compartment length (um), radius (um), axial resistivity
    (ohm*cm), capacitance (uF/cm^2), leak conductance (S/cm^2; 0 for an hh cell without a
    passive leak), leak reversal (mV).  ``hh``: shape (7, compartments of the hh cells),
    rows in the order of ``_compat.HH_PARAMETERS``.
    ``v_init_mV`` per compartment; ``g_uS`` per junction half; ``clamp_first`` /
    ``clamp_last`` (0-based steps, inclusive) and ``clamp_nA`` per clamp.
    """

    nodes: np.ndarray
    hh: np.ndarray
    v_init_mV: np.ndarray
    g_uS: np.ndarray
    clamp_first: np.ndarray
    clamp_last: np.ndarray
    clamp_nA: np.ndarray

    def arguments(self) -> tuple[np.ndarray, ...]:
        return (self.nodes, self.hh, self.v_init_mV, self.g_uS, self.clamp_first, self.clamp_last,
                self.clamp_nA)


@dataclass(frozen=True)
class Readout:
    """How probes read the recorded compartments: ``(1 - w) * rec[first] + w * rec[second]``."""

    first: np.ndarray
    second: np.ndarray
    weight: np.ndarray

    def probe_values(self, recorded_mV: np.ndarray) -> np.ndarray:
        """Probe traces (n_probes, n_samples) in mV from the recorded compartments."""
        first = recorded_mV[self.first]
        if not np.any(self.weight):
            return first
        weight = self.weight[:, None]
        return np.where(weight == 0.0, first,
                        (1.0 - weight) * first + weight * recorded_mV[self.second])


def hh_q10(celsius: float) -> float:
    """NEURON's hh rate factor ``3^((celsius - 6.3)/10)`` (1 at 6.3 degC)."""
    return float(3.0 ** ((float(celsius) - 6.3) / 10.0))


def lower(model: Model) -> tuple[Structure, Values, Readout]:
    """Split ``model`` into its structure, its values and the probe readout."""
    sim = model.simulation
    dt = sim.dt_ms
    cells = model.cells
    counts = [model.cvs(cell) for cell in cells]
    offset = np.zeros(len(cells) + 1, dtype=np.int64)
    np.cumsum(counts, out=offset[1:])
    index = model.cell_index()

    def compartment(cell_name: str, x: float) -> int:
        gid = index[cell_name]
        return int(offset[gid]) + site_cv(x, counts[gid])

    half_site, half_peer, g = [], [], []
    for junction in model.gap_junctions:
        sites = [compartment(name, x) for name, x in zip(junction.cells, junction.x)]
        for side in (0, 1):
            half_site.append(sites[side])
            half_peer.append(sites[1 - side])
            g.append(junction.g_uS)

    clamp_site, clamp_first, clamp_last, clamp_nA = [], [], [], []
    for stimulus in model.stimuli:
        steps = clamp_steps(stimulus.delay_ms, stimulus.duration_ms, dt, sim.n_steps)
        if steps is None or stimulus.amplitude_nA == 0.0:
            continue
        clamp_site.append(compartment(stimulus.cell, stimulus.x))
        clamp_first.append(steps[0])
        clamp_last.append(steps[1])
        clamp_nA.append(stimulus.amplitude_nA)

    records: dict[int, int] = {}
    stencils = []
    for probe in model.effective_probes():
        gid = index[probe.cell]
        first, second, weight = probe_stencil(probe.x, counts[gid])
        if weight == 0.0:  # on a CV centre: one compartment is enough
            second = first
        rows = [records.setdefault(int(offset[gid]) + cv, len(records)) for cv in (first, second)]
        stencils.append((rows[0], rows[1], weight))

    def per_compartment(values) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=np.float64), counts)

    leaks = [cell.leak_of(cell.tree()[0]) or (0.0, cell.initial_mV) for cell in cells]
    hh_cells = [gid for gid, cell in enumerate(cells) if cell.hh_of(cell.tree()[0]) is not None]
    hh_rows = []
    for gid in hh_cells:
        hh = cells[gid].hh_of(cells[gid].tree()[0])
        assert hh is not None
        hh_rows += [(hh.gnabar_S_per_cm2, hh.gkbar_S_per_cm2, hh.gl_S_per_cm2, hh.ena_mV,
                     hh.ek_mV, hh.el_mV, hh_q10(sim.celsius))] * counts[gid]
    nodes = np.stack([
        # the registry hands this adapter unbranched cables only: one uniform section each
        per_compartment([cell.tree()[0].length_um / n for cell, n in zip(cells, counts)]),
        per_compartment([cell.tree()[0].points()[0][1] for cell in cells]),
        per_compartment([cell.ra_ohm_cm for cell in cells]),
        per_compartment([cell.cm_F_per_m2 * 100.0 for cell in cells]),  # F/m^2 -> uF/cm^2
        per_compartment([g for g, _ in leaks]),
        per_compartment([e for _, e in leaks]),
    ])
    structure = Structure(
        compartments=tuple(counts), hh_cells=tuple(hh_cells), half_site=tuple(half_site),
        half_peer=tuple(half_peer),
        clamp_site=tuple(clamp_site), recorded=tuple(records), dt_ms=float(dt),
        n_samples=int(sim.n_samples), steps_per_sample=int(sim.steps_per_sample))
    values = Values(
        nodes=nodes, hh=np.asarray(hh_rows, dtype=np.float64).reshape(-1, 7).T.copy(),
        v_init_mV=per_compartment([cell.initial_mV for cell in cells]),
        g_uS=np.asarray(g, dtype=np.float64),
        clamp_first=np.asarray(clamp_first, dtype=np.int64),
        clamp_last=np.asarray(clamp_last, dtype=np.int64),
        clamp_nA=np.asarray(clamp_nA, dtype=np.float64))
    readout = Readout(first=np.asarray([s[0] for s in stencils], dtype=np.int64),
                      second=np.asarray([s[1] for s in stencils], dtype=np.int64),
                      weight=np.asarray([s[2] for s in stencils], dtype=np.float64))
    return structure, values, readout


@dataclass
class Compiled:
    """A structure's Jaxley network and its compiled simulation.

    ``run(values)`` returns the recorded compartments, shape (n_recorded, n_samples), mV.
    """

    structure: Structure
    network: Any
    executable: Any
    build_s: float
    compile_s: float
    runs: int = 0

    def run(self, values: Values) -> np.ndarray:
        self.runs += 1
        return np.asarray(self.executable(*values.arguments())).T


def build(structure: Structure, example: Values) -> Compiled:
    """Build the Jaxley network of ``structure`` and compile its simulation (``example``
    gives only the argument shapes and types)."""
    import jax
    import jax.numpy as jnp

    from crosssim.backends.jaxley import _compat

    started = time.perf_counter()
    templates: dict[int, Any] = {}
    cells = []
    for count in structure.compartments:
        if count not in templates:
            templates[count] = _compat.cable_cell(count)
        cells.append(templates[count])
    net = _compat.network(cells, structure.hh_cells)
    if structure.half_site:
        _compat.connect_halves(net, np.asarray(structure.half_site),
                               np.asarray(structure.half_peer))
    _compat.to_jax(net)
    _, step = _compat.step_function(net)
    built = time.perf_counter()

    n_compartments = structure.n_compartments
    everywhere = np.arange(n_compartments)
    starts = np.concatenate([[0], np.cumsum(structure.compartments)])
    hh_nodes = np.concatenate([np.arange(starts[gid], starts[gid + 1])
                               for gid in structure.hh_cells] or [np.zeros(0, np.int64)])
    edge_rows = np.arange(len(structure.half_site))
    recorded = jnp.asarray(np.asarray(structure.recorded, dtype=np.int64))
    clamp_site = jnp.asarray(np.asarray(structure.clamp_site, dtype=np.int64))
    has_clamps = bool(structure.clamp_site)
    dt = structure.dt_ms
    steps_per_sample = structure.steps_per_sample

    def simulate(nodes, hh, v_init, g_uS, clamp_first, clamp_last, clamp_nA):
        pstate = [_compat.parameter_state(name, everywhere, nodes[row])
                  for row, name in enumerate(_compat.NODE_PARAMETERS)]
        gates = {}
        if hh_nodes.size:
            pstate += [_compat.parameter_state(name, hh_nodes, hh[row])
                       for row, name in enumerate(_compat.HH_PARAMETERS)]
            gates = {name: (hh_nodes, value)
                     for name, value in _compat.steady_gates(v_init[hh_nodes]).items()}
        if structure.half_site:
            pstate.append(_compat.parameter_state(_compat.JUNCTION_G, edge_rows, g_uS))
        params = _compat.all_parameters(net, pstate)
        states = _compat.initial_states(net, v_init, params, dt, gates)
        external_inds = {"i": clamp_site} if has_clamps else {}

        def one_step(step_index, state):
            externals = {}
            if has_clamps:
                on = (clamp_first <= step_index) & (step_index <= clamp_last)
                externals = {"i": jnp.where(on, clamp_nA, 0.0)}
            return step(state, params, externals, external_inds, dt)

        def one_sample(state, sample_index):
            start = sample_index * steps_per_sample
            state = jax.lax.fori_loop(start, start + steps_per_sample, one_step, state)
            return state, state["v"][recorded]

        _, samples = jax.lax.scan(one_sample, states,
                                  jnp.arange(structure.n_samples - 1, dtype=jnp.int64))
        return jnp.concatenate([v_init[recorded][None, :], samples], axis=0)

    executable = jax.jit(simulate).lower(*example.arguments()).compile()
    return Compiled(structure, net, executable, build_s=built - started,
                    compile_s=time.perf_counter() - built)


_CACHE: OrderedDict[Structure, Compiled] = OrderedDict()


def compiled(structure: Structure, example: Values) -> tuple[Compiled, bool]:
    """The compiled simulation of ``structure`` and whether it was reused from this
    process's cache (the last :data:`CACHE_SIZE` structures)."""
    found = _CACHE.get(structure)
    if found is not None:
        _CACHE.move_to_end(structure)
        return found, True
    made = build(structure, example)
    _CACHE[structure] = made
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return made, False


def clear_cache() -> None:
    """Forget every compiled structure of this process."""
    _CACHE.clear()
