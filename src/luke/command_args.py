"""Building blocks shared by the ``luke`` command modules (their ``register(sub)`` functions).

A command is declared as ``p = add_command(sub, name, handler, text)`` followed by its arguments; the
helpers here cover what several commands repeat: positional path arguments, model names (a folder or a Hub
repo id) and ``--revision``, integer options, ``--num-workers``,
``--no-progress``, ``--json``, the positive-integer type, and :func:`timed` for the "in N s" summary line.
They only build ``argparse`` parsers: bad input is reported by the library raising a
:class:`luke.errors.LukeError`, which ``luke.cli`` prints as one line.
"""

from __future__ import annotations

import argparse
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

Handler = Callable[[argparse.Namespace], int]


def positive_int(value: str) -> int:
    """``argparse`` type: an integer of at least 1."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


# argparse names the type in "invalid _workers value: 'x'"; the name the commands have always shown.
positive_int.__name__ = "_workers"


def seed(value: str) -> int:
    """``argparse`` type: a random seed, an integer in [0, 2**32 - 1] (what numpy's generators accept)."""
    n = int(value)
    if not 0 <= n < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1:,}, got {n:,}")
    return n


def add_command(sub: argparse._SubParsersAction, name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
    """Add sub-command ``name``, run by ``handler(args)``, and return its parser.

    ``text`` is written like a docstring: its first paragraph is the one-line help shown by ``luke --help``,
    the rest (after a blank line) the description shown by ``luke NAME --help``. argparse re-wraps both,
    so line breaks inside a paragraph do not show.
    """
    summary, _, description = inspect.cleandoc(text).partition("\n\n")
    parser = sub.add_parser(name, help=summary, description=description or None)
    parser.set_defaults(func=handler)
    return parser


def add_paths(parser: argparse.ArgumentParser, **helps: str | None) -> None:
    """Positional :class:`~pathlib.Path` arguments, in the order given: ``name=help`` each."""
    for name, help in helps.items():
        parser.add_argument(name, type=Path, help=help)


def add_model_name(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    """Positional argument ``name`` that is a local folder or a Hugging Face Hub repo id (``org/name``),
    kept as the string typed (a :class:`~pathlib.Path` would turn ``./x`` into ``x``, a valid repo id);
    resolve it with :func:`luke.hub.resolve_pretrained`."""
    parser.add_argument(name, type=str, help=f"{help}, or a Hugging Face Hub repo id (ORG/NAME)")


def add_revision(parser: argparse.ArgumentParser, what: str = "the model") -> None:
    """``--revision``: branch, tag or commit of ``what`` when it is given as a Hub repo id; read it with
    :func:`hub_kwargs`."""
    parser.add_argument(
        "--revision",
        default=None,
        help=f"branch, tag or commit hash of {what} when it is a Hugging Face Hub repo id (default: main); "
        "HF_HUB_OFFLINE=1 reads the Hugging Face cache only",
    )


def hub_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The Hub options a command was given (``--revision``), as keyword arguments for
    :func:`luke.hub.resolve_pretrained` and ``from_pretrained``."""
    return {"revision": getattr(args, "revision", None)}


def add_int_options(
    parser: argparse.ArgumentParser, *options: tuple[str, int | None, str], type: Callable[[str], int] = int
) -> None:
    """Integer options, ``(flag, default, help)`` each, parsed with ``type``."""
    for flag, default, help in options:
        parser.add_argument(flag, type=type, default=default, help=help)


def add_num_workers(parser: argparse.ArgumentParser, what: str, note: str = "") -> None:
    """``--num-workers`` (at least 1, default: the number of CPUs); help ``"WHAT (default: ...)NOTE"``."""
    default = max(1, os.cpu_count() or 1)
    parser.add_argument(
        "--num-workers",
        type=positive_int,
        default=default,
        help=f"{what} (default: number of CPUs, here {default}){note}",
    )


def add_no_progress(parser: argparse.ArgumentParser, help: str | None = "do not show a progress bar") -> None:
    """``--no-progress``: the command reads ``not args.no_progress`` as its ``progress`` switch."""
    parser.add_argument("--no-progress", action="store_true", help=help)


def add_json_flag(parser: argparse.ArgumentParser, help: str = "print machine-readable JSON") -> None:
    """``--json``: print the result as JSON instead of a table."""
    parser.add_argument("--json", action="store_true", help=help)


def timed(func: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    """``func(*args, **kwargs)`` and the wall-clock seconds it took."""
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start
