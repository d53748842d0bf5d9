"""A minimal hand-written NEURON script of crosssim's built-in ``ring`` (no crosssim inside).

The same model as ``arbor_ring.py``: N seed cells with ``cvs`` segments, leak -100 / -60 mV on
even / odd cells, starting at rest, a 0.01 uS gap junction from the last segment of cell i to
the first segment of cell i+1 (and from the last cell back to the first), implicit Euler,
the middle of ``n_probes`` cells (spread from the first to the last) recorded every step.
The junction halves are crosssim's compiled ``CrosssimGap`` point process (the library path
is an argument), wired with ``ParallelContext.source_var`` / ``target_var`` as NEURON's
documentation does it.

    python benchmarks/handwritten/neuron_ring.py LIBNRNMECH N_CELLS [--cvs 11] [--t-stop 50]
        [--dt 0.025] [--probes 10] [--out traces.npy]

Writes the probe values, shape (n_probes, t_stop/dt + 1), to ``--out`` (.npy).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from neuron import h

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("library")
parser.add_argument("n_cells", type=int)
parser.add_argument("--cvs", type=int, default=11)
parser.add_argument("--t-stop", type=float, default=50.0)
parser.add_argument("--dt", type=float, default=0.025)
parser.add_argument("--probes", type=int, default=10)
parser.add_argument("--out", default=None)
args = parser.parse_args()
n, cvs = args.n_cells, args.cvs

h.nrn_load_dll(args.library)
pc = h.ParallelContext()
cells = []
for gid in range(n):
    sec = h.Section(name=f"cell{gid}")
    sec.L, sec.diam, sec.nseg, sec.Ra, sec.cm = 100.0, 6.0, cvs, 90.0, 0.5
    sec.insert("pas")
    sec.g_pas = 0.001
    sec.e_pas = -100.0 if gid % 2 == 0 else -60.0
    cells.append(sec)

first, last = 0.5 / cvs, 1.0 - 0.5 / cvs  # centres of the first and last segment
halves = []
for gid, sec in enumerate(cells):
    pc.source_var(sec(first)._ref_v, 2 * gid, sec=sec)     # voltage at the start
    pc.source_var(sec(last)._ref_v, 2 * gid + 1, sec=sec)  # voltage at the end
for gid, sec in enumerate(cells):
    peer = (gid + 1) % n
    end = h.CrosssimGap(sec(last))
    end.g = 0.01
    pc.target_var(end, end._ref_vgap, 2 * peer)
    start = h.CrosssimGap(cells[peer](first))
    start.g = 0.01
    pc.target_var(start, start._ref_vgap, 2 * gid + 1)
    halves += [end, start]

span = max(1, args.probes - 1)  # probed cells spread from the first to the last
probed = [(2 * k * (n - 1) + span) // (2 * span) for k in range(args.probes)]
recordings = [h.Vector().record(cells[gid](0.5)._ref_v) for gid in probed]

pc.setup_transfer()
h.dt = args.dt
for sec in cells:
    for seg in sec.allseg():
        seg.v = sec.e_pas
h.finitialize()
pc.set_maxstep(10)
pc.psolve(args.t_stop)

values = np.array([np.array(vector) for vector in recordings])
if args.out:
    np.save(args.out, values)
os._exit(0)  # skip tearing down thousands of sections
