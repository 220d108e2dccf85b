"""The ``gspo-repro`` command: one verb per workflow stage; logic lives in the package."""

from __future__ import annotations

import argparse
import json
import sys


def _probe(args: argparse.Namespace) -> int:
    from gspo_repro.probe import run_probe

    result = run_probe(seed=args.seed)
    print(json.dumps(result, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb."""
    parser = argparse.ArgumentParser(prog="gspo-repro", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("probe", help="one update of the tiny MoE: expert volatility and clip "
                                     "fractions per objective")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_probe)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
