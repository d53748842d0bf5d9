"""A fast reader for the plain subset of TOML that model files use; ``None`` for anything else.

``tomllib`` is pure Python and reads about 4 us per line: a 10,000-cell model (140,000 lines)
takes 0.6 s to parse, longer than validating it.  :func:`loads` reads the subset that
:func:`crosssim.model.dumps_model` writes and that people write by hand, with one regular
expression per token, and returns exactly the dict ``tomllib.loads`` returns.  Whatever it
does not recognise *for certain* (quoted or dotted keys, escapes, dates, ``inf``,
underscores in numbers, literal or multi-line strings, nested arrays, ``\\r``, whitespace
inside header brackets, a duplicate key or table, ...) makes it return ``None``, and the
caller parses the text with ``tomllib``, so invalid TOML always gets ``tomllib``'s error.

The subset, each accepted form valid TOML 1.0 with one meaning:

* lines: blank, ``# comment``, ``[name]``, ``[[name]]`` (bare names, no dots) and
  ``key = value`` (bare key), each optionally followed by a comment;
* values: basic strings without escapes, decimal integers and floats, ``true``/``false``,
  arrays of those and of inline tables (arrays may span lines and hold comments), inline
  tables of ``key = scalar-or-array`` on one line.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["loads"]

_KEY = re.compile(r"[A-Za-z0-9_-]+")
_STRING = re.compile(r'"([^"\\\x00-\x1f\x7f]*)"')
_FLOAT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)")
_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_BOOL = re.compile(r"true|false")
#: What may follow a scalar (else it is something this reader does not know, e.g. a date).
_AFTER_SCALAR = frozenset(" \t\n,]}#")
_BLANKS = re.compile(r"[ \t]*")
#: Blanks, newlines and comments (a comment ends at a newline; control characters other
#: than tab are not allowed in it, so the match stops there and the caller declines).
_FILLER = re.compile(r"(?:[ \t\n]+|#[^\x00-\x08\x0a-\x1f\x7f]*)*")
_LINE_END = re.compile(r"[ \t]*(?:#[^\x00-\x08\x0a-\x1f\x7f]*)?(?:\n|\Z)")
_TABLE = re.compile(r"\[([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\]")
_ARRAY_TABLE = re.compile(r"\[\[([A-Za-z0-9_-]+)\]\]")
_KEY_EQUALS = re.compile(r"([A-Za-z0-9_-]+)[ \t]*=[ \t]*")


#: The common line, ``key = scalar`` with its line end, in one match (groups: key, then
#: exactly one of string, float, integer, boolean).
_SIMPLE_LINE = re.compile(
    r'[ \t]*([A-Za-z0-9_-]+)[ \t]*=[ \t]*(?:"([^"\\\x00-\x1f\x7f]*)"'
    r"|([+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+))"
    r"|([+-]?(?:0|[1-9][0-9]*))|(true|false))"
    r"[ \t]*(?:#[^\x00-\x08\x0a-\x1f\x7f]*)?(?:\n|\Z)")
_CONVERT = {2: str, 3: float, 4: int, 5: "true".__eq__}


class _Decline(Exception):
    """The text is outside the subset: let tomllib read it."""


def _scalar(text: str, pos: int) -> tuple[Any, int]:
    char = text[pos:pos + 1]
    if char == '"':
        match = _STRING.match(text, pos)
        if match is None:
            raise _Decline
        return match.group(1), match.end()
    match = _FLOAT.match(text, pos)
    if match is not None:
        value: Any = float(match.group())
    else:
        match = _INT.match(text, pos) or _BOOL.match(text, pos)
        if match is None:
            raise _Decline
        word = match.group()
        value = word == "true" if word in ("true", "false") else int(word)
    end = match.end()
    if end < len(text) and text[end] not in _AFTER_SCALAR:
        raise _Decline  # 1979-05-27, 0x1F, 1_000, true1, ...
    return value, end


def _array(text: str, pos: int, *, inline: bool) -> tuple[list, int]:
    """An array starting at ``text[pos] == '['``; ``inline``: inside an inline table (one
    line, scalars only)."""
    items: list = []
    pos += 1
    filler = _BLANKS if inline else _FILLER
    while True:
        pos = filler.match(text, pos).end()
        char = text[pos:pos + 1]
        if char == "]":
            return items, pos + 1
        if char == "[":
            raise _Decline  # nested arrays: not in the subset
        if char == "{" and not inline:
            value, pos = _inline_table(text, pos)
        else:
            value, pos = _scalar(text, pos)
        items.append(value)
        pos = filler.match(text, pos).end()
        char = text[pos:pos + 1]
        if char == ",":
            pos += 1
        elif char != "]":
            raise _Decline


def _inline_table(text: str, pos: int) -> tuple[dict, int]:
    table: dict[str, Any] = {}
    pos = _BLANKS.match(text, pos + 1).end()
    if text[pos:pos + 1] == "}":
        return table, pos + 1
    while True:
        match = _KEY_EQUALS.match(text, pos)
        if match is None or match.group(1) in table:
            raise _Decline
        pos = match.end()
        if text[pos:pos + 1] == "[":
            value, pos = _array(text, pos, inline=True)
        else:
            value, pos = _scalar(text, pos)
        table[match.group(1)] = value
        pos = _BLANKS.match(text, pos).end()
        char = text[pos:pos + 1]
        if char == "}":
            return table, pos + 1
        if char != ",":
            raise _Decline
        pos = _BLANKS.match(text, pos + 1).end()


def _table(root: dict[str, Any], dotted: str, headers: set[int], defined: set[str]) -> dict:
    """The table a ``[a.b.c]`` header opens (made, with the tables it implies, if new)."""
    if dotted in defined:
        raise _Decline  # a table defined twice
    defined.add(dotted)
    table = root
    for part in dotted.split("."):
        if part not in table:
            table[part] = {}
            headers.add(id(table[part]))
        elif not isinstance(table[part], dict) or id(table[part]) not in headers:
            raise _Decline  # a value, an inline table or an array of tables
        table = table[part]
    return table


def _document(text: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    array_tables: set[str] = set()  # names made by [[name]] headers
    headers: set[int] = set()  # ids of the tables made by [a.b] headers (or implied by one)
    defined: set[str] = set()  # the [a.b] headers seen
    current = root
    pos, size = 0, len(text)
    simple_line = _SIMPLE_LINE.match
    while pos < size:
        match = simple_line(text, pos)
        if match is not None:
            key = match.group(1)
            if key in current:
                raise _Decline
            group = match.lastindex
            current[key] = _CONVERT[group](match.group(group))
            pos = match.end()
            continue
        pos = _BLANKS.match(text, pos).end()
        char = text[pos:pos + 1]
        if char == "[":
            match = _ARRAY_TABLE.match(text, pos)
            if match is not None:
                name = match.group(1)
                if name not in root:
                    root[name] = []
                    array_tables.add(name)
                elif name not in array_tables:
                    raise _Decline
                current = {}
                root[name].append(current)
            else:
                match = _TABLE.match(text, pos)
                if match is None:
                    raise _Decline
                current = _table(root, match.group(1), headers, defined)
            pos = match.end()
        elif char not in ("", "\n", "#"):
            match = _KEY_EQUALS.match(text, pos)
            if match is None or match.group(1) in current:
                raise _Decline
            pos = match.end()
            char = text[pos:pos + 1]
            if char == "[":
                value, pos = _array(text, pos, inline=False)
            elif char == "{":
                value, pos = _inline_table(text, pos)
            else:
                value, pos = _scalar(text, pos)
            current[match.group(1)] = value
        end = _LINE_END.match(text, pos)
        if end is None:
            raise _Decline
        pos = end.end()
    return root


def loads(text: str) -> dict[str, Any] | None:
    """``tomllib.loads(text)`` for the plain subset (see the module doc), else ``None``."""
    if "\r" in text:
        return None
    try:
        return _document(text)
    except (_Decline, RecursionError):
        return None
