"""Model files are read with rtoml (fast) and tomllib (its messages): the two agree on every
document tomllib accepts, and a bad document is described by tomllib."""

from __future__ import annotations

import random
import re
import sys

import pytest

from crosssim.builtin import builtin_model
from crosssim.errors import InvalidModelError
from crosssim.model import dumps_model, loads_model, model_from_dict
from crosssim.model.loading import parse_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _agrees_with_tomllib(text: str) -> None:
    """``parse_toml`` returns what tomllib returns, or raises tomllib's error; the one
    leniency it has is TOML 1.1's newlines inside inline tables (rtoml reads them)."""
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        try:
            lenient = parse_toml(text)
        except tomllib.TOMLDecodeError as raised:
            assert str(raised) == str(exc)
            return
        one_line = re.sub(r"\{[^{}]*\}", lambda m: m.group(0).replace("\n", " "), text)
        assert lenient == tomllib.loads(one_line), text
        return
    assert parse_toml(text) == expected, text


@pytest.mark.parametrize(("name", "params"), [("two_cells", {}), ("ring", {"n_cells": 50}),
                                              ("grid", {"rows": 3, "cols": 4})])
def test_written_models_read_back_alike(name, params):
    text = dumps_model(builtin_model(name, params), resolved=True)
    assert parse_toml(text) == tomllib.loads(text)
    assert loads_model(text) == model_from_dict(tomllib.loads(text))


@pytest.mark.parametrize("text", [
    'a = .5\n', 'a = 1e\n', 'a = [1 2]\n', 'a = {b = 1\n}\n', 'a = 1 # \x01\n',
    'a = "\x00"\n', 'a = tru\n', '[[a]]\nb = 1\nb = 2\n', 'a = { b = 1, b = 2 }\n', '[]\n',
    'x = 1979-05-27T07:32:00Z\n', 'x = inf\ny = -0.0\n', "s = '''\nline\n'''\n",
])
def test_edge_documents_agree_with_tomllib(text):
    _agrees_with_tomllib(text)


def test_random_mutations_agree_with_tomllib():
    """3,000 mutations of a written model: the same data or tomllib's own error."""
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
        _agrees_with_tomllib("".join(chars))


def test_a_bad_file_names_line_and_column():
    with pytest.raises(InvalidModelError, match=r"m\.toml: not valid TOML: .*line 2, column"):
        loads_model('name = "m"\n[simulation\n', source="m.toml")
