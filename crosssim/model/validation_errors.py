"""Pydantic's validation errors as crosssim's one-line :class:`InvalidModelError`.

The message names the field by its dotted path (cells by index and name, ``cells.0(a)``),
says what is allowed, and for a misspelt key suggests the closest field name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from crosssim.errors import InvalidModelError
from crosssim.model.schema import NAME_ALLOWED, _FieldError, _Frozen

__all__ = ["spelling_hint"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,39}$")


def _field_path(loc: Iterable[Any], data: Any) -> str:
    """Dotted path of a pydantic error location, naming cells by index and name."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, str) and item.startswith(("function-", "tagged-union")):
            continue
        if isinstance(item, int):
            label = f"{item}"
            if isinstance(node, (list, tuple)) and 0 <= item < len(node):
                node = node[item]
                if (isinstance(node, Mapping) and isinstance(node.get("name"), str)
                        and _SAFE_NAME.match(node["name"])):
                    label = f"{item}({node['name']})"
            else:
                node = None
            parts.append(label)
        else:
            text = str(item)
            # a hostile key (newline, markup, empty) is quoted so the message stays one line
            parts.append(text if re.fullmatch(r"[A-Za-z0-9_\-]+", text) else repr(text))
            node = node.get(item) if isinstance(node, Mapping) else None
    return ".".join(parts)


def _translate(exc: ValidationError, data: Any, source: str) -> InvalidModelError:
    """The first pydantic error as one InvalidModelError naming the field and what is allowed."""
    errors = exc.errors(include_url=False)
    # A misspelt key shows up as "unknown key" plus "missing": the unknown key says more.
    error = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    field = _field_path(error.get("loc", ()), data)
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    given = error.get("input")
    inner = ctx.get("error")
    if isinstance(inner, _FieldError):
        full = f"{field}.{inner.field}" if field else inner.field
        return InvalidModelError(f"{inner.message}; allowed: {inner.allowed}",
                                 source=source, field=full, allowed=inner.allowed)
    if kind == "extra_forbidden":
        key = str(error["loc"][-1]) if error.get("loc") else ""
        parent = tuple(error.get("loc", ()))[:-1]
        siblings = [str(e["loc"][-1]) for e in errors
                    if e.get("type") == "missing" and tuple(e["loc"])[:-1] == parent]
        hint = spelling_hint(key, siblings or _all_field_names())
        if not siblings and "did you mean" in hint:  # name where the field lives
            match = hint.split("'")[1]
            where = [path for path in field_paths().get(match, []) if "<" not in path]
            if len(parent) <= 1 and where and where[0] != match:
                hint = f"did you mean {where[0]!r}?"
        return InvalidModelError(f"unknown key; {hint} (see README: model format)",
                                 source=source, field=field)
    if kind == "missing" and error.get("loc") and isinstance(error["loc"][-1], int):
        # a list that is too short, e.g. a junction's x = [0.5]
        shorter = _field_path(tuple(error["loc"])[:-1], data)
        index = error["loc"][-1]
        return InvalidModelError(f"too few items (item {index} is missing)", source=source,
                                 field=shorter, allowed=f"at least {index + 1} items")
    if kind == "missing":
        return InvalidModelError("required field is missing; see README: model format",
                                 source=source, field=field)
    message = error.get("msg", "invalid value")
    message = message.removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        message = f"allowed: {NAME_ALLOWED}"
    if isinstance(given, (dict, list, tuple)):
        return InvalidModelError(message, source=source, field=field, allowed=message)
    shown = repr(given)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidModelError(f"{message} (got {shown})", source=source, field=field,
                             value=given, allowed=message)


def spelling_hint(word: str, candidates: Iterable[str]) -> str:
    """``did you mean 'x'?`` naming the candidate closest to ``word``, else
    ``check the spelling``."""
    import difflib

    candidates = list(candidates)
    # a name without its unit (dt -> dt_ms, radius -> radius_um) is the likeliest slip
    stems = sorted((c for c in candidates if c.lower().startswith(word.lower() + "_")),
                   key=len)
    close = stems[:1] or difflib.get_close_matches(word, candidates, n=1)
    return f"did you mean {close[0]!r}?" if close else "check the spelling"


def field_paths() -> dict[str, list[str]]:
    """Every field name of the model format -> the dotted paths where it lives
    (``dt_ms`` -> ``simulation.dt_ms``; list items as ``cells.<name>``)."""
    import typing

    from pydantic import BaseModel

    from crosssim.model.schema import Model

    paths: dict[str, list[str]] = {}

    def walk(cls: type[BaseModel], prefix: str) -> None:
        for name, info in cls.model_fields.items():
            path = f"{prefix}{name}"
            paths.setdefault(name, []).append(path)
            pending, seen = [info.annotation], set()
            while pending:
                kind = pending.pop()
                if id(kind) in seen:
                    continue
                seen.add(id(kind))
                if isinstance(kind, type) and issubclass(kind, BaseModel) and kind is not cls:
                    item = typing.get_origin(info.annotation) in (list, tuple)
                    walk(kind, f"{path}.<name>." if item else f"{path}.")
                else:
                    pending.extend(typing.get_args(kind))
            if prefix.count(".") > 6:  # pragma: no cover - the format is shallow
                return

    walk(Model, "")
    return paths


def _all_field_names() -> list[str]:
    """Every field name of every part of the model format (for spelling hints)."""
    names: set[str] = set()
    pending: list[type] = [_Frozen]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        names.update(getattr(cls, "model_fields", {}))
    return sorted(names)
