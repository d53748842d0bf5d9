"""The NEURON child started before its model (``prestart``): a run takes it and gives the
very traces a freshly spawned child gives; a spare that died is replaced; an unused one is
stopped and leaves no files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import requires_neuron

from crosssim.builtin import builtin_model

pytestmark = requires_neuron


@pytest.fixture
def neuron_backend():
    from crosssim.backends import neuron

    neuron.discard_spare()
    yield neuron
    neuron.discard_spare()


def test_a_run_takes_the_spare_and_gives_the_same_traces(neuron_backend):
    model = builtin_model("ring", {"n_cells": 6, "cvs_per_cell": 3, "t_stop_ms": 5})
    fresh = neuron_backend.run(model)
    neuron_backend.prestart()
    spare = neuron_backend._SPARE[0]
    pending = neuron_backend.start(model)
    assert not neuron_backend._SPARE  # taken
    assert pending._process is spare.process
    result = pending.finish()
    assert spare.process.returncode == 0
    assert np.array_equal(result.values_mV, fresh.values_mV)
    assert np.array_equal(result.times_ms, fresh.times_ms)
    assert not spare.scratch.exists()


def test_a_spare_that_died_is_replaced_by_a_fresh_child(neuron_backend):
    model = builtin_model("two_cells")
    expected = neuron_backend.run(model)
    neuron_backend.prestart()
    spare = neuron_backend._SPARE[0]
    os.kill(spare.process.pid, signal.SIGKILL)
    spare.process.wait()
    result = neuron_backend.run(model)
    assert np.array_equal(result.values_mV, expected.values_mV)


def test_an_unused_spare_is_stopped_and_leaves_no_files(neuron_backend):
    neuron_backend.prestart()
    neuron_backend.prestart()  # one spare at a time
    assert len(neuron_backend._SPARE) == 1
    spare = neuron_backend._SPARE[0]
    neuron_backend.discard_spare()
    assert spare.process.poll() is not None
    assert not spare.scratch.exists()


def test_a_waiting_worker_without_a_request_exits_quietly():
    from crosssim.backends.neuron import _WORKER, _child_env

    done = subprocess.run([sys.executable, str(_WORKER), "--wait"], input=b"",
                          capture_output=True, timeout=120, env=_child_env())
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
