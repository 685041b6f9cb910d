"""A large entity vocabulary as plain numpy arrays, and a persistent cache of them that loads in milliseconds.

Why: the real mLUKE ``entity_vocab.json`` holds 1.2M ids under about 6M ``lang:Title`` keys (hundreds of MB).
Building Python dicts, tuples and sets for every key (what :class:`luke.entity_vocab.EntityVocab` does for a
vocabulary built in code or a small file) takes tens of seconds and gigabytes on every load; even a bare
``json.load`` of the file (``transformers.MLukeTokenizer``) takes several seconds.  A large vocabulary file is
therefore parsed and checked once (with all of :mod:`luke.entity_vocab`'s checks and ``FILE:LINE`` errors) into
the arrays of an :class:`EntityIndex`, written to a cache folder, and later loads memory-map that folder: no
Python object per key is made on load, and the operating system pages in only what lookups touch.  A
transformers ``.json`` is read straight into the arrays by :mod:`luke.entity_vocab_json` (no Python object per
key on the first load either: several times faster than ``json.load``); other files through the dicts.

The arrays (keys are the ``(title, language)`` pairs, in the order of the source file):

``titles`` (uint8)      UTF-8 of every key's title, one after another (``surrogatepass``: JSON may hold lone
                        surrogates, which round-trip exactly)
``offsets``             ``titles[offsets[k]:offsets[k + 1]]`` is key ``k``'s title
``languages``           key ``k``'s language as an index into the header's language list, ``-1`` for none
``ids``                 key ``k``'s entity id
``by_id``               the keys in id order (the keys of one id in their file order)
``id_starts``           the keys of id ``i`` are ``by_id[id_starts[i]:id_starts[i + 1]]``
``counts`` (int64)      the hyperlink count of every id
``hashes`` (uint64)     a stable 64-bit hash of every key's title (see :func:`title_hash`), ordered by their top
                        bits; never Python's salted ``hash``, which changes between processes
``order``               ``order[j]`` is the key whose title hash is ``hashes[j]``
``buckets``             ``hashes[buckets[b]:buckets[b + 1]]`` are the hashes whose top bits are ``b``: a lookup
                        reads two entries of it and a handful of hashes instead of a binary search

One hash index over the titles serves every lookup kind: a title's keys (all its languages) are found at once,
and ``(title, language)`` is the one among them in that language; a hash is never trusted alone (the title's
bytes are compared).  Integer arrays use int32 where the values fit.  Every array is built by whole-array numpy
operations (the title hash too: see :func:`title_hash`),
so building the index of 6M keys makes no Python object per key.

The cache (see :class:`IndexCache`): a folder ``<root>/entity-vocab/<path digest>-<state digest>/`` holding one
``.npy`` file per array (read with ``np.load(..., allow_pickle=False, mmap_mode="r")``: nothing is unpickled)
and ``header.json``.  The path digest is of the resolved source path (and how it was read); the state digest
of the source's size and ``mtime_ns`` and :data:`FORMAT_VERSION`, so a changed source file is a new folder
(the stale folder of the same source is removed when the new one is written).  The root is
``$LUKE_CACHE_DIR``, else ``$XDG_CACHE_HOME/luke``, else ``~/.cache/luke``.  Written through
:func:`luke.files.atomic_output`: the final name only ever holds a complete folder.

Integrity: ``header.json`` carries its own checksum, and for every array its dtype, shape and a BLAKE2b digest
(of the whole array up to 1 MiB, else of 64 pages spread over it, so checking costs a few milliseconds
whatever the size); file sizes must match exactly and the array bounds must agree.  Anything wrong (a truncated
or replaced ``.npy``, a damaged header, another format version) is a cache miss: the source is parsed again and
the folder rewritten, silently.  A cache folder that cannot be written (read-only, full disk) just means no
cache: the index is kept in memory for this process.

Environment: ``LUKE_ENTITY_VOCAB_CACHE=0`` disables the cache (files above the threshold are still indexed in
memory); ``LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES`` overrides :data:`INDEX_MIN_BYTES`, the source size from which
a file is indexed (``0`` indexes every file, which the tests use).

Measured by ``benchmarks/bench_entity_vocab_load.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from luke.files import atomic_output, env_switch, luke_cache_home, remove_path

__all__ = [
    "EntityIndex",
    "IndexCache",
    "FORMAT_VERSION",
    "INDEX_MIN_BYTES",
    "cache_enabled",
    "cache_root",
    "index_min_bytes",
]

#: Bumped whenever the arrays or the header change meaning: older cache folders are then never read.
FORMAT_VERSION = 2
#: Source files of at least this many bytes are indexed (and cached): about 100,000 keys of an mLUKE
#: ``entity_vocab.json``.  Smaller files are read into dicts, which are faster to look up in.
INDEX_MIN_BYTES = 4 * 1024 * 1024

_ARRAYS = ("titles", "offsets", "languages", "ids", "by_id", "id_starts", "counts", "hashes", "order", "buckets")
_FULL_DIGEST_BYTES = 1 << 20
_SAMPLE_PAGES = 64
_PAGE = 4096
_ITEMS_CHUNK = 1 << 16
_HASH_CHUNK = 1 << 15  # titles hashed at a time

Entity = tuple[str, str | None]


# ---------------------------------------------------------------------------------------------- settings
def cache_enabled() -> bool:
    """Whether index caches are read and written (``LUKE_ENTITY_VOCAB_CACHE=0`` turns them off)."""
    return env_switch("LUKE_ENTITY_VOCAB_CACHE")


def cache_root() -> Path:
    """``$LUKE_CACHE_DIR/entity-vocab`` (default ``~/.cache/luke/entity-vocab``, or under ``$XDG_CACHE_HOME``)."""
    return luke_cache_home() / "entity-vocab"


def index_min_bytes() -> int:
    """:data:`INDEX_MIN_BYTES`, or ``LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES`` when that is a non-negative integer."""
    value = os.environ.get("LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES", "").strip()
    if value.isdigit():
        return int(value)
    return INDEX_MIN_BYTES


def _smallest_int(max_value: int) -> type[np.signedinteger[Any]]:
    return np.int32 if max_value < 2**31 else np.int64


def _bucket_bits(n_keys: int) -> int:
    return min(max(1, n_keys.bit_length() - 2), 30)  # about 2-4 keys per bucket


# ---------------------------------------------------------------------------------------------- the title hash
# The title's UTF-8 read as little-endian 64-bit words w[i] (the last one zero-padded): sum(w[i] * M**i) plus
# the length times K, modulo 2**64, then murmur3's finaliser (so the top bits, which pick the bucket, depend on
# every byte).  Python does a few multiplications per title; numpy does a word position at a time over all the
# titles of a chunk.  A collision costs a byte comparison, never a wrong answer.
_MASK64 = (1 << 64) - 1
_M, _K = 0x9E3779B97F4A7C15, 0xD6E8FEB86659FD93
_MIX1, _MIX2 = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [_MASK64], dtype=np.uint64)  # k low bytes kept


def _title_sum(data: bytes) -> int:
    h, power = len(data) * _K, 1
    for word in struct.unpack(f"<{(len(data) + 7) // 8}Q", data + bytes(-len(data) % 8)):
        h += word * power
        power = (power * _M) & _MASK64
    return h & _MASK64


def title_hash(data: bytes) -> int:
    """The 64-bit hash of one title's UTF-8 bytes (what :func:`_title_hashes` computes for all of them)."""
    h = _title_sum(data)
    h ^= h >> 33
    h = (h * _MIX1) & _MASK64
    h ^= h >> 33
    h = (h * _MIX2) & _MASK64
    return h ^ (h >> 33)


