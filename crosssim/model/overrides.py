"""The ``--set PATH=VALUE`` path language: parse an override and apply it to a model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crosssim.errors import InvalidModelError
from crosssim.model.loading import model_from_dict, tomllib  # tomli on 3.10: one switch
from crosssim.model.schema import Model

__all__ = ["apply_overrides", "parse_override"]

_EXCLUSIVE = {"cvs_per_cell": "max_extent_um", "max_extent_um": "cvs_per_cell"}


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
    without one the default label ``<cell>_x<x>`` shown in every table (e.g. ``a_x0.5``)."""
    if not isinstance(item, dict):
        return None
    if item.get("name") is not None:
        return str(item["name"])
    cell, x = item.get("cell"), item.get("x", 0.5)
    if isinstance(cell, str) and isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{cell}_x{float(x):g}"
    return None


def _locate(container: Any, key: str, path: str, source: str) -> Any:
    """Resolve one step of an override path: a table key, a list index or a cell/probe name."""
    if isinstance(container, dict):
        return key
    if isinstance(container, list):
        if key.lstrip("-").isdigit():
            index = int(key)
            if -len(container) <= index < len(container):
                return index % len(container)
            raise InvalidModelError(
                f"index {index} out of range", field=path, source=source,
                allowed=f"0..{len(container) - 1}" if container
                else "nothing: the list is empty (add entries in the model file)")
        if not container:
            raise InvalidModelError(
                f"no entry named {key!r}", field=path, source=source,
                allowed="nothing: the list is empty (add entries in the model file; the "
                "default probes at the cell middles cannot be edited with --set)"
                if path.startswith("probes.") else
                "nothing: the list is empty (add entries in the model file)")
        names = [_entry_label(item) for item in container]
        for i, name in enumerate(names):
            if name == key:
                return i
        known = [name for name in names if name is not None]
        allowed = f"an index 0..{len(container) - 1}" if container else "nothing: the list is empty"
        if known:
            allowed += " or one of: " + ", ".join(map(str, known[:10]))
            if len(known) > 10:
                allowed += f", ... ({len(known)} names)"
        raise InvalidModelError(f"no entry named {key!r}", field=path, source=source,
                                allowed=allowed)
    raise InvalidModelError(f"{key!r} is not a table or a list", field=path,
                            source=source, allowed="a path into a table or list")


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
        node: Any = data
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            slot = _locate(node, key, path, source)
            if last:
                if isinstance(node, dict) and key in _EXCLUSIVE and keys[0] == "discretization":
                    node.pop(_EXCLUSIVE[key], None)
                node[slot] = value
            else:
                if isinstance(node, dict) and slot not in node:
                    node[slot] = {}
                node = node[slot]
    try:
        return model_from_dict(data, source=source)
    except InvalidModelError as exc:
        raise InvalidModelError(exc.message, source=source, field=exc.field,
                                value=exc.value, allowed=exc.allowed) from None
