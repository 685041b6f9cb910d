"""A transformers ``entity_vocab.json`` read straight into the arrays of an :class:`luke.entity_index.EntityIndex`.

Why: the real mLUKE file holds about 6M ``"lang:Title": id`` members.  ``json.load`` (what ``transformers``
does) makes a Python string and a dict entry for each of them and takes 10-20 s; even ``orjson`` takes more than
half of that.  This reader makes no Python object per member: the file's bytes are one numpy array, and every
step below is a whole-array operation over it (a few dozen passes over a few hundred MB):

1. the strings: the positions of the unescaped ``"`` bytes, paired; backslash escapes (rare: a ``"`` or a
   control character in a title) are decoded by ``json.loads`` one string at a time, written over their raw
   text (an escape is never shorter than what it stands for);
2. the grammar outside the strings, checked exactly: ``{``, then ``"key" : digits`` members separated by ``,``,
   then ``}``, whitespace anywhere between; no control character inside a string; valid UTF-8 (the titles are
   decoded, in chunks; the rest is ASCII);
3. the ids (digits parsed a column at a time), non-negative and covering ``0 .. n - 1``;
4. ``lang:Title`` keys as :meth:`luke.entity_vocab.EntityVocab.from_dict` reads them (the first ``:``, a
   language code ``[a-z]{2,3}(-[a-z0-9]+)*`` before it, something after it; the special entities never split);
5. no title empty or only whitespace, no key given twice (in :meth:`EntityIndex.from_encoded`).

Anything this reader does not vouch for - a syntax error, a float, a negative or huge id, a nested object, a
repeated key, a title that is only whitespace - makes it return ``None``, and the caller reads the file with
the ``json`` module into dicts, which raises the usual ``FILE:LINE`` error (or reads what this reader does not
take on: an escaped lone surrogate ``\\ud800``, an id of more than 18 digits, more than 64 spaces in a row).

Measured by ``benchmarks/bench_entity_vocab_load.py``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from luke.entity_index import EntityIndex

__all__ = ["LANGUAGE_CODE", "index_json_file"]

#: A language code of an mLUKE key (``en``, ``zh-yue``), the part before the key's first ``:``.
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]+)*")

_QUOTE, _BACKSLASH, _COLON, _ZERO = 0x22, 0x5C, 0x3A, 0x30
_WHITESPACE = np.zeros(256, dtype=np.bool_)  # JSON's whitespace between tokens
_WHITESPACE[[0x20, 0x09, 0x0A, 0x0D]] = True
_OUTSIDE_OK = _WHITESPACE.copy()  # every byte outside the strings is one of these
_OUTSIDE_OK[[ord("{"), ord("}"), ord(":"), ord(","), *range(_ZERO, _ZERO + 10)]] = True
#: First bytes of the UTF-8 of the characters ``str.strip`` removes (a title only of those is refused).
_SPACE_START = np.zeros(256, dtype=np.bool_)
_SPACE_START[sorted({chr(c).encode()[0] for c in range(0x3001) if chr(c).isspace()})] = True
_MAX_WHITESPACE_RUN = 64  # around a value; more and the file is left to the json module
_MAX_DIGITS = 18  # an id always fits int64
_MAX_PACKED_CODE = 7  # language codes up to this many bytes are compared as one uint64
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)], dtype=np.uint64)  # masks keeping k bytes
_UTF8_CHUNK = 1 << 24
_SCAN_CHUNK = 1 << 20  # bytes scanned at a time
_KEY_CHUNK = 1 << 16  # keys handled at a time
_SPAN_CHUNK = 1 << 15  # spans copied at a time


def index_json_file(path: Path, multilingual: bool | None, specials: Sequence[str]) -> EntityIndex | None:
    """The index of a ``{key: id}`` file, read and checked as the module docstring says; ``None`` when the file
    is not one this reader vouches for (the caller then reads it with the ``json`` module).  ``multilingual``:
    whether keys are ``lang:Title`` (``None``: when every key but ``specials`` is)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    strings = _strings(data)
    if strings is None:
        return None
    content, starts, ends, ids = strings
    n_ids = int(ids.max()) + 1
    if n_ids > len(ids) or np.count_nonzero(np.bincount(ids, minlength=n_ids)) != n_ids:
        return None  # ids not covering 0 .. n - 1
    split = _split_languages(content, starts, ends, multilingual, specials)
    if split is None:
        return None
    title_starts, languages, table = split
    if (ends <= title_starts).any():
        return None  # an empty title
    titles = _take_spans(content, title_starts, ends)
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(ends - title_starts, out=offsets[1:])
    # everything else in the file is ASCII (checked): valid UTF-8 titles, none starting inside a character,
    # are a valid file
    if ((titles[offsets[:-1]] & 0xC0) == 0x80).any() or not _valid_utf8(titles.data):
        return None
    if _any_blank(titles, offsets):
        return None
    return EntityIndex.from_encoded(titles, offsets, languages, table, ids)


