"""A hand-written Arbor script doing what ``crosssim run MODEL.toml --backend arbor`` does for
the ring (no crosssim inside): recipe, run, the long-form CSV and a PNG plot.

The recipe is ``arbor_ring.py``'s (the Arbor tutorial's way).  The CSV has crosssim's columns
``backend, probe, t_ms, v_mV`` with every float at full precision (``repr``); the plot is one
axes with every probe's trace, labels, title, grid and legend, through matplotlib's pyplot
with the Agg backend, the way the tutorials draw it.

    python benchmarks/handwritten/arbor_ring_command.py N_CELLS OUT_DIR [--cvs 11]
        [--t-stop 50] [--dt 0.025] [--probes 10]
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from arbor_ring import probe_cells, run  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("n_cells", type=int)
parser.add_argument("out")
parser.add_argument("--cvs", type=int, default=11)
parser.add_argument("--t-stop", type=float, default=50.0)
parser.add_argument("--dt", type=float, default=0.025)
parser.add_argument("--probes", type=int, default=10)
args = parser.parse_args()

times, values = run(args.n_cells, args.cvs, args.t_stop, args.dt, args.probes)
labels = [f"c{gid:0{len(str(args.n_cells - 1))}d}_mid" for gid in
          probe_cells(args.n_cells, args.probes)]
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "traces.csv"), "w") as handle:
    handle.write("backend,probe,t_ms,v_mV\n")
    # times as the decimal grid values (0.075, not 0.07500000000000001): rounded to
    # 6 decimal places below the sample step, as crosssim writes them
    decimals = 6 - math.floor(math.log10(float(times[1] - times[0])))
    t_text = [repr(t) for t in np.round(times, decimals).tolist()]
    for label, row in zip(labels, values.tolist()):
        handle.write("".join(f"arbor,{label},{t},{v!r}\n" for t, v in zip(t_text, row)))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(8, 4.8))
for label, row in zip(labels, values):
    ax.plot(times, row, label=f"{label} (arbor)")
ax.set_title(f"ring_{args.n_cells}")
ax.set_xlabel("t (ms)")
ax.set_ylabel("membrane potential (mV)")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8, loc="center right")
fig.savefig(os.path.join(args.out, "traces.png"), dpi=120)
