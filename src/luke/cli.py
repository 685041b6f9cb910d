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
import os
import re
import signal
import sys
import threading
import traceback
from typing import Any

from luke.errors import LukeError, shorten

COMMAND_MODULES: list[str] = [
    "luke.commands",
    "luke.wikipedia.commands",
    "luke.finetuning.commands",
    "luke.finetuning.linking",
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
    previous = _exit_on_sigterm(args.command)
    try:
        return int(args.func(args) or 0)
    except (LukeError, ValueError) as err:
        return _error(args.command, str(err))
    except OSError as err:  # a path the system refused: missing, a folder, read-only, disk full, ...
        return _error(args.command, _os_error_text(err))
    except KeyboardInterrupt:
        print(f"luke {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # anything else is a bug: the traceback, then one line saying so
        traceback.print_exc()
        print(
            f"luke {args.command}: internal error (a bug in luke, not in your input; please report it with the "
            f"traceback above): {type(err).__name__}: {shorten(str(err), 200)}",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(command: str) -> Any:
    """Make SIGTERM (``kill PID``, a scheduler's time limit) end a command like Ctrl-C: ``SystemExit`` unwinds
    through ``files.atomic_output`` and friends, so half-written temporaries are removed at once and worker
    pools are terminated. Forked workers keep the default action; a second SIGTERM kills at once. Returns
    the previous handler (None outside the main thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def terminate(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
        print(f"luke {command}: terminated (SIGTERM); removing partial outputs", file=sys.stderr)
        raise SystemExit(128 + signum)

    global _terminate_handler
    _terminate_handler = terminate
    _reset_sigterm_in_forked_children()
    return signal.signal(signal.SIGTERM, terminate)


_terminate_handler: Any = None
_fork_hook_installed = False


def _reset_sigterm_in_forked_children() -> None:
    """Forked workers (pools, DataLoader) get the default SIGTERM action back at once: ``Pool.terminate``
    must kill them even while they block in C (a Python handler would only run when they return to Python,
    and a worker stuck on a lock would never die, leaving the parent waiting for it)."""
    global _fork_hook_installed
    if _fork_hook_installed:
        return

    def in_child() -> None:
        if _terminate_handler is not None and signal.getsignal(signal.SIGTERM) is _terminate_handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    os.register_at_fork(after_in_child=in_child)
    _fork_hook_installed = True


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WORKER_PREFIX = re.compile(r"^[\w.]+(Error|Exception): ")


def _error(command: str, message: str) -> int:
    """One line: newlines of wrapped library messages (torch, tokenizers) become ' | ', terminal colour
    codes are dropped, and a huge message is cut."""
    lines = [line.strip() for line in _ANSI.sub("", message).splitlines() if line.strip()]
    if lines and lines[0].startswith("Caught ") and "Original Traceback" in message:
        # re-raised from a DataLoader worker: the message is the worker's traceback; its last line is ours
        lines = [_WORKER_PREFIX.sub("", lines[-1])]
    text = " | ".join(lines)
    print(f"luke {command}: error: {shorten(text, 2000)}", file=sys.stderr)
    return 2


def _os_error_text(err: OSError) -> str:
    """``PATH: reason`` for an :class:`OSError` (``[Errno 13] Permission denied: 'x'`` -> ``x: permission denied``)."""
    if err.strerror is None:  # raised with a message of its own: FileNotFoundError("no config file at X")
        return str(err) or type(err).__name__
    reason = err.strerror.lower()
    if err.filename is None:
        return reason
    where = f"{err.filename} -> {err.filename2}" if err.filename2 is not None else str(err.filename)
    return f"{where}: {reason}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