def _valid_utf8(data: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), _UTF8_CHUNK):  # chunks: never a copy of the whole file as str
            decoder.decode(view[start : start + _UTF8_CHUNK], final=start + _UTF8_CHUNK >= len(data))
    except UnicodeDecodeError:
        return False
    return True


def _take_spans(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``arr[starts[k]:ends[k]]`` of every ``k``, one after another: the positions of 32K spans at a time
    gathered (temporaries the size of the file would cost more than the work, in page faults)."""
    lengths = ends - starts
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    for first in range(0, len(starts), _SPAN_CHUNK):
        last = min(first + _SPAN_CHUNK, len(starts))
        positions = np.repeat(starts[first:last] - offsets[first:last], lengths[first:last])
        positions += np.arange(offsets[first], offsets[last])
        out[offsets[first] : offsets[last]] = arr[positions]
    return out


def _positions(arr: np.ndarray, byte: int) -> np.ndarray:
    """``np.flatnonzero(arr == byte)``, a few MB at a time (a temporary the size of the file costs more)."""
    found = [np.flatnonzero(arr[i : i + _SCAN_CHUNK] == byte) + i for i in range(0, len(arr), _SCAN_CHUNK)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _count_controls(arr: np.ndarray) -> int:
    """How many bytes below 0x20 (a MB at a time)."""
    return sum(np.count_nonzero(arr[i : i + _SCAN_CHUNK] < 0x20) for i in range(0, len(arr), _SCAN_CHUNK))


def _escaped(arr: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Which ``"`` bytes follow an odd run of backslashes (a ``\\"`` inside a string)."""
    escaped = np.zeros(len(quotes), dtype=np.bool_)
    for i in np.flatnonzero(arr[np.maximum(quotes - 1, 0)] == _BACKSLASH).tolist():
        start = end = int(quotes[i])
        while start > 0 and arr[start - 1] == _BACKSLASH:
            start -= 1
        escaped[i] = (end - start) % 2 == 1
    return escaped


def _strings(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(content, starts, ends, ids)``: key ``k`` is the UTF-8 ``content[starts[k]:ends[k]]`` (the file's bytes,
    escapes decoded in place) with id ``ids[k]``; ``None`` unless the file is one flat object of integer ids."""
    arr = np.frombuffer(data, dtype=np.uint8)
    quotes = _positions(arr, _QUOTE)
    has_escapes = b"\\" in data
    if has_escapes:
        quotes = quotes[~_escaped(arr, quotes)]
    if not len(quotes) or len(quotes) % 2:
        return None
    opens, closes = quotes[0::2], quotes[1::2]
    outside = _take_spans(arr, np.r_[0, closes + 1], np.r_[opens, len(arr)])  # the strings cut out: a quarter
    # where each string was in `outside`: its opening quote's position less the string bytes before it
    lengths = closes - opens + 1
    cut = opens - (np.cumsum(lengths) - lengths)
    histogram = np.bincount(outside, minlength=256)
    if histogram[~_OUTSIDE_OK].any() or _count_controls(arr) != histogram[:0x20].sum():
        return None  # a letter, '-', '.', '[', '\\', ... outside the strings, or a control character inside one
    punctuation = np.flatnonzero(
        (outside == _COLON) | (outside == ord(",")) | (outside == ord("{")) | (outside == ord("}"))
    )
    marks = outside[punctuation]
    n = len(opens)
    if (
        len(marks) != 2 * n + 1
        or marks[0] != ord("{")
        or marks[-1] != ord("}")
        or (marks[1::2] != _COLON).any()
        or (marks[2:-1:2] != ord(",")).any()
        or punctuation[0] >= cut[0]  # '{' before the first key
        or (punctuation[1::2] < cut).any()  # each key, then its ':'
        or (punctuation[2:-1:2] >= cut[1:]).any()  # each ',' before the next key
    ):
        return None
    parsed = _values(outside, punctuation[1::2] + 1, punctuation[2::2])
    if parsed is None or parsed[1] != histogram[_ZERO : _ZERO + 10].sum():
        return None  # a value that is not digits, or digits somewhere else (between a key and its ':')
    ids = parsed[0]
    starts, ends, content = opens + 1, closes.copy(), arr
    if has_escapes:  # backslashes are all inside strings (checked above)
        content = arr.copy()
        backslashes = np.flatnonzero(arr == _BACKSLASH)
        for key in np.unique(np.searchsorted(opens, backslashes, side="right") - 1).tolist():
            try:
                text = json.loads(data[opens[key] : closes[key] + 1])
            except ValueError:
                return None  # a bad escape
            raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
            content[starts[key] : starts[key] + len(raw)] = raw
            ends[key] = starts[key] + len(raw)
    return content, starts, ends, ids


def _skip_whitespace(arr: np.ndarray, pos: np.ndarray) -> bool:
    """Advance ``pos`` (in place) over whitespace; False on a run too long.  (Each value is followed by a ``,`` or
    the ``}``, which stops it.)"""
    for _ in range(_MAX_WHITESPACE_RUN):
        step = _WHITESPACE[arr[pos]]
        if not step.any():
            return True
        pos += step
    return False


def _values(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The integers in ``arr[starts[k]:ends[k]]`` and how many digits they have in all; ``None`` unless each
    span is whitespace, digits (no leading zero, at most 18), whitespace (``arr[ends[k]]`` is the ``,`` or ``}``
    after it).  Parsed a digit position at a time over 64K values at a time."""
    values = np.empty(len(starts), dtype=np.int64)
    digits = 0
    for first in range(0, len(starts), _KEY_CHUNK):
        part = _chunk_values(arr, starts[first : first + _KEY_CHUNK], ends[first : first + _KEY_CHUNK])
        if part is None:
            return None
        values[first : first + _KEY_CHUNK] = part[0]
        digits += part[1]
    return values, digits


def _chunk_values(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, int] | None:
    pos = starts.copy()
    if not _skip_whitespace(arr, pos):
        return None
    first = pos.copy()
    values = np.zeros(len(pos), dtype=np.int64)
    for count in range(_MAX_DIGITS + 1):
        digits = arr[pos] - np.uint8(_ZERO)
        is_digit = digits < 10
        if not is_digit.any():
            break
        if count == _MAX_DIGITS:
            return None  # too long for an id
        values = np.where(is_digit, values * 10 + digits, values)
        pos += is_digit
    length = pos - first
    if not _skip_whitespace(arr, pos) or (pos != ends).any() or (length == 0).any():
        return None  # no digits, or something else after them
    if ((arr[first] == _ZERO) & (length > 1)).any():
        return None  # a leading zero: not JSON
    return values, int(length.sum())


def _split_languages(
    content: np.ndarray, starts: np.ndarray, ends: np.ndarray, multilingual: bool | None, specials: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """``(title_starts, languages, table)``: each key's title starts at ``title_starts[k]``, its language is
    ``table[languages[k]]`` (``-1``: none; ``table`` sorted).  Keys are ``lang:Title`` when ``multilingual`` or
    (``None``) when every key but the special entities is; ``None`` when ``multilingual`` and one is not."""
    plain = (starts, np.full(len(starts), -1, dtype=np.int32), [])
    if multilingual is False:
        return plain
    # each key's first ':' among its first 8 bytes (a title must follow it) and the bytes before it, packed with
    # their number into a uint64, from the 8 bytes at each key's start (keys that close to the file's end: below)
    rows = np.flatnonzero(starts + 8 <= len(content))
    heads = np.lib.stride_tricks.as_strided(content, shape=(max(len(content) - 7, 0), 8), strides=(1, 1))[starts[rows]]
    colons = (heads == _COLON) & (np.arange(8) < (ends[rows] - starts[rows] - 1)[:, None])
    first = np.argmax(colons, axis=1)
    found = colons[np.arange(len(rows)), first] & (first <= _MAX_PACKED_CODE)
    code_lengths = np.zeros(len(starts), dtype=np.int64)
    code_lengths[rows[found]] = first[found]
    packed = np.zeros(len(starts), dtype=np.uint64)
    packed[rows[found]] = (heads[found].view("<u8")[:, 0] & _LOW_BYTES[first[found]]) | (
        first[found].astype(np.uint64) << np.uint64(56)
    )
    names = {name.encode("utf-8") for name in specials}  # no ':' in them: never split
    for key in np.flatnonzero(code_lengths == 0).tolist():  # the special entities, else not an mLUKE file
        raw = content[starts[key] : ends[key]].tobytes()
        colon = raw.find(b":")
        if 0 < colon < len(raw) - 1:
            code_lengths[key] = colon  # a long code (valid or not), or a key near the end: read in Python
        elif raw not in names:
            return None if multilingual else plain
    if not code_lengths.any():
        return plain
    codes = _language_codes(content, starts, code_lengths, packed)
    if codes is None:
        return None if multilingual else plain
    languages, table = codes
    return np.where(code_lengths > 0, starts + code_lengths + 1, starts), languages, table


def _language_codes(
    content: np.ndarray, starts: np.ndarray, lengths: np.ndarray, packed: np.ndarray
) -> tuple[np.ndarray, list[str]] | None:
    """The language code ``content[starts[k]:starts[k] + lengths[k]]`` of every key (``-1`` where the length is
    0) as an index into the sorted table of the distinct codes; ``None`` when one is not a language code.  A code
    of up to 7 bytes comes ``packed`` with its length into one uint64, and the distinct values are found by
    scattering them into 65536 slots (a sort of millions would take seconds); a longer one is read in Python."""
    short = packed != 0  # (its length is in it)
    codes = packed[short]
    slots = (codes * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(48)
    values = np.zeros(1 << 16, dtype=np.uint64)
    values[slots] = codes
    if not (values[slots] == codes).all():  # two codes in one slot: the general (slower) way
        values, slots = np.unique(codes, return_inverse=True)
    used = np.flatnonzero(np.bincount(slots, minlength=len(values)))
    names = {slot: int(values[slot]).to_bytes(8, "little")[: int(values[slot]) >> 56] for slot in used.tolist()}
    long_rows = np.flatnonzero((lengths > 0) & ~short).tolist()
    long_names = [content[starts[row] : starts[row] + lengths[row]].tobytes() for row in long_rows]
    try:
        text = {raw: raw.decode("ascii") for raw in {*names.values(), *long_names}}
    except UnicodeDecodeError:
        return None
    if not all(LANGUAGE_CODE.fullmatch(code) for code in text.values()):
        return None
    table = sorted(text.values())
    rank = {raw: table.index(code) for raw, code in text.items()}
    lookup = np.full(len(values), -1, dtype=np.int32)
    for slot, raw in names.items():
        lookup[slot] = rank[raw]
    languages = np.full(len(lengths), -1, dtype=np.int32)
    languages[short] = lookup[slots]
    languages[long_rows] = [rank[raw] for raw in long_names]
    return languages, table


def _any_blank(titles: np.ndarray, offsets: np.ndarray) -> bool:
    """Whether a title is only whitespace (``str.strip``'s); only the titles whose first byte may begin a
    whitespace character are decoded to see."""
    for key in np.flatnonzero(_SPACE_START[titles[offsets[:-1]]]).tolist():
        if not titles[offsets[key] : offsets[key + 1]].tobytes().decode("utf-8").strip():
            return True
    return False
