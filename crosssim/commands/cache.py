"""``crosssim cache info|clear``: inspect or empty the results cache (and NEURON's builds).

The results cache holds one entry per simulation (model, source, options, versions) so a
repeated or interrupted study does not recompute; the mechanism cache holds NEURON's
compiled MOD files.  Both live under ``$CROSSSIM_CACHE_DIR`` (default
``~/.cache/crosssim``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from crosssim.errors import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION",
                                    parser_class=type(parser))
    parser.set_defaults(action="info", format="text")  # bare 'crosssim cache' = 'cache info'
    info = actions.add_parser("info", help="where the caches are, how many entries, how big")
    info.add_argument("--format", choices=("text", "json"), default="text")
    clear = actions.add_parser("clear", help="remove every cached simulation result")
    clear.add_argument("--mechanisms", action="store_true",
                       help="also remove the compiled mechanisms, NEURON's and Arbor's "
                            "catalogues (recompiled on next use)")


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value} B"  # pragma: no cover


#: Compiled mechanisms in the cache folder: NEURON's nrnivmodl builds, Arbor's catalogues.
MECHANISM_FOLDERS = ("mod-*", "arbor-cat-*")


def _mechanism_folders(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(path for pattern in MECHANISM_FOLDERS for path in base.glob(pattern)
                  if path.is_dir())


def _mechanism_info(base: Path) -> dict[str, Any]:
    folders = _mechanism_folders(base)
    size = sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())
    compiles = None
    log = base / "compiles.log"
    if log.is_file():
        compiles = len(log.read_text(encoding="utf-8", errors="replace").splitlines())
    return {"root": str(base), "builds": [folder.name for folder in folders], "bytes": size,
            "compiles": compiles}


def execute(args: argparse.Namespace) -> int:
    from crosssim.provenance import cache_base
    from crosssim.study.cache import ResultsCache

    cache = ResultsCache()
    base = cache_base()
    if args.action == "info":
        info = cache.info()
        mechanisms = _mechanism_info(base)
        if args.format == "json":
            print(json.dumps({"results": info.to_dict(), "mechanisms": mechanisms}, indent=2))
            return EXIT_OK
        print(f"results cache: {info.root}")
        print(f"  {info.entries} entries, {_size(info.bytes)}"
              + (f" ({', '.join(f'{k} {v}' for k, v in info.by_source.items())})"
                 if info.by_source else ""))
        if info.oldest:
            print(f"  oldest {info.oldest}, newest {info.newest}")
        if info.temporary:
            print(f"  {info.temporary} unfinished entries left by interrupted runs "
                  "('crosssim cache clear' removes them)")
        print(f"mechanism cache (NEURON mod-*, Arbor arbor-cat-*): {mechanisms['root']}")
        print(f"  {len(mechanisms['builds'])} build(s), {_size(mechanisms['bytes'])}"
              + (f", {mechanisms['compiles']} compile(s) logged"
                 if mechanisms["compiles"] is not None else ""))
        return EXIT_OK
    removed = cache.clear()
    print(f"removed {removed} cached result(s) from {cache.root}")
    if args.mechanisms:
        folders = _mechanism_folders(base)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"removed {len(folders)} mechanism build(s) from {base}")
    return EXIT_OK