def _title_hashes(titles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """:func:`title_hash` of every title ``titles[offsets[k]:offsets[k + 1]]``, a chunk of titles at a time."""
    n = len(offsets) - 1
    out = np.empty(n, dtype=np.uint64)
    for first in range(0, n, _HASH_CHUNK):
        last = min(first + _HASH_CHUNK, n)
        out[first:last] = _chunk_hashes(titles, offsets[first : last + 1].astype(np.int64))
    for multiplier in (_MIX1, _MIX2):
        out ^= out >> np.uint64(33)
        out *= np.uint64(multiplier)
    out ^= out >> np.uint64(33)
    return out


def _chunk_hashes(titles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The sums of :func:`title_hash` (before the finaliser) of the titles between ``offsets``.  The titles are
    taken longest first, so that the ones still being summed at word ``i`` are a prefix; a title's last word
    keeps only its own bytes; a title of more than 255 words is left to :func:`title_hash`."""
    base, end = int(offsets[0]), int(offsets[-1])
    padded = np.zeros(end - base + 16, dtype=np.uint8)
    padded[: end - base] = titles[base:end]
    words = np.ndarray((end - base + 8,), dtype="<u8", buffer=padded, strides=(1,))  # the word at each byte
    lengths = np.diff(offsets)
    n_words = np.minimum((lengths + 7) // 8, 255)
    order = np.argsort((255 - n_words).astype(np.uint8), kind="stable")  # longest first (a radix sort)
    starts, lengths = offsets[order] - base, lengths[order]
    more = np.r_[np.cumsum(np.bincount(n_words, minlength=256)[::-1])[::-1], 0]  # more[i]: of i words or more
    sums = lengths.astype(np.uint64) * np.uint64(_K)
    power = 1
    for i in range(int(n_words.max(initial=0))):
        full, last = int(more[i + 2]), int(more[i + 1])  # titles with a word after word i; those ending with it
        sums[:full] += words[starts[:full] + 8 * i] * np.uint64(power)
        tail = words[starts[full:last] + 8 * i] & _LOW_BYTES[np.minimum(lengths[full:last] - 8 * i, 8)]
        sums[full:last] += tail * np.uint64(power)
        power = (power * _M) & _MASK64
    out = np.empty_like(sums)
    out[order] = sums
    for row in np.flatnonzero(n_words == 255).tolist():  # 2040 bytes or more
        raw = titles[offsets[row] : offsets[row + 1]].tobytes()
        out[row] = _title_sum(raw)
    return out


# ---------------------------------------------------------------------------------------------- the index
class EntityIndex:
    """Lookups in the arrays described in the module docstring (in memory or memory-mapped)."""

    def __init__(self, arrays: dict[str, np.ndarray], languages: Sequence[str]) -> None:
        # plain ndarray views of memory maps: slicing a np.memmap costs several times more
        arrays = {name: array.view(np.ndarray) for name, array in arrays.items()}
        self.arrays = arrays
        self.languages: tuple[str, ...] = tuple(languages)
        self.n_keys = len(arrays["ids"])
        self.n_ids = len(arrays["counts"])
        self._titles = arrays["titles"]
        self._offsets = arrays["offsets"]
        self._languages = arrays["languages"]
        self._ids = arrays["ids"]
        self._by_id = arrays["by_id"]
        self._id_starts = arrays["id_starts"]
        self._counts = arrays["counts"]
        self._hashes = arrays["hashes"]
        self._order = arrays["order"]
        self._buckets = arrays["buckets"]
        self._shift = 64 - (len(self._buckets) - 1).bit_length() + 1

    @classmethod
    def build(
        cls,
        titles: Sequence[str],
        languages: Sequence[str | None],
        ids: np.ndarray,
        counts: np.ndarray | None = None,
    ) -> EntityIndex:
        """The index of keys ``(titles[k], languages[k]) -> ids[k]``, already checked by the caller (no key twice,
        ids covering ``0 .. n - 1``); ``counts`` (one per id) defaults to zeros."""
        encoded = list(map(str.encode, titles, repeat("utf-8"), repeat("surrogatepass")))
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        del encoded
        table = sorted({lang for lang in set(languages) if lang is not None})
        codes: dict[str | None, int] = {None: -1, **{lang: i for i, lang in enumerate(table)}}
        language_codes = np.fromiter(map(codes.__getitem__, languages), dtype=np.int32, count=len(offsets) - 1)
        index = cls.from_encoded(blob, offsets, language_codes, table, np.asarray(ids), counts)
        if index is None:
            raise ValueError("two keys are the same (title, language)")  # a bug of the caller, which checks keys
        return index

    @classmethod
    def from_encoded(
        cls,
        titles: np.ndarray,
        offsets: np.ndarray,
        languages: np.ndarray,
        table: Sequence[str],
        ids: np.ndarray,
        counts: np.ndarray | None = None,
    ) -> EntityIndex | None:
        """The index of the keys ``k``: title ``titles[offsets[k]:offsets[k + 1]]`` (UTF-8), language
        ``table[languages[k]]`` (``-1``: none) and id ``ids[k]`` (covering ``0 .. n - 1``, checked by the caller);
        ``None`` when two keys are the same ``(title, language)``.  ``table`` must be sorted."""
        n_keys = len(ids)
        n_ids = int(ids.max()) + 1 if n_keys else 0
        hashes = _title_hashes(titles, offsets)
        order, ties = _order_by_hash(hashes, languages, len(table))
        if _has_equal_titles(titles, offsets, order, ties):
            return None
        hashes = hashes[order]
        bits = _bucket_bits(n_keys)
        starts = np.searchsorted(hashes >> np.uint64(64 - bits), np.arange(2**bits, dtype=np.uint64))
        key_type = _smallest_int(n_keys + 1)
        by_id = _stable_order(ids.astype(np.int64, copy=False), n_ids)
        arrays = {
            "titles": titles,
            "offsets": offsets.astype(_smallest_int(int(offsets[-1])), copy=False),
            "languages": languages.astype(np.int16 if len(table) < 2**15 else np.int32, copy=False),
            "ids": ids.astype(_smallest_int(n_ids), copy=False),
            "by_id": by_id.astype(key_type, copy=False),
            "id_starts": np.r_[0, np.cumsum(np.bincount(ids, minlength=n_ids))].astype(key_type, copy=False),
            "counts": np.zeros(n_ids, np.int64) if counts is None else np.asarray(counts, dtype=np.int64),
            "hashes": hashes,
            "order": order.astype(key_type, copy=False),
            "buckets": np.append(starts, n_keys).astype(key_type, copy=False),
        }
        return cls(arrays, table)

    # ------------------------------------------------------------------ lookups
    def _language(self, code: int) -> str | None:
        return None if code < 0 else self.languages[code]

    def _title(self, key: int) -> str:
        lo, hi = self._offsets[key : key + 2].tolist()
        return self._titles[lo:hi].tobytes().decode("utf-8", "surrogatepass")

    def lookup(self, title: str) -> list[tuple[str | None, int]]:
        """``(language, id)`` of every key whose title is exactly ``title`` (empty when there is none)."""
        if not isinstance(title, str):
            raise TypeError(f"an entity title must be a string, got {type(title).__name__}")
        data = title.encode("utf-8", "surrogatepass")
        value = title_hash(data)
        bucket = value >> self._shift
        start, end = self._buckets[bucket : bucket + 2].tolist()
        if start == end:
            return []
        hashes = self._hashes[start:end].tolist()
        if value not in hashes:
            return []
        found = []
        for j, other in enumerate(hashes, start):
            if other != value:
                continue
            key = int(self._order[j])
            lo, hi = self._offsets[key : key + 2].tolist()
            if self._titles[lo:hi].tobytes() == data:  # a hash is never trusted alone
                found.append((self._language(int(self._languages[key])), int(self._ids[key])))
        return found

    def entities(self, entity_id: int) -> list[Entity]:
        """The ``(title, language)`` keys of an id (``0 <= entity_id < n_ids``), in their order."""
        first, last = self._id_starts[entity_id : entity_id + 2].tolist()
        keys = self._by_id[first:last].tolist()
        return [(self._title(key), self._language(int(self._languages[key]))) for key in keys]

    def count(self, entity_id: int) -> int:
        """The hyperlink count of an id."""
        return int(self._counts[entity_id])

    def items(self) -> Iterator[tuple[Entity, int]]:
        """``((title, language), id)`` of every key, in id order (read in chunks)."""
        for first in range(0, self.n_keys, _ITEMS_CHUNK):
            keys = self._by_id[first : first + _ITEMS_CHUNK]
            starts, ends = self._offsets[keys].tolist(), self._offsets[keys + 1].tolist()
            lo, hi = min(starts), max(ends)
            raw = self._titles[lo:hi].tobytes()  # one copy when the keys are stored in id order (the usual case)
            if hi - lo > 4 * (sum(ends) - sum(starts)) + _PAGE:
                raw, lo = b"", 0
            codes = self._languages[keys].tolist()
            for start, end, code, entity_id in zip(starts, ends, codes, self._ids[keys].tolist(), strict=True):
                data = raw[start - lo : end - lo] if raw else self._titles[start:end].tobytes()
                yield (data.decode("utf-8", "surrogatepass"), self._language(code)), entity_id

    def same_as(self, other: EntityIndex) -> bool:
        """Whether both indexes hold the same keys, ids and counts (compared array by array)."""
        if self.n_keys != other.n_keys or self.n_ids != other.n_ids:
            return False
        if self.languages == other.languages:
            same_langs = np.array_equal(self._languages, other._languages)
        else:
            mine = np.array([*self.languages, None], dtype=object)[self._languages]
            theirs = np.array([*other.languages, None], dtype=object)[other._languages]
            same_langs = bool((mine == theirs).all())
        return bool(
            same_langs
            and np.array_equal(self._titles, other._titles)
            and np.array_equal(self._offsets, other._offsets)
            and np.array_equal(self._ids, other._ids)
            and np.array_equal(self._counts, other._counts)
        )


def _stable_order(values: np.ndarray, limit: int) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` of non-negative integers below ``limit``, by one plain sort of
    ``value << b | position`` (several times faster than numpy's stable argsort on millions of values)."""
    n = len(values)
    if n == 0 or not (values[1:] < values[:-1]).any():
        return np.arange(n, dtype=np.int64)
    position_bits = n.bit_length()
    if limit.bit_length() + position_bits > 63:
        return np.argsort(values, kind="stable")
    packed = values.astype(np.int64) << position_bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << position_bits) - 1)


