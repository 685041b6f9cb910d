"""Reading the user's files and writing our outputs, with one-line errors and nothing half-written.

Every command that reads a user file goes through :func:`read_text`, :func:`read_json` or
:func:`text_lines`, so a file that is not UTF-8 or not JSON is reported as ``FILE:LINE: what was wrong``
(never a bare ``'utf-8' codec can't decode …``). Every command that writes an output:

1. checks the path before the work starts (:func:`check_output`): a folder where a file belongs, a file
   where a folder belongs, an existing output without ``--overwrite``, a parent that is a file or cannot be
   written are :class:`~luke.errors.OutputError` s, raised before hours of work rather than after;
2. writes under a temporary sibling name and renames it into place when complete (:func:`atomic_output`),
   removing the temporary on failure, so the final name only ever holds a complete output;
3. sweeps the temporaries of earlier runs that were killed (:func:`sweep_leftovers`): they carry the
   writer's process id, and only those of processes that no longer run are removed.

Temporary names are ``.NAME.tmp-PID`` (or ``.NAME.staging-PID`` for a second work area) beside ``NAME``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from luke.errors import DataError, OutputError

__all__ = [
    "read_text",
    "read_json",
    "text_lines",
    "decoded_lines",
    "json_lines",
    "check_output",
    "refuse_inputs_in_output",
    "refuse_folder_name",
    "temporary_path",
    "sweep_leftovers",
    "atomic_output",
    "write_text_atomic",
    "remove_path",
    "luke_cache_home",
    "env_switch",
]

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:tmp|staging)-(?P<pid>\d+)$")


# -- reading ------------------------------------------------------------------------------------


def _read_error(path: Path, err: OSError, line: int | None = None) -> DataError:
    if isinstance(err, FileNotFoundError):
        return DataError(path, "no such file")
    if isinstance(err, IsADirectoryError):
        return DataError(path, "is a folder, expected a file")
    return DataError(path, f"cannot be read ({err.strerror or err})", line)


def _decode_error(path: Path, data: bytes, err: UnicodeDecodeError) -> DataError:
    line = data.count(b"\n", 0, err.start) + 1
    return DataError(path, f"not UTF-8 text (byte 0x{data[err.start]:02x} cannot be decoded)", line)


def read_text(path: str | Path) -> str:
    """The whole of a UTF-8 text file; a missing, unreadable or non-UTF-8 file is a :class:`DataError`
    naming the file (and the line of the first bad byte)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _read_error(path, err) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _decode_error(path, data, err) from None


def read_json(path: str | Path, expected: type | tuple[type, ...] | None = None) -> Any:
    """A JSON file's value; bad UTF-8 or JSON is a :class:`DataError` with the file's line, and, with
    ``expected``, a top-level value of another type too (``expected=dict`` for an object)."""
    path = Path(path)
    text = read_text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err.msg}, column {err.colno})", err.lineno) from None
    if expected is not None and not isinstance(value, expected):
        names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        names = names.replace("dict", "a JSON object").replace("list", "a JSON list")
        raise DataError(path, f"expected {names} at the top level, got {type(value).__name__}")
    return value


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number from 1, line without its newline)`` of a UTF-8 text file, read as a stream; a bad
    byte is a :class:`DataError` naming the file and line."""
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; bytes so a bad byte's line is known
    except OSError as err:
        raise _read_error(path, err) from None
    with f:
        yield from decoded_lines(f, path)


def decoded_lines(stream: Any, name: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number from 1, line without its newline)`` of a binary stream (a file, ``sys.stdin.buffer``)
    of UTF-8 text; ``name`` is what errors call it (a path, ``<stdin>``). A bad byte is a
    :class:`DataError` naming it and the line; a leading byte-order mark is dropped."""
    number = 0
    while True:
        try:
            raw = stream.readline()
        except OSError as err:  # a read that fails after the open (I/O error, a folder on some systems)
            raise _read_error(Path(name), err, number + 1) from None
        if not raw:
            return
        number += 1
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as err:
            raise DataError(name, f"not UTF-8 text (byte 0x{raw[err.start]:02x} cannot be decoded)", number) from None
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
        yield number, line.rstrip("\r\n")


