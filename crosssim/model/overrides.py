"""The ``--set PATH=VALUE`` path language: parse an override and apply it to a model.

A path is dotted: table keys (``simulation.dt_ms``), list entries by index or by name
(``cells.0``, ``cells.a``; a probe without a name by its label ``a_x0.5``, dots and all).
:func:`resolve_path` says where a path leads, :func:`path_problem` why it leads nowhere
(as ``sweep --grid`` reports it), :func:`apply_overrides` sets values there; all three follow
the path with the one walker below, so ``--set`` and ``--grid`` accept the same paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from crosssim.errors import InvalidModelError
from crosssim.model.loading import model_from_dict, tomllib  # tomli on 3.10: one switch
from crosssim.model.schema import Model, probe_label
from crosssim.model.validation_errors import spelling_hint

__all__ = ["ResolvedPath", "apply_overrides", "parse_override", "path_problem", "resolve_path"]

#: Discretization keys of which a model gives exactly one: setting one drops the others.
_EXCLUSIVE = ("cvs_per_cell", "cvs_per_section", "max_extent_um")


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``path=value``; the value is read as a TOML value, or kept as a plain string."""
    if "=" not in text:
        raise InvalidModelError(f"--set {text!r}: expected PATH=VALUE",
                                field="--set", allowed="PATH=VALUE, e.g. cells.a.e_leak_mV=-80")
    path, _, raw = text.partition("=")
    path = path.strip()
    raw = raw.strip()
    if not path:
        raise InvalidModelError(f"--set {text!r}: empty path", field="--set",
                                allowed="PATH=VALUE, e.g. gap_junctions.0.g_uS=0.02")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return path, value


def _entry_label(item: Any) -> str | None:
    """The name an override path may use for a list entry: its ``name``, or for a probe
    without one the default label ``<cell>_x<x>`` shown in every table (e.g. ``a_x0.5``).
    ``item`` is a table as in a model file or a validated entry (a Cell, a Probe, ...)."""
    if isinstance(item, BaseModel):
        item = dict(item)  # its fields, not recursively
    if not isinstance(item, dict):
        return None
    if item.get("name") is not None:
        return str(item["name"])
    cell, x, section = item.get("cell"), item.get("x", 0.5), item.get("section")
    if (isinstance(cell, str) and isinstance(x, (int, float)) and not isinstance(x, bool)
            and (section is None or isinstance(section, str))):
        return probe_label(cell, section, x)
    return None


#: An unset field of a validated model, or a key not (yet) in a table: a step into it
#: leads to an empty table, as apply_overrides creates one there.
_UNSET: Any = object()


class _PathProblem(Exception):
    """Internal: why step ``keys[depth]`` of a path leads nowhere from ``node``.

    ``kind`` is ``field`` (no such field in a validated model), ``index`` (out of range),
    ``name`` (no list entry of that name) or ``value`` (a step below a plain value).  It is
    told two ways: :meth:`error` as ``--set`` always told it (the path, what is allowed),
    :meth:`reason` as ``sweep --grid`` always told it (the table, its fields or entries).
    """

    def __init__(self, kind: str, keys: list[str], depth: int, node: Any) -> None:
        super().__init__(kind)
        self.kind = kind
        self.keys = keys
        self.depth = depth
        self.node = node

    @property
    def key(self) -> str:
        return self.keys[self.depth]

    def error(self, path: str, source: str | None) -> InvalidModelError:
        """The problem as the InvalidModelError ``--set`` raises, naming ``path``."""
        key, container = self.key, self.node
        if self.kind == "field":
            fields = sorted(type(container).model_fields)
            where = ".".join(self.keys[:self.depth]) or "the model"
            return InvalidModelError(
                f"no field {key!r} in {where} ({spelling_hint(key, fields)})", field=path,
                source=source, allowed=", ".join(fields))
        if self.kind == "index":
            return InvalidModelError(
                f"index {int(key)} out of range", field=path, source=source,
                allowed=f"0..{len(container) - 1}" if container
                else "nothing: the list is empty (add entries in the model file)")
        if self.kind == "name" and not container:
            return InvalidModelError(
                f"no entry named {key!r}", field=path, source=source,
                allowed="nothing: the list is empty (add entries in the model file; the "
                "default probes at the cell middles cannot be edited with --set)"
                if path.startswith("probes.") else
                "nothing: the list is empty (add entries in the model file)")
        if self.kind == "name":
            known = [name for name in map(_entry_label, container) if name is not None]
            allowed = f"an index 0..{len(container) - 1}"
            if known:
                allowed += " or one of: " + ", ".join(map(str, known[:10]))
                if len(known) > 10:
                    allowed += f", ... ({len(known)} names)"
            return InvalidModelError(f"no entry named {key!r}", field=path, source=source,
                                     allowed=allowed)
        return InvalidModelError(f"{key!r} is not a table or a list", field=path,
                                 source=source, allowed="a path into a table or list")

    def reason(self) -> str:
        """The problem in one line, as ``sweep --grid`` reports a path that names no field."""
        key, node = self.key, self.node
        where = ".".join(self.keys[:self.depth]) or "the model"
        if self.kind == "field":
            return f"{where} has no field {key!r}; fields: " + ", ".join(
                sorted(type(node).model_fields))
        if self.kind == "index":
            return f"{where}: index {int(key)} out of range 0..{len(node) - 1}"
        if self.kind == "name":
            names = [item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
                     for item in node]
            shown = [n for n in names if n] or [str(i) for i in range(len(node))]
            return f"{where} has no entry named {key!r}; one of: " + ", ".join(shown[:10])
        return f"{where} is a value, not a table or list"