def _order_by_hash(hashes: np.ndarray, languages: np.ndarray, n_languages: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys ordered by the top bits of their hash, then language, then position (the buckets are contiguous),
    and the places ``j`` where the keys ``order[j]`` and ``order[j + 1]`` agree on both (a key given twice, or
    rarely two titles whose hashes share their top bits).  One plain sort of the three packed into a uint64 when
    they fit, else a lexsort."""
    n = len(hashes)
    position_bits = max(1, n.bit_length())
    language_bits = (n_languages + 1).bit_length()
    hash_bits = 64 - position_bits - language_bits
    if hash_bits < _bucket_bits(n) + 8:
        order = np.lexsort((np.arange(n), languages, hashes))
        group = hashes[order]
        ties = np.flatnonzero((group[1:] == group[:-1]) & (languages[order[1:]] == languages[order[:-1]]))
        return order, ties
    packed = hashes >> np.uint64(64 - hash_bits) << np.uint64(language_bits + position_bits)
    packed |= (languages.astype(np.int64) + 1).astype(np.uint64) << np.uint64(position_bits)
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    group = packed >> np.uint64(position_bits)
    ties = np.flatnonzero(group[1:] == group[:-1])
    return (packed & np.uint64((1 << position_bits) - 1)).astype(np.int64), ties


def _has_equal_titles(titles: np.ndarray, offsets: np.ndarray, order: np.ndarray, ties: np.ndarray) -> bool:
    """Whether two keys of one run of ties (see :func:`_order_by_hash`) have the same title bytes."""
    if not len(ties):
        return False
    breaks = np.flatnonzero(np.diff(ties) != 1)
    firsts, lasts = ties[np.r_[0, breaks + 1]], ties[np.r_[breaks, len(ties) - 1]]
    for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        keys = order[first : last + 2].tolist()
        if len({titles[offsets[key] : offsets[key + 1]].tobytes() for key in keys}) < len(keys):
            return True
    return False


# ---------------------------------------------------------------------------------------------- integrity
def _array_digest(array: np.ndarray) -> str:
    """BLAKE2b of the array's bytes: all of them up to 1 MiB, else 64 pages spread evenly (and the size)."""
    raw = array.reshape(-1).view(np.uint8)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(raw.size).encode())
    if raw.size <= _FULL_DIGEST_BYTES:
        digest.update(raw)
    else:
        for start in np.linspace(0, raw.size - _PAGE, _SAMPLE_PAGES).astype(np.int64).tolist():
            digest.update(raw[start : start + _PAGE])
    return digest.hexdigest()


