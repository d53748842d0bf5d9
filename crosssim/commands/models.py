"""``crosssim models``: list the built-in models, or print one as a TOML model file."""

from __future__ import annotations

import argparse
import inspect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="print this built-in model as TOML "
                        "(a starting point for your own model file)")
    parser.add_argument("--param", dest="params", action="append", default=[],
                        metavar="KEY=VALUE", help="generator parameter (with NAME)")
    parser.add_argument("--resolved", action="store_true",
                        help="write every default explicitly")


def execute(args: argparse.Namespace) -> int:
    from crosssim.builtin import BUILTINS, _load_generators, builtin_model
    from crosssim.model import dumps_model
    from crosssim.suite import parse_params as _parse_params

    _load_generators()
    if args.name:
        model = builtin_model(args.name, _parse_params(args.params))
        print(dumps_model(model, resolved=args.resolved), end="")
        return 0
    for name in sorted(BUILTINS):
        doc = inspect.getdoc(BUILTINS[name]) or ""
        print(f"{name:<10} {doc.splitlines()[0] if doc else ''}")
    print("\n'crosssim models NAME' prints a model as TOML; network parameters: "
          "'crosssim run ring --param n_cells=1000' (see 'crosssim models ring').")
    return 0
