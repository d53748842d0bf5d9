"""The fast TOML subset reader returns exactly what tomllib returns, or declines."""

from __future__ import annotations

import random
import sys

import pytest

from crosssim.builtin import builtin_model
from crosssim.model import _fasttoml, dumps_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _same_or_declined(text: str) -> bool:
    """True if the fast reader declines or agrees with tomllib (never accepts what tomllib
    rejects).  Returns whether it accepted."""
    fast = _fasttoml.loads(text)
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assert fast is None, text
        return False
    if fast is not None:
        assert fast == expected, text
        assert [type(v) for v in fast.values()] == [type(v) for v in expected.values()]
    return fast is not None


@pytest.mark.parametrize("name,params", [("two_cells", {}), ("ring", {"n_cells": 30}),
                                         ("chain", {"n_cells": 5}), ("grid", {})])
def test_dumped_models_are_read_fast_and_alike(name, params):
    model = builtin_model(name, params)
    for resolved in (False, True):
        assert _same_or_declined(dumps_model(model, resolved=resolved))


@pytest.mark.parametrize("text", [
    'a = 1\nb = -0\nc = +5\nd = 0.5\ne = -1e-06\nf = 1E5\ng = true\nh = false\n',
    'name = "x"  # comment\n[t]\nk = "v"\n\n[[arr]]\nx = [1.0, 0.0]\n[[arr]]\nx = []\n',
    'p = [\n  { cell = "a", x = 0.5 },  # c\n  { cell = "b", x = [1, 2] },\n]\n',
    'p = [1, 2,\n 3]\nq = {}\nr = { a = 1, b = "2" }',
    '[a.b]\nx = 1\n[a]\ny = 2\n[a.c.d]\nz = 3\n',
])
def test_plain_documents_are_accepted(text):
    assert _same_or_declined(text)


@pytest.mark.parametrize("text", [
    'a = 1\na = 2\n', '[t]\n[t]\n', 'a = 1\n[a]\n', 'a = [1]\n[[a]]\n', '[[a]]\n[a]\n',
    'a = 1_000\n', 'a = 01\n', 'a = 1979-05-27\n', 'a = inf\n', 'a = "x\\ty"\n',
    "a = 'lit'\n", 'a = """m"""\n', 'a.b = 1\n', '"a" = 1\n', '[ t ]\n',
    '[a.b]\n[a.b]\n', '[a]\nb = 1\n[a.b]\n', '[a]\nb = {}\n[a.b]\n',
    '[[a]]\n[a.b]\n', '[a.b]\n[a]\n[a]\n', '[a..b]\n',
    'a = [[1]]\n', 'a = { b = 1, }\n', 'a = 1 2\n', 'a =\n1\n', 'a = 1\r\n', 'a = 1.\n',
    'a = .5\n', 'a = 1e\n', 'a = [1 2]\n', 'a = {b = 1\n}\n', 'a = 1 # \x01\n',
    '\ufeffa = 1\n', 'a = "\x00"\n', 'a = [\n1\n2]\n', 'a = tru\n', 'a = true1\n',
    '[[a]]\nb = 1\nb = 2\n', 'a = { b = 1, b = 2 }\n', '[]\n', '[[]]\n',
])
def test_everything_else_is_left_to_tomllib(text):
    assert not _same_or_declined(text)


def test_random_mutations_never_disagree():
    """Mutations of a dumped model: the reader agrees with tomllib or declines."""
    base = dumps_model(builtin_model("ring", {"n_cells": 3}))
    alphabet = ' \n\t=[]{},."#-+_eE0123456789abtrufls\x01'
    rng = random.Random(16)
    for _ in range(3000):
        chars = list(base)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            action = rng.random()
            if action < 0.4:
                chars[i] = rng.choice(alphabet)
            elif action < 0.7:
                chars.insert(i, rng.choice(alphabet))
            else:
                del chars[i]
        _same_or_declined("".join(chars))
