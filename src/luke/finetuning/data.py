"""Reading task files with precise error locations.

Every reader reports problems as :class:`DataError` naming the file and line, so a malformed line in a
100 MB file can be found at once.  JSON data comes as a JSON array (TACRED, Open Entity in the ERNIE
release) or as JSON Lines (the SemEval-2010 Task 8 stand-in); :func:`iter_json_records` reads both and
knows the line on which each record starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from luke.errors import DataError

__all__ = ["DataError", "iter_json_records", "find_split_file", "require"]


def iter_json_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, record)`` for a JSON array file or a JSON Lines file (1-based lines)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    decoder = json.JSONDecoder()
    stripped = text.lstrip()
    if not stripped:
        raise DataError(path, "the file is empty")
    if stripped[0] == "[":  # one JSON array: decode item by item to know where each starts
        pos = text.index("[") + 1
        line, counted = 1, 0

        def at(p: int) -> int:
            nonlocal line, counted
            line += text.count("\n", counted, p)
            counted = p
            return line

        while True:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(text):
                raise DataError(path, "unterminated JSON array (missing ']')", at(len(text)))
            if text[pos] == "]":
                return
            try:
                record, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as err:
                raise DataError(path, f"invalid JSON: {err.msg}", err.lineno) from None
            yield at(pos), record
            pos = end
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", number) from None


def require(record: Any, fields: dict[str, type | tuple[type, ...]], path: Path, line: int) -> None:
    """Check that ``record`` is an object with ``fields`` of the given types, else raise :class:`DataError`."""
    if not isinstance(record, dict):
        raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line)
    for name, kind in fields.items():
        if name not in record:
            raise DataError(path, f"missing field {name!r}", line)
        value = record[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise DataError(path, f"field {name!r} must be {expected}, got {type(value).__name__}", line)


def find_split_file(data_dir: str | Path, candidates: tuple[str, ...]) -> Path | None:
    """The first of ``candidates`` that exists in ``data_dir`` (or None)."""
    data_dir = Path(data_dir)
    for name in candidates:
        if (data_dir / name).is_file():
            return data_dir / name
    return None
