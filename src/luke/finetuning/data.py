"""Reading task files with precise error locations.

Every reader reports problems as :class:`DataError` naming the file and line, so a malformed line in a
100 MB file can be found at once.  JSON data comes as a JSON array (TACRED, Open Entity in the ERNIE
release) or as JSON Lines (the SemEval-2010 Task 8 stand-in); :func:`iter_json_records` reads both and
knows the line on which each record starts.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

from luke.errors import DataError, shorten
from luke.files import read_text

__all__ = [
    "DataError",
    "iter_json_records",
    "find_split_file",
    "require",
    "int_pair",
    "check_text_span",
    "match_predictions",
]

logger = logging.getLogger(__name__)


def iter_json_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, record)`` for a JSON array file or a JSON Lines file (1-based lines)."""
    path = Path(path)
    text = read_text(path)  # missing, unreadable, non-UTF-8: DataError naming the file (and line)
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
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kinds):
            expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise DataError(path, f"field {name!r} must be {expected}, got {type(value).__name__}", line)


def int_pair(value: Any, path: Path, line: int | None, what: str) -> tuple[int, int]:
    """``value`` as a ``[start, end]`` pair of integers (a JSON ``true`` is not an integer), else
    :class:`DataError` naming ``what``."""
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in value)
    ):
        raise DataError(path, f"{what} must be [start, end] integer character offsets, got {shorten(value)}", line)
    return value[0], value[1]


def check_text_span(text: str, start: int, end: int, path: Path | str, line: int | None, what: str) -> None:
    """``text[start:end]`` (end exclusive) must lie in ``text``, be non-empty and not only whitespace."""
    if not 0 <= start < end <= len(text):
        raise DataError(path, f"{what} = [{start}, {end}] is out of range for a text of {len(text)} characters", line)
    if not text[start:end].strip():
        raise DataError(path, f"{what} = [{start}, {end}] covers only whitespace ({text[start:end]!r})", line)


def find_split_file(data_dir: str | Path, candidates: tuple[str, ...]) -> Path | None:
    """The first of ``candidates`` that exists in ``data_dir`` (or None); one that is not a file is returned
    too, so that reading it says what is wrong with it."""
    data_dir = Path(data_dir)
    for name in candidates:
        if (data_dir / name).exists():
            return data_dir / name
    return None


def match_predictions(
    gold_keys: Sequence[Hashable], pred_keys: Sequence[Hashable], predictions: Path, gold: Path | str
) -> tuple[list[int | None], dict[str, int]]:
    """Match predictions to gold examples by key (their text and spans): for each gold example the index
    of its prediction or None (the same key twice is matched in order).  Unmatched gold examples and
    predictions are counted and warned about; no match at all (predictions of another file) is a
    :class:`DataError`."""
    if not gold_keys:
        raise DataError(gold, "no examples in the gold file")
    queue: dict[Hashable, list[int]] = defaultdict(list)
    for j, key in enumerate(pred_keys):
        queue[key].append(j)
    for js in queue.values():
        js.reverse()
    matched: list[int | None] = [queue[key].pop() if queue.get(key) else None for key in gold_keys]
    n_matched = sum(m is not None for m in matched)
    counts = {"matched": n_matched, "unmatched_gold": len(gold_keys) - n_matched,
              "unmatched_predictions": len(pred_keys) - n_matched}  # fmt: skip
    if not n_matched:
        raise DataError(
            predictions,
            f"none of its {len(pred_keys)} predictions matches one of the {len(gold_keys)} examples of {gold} "
            "(same text and spans): are they predictions for another file?",
        )
    if counts["unmatched_gold"]:
        logger.warning("%s: %d gold example(s) of %s have no prediction (scored as misses)",
                       predictions, counts["unmatched_gold"], gold)  # fmt: skip
    if counts["unmatched_predictions"]:
        logger.warning("%s: %d prediction(s) match no gold example of %s and are ignored",
                       predictions, counts["unmatched_predictions"], gold)  # fmt: skip
    return matched, counts
