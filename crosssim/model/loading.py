"""Models from TOML (a file, a string or the dict it parses to) and back to TOML."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crosssim.errors import InvalidModelError
from crosssim.model.schema import Model, _FieldError
from crosssim.model.validation_errors import _translate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["dump_model", "dumps_model", "load_model", "loads_model", "model_from_dict"]


def model_from_dict(data: Mapping[str, Any], *, source: str = "<dict>",
                    base_dir: str | Path | None = None) -> Model:
    """Validate ``data`` (as read from TOML) into a :class:`Model`.

    A cell's ``swc = "file.swc"`` is read into its ``sections`` first, and a mechanism's
    ``mod`` path is made absolute (relative paths from ``base_dir``, the model file's
    folder; default the working folder).  Raises
    :class:`InvalidModelError` naming ``source`` (or the SWC file and line), the field and
    what is allowed.
    """
    if not isinstance(data, Mapping):
        raise InvalidModelError("a model must be a table of keys", source=source)
    base = Path(base_dir) if base_dir is not None else None
    data = _mod_paths(_read_swc_files(data, source, base), base)
    try:
        return Model.model_validate(dict(data))
    except ValidationError as exc:
        raise _translate(exc, data, source) from None
    except _FieldError as exc:  # raised outside pydantic's wrapping (defensive)
        raise InvalidModelError(f"{exc.message}; allowed: {exc.allowed}", source=source,
                                field=exc.field) from None


def _mod_paths(data: Mapping[str, Any], base_dir: Path | None) -> Mapping[str, Any]:
    """``data`` with every relative ``[[mechanisms]] mod`` path made absolute from
    ``base_dir`` (the model file's folder), so the model means the same file wherever it
    is written out again."""
    mechanisms = data.get("mechanisms")
    if base_dir is None or not isinstance(mechanisms, list):
        return data
    resolved = []
    for entry in mechanisms:
        if isinstance(entry, Mapping) and isinstance(entry.get("mod"), str):
            path = Path(entry["mod"]).expanduser()
            entry = {**entry, "mod": str(path if path.is_absolute() else base_dir / path)}
        resolved.append(entry)
    return {**data, "mechanisms": resolved}


def _read_swc_files(data: Mapping[str, Any], source: str,
                    base_dir: Path | None) -> Mapping[str, Any]:
    """``data`` with every cell's ``swc`` key replaced by the sections read from that file."""
    cells = data.get("cells")
    if not isinstance(cells, list) or not any(isinstance(cell, Mapping) and "swc" in cell
                                              for cell in cells):
        return data
    from crosssim.model.swc import read_swc

    expanded = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, Mapping) or "swc" not in cell:
            expanded.append(cell)
            continue
        cell = dict(cell)
        name = cell.pop("swc")
        if not isinstance(name, str) or not name:
            raise InvalidModelError(f"expected a file name, got {name!r}", source=source,
                                    field=f"cells.{i}.swc",
                                    allowed="the path of an SWC file, relative to the model "
                                            "file")
        clash = [key for key in ("sections", "length_um", "radius_um") if key in cell]
        if clash:
            raise InvalidModelError(f"given together with {', '.join(clash)}", source=source,
                                    field=f"cells.{i}.swc",
                                    allowed="either swc, or sections, or length_um + radius_um")
        path = Path(name).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise InvalidModelError(f"SWC file {str(path)!r} not found", source=source,
                                    field=f"cells.{i}.swc",
                                    allowed="an existing SWC file, relative to the model file")
        cell["sections"] = read_swc(path)
        expanded.append(cell)
    return {**data, "cells": expanded}


def parse_toml(text: str) -> dict[str, Any]:
    """TOML ``text`` as a dict: ``rtoml`` (Rust; six times faster than ``tomllib`` on a
    10,000-cell model), and ``tomllib`` for text rtoml refuses, so a bad file is described by
    tomllib's message (line and column).  Raises ``tomllib.TOMLDecodeError``."""
    import rtoml

    try:
        return rtoml.loads(text)
    except Exception:  # noqa: BLE001 - tomllib says what is wrong, or reads what rtoml cannot
        return tomllib.loads(text)


def loads_model(text: str, *, source: str = "<string>",
                base_dir: str | Path | None = None) -> Model:
    """Parse TOML ``text`` into a validated :class:`Model` (``base_dir``: where relative
    file names in it, such as a cell's ``swc``, start; default the working folder)."""
    try:
        data = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidModelError(f"not valid TOML: {exc}", source=source,
                                allowed="a TOML document") from None
    return model_from_dict(data, source=source, base_dir=base_dir)


def load_model(path: str | Path) -> Model:
    """Read and validate a TOML model file (a built-in name too: :func:`crosssim.load_model`,
    which is :func:`crosssim.builtin.load_model`)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidModelError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise InvalidModelError("is a folder, not a model file", source=str(path)) from None
    except OSError as exc:
        raise InvalidModelError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidModelError("not valid TOML: not UTF-8 text", source=str(path),
                                allowed="a UTF-8 TOML document") from None
    return loads_model(text, source=str(path), base_dir=path.parent)


def dumps_model(model: Model, *, resolved: bool = False) -> str:
    """The model as TOML text (``resolved``: with every default written out)."""
    import tomli_w

    text = tomli_w.dumps(model.to_dict(resolved=resolved))
    # tomli_w puts every item of an array on its own line; keep short arrays of plain values
    # (a junction's cells and x) on one line, as a person writes them
    def one_line(match: re.Match[str]) -> str:
        items = [line.strip().rstrip(",") for line in match.group(2).splitlines()]
        joined = f"{match.group(1)}[{', '.join(items)}]"
        return joined if len(joined) <= 100 else match.group(0)

    return re.sub(r"(?m)^([^\n=]+= )\[\n((?: {4}[^\n\[\]{}]+,\n)+)\]", one_line, text)


def dump_model(model: Model, path: str | Path, *, resolved: bool = False) -> None:
    """Write the model as a TOML file."""
    from crosssim.files import atomic_write_text

    atomic_write_text(Path(path), dumps_model(model, resolved=resolved))
