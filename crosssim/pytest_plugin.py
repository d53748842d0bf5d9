"""pytest plugin of crosssim (entry point ``pytest11: crosssim``).

Provides the ``crosssim_agree`` fixture: :func:`crosssim.testing.assert_agree` that, when the
check does not pass, saves the model, the traces and the check document into the test's
``tmp_path`` and names that folder in the failure message.  Loading the plugin imports only
pytest: crosssim itself (and never arbor or neuron) is imported when the fixture is used.
"""

from __future__ import annotations

import importlib.util

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    """One header line: which simulators are installed (found, not imported)."""
    found = [name for name in ("arbor", "neuron") if importlib.util.find_spec(name) is not None]
    return f"crosssim: simulators installed: {', '.join(found) or 'none'}"


@pytest.fixture
def crosssim_agree(tmp_path):
    """``crosssim_agree(model, **options)``: assert that the sources agree (see
    :func:`crosssim.testing.assert_agree`); on failure, reproduction files go to ``tmp_path``."""
    from crosssim.testing import _fixture_factory

    return _fixture_factory(lambda: tmp_path / "crosssim")