def _header_checksum(header: dict[str, Any]) -> str:
    body = {key: value for key, value in header.items() if key != "checksum"}
    return hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=16).hexdigest()


def _consistent(index: EntityIndex) -> bool:
    """The bounds the lookups rely on (cheap: end points only; the digests cover the contents)."""
    n_buckets = len(index._buckets) - 1
    return (
        len(index._offsets) == index.n_keys + 1
        and len(index._languages) == index.n_keys
        and len(index._hashes) == index.n_keys
        and len(index._order) == index.n_keys
        and len(index._by_id) == index.n_keys
        and len(index._id_starts) == index.n_ids + 1
        and n_buckets > 0
        and n_buckets & (n_buckets - 1) == 0
        and index._offsets[:1].tolist() == [0]
        and index._offsets[-1:].tolist() == [len(index._titles)]
        and index._id_starts[:1].tolist() == [0]
        and index._id_starts[-1:].tolist() == [index.n_keys]
        and index._buckets[:1].tolist() == [0]
        and index._buckets[-1:].tolist() == [index.n_keys]
        and index._ids[index._by_id[-1:]].tolist() == [index.n_ids - 1]
    )


# ---------------------------------------------------------------------------------------------- the cache
class IndexCache:
    """The cache folder of one source file in one state (size, ``mtime_ns``)."""

    def __init__(self, folder: Path, source: dict[str, Any]) -> None:
        self.folder = folder
        self.source = source

    @classmethod
    def for_source(cls, path: Path, stat: os.stat_result, variant: str = "") -> IndexCache | None:
        """The cache of ``path`` as it is now (``stat`` taken before reading it); ``None`` when caching is off
        or no cache folder can be named.  ``variant`` names how the file is read (format, options)."""
        if not cache_enabled():
            return None
        try:
            resolved = str(path.resolve())
            root = cache_root()
        except (OSError, RuntimeError):  # no home folder, a loop of links
            return None
        source = {"path": resolved, "variant": variant, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        name = hashlib.blake2b(f"{resolved}\0{variant}".encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        state = hashlib.blake2b(f"{FORMAT_VERSION}\0{stat.st_size}\0{stat.st_mtime_ns}".encode(), digest_size=8)
        return cls(root / f"{name}-{state.hexdigest()}", source)

    def open(self) -> EntityIndex | None:
        """The memory-mapped index, or ``None`` when the folder is missing, of another source state or damaged
        in any way (checked as the module docstring says)."""
        try:
            return self._open()
        except Exception:  # noqa: BLE001 - a cache that cannot be read is a miss, whatever the reason
            return None

    def _open(self) -> EntityIndex | None:
        header_path = self.folder / "header.json"
        if not header_path.is_file():
            return None
        header = json.loads(header_path.read_text(encoding="utf-8"))
        if (
            not isinstance(header, dict)
            or header.get("format") != FORMAT_VERSION
            or header.get("checksum") != _header_checksum(header)
            or header.get("source") != self.source
        ):
            return None
        arrays = {}
        for name in _ARRAYS:
            spec = header["arrays"][name]
            path = self.folder / f"{name}.npy"
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if (
                array.dtype.str != spec["dtype"]
                or list(array.shape) != spec["shape"]
                or path.stat().st_size != array.offset + array.nbytes
                or _array_digest(array) != spec["digest"]
            ):
                return None
            arrays[name] = array
        index = EntityIndex(arrays, header["languages"])
        return index if _consistent(index) else None

    def store(self, index: EntityIndex) -> EntityIndex | None:
        """Write ``index`` here and return it memory-mapped from the folder; ``None`` when the folder cannot be
        written (read-only, full disk): no cache then, and no error."""
        header: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "source": self.source,
            "languages": list(index.languages),
            "arrays": {},
        }
        try:
            with atomic_output(self.folder, kind="dir") as tmp:
                for name in _ARRAYS:
                    array = np.ascontiguousarray(index.arrays[name])
                    np.save(tmp / f"{name}.npy", array, allow_pickle=False)
                    spec = {"dtype": array.dtype.str, "shape": list(array.shape), "digest": _array_digest(array)}
                    header["arrays"][name] = spec
                header["checksum"] = _header_checksum(header)
                (tmp / "header.json").write_text(json.dumps(header, indent=1), encoding="utf-8")
            self._remove_stale()
        except OSError:
            return None
        return self.open()

    def _remove_stale(self) -> None:
        """Remove this source's folders for its earlier states (other processes' temporaries are left alone)."""
        prefix = self.folder.name.split("-", 1)[0] + "-"
        for entry in self.folder.parent.iterdir():
            if entry.name.startswith(prefix) and entry.name != self.folder.name:
                remove_path(entry)
