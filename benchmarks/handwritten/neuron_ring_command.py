"""A hand-written NEURON script doing what ``crosssim run MODEL.toml --backend neuron`` does
for the ring (no crosssim inside): sections, run, the long-form CSV and a PNG plot, in one
process.

The model and wiring are ``neuron_ring.py``'s (crosssim's compiled ``CrosssimGap`` halves,
``source_var`` / ``target_var``); the CSV and the plot are ``arbor_ring_command.py``'s.

    python benchmarks/handwritten/neuron_ring_command.py LIBNRNMECH N_CELLS OUT_DIR
        [--cvs 11] [--t-stop 50] [--dt 0.025] [--probes 10]
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np
from neuron import h

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("library")
parser.add_argument("n_cells", type=int)
parser.add_argument("out")
parser.add_argument("--cvs", type=int, default=11)
parser.add_argument("--t-stop", type=float, default=50.0)
parser.add_argument("--dt", type=float, default=0.025)
parser.add_argument("--probes", type=int, default=10)
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
first, last = 0.5 / cvs, 1.0 - 0.5 / cvs
halves = []
for gid, sec in enumerate(cells):
    pc.source_var(sec(first)._ref_v, 2 * gid, sec=sec)
    pc.source_var(sec(last)._ref_v, 2 * gid + 1, sec=sec)
for gid, sec in enumerate(cells):
    peer = (gid + 1) % n
    end = h.CrosssimGap(sec(last))
    end.g = 0.01
    pc.target_var(end, end._ref_vgap, 2 * peer)
    start = h.CrosssimGap(cells[peer](first))
    start.g = 0.01
    pc.target_var(start, start._ref_vgap, 2 * gid + 1)
    halves += [end, start]
span = max(1, args.probes - 1)
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
times = np.arange(values.shape[1]) * args.dt
labels = [f"c{gid:0{len(str(n - 1))}d}_mid" for gid in probed]
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "traces.csv"), "w") as handle:
    handle.write("backend,probe,t_ms,v_mV\n")
    # times as the decimal grid values (0.075, not 0.07500000000000001): rounded to
    # 6 decimal places below the sample step, as crosssim writes them
    decimals = 6 - math.floor(math.log10(float(times[1] - times[0])))
    t_text = [repr(t) for t in np.round(times, decimals).tolist()]
    for label, row in zip(labels, values.tolist()):
        handle.write("".join(f"neuron,{label},{t},{v!r}\n" for t, v in zip(t_text, row)))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(8, 4.8))
for label, row in zip(labels, values):
    ax.plot(times, row, label=f"{label} (neuron)")
ax.set_title(f"ring_{n}")
ax.set_xlabel("t (ms)")
ax.set_ylabel("membrane potential (mV)")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8, loc="center right")
fig.savefig(os.path.join(args.out, "traces.png"), dpi=120)
os._exit(0)  # skip tearing down thousands of sections
