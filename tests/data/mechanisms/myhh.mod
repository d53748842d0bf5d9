TITLE myhh.mod   Hodgkin-Huxley squid axon channels, one file for NEURON and Arbor

COMMENT
The equations of NEURON's hh.mod (rate tables off): sodium, potassium and leak currents,
with rates scaled by q10 = 3^((celsius - 6.3)/10).  Written in the NMODL that both NEURON's
nocmodl (9.0) and Arbor's modcc (0.12) accept:
- reversal potentials ena, ek are PARAMETERs of this mechanism (no USEION): the three
  currents add up to one NONSPECIFIC_CURRENT i;
- celsius is a PARAMETER (Arbor reads it from the cell's temperature) and is handed to the
  PROCEDURE as an argument (Arbor refuses celsius inside a PROCEDURE or FUNCTION);
- no TABLE, no VERBATIM, no LOCAL in BREAKPOINT (NEURON wants LOCAL first, Arbor SOLVE first).
The ASSIGNED declarations of v and i are what NEURON requires; Arbor's modcc refuses them,
and crosssim drops them before handing the file to modcc.
ENDCOMMENT

NEURON {
    SUFFIX myhh
    NONSPECIFIC_CURRENT i
    RANGE gnabar, gkbar, gl, el, ena, ek, gna, gk
    RANGE minf, hinf, ninf, mtau, htau, ntau
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gnabar = 0.12 (S/cm2) <0,1e9>
    gkbar = 0.036 (S/cm2) <0,1e9>
    gl = 0.0003 (S/cm2) <0,1e9>
    el = -54.3 (mV)
    ena = 50 (mV)
    ek = -77 (mV)
    celsius (degC)
}

STATE { m h n }

ASSIGNED {
    v (mV)
    i (mA/cm2)
    gna (S/cm2)
    gk (S/cm2)
    minf hinf ninf
    mtau (ms) htau (ms) ntau (ms)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    gna = gnabar*m*m*m*h
    gk = gkbar*n*n*n*n
    i = gna*(v - ena) + gk*(v - ek) + gl*(v - el)
}

INITIAL {
    rates(v, celsius)
    m = minf
    h = hinf
    n = ninf
}

DERIVATIVE states {
    rates(v, celsius)
    m' = (minf - m)/mtau
    h' = (hinf - h)/htau
    n' = (ninf - n)/ntau
}

PROCEDURE rates(u (mV), temperature (degC)) {
    LOCAL alpha, beta, sum, q10
    UNITSOFF
    q10 = 3^((temperature - 6.3)/10)
    : sodium activation m
    alpha = 0.1*vtrap(-(u + 40), 10)
    beta = 4*exp(-(u + 65)/18)
    sum = alpha + beta
    mtau = 1/(q10*sum)
    minf = alpha/sum
    : sodium inactivation h
    alpha = 0.07*exp(-(u + 65)/20)
    beta = 1/(exp(-(u + 35)/10) + 1)
    sum = alpha + beta
    htau = 1/(q10*sum)
    hinf = alpha/sum
    : potassium activation n
    alpha = 0.01*vtrap(-(u + 55), 10)
    beta = 0.125*exp(-(u + 65)/80)
    sum = alpha + beta
    ntau = 1/(q10*sum)
    ninf = alpha/sum
    UNITSON
}

FUNCTION vtrap(x, y) {
    : x/(exp(x/y) - 1), with its limit near x = 0
    if (fabs(x/y) < 1e-6) {
        vtrap = y*(1 - x/y/2)
    } else {
        vtrap = x/(exp(x/y) - 1)
    }
}