def json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSON-lines file; a line that is not valid
    JSON or not a JSON object is a :class:`DataError` naming the file and line."""
    path = Path(path)
    for number, line in text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, f"not valid JSON ({err.msg}, column {err.colno})", number) from None
        if not isinstance(record, dict):
            raise DataError(path, f"expected a JSON object, got {type(record).__name__}", number)
        yield number, record


# -- checking outputs ---------------------------------------------------------------------------


def check_output(
    path: str | Path,
    *,
    kind: Literal["file", "dir"],
    overwrite: bool = False,
    exist_ok: bool = False,
    what: str = "output",
    inputs: Iterable[str | os.PathLike[str] | None] = (),
) -> Path:
    """Refuse an output path before the work starts; returns it as a :class:`Path`.

    ``kind`` is what the output is. An existing output is refused unless ``overwrite`` (it will be
    replaced) or ``exist_ok`` (a folder that is added to, e.g. a resumed run) is given. The nearest
    existing parent must be a folder we can write into. ``what`` names the option in messages
    (``"--output"``). ``inputs`` are the files and folders the command reads: the output may not replace
    any of them (:func:`refuse_inputs_in_output`).
    """
    if kind == "file":
        refuse_folder_name(path, what=what)
    path = Path(path)
    given = path
    refuse_inputs_in_output(path, inputs, what=what)
    if path.is_symlink():  # we write where the link points (atomic_output does the same)
        path = Path(os.path.realpath(path))
    if path.exists():
        if kind == "file" and path.is_dir():
            raise OutputError(f"{what} {given} is a folder; give a file path")
        if kind == "dir" and not path.is_dir():
            raise OutputError(f"{what} {given} exists and is not a folder")
        if not (overwrite or exist_ok):
            raise OutputError(f"{what} {given} already exists; pass --overwrite to replace it or choose another path")
        if kind == "file" and not os.access(path, os.W_OK):
            raise OutputError(f"{what} {given} exists and is read-only")
        if kind == "dir" and exist_ok and not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{what} {given}: cannot write into this folder (permission denied)")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {given}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {given}: cannot write into {parent} (permission denied)")
    return given


def refuse_folder_name(path: str | os.PathLike[str], *, what: str) -> None:
    """:class:`~luke.errors.OutputError` for a file output given as a folder name (``out/``, ``out/.``):
    ``Path`` drops the trailing ``/``, so this looks at the path as typed."""
    text = os.fspath(path)
    if text.endswith(("/", os.sep, "/.")) or text in (".", ".."):
        raise OutputError(f"{what} {text} ends with '/', which names a folder; give a file path")


def refuse_inputs_in_output(
    out: str | Path, inputs: Iterable[str | os.PathLike[str] | None], *, what: str = "output"
) -> None:
    """:class:`~luke.errors.OutputError` when writing ``out`` would replace one of ``inputs`` (the same file,
    or, for an output folder, a file inside it): checked before the work, so an input is never lost."""
    out = Path(out)
    target = out.resolve()
    for item in inputs:
        if item is None:
            continue
        path = Path(item).resolve()
        if path == target:
            raise OutputError(f"{what} {out} would replace the input {item}; choose another path")
        if target in path.parents:
            raise OutputError(f"{what} {out} would replace the folder holding the input {item}; choose another path")


# -- writing outputs ----------------------------------------------------------------------------


def temporary_path(final: str | Path, kind: Literal["tmp", "staging"] = "tmp") -> Path:
    """``.NAME.tmp-PID`` beside ``final``: where this process builds ``final`` before renaming it."""
    final = Path(final)
    return final.with_name(f".{final.name}.{kind}-{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_path(path: Path) -> None:
    """Remove a file, link or folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep_leftovers(final: str | Path) -> list[Path]:
    """Remove the temporaries of ``final`` (``.NAME.tmp-PID``, ``.NAME.staging-PID``) left by killed
    processes; those of running processes are kept. Returns what was removed."""
    final = Path(final)
    folder = final.absolute().parent
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        m = _LEFTOVER.match(entry.name)
        if m and m["name"] == final.name and not _alive(int(m["pid"])):
            remove_path(entry)
            removed.append(entry)
    return removed


@contextmanager
def atomic_output(final: str | Path, kind: Literal["file", "dir"] = "file") -> Iterator[Path]:
    """Build ``final`` under a temporary name and rename it into place when the block ends without error.

    Yields the temporary path (for ``kind="dir"`` an empty folder already created). On an exception the
    temporary is removed and ``final`` is left as it was; on success an existing ``final`` is replaced.
    Leftovers of killed earlier runs are swept first.
    """
    final = Path(final)
    if final.is_symlink():  # replace what the link points to, not the link
        final = Path(os.path.realpath(final))
    sweep_leftovers(final)
    tmp = temporary_path(final)
    remove_path(tmp)
    final.absolute().parent.mkdir(parents=True, exist_ok=True)
    if kind == "dir":
        tmp.mkdir()
    try:
        yield tmp
        if kind == "dir" and final.is_dir():
            aside = temporary_path(final, "staging")
            remove_path(aside)
            os.replace(final, aside)
            os.replace(tmp, final)
            remove_path(aside)
        else:
            os.replace(tmp, final)
    except BaseException:
        remove_path(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one step (temporary file, flushed, renamed)."""
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def luke_cache_home() -> Path:
    """The folder of luke's caches: ``$LUKE_CACHE_DIR``, else ``$XDG_CACHE_HOME/luke``, else ``~/.cache/luke``."""
    root = os.environ.get("LUKE_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg, "luke") if xdg else os.path.join(Path.home(), ".cache", "luke")
    return Path(root)


def env_switch(name: str, default: bool = True) -> bool:
    """An on/off environment variable: ``0``, ``false``, ``no``, ``off`` (any case) are off, any other value on."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")
