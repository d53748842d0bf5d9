"""``crosssim models``: list the built-in models and their parameters, or print one model
(built-in or a file) as TOML, optionally with every default written out."""

from __future__ import annotations

import argparse
import inspect

from crosssim.errors import EXIT_OK, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME|FILE",
                        help="print this built-in model (or model file) as TOML: a starting "
                        "point for your own model file")
    parser.add_argument("--param", dest="params", action="append", default=[],
                        metavar="KEY=VALUE", help="generator parameter (with a built-in NAME)")
    parser.add_argument("--resolved", action="store_true",
                        help="write every default explicitly (with NAME or FILE)")


def _parameters(parameters: dict) -> str:
    if not parameters:
        return "no parameters"
    return ", ".join(f"{key}={'dt_ms' if value is None else value}"
                     for key, value in parameters.items())


def execute(args: argparse.Namespace) -> int:
    from crosssim.builtin import BUILTINS, _load_generators, builtin_parameters
    from crosssim.model import dumps_model
    from crosssim.suite import load_model_spec, parse_params

    _load_generators()
    if args.name:
        model, _ = load_model_spec(args.name, params=parse_params(args.params))
        print(dumps_model(model, resolved=args.resolved), end="")
        return EXIT_OK
    if args.resolved or args.params:
        given = "--resolved" if args.resolved else "--param"
        raise UsageError(f"{given}: give a built-in model NAME or a model FILE, e.g. "
                         f"'crosssim models ring {given}'")
    for name in sorted(BUILTINS):
        doc = inspect.getdoc(BUILTINS[name]) or ""
        print(f"{name:<10} {doc.splitlines()[0] if doc else ''}")
        print(f"{'':<10} parameters: {_parameters(builtin_parameters(name))}")
    print("\n'crosssim models NAME' prints a model as TOML (--resolved: every default "
          "written out; a model FILE works too); parameters: "
          "'crosssim run ring --param n_cells=1000'.")
    return EXIT_OK
