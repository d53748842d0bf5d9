"""Every Jaxley (and JAX) call whose spelling depends on the version, in one place.

Written for Jaxley 0.14 (JAX 0.10).  Importing this module switches JAX to float64
(``jax_enable_x64``): JAX computes in float32 by default, which would leave the adapter
about 1e-4 mV away from Arbor and NEURON.  The switch is process-wide, which is why this
module is imported only when the Jaxley backend runs, never by ``import crosssim``.

Units as Jaxley wants them: lengths and radii in um, ``capacitance`` in uF/cm^2,
``axial_resistivity`` in ohm*cm, the leak conductance in S/cm^2, point-process (synapse)
conductances in uS and currents in nA, voltages in mV, times in ms.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

# Before jaxley is imported, so that every array it creates is float64.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import jaxley  # noqa: E402
from jaxley.channels import HH, Leak  # noqa: E402
from jaxley.integrate import build_init_and_step_fn  # noqa: E402
from jaxley.solver_gate import solve_gate_exponential  # noqa: E402
from jaxley.synapses.synapse import Synapse  # noqa: E402

JAXLEY_VERSION: str = str(jaxley.__version__)
JAX_VERSION: str = str(jax.__version__)

#: Jaxley's implicit (backward) Euler, and its tree solver for the voltage equations.
SOLVER = "bwd_euler"
VOLTAGE_SOLVER = "jaxley.dhs.cpu"

#: Parameter names of the leak channel and of the junction synapse in Jaxley's tables.
LEAK = "Leak"
LEAK_G = f"{LEAK}_gLeak"  # S/cm^2
LEAK_E = f"{LEAK}_eLeak"  # mV
JUNCTION = "CrosssimJunction"
JUNCTION_G = f"{JUNCTION}_g_uS"
JUNCTION_PEER = f"{JUNCTION}_v_peer_mV"
#: Per-compartment parameters (node table columns), in the order the adapter passes them.
NODE_PARAMETERS = ("length", "radius", "axial_resistivity", "capacitance", LEAK_G, LEAK_E)
#: Hodgkin-Huxley: the channel's name, its parameters in the order the adapter passes them
#: (S/cm^2, mV, and the rate factor q10 = 3^((celsius - 6.3)/10)) and its gates.
HH_NAME = "HH"
HH_PARAMETERS = tuple(f"{HH_NAME}_{name}" for name in
                      ("gNa", "gK", "gLeak", "eNa", "eK", "eLeak", "q10"))
HH_GATES = tuple(f"{HH_NAME}_{gate}" for gate in ("m", "h", "n"))


def _vtrap(x: Any, y: Any) -> Any:
    """``x / (exp(x/y) - 1)`` with NEURON hh.mod's limit ``y * (1 - x/y/2)`` for
    ``|x/y| < 1e-6`` (Jaxley's own divides 0 by 0 at v = -40 and -55 mV)."""
    ratio = x / y
    near = jnp.abs(ratio) < 1e-6
    safe = jnp.where(near, 1.0, ratio)
    return jnp.where(near, y * (1.0 - ratio / 2.0), x / (jnp.exp(safe) - 1.0))


class HodgkinHuxley(HH):
    """Jaxley's HH with NEURON hh.mod's temperature and rate functions.

    Jaxley 0.14's ``HH`` has NEURON's equations at 6.3 degC: the same rates, reversal
    potentials and leak as parameters, gates stepped like ``cnexp`` (exponential Euler) and
    initialised at steady state.  It has no temperature and clips exponents at 20; this
    class multiplies every rate by the parameter ``HH_q10`` (``network.hh_q10``), uses plain
    exponentials and NEURON's ``vtrap``.
    """

    def __init__(self) -> None:
        super().__init__(HH_NAME)
        self.channel_params[f"{HH_NAME}_q10"] = 1.0

    def update_states(self, states: dict, dt: float, v: Any, params: dict) -> dict:
        q10 = params[f"{HH_NAME}_q10"]
        return {name: solve_gate_exponential(states[name], dt, q10 * alpha, q10 * beta)
                for name, (alpha, beta) in zip(HH_GATES, rates(v))}


def rates(v: Any) -> tuple[tuple[Any, Any], ...]:
    """``(alpha, beta)`` of the gates m, h, n at ``v`` (mV) in 1/ms at 6.3 degC, as NEURON's
    hh.mod computes them."""
    return ((0.1 * _vtrap(-(v + 40.0), 10.0), 4.0 * jnp.exp(-(v + 65.0) / 18.0)),
            (0.07 * jnp.exp(-(v + 65.0) / 20.0), 1.0 / (jnp.exp(-(v + 35.0) / 10.0) + 1.0)),
            (0.01 * _vtrap(-(v + 55.0), 10.0), 0.125 * jnp.exp(-(v + 65.0) / 80.0)))


def steady_gates(v: Any) -> dict[str, Any]:
    """The gates' steady states ``alpha / (alpha + beta)`` at ``v`` (hh's INITIAL block)."""
    return {name: alpha / (alpha + beta) for name, (alpha, beta) in zip(HH_GATES, rates(v))}


class HalfJunction(Synapse):
    """One half of an ohmic gap junction: ``i = g * (v_site - v_peer)`` (nA, outward).

    ``v_peer`` is a state that :meth:`update_states` sets to the peer's voltage at the start
    of each step, so the current depends on the peer through the previous step's value
    only.  Jaxley linearises a synapse current by perturbing *both* voltages it is given;
    written as ``g * (post - pre)`` the perturbations cancel and the junction becomes
    explicit on both sides (0.04 mV off Arbor/NEURON on the seed model).  Through the state
    only the site's own voltage is perturbed: the junction is implicit in its own site and
    explicit in the peer, exactly as Arbor and NEURON couple it.
    """

    def __init__(self) -> None:
        super().__init__(JUNCTION)
        self.synapse_params = {JUNCTION_G: 0.0}
        self.synapse_states = {JUNCTION_PEER: 0.0}

    def update_states(self, states: dict, delta_t: float, pre_voltage: Any,
                      post_voltage: Any, params: dict) -> dict:
        return {JUNCTION_PEER: pre_voltage}

    def compute_current(self, states: dict, pre_voltage: Any, post_voltage: Any,
                        params: dict) -> Any:
        return params[JUNCTION_G] * (post_voltage - states[JUNCTION_PEER])


def cable_cell(n_compartments: int) -> Any:
    """An unbranched cell of ``n_compartments`` equal compartments (compartment 0 at x = 0)."""
    return jaxley.Cell(jaxley.Branch(jaxley.Compartment(), ncomp=int(n_compartments)),
                       parents=[-1])


def network(cells: list[Any], hh_cells: tuple[int, ...] = ()) -> Any:
    """A Jaxley network of ``cells`` with the leak channel in every compartment and
    :class:`HodgkinHuxley` in every compartment of the cells ``hh_cells``."""
    net = jaxley.Network(cells)
    net.insert(Leak(LEAK))
    if hh_cells:
        net.cell(list(hh_cells)).insert(HodgkinHuxley())
    return net


def connect_halves(net: Any, sites: Any, peers: Any) -> None:
    """Add one :class:`HalfJunction` per pair (``sites[k]`` carries the current, ``peers[k]``
    is the voltage it sees), all in one call.

    ``jaxley.connect`` takes views, and views sort and deduplicate their compartments, so it
    cannot express a list of arbitrary pairs in one call; one call per pair made a 100-cell
    ring take 47 s to build.  Jaxley's own batch path, which ``connect`` ends in, takes the
    node rows in order.
    """
    nodes = net.nodes
    net._append_multiple_synapses(nodes.loc[peers], nodes.loc[sites], HalfJunction())


def step_function(net: Any):
    """Jaxley's ``(init_fn, step_fn)`` for ``net`` with implicit Euler."""
    return build_init_and_step_fn(net, voltage_solver=VOLTAGE_SOLVER, solver=SOLVER)


def parameter_state(key: str, indices: Any, values: Any) -> dict:
    """One entry of Jaxley's ``pstate``: ``values[k]`` for the rows ``indices[k]``."""
    return {"key": key, "indices": np.asarray(indices).reshape(-1, 1), "val": values}


def all_parameters(net: Any, pstate: list[dict]) -> dict:
    """Every parameter Jaxley needs to step (axial conductances included)."""
    return net.get_all_parameters(pstate)


def initial_states(net: Any, v_init: Any, all_params: dict, delta_t: float,
                   overrides: dict[str, tuple[Any, Any]] | None = None) -> dict:
    """Jaxley's initial states (voltage ``v_init``) with the currents appended, as
    ``init_fn`` builds them; ``overrides`` maps a state to ``(rows, values)`` set first.

    ``Module.get_all_states`` would first copy the node tables to JAX again (``to_jax``,
    about 1 s for 11,000 compartments); the tables were copied once after building, so
    the states are read from those copies (``_get_states_from_nodes_and_edges`` without
    its ``to_jax``).
    """
    base = net.base
    states = {"v": v_init}
    for channel in base.channels + base.pumps:
        for name in channel.channel_states:
            states[name] = base.jaxnodes[name]
    for name in base.synapse_state_names:
        states[name] = base.jaxedges[name]
    for name, (rows, values) in (overrides or {}).items():
        states[name] = states[name].at[rows].set(values)
    return net.append_channel_currents_to_states(states, all_params, delta_t)


def to_jax(net: Any) -> None:
    """Copy the node and edge tables into the arrays the step reads (``Module.to_jax``).

    Jaxley 0.14's ``to_jax`` turns every node column into a Python list and scatters it
    into a JAX array (about 1-2 s for 11,000 compartments).  This does the same per column
    with numpy, giving the same float64 arrays (-1 where a node has no row); a table with
    a column numpy cannot read as floats goes through Jaxley's own ``to_jax``.
    """
    base = net.base
    nodes = base.nodes
    rows = nodes.index.to_numpy()
    try:
        columns = {}
        for key in nodes.columns:
            column = np.full(base._n_nodes, -1.0)
            column[rows] = nodes[key].to_numpy(dtype=np.float64)
            columns[key] = column
    except (TypeError, ValueError):
        net.to_jax()
        return
    base.jaxnodes = {key: jnp.asarray(column) for key, column in columns.items()}
    base.jaxedges = {}
    edges = base.edges
    for index, synapse in enumerate(base.synapses):
        selected = edges[edges["type_ind"].to_numpy() == index]
        for key in (*synapse.synapse_params, *synapse.synapse_states):
            base.jaxedges[key] = jnp.asarray(selected[key].to_numpy())


def compilation_cache(path: str | None) -> str | None:
    """Point JAX's persistent compilation cache at ``path`` unless one is set already;
    returns the folder in use (None: no persistent cache)."""
    current = getattr(jax.config, "jax_compilation_cache_dir", None)  # not in its stubs
    if current or path is None:
        return current or None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(path)
