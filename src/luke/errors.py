"""The errors this package raises for input it cannot use.

Everything here is a :class:`LukeError`: the user gave us a file, a folder, a configuration or an option
we cannot use, and the message says which one, where and why. Library code raises these; only the command
line (``luke.cli``) turns them into one ``luke CMD: error: …`` line and exit status 2. Any other exception
escaping a command is a bug.

``LukeError`` subclasses :class:`ValueError` so callers that already catch ``ValueError`` around our API
keep working.

This module is the ground floor: it imports nothing from the package, and every package module may
import it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "LukeError",
    "DataError",
    "DumpError",
    "DatasetError",
    "ConfigError",
    "CheckpointError",
    "TokenizerError",
    "OutputError",
    "shorten",
    "error_summary",
]


class LukeError(ValueError):
    """Base class: something the user gave us that we cannot use (printed as one line, exit status 2)."""


class DataError(LukeError):
    """A problem in an input data file.

    ``DataError(path, message, line)`` prefixes the message with ``FILE:LINE:`` (or ``FILE:`` without a
    line) so a malformed line in a large file can be found at once; ``DataError(message)`` is for data
    problems that belong to no single file.
    """

    def __init__(self, path: str | Path, message: str | None = None, line: int | None = None) -> None:
        if message is None:  # DataError(message)
            super().__init__(str(path))
            self.path, self.line = None, None
            return
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path, self.line = Path(path), line


class DumpError(DataError):
    """A Wikipedia dump (or the database built from it) that cannot be read: which file, where and why."""


class DatasetError(DataError):
    """A pretraining dataset that is missing, corrupt or does not match the model."""


class ConfigError(LukeError):
    """A configuration file, override or option that cannot be used (unknown key, wrong type, bad value)."""


class CheckpointError(LukeError):
    """A model folder or checkpoint that is missing, incomplete or does not fit what was asked of it."""


class TokenizerError(LukeError):
    """A tokenizer folder or file that cannot be used (missing files, not a fast tokenizer, ...)."""


class OutputError(LukeError):
    """An output path that cannot be written: a folder where a file belongs (or the reverse), a read-only
    or missing parent, or an existing output without ``--overwrite``. Checked before the work starts."""


def shorten(value: object, limit: int = 80) -> str:
    """``repr``-free text of ``value`` for an error message, cut to ``limit`` characters (a 50 MB line is
    never echoed whole)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


def error_summary(err: BaseException, limit: int = 200) -> str:
    """The first line of a library's exception message (its type name when empty), cut to ``limit``: why a
    file could not be read, for the end of one of our messages."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return shorten(lines[0] if lines else type(err).__name__, limit)