def _list_slot(items: list[Any], keys: list[str], depth: int) -> int:
    """The index of the list entry that step ``keys[depth]`` names (an index or a name)."""
    key = keys[depth]
    if key.lstrip("-").isdigit():
        index = int(key)
        if -len(items) <= index < len(items):
            return index % len(items)
        raise _PathProblem("index", keys, depth, items)
    for i, item in enumerate(items):
        if _entry_label(item) == key:
            return i
    raise _PathProblem("name", keys, depth, items)


def _walk(root: Any, keys: list[str], *, create: bool = False
          ) -> tuple[Any, str | int, tuple[str | int, ...]]:
    """Follow ``keys`` from ``root`` to the last step; raises :class:`_PathProblem`.

    ``root`` is a validated :class:`Model` (its tables have fixed fields: a step outside
    them is a problem) or its plain dict form (a table takes any key; validation judges it
    later).  A step into an unset field or a missing key leads to an empty table; with
    ``create`` that table is created in ``root`` (a dict), as ``--set`` does.  Returns the
    container of the last step (None when it is not there yet), the last step (a table
    key or a list index) and every step.
    """
    node = root
    steps: list[str | int] = []
    for depth, key in enumerate(keys):
        slot: str | int
        if isinstance(node, BaseModel):
            if key not in type(node).model_fields:
                raise _PathProblem("field", keys, depth, node)
            slot = key
        elif isinstance(node, dict) or node is _UNSET:
            slot = key
        elif isinstance(node, list):
            slot = _list_slot(node, keys, depth)
        else:
            raise _PathProblem("value", keys, depth, node)
        steps.append(slot)
        if depth == len(keys) - 1:
            return (None if node is _UNSET else node), slot, tuple(steps)
        node = _step(node, slot, create)
    raise AssertionError("a path has at least one step")  # pragma: no cover


def _step(node: Any, slot: str | int, create: bool) -> Any:
    """What ``node[slot]`` holds (a tuple field as a list), _UNSET when nothing yet."""
    if isinstance(node, BaseModel):
        value = getattr(node, str(slot))
        if value is None:  # an unset optional field
            return _UNSET
        return list(value) if isinstance(value, tuple) else value
    if node is _UNSET:
        return _UNSET
    if isinstance(node, dict) and slot not in node:
        if not create:
            return _UNSET
        node[slot] = {}
    return node[slot]


def _join_dotted_names(keys: list[str], data: dict[str, Any]) -> list[str]:
    """Rejoin path parts that spell a name containing dots: ``probes.a_x0.5.x`` addresses
    the probe labelled ``a_x0.5`` (and ``tolerance.probes.a_x0.5.analytic_abs_mV`` its
    tolerance); the longest name that matches wins."""
    def names(prefix: tuple[str, ...]) -> set[str]:
        if len(prefix) == 1 and isinstance(data.get(prefix[0]), list):
            return {n for n in map(_entry_label, data[prefix[0]]) if n is not None}
        if prefix == ("tolerance", "probes"):
            probes = data.get("probes") or [{"cell": c.get("name"), "x": 0.5}
                                             for c in data.get("cells", [])]
            return {n for n in map(_entry_label, probes) if n is not None}
        return set()

    out: list[str] = []
    i = 0
    while i < len(keys):
        known = names(tuple(out)) if len(out) <= 2 else set()
        for stop in range(len(keys), i + 1, -1):
            if ".".join(keys[i:stop]) in known:
                out.append(".".join(keys[i:stop]))
                i = stop
                break
        else:
            if tuple(out) == ("tolerance", "probes") and len(keys) - i > 2:
                # an unknown probe name with dots: keep it whole so the error names it
                out.append(".".join(keys[i:-1]))
                i = len(keys) - 1
                continue
            out.append(keys[i])
            i += 1
    return out


