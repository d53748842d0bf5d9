TITLE celsius_in_procedure.mod   a leak scaled by q10: NEURON accepts it, Arbor refuses it

COMMENT
Test data for crosssim: NEURON's nocmodl compiles this file; Arbor's modcc (0.12) refuses it
because the PROCEDURE reads celsius, which Arbor allows only in the blocks it calls itself
(INITIAL, BREAKPOINT, DERIVATIVE).  Passing celsius as an argument (as myhh.mod does) is the
way around it.
ENDCOMMENT

NEURON {
    SUFFIX celsiusleak
    NONSPECIFIC_CURRENT i
    RANGE g, e
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    g = 0.001 (S/cm2)
    e = -70 (mV)
    celsius (degC)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
    factor
}

INITIAL {
    scale()
}

BREAKPOINT {
    scale()
    i = factor*g*(v - e)
}

PROCEDURE scale() {
    factor = 3^((celsius - 6.3)/10)
}
