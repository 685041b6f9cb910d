"""The ``luke`` command line.

Each command lives next to the code it drives: a module listed in ``COMMAND_MODULES`` defines
``register(subparsers)``, which adds one or more sub-commands whose ``func`` attribute receives the
parsed ``argparse.Namespace`` and returns an exit code. Keeping registration in the owning module means
this file never grows with the number of commands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from luke.errors import LukeError

COMMAND_MODULES: list[str] = [
    "luke.commands",
    "luke.wikipedia.commands",
    "luke.finetuning.commands",
    "luke.pretraining.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="luke",
        description="LUKE: build pretraining data, pretrain, fine-tune, evaluate and convert LUKE models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (LukeError, FileNotFoundError, ValueError) as err:
        print(f"luke {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