@dataclass(frozen=True)
class ResolvedPath:
    """Where an override path leads in a model.

    ``steps`` spells the path with every list entry as its index, so ``cells.b.length_um``
    and ``cells.1.length_um`` both give ``("cells", 1, "length_um")`` (and the probe label
    ``a_x0.5`` stays one step).  ``value`` is what the model holds there: a number, a
    validated part (a :class:`Cell`, ...), or None for an unset field or an entry that
    ``--set`` would create.
    """

    path: str
    steps: tuple[str | int, ...]
    value: Any


def _root_and_keys(model: Model | Mapping[str, Any], path: str) -> tuple[Any, list[str]]:
    """Where a walk starts (the model, or its data as a dict) and the steps of ``path`` as
    written, names with dots (probe labels) kept whole."""
    if isinstance(model, Model):
        return model, _join_dotted_names(path.split("."), model.to_dict())
    data = model if isinstance(model, dict) else dict(model)
    return data, _join_dotted_names(path.split("."), data)


def resolve_path(model: Model | Mapping[str, Any], path: str, *,
                 source: str | None = None) -> ResolvedPath:
    """Follow the dotted ``path`` (as ``--set`` and ``sweep --grid`` take it) through ``model``.

    ``model`` is a validated :class:`Model`, whose tables have fixed fields (a misspelt one
    is refused with the nearest field name), or a plain dict as in a model file, whose
    tables take any key.  Nothing is changed.  Raises :class:`InvalidModelError` naming
    ``path`` (and ``source``) and what is allowed there.
    """
    root, keys = _root_and_keys(model, path)
    try:
        container, slot, steps = _walk(root, keys)
    except _PathProblem as problem:
        raise problem.error(path, source) from None
    if container is None:
        value = None
    elif isinstance(container, BaseModel):
        value = getattr(container, str(slot))
    elif isinstance(container, dict):
        value = container.get(slot)
    else:
        value = container[slot]
    return ResolvedPath(path=path, steps=steps, value=value)


def path_problem(model: Model | Mapping[str, Any], path: str) -> str | None:
    """Why ``path`` leads nowhere in ``model``, in one line, or None when it leads to a field.

    The same walk as :func:`resolve_path`, worded as ``sweep --grid`` reports a path
    (``cells has no entry named 'z'; one of: a, b``).
    """
    try:
        _walk(*_root_and_keys(model, path))
    except _PathProblem as problem:
        return problem.reason()
    return None


def apply_overrides(model: Model, overrides: Iterable[str | tuple[str, Any]],
                    *, source: str = "<overrides>") -> Model:
    """A validated copy of ``model`` with ``--set`` style overrides applied.

    Paths are dotted: ``cells.a.e_leak_mV`` (a cell by name or index),
    ``gap_junctions.0.g_uS``, ``discretization.max_extent_um`` (setting one of the two
    discretization keys clears the other), ``simulation.dt_ms``.
    """
    data = model.to_dict()
    # lists of tables must exist for index paths
    for key in ("gap_junctions", "probes", "stimuli"):
        data.setdefault(key, [])
    data["cells"] = [dict(cell) for cell in data["cells"]]
    for item in overrides:
        path, value = parse_override(item) if isinstance(item, str) else item
        keys = _join_dotted_names(path.split("."), data)
        try:
            node, slot, _ = _walk(data, keys, create=True)
        except _PathProblem as problem:
            raise problem.error(path, source) from None
        if isinstance(node, dict) and slot in _EXCLUSIVE and keys[0] == "discretization":
            for other in _EXCLUSIVE:
                node.pop(other, None)
        node[slot] = value
    try:
        return model_from_dict(data, source=source)
    except InvalidModelError as exc:
        raise InvalidModelError(exc.message, source=source, field=exc.field,
                                value=exc.value, allowed=exc.allowed) from None
