COMMENT
Half of an ohmic gap junction, used by crosssim's NEURON backend.

Each side of a junction is one CrosssimGap point process: i = g * (v - vgap), where vgap is
the voltage of the peer site, delivered by ParallelContext.source_var / target_var
(pc.target_var(pp, pp._ref_vgap, sgid)) before every step.  No POINTER, so it works with
ParallelContext transfer, threads and MPI.  Units: g in uS, v and vgap in mV, i in nA.
ENDCOMMENT

NEURON {
    THREADSAFE
    POINT_PROCESS CrosssimGap
    NONSPECIFIC_CURRENT i
    RANGE g, i, vgap
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    g = 0 (uS)
}

ASSIGNED {
    v (mV)
    vgap (mV)
    i (nA)
}

BREAKPOINT {
    i = g * (v - vgap)
}
