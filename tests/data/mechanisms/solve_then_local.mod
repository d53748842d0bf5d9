TITLE solve_then_local.mod   a decaying gate: Arbor accepts it, NEURON refuses it

COMMENT
Test data for crosssim: Arbor's modcc (0.12) wants SOLVE as the first statement of
BREAKPOINT; NEURON's nocmodl wants LOCAL declarations first and refuses this file
("Illegal block").  Without a LOCAL in BREAKPOINT (use an ASSIGNED variable, as myhh.mod
does) both accept it.
ENDCOMMENT

NEURON {
    SUFFIX solvelocal
    NONSPECIFIC_CURRENT i
    RANGE g, e
}

PARAMETER {
    g = 0.001 (S/cm2)
    e = -70 (mV)
}

STATE { m }

ASSIGNED {
    v (mV)
    i (mA/cm2)
}

INITIAL {
    m = 1
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    LOCAL open
    open = m
    i = g*open*(v - e)
}

DERIVATIVE states {
    m' = -m/10
}
