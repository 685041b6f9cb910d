"""A large entity vocabulary as plain numpy arrays, and a persistent cache of them that loads in milliseconds.

Why: the real mLUKE ``entity_vocab.json`` holds 1.2M ids under about 6M ``lang:Title`` keys (hundreds of MB).
Building Python dicts, tuples and sets for every key (what :class:`luke.entity_vocab.EntityVocab` does for a
vocabulary built in code or a small file) takes tens of seconds and gigabytes on every load; even a bare
``json.load`` of the file (``transformers.MLukeTokenizer``) takes several seconds.  A large vocabulary file is
therefore parsed and checked once (with all of :mod:`luke.entity_vocab`'s checks and ``FILE:LINE`` errors) into
the arrays of an :class:`EntityIndex`, written to a cache folder, and later loads memory-map that folder: no
Python object per key is made on load, and the operating system pages in only what lookups touch.

The arrays (keys are the ``(title, language)`` pairs, ordered by id, then as in the file):

``titles`` (uint8)      UTF-8 of every key's title, one after another (``surrogatepass``: JSON may hold lone
                        surrogates, which round-trip exactly)
``offsets``             ``titles[offsets[k]:offsets[k + 1]]`` is key ``k``'s title
``languages``           key ``k``'s language as an index into the header's language list, ``-1`` for none
``ids``                 key ``k``'s entity id
``id_starts``           the keys of id ``i`` are ``id_starts[i] .. id_starts[i + 1] - 1``
``counts`` (int64)      the hyperlink count of every id
``hashes`` (uint64)     a stable 64-bit hash of every key's title (BLAKE2b, 8 bytes, little-endian), sorted;
                        never Python's salted ``hash``, which changes between processes
``order``               ``order[j]`` is the key whose title hash is ``hashes[j]``
``buckets``             ``hashes[buckets[b]:buckets[b + 1]]`` are the hashes whose top bits are ``b``: a lookup
                        reads two entries of it and a handful of hashes instead of a binary search

One hash index over the titles serves every lookup kind: a title's keys (all its languages) are found at once,
and ``(title, language)`` is the one among them in that language; a hash is never trusted alone (the title's
bytes are compared).  Integer arrays use int32 where the values fit.

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
from collections.abc import Iterator, Sequence
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from luke.files import atomic_output, remove_path

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
FORMAT_VERSION = 1
#: Source files of at least this many bytes are indexed (and cached): about 100,000 keys of an mLUKE
#: ``entity_vocab.json``.  Smaller files are read into dicts, which are faster to look up in.
INDEX_MIN_BYTES = 4 * 1024 * 1024

_ARRAYS = ("titles", "offsets", "languages", "ids", "id_starts", "counts", "hashes", "order", "buckets")
_FULL_DIGEST_BYTES = 1 << 20
_SAMPLE_PAGES = 64
_PAGE = 4096
_ITEMS_CHUNK = 1 << 16
_blake8 = partial(hashlib.blake2b, digest_size=8)

Entity = tuple[str, str | None]


# ---------------------------------------------------------------------------------------------- settings
def cache_enabled() -> bool:
    """Whether index caches are read and written (``LUKE_ENTITY_VOCAB_CACHE=0`` turns them off)."""
    return os.environ.get("LUKE_ENTITY_VOCAB_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_root() -> Path:
    """``$LUKE_CACHE_DIR/entity-vocab`` (default ``~/.cache/luke/entity-vocab``, or under ``$XDG_CACHE_HOME``)."""
    root = os.environ.get("LUKE_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg, "luke") if xdg else os.path.join(Path.home(), ".cache", "luke")
    return Path(root) / "entity-vocab"


def index_min_bytes() -> int:
    """:data:`INDEX_MIN_BYTES`, or ``LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES`` when that is a non-negative integer."""
    value = os.environ.get("LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES", "").strip()
    if value.isdigit():
        return int(value)
    return INDEX_MIN_BYTES


def _smallest_int(max_value: int) -> type[np.signedinteger[Any]]:
    return np.int32 if max_value < 2**31 else np.int64


def _title_hashes(encoded: Sequence[bytes]) -> np.ndarray:
    digests = b"".join(map(hashlib.blake2b.digest, map(_blake8, encoded)))
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def _bucket_bits(n_keys: int) -> int:
    return min(max(1, n_keys.bit_length() - 2), 30)  # about 2-4 keys per bucket


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
        """The index of keys ``(titles[k], languages[k]) -> ids[k]``, already checked by the caller.

        ``ids`` must be non-decreasing and cover ``0 .. n - 1`` (the keys of one id together, in their order);
        ``counts`` (one per id) defaults to zeros.
        """
        ids = np.asarray(ids, dtype=np.int64)
        n_keys = len(ids)
        n_ids = int(ids[-1]) + 1 if n_keys else 0
        encoded = list(map(str.encode, titles, repeat("utf-8"), repeat("surrogatepass")))
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n_keys)
        offsets = np.zeros(n_keys + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        table = sorted({lang for lang in set(languages) if lang is not None})
        codes: dict[str | None, int] = {None: -1, **{lang: i for i, lang in enumerate(table)}}
        lang_dtype = np.int16 if len(table) < 2**15 else np.int32
        hashes = _title_hashes(encoded)
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        del encoded
        order = np.argsort(hashes, kind="stable")
        hashes = hashes[order]
        bits = _bucket_bits(n_keys)
        starts = np.searchsorted(hashes, np.arange(2**bits, dtype=np.uint64) << np.uint64(64 - bits))
        key_type = _smallest_int(n_keys + 1)
        arrays = {
            "titles": blob,
            "offsets": offsets.astype(_smallest_int(int(offsets[-1])), copy=False),
            "languages": np.fromiter(map(codes.__getitem__, languages), dtype=lang_dtype, count=n_keys),
            "ids": ids.astype(_smallest_int(n_ids), copy=False),
            "id_starts": np.searchsorted(ids, np.arange(n_ids + 1)).astype(key_type, copy=False),
            "counts": np.zeros(n_ids, np.int64) if counts is None else np.asarray(counts, dtype=np.int64),
            "hashes": hashes,
            "order": order.astype(key_type, copy=False),
            "buckets": np.append(starts, n_keys).astype(key_type, copy=False),
        }
        return cls(arrays, table)

    # ------------------------------------------------------------------ lookups
    def _language(self, code: int) -> str | None:
        return None if code < 0 else self.languages[code]

    def lookup(self, title: str) -> list[tuple[str | None, int]]:
        """``(language, id)`` of every key whose title is exactly ``title`` (empty when there is none)."""
        if not isinstance(title, str):
            raise TypeError(f"an entity title must be a string, got {type(title).__name__}")
        data = title.encode("utf-8", "surrogatepass")
        value = int.from_bytes(_blake8(data).digest(), "little")
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
        offsets = self._offsets[first : last + 1].tolist()
        raw = self._titles[offsets[0] : offsets[-1]].tobytes()
        base = offsets[0]
        codes = self._languages[first:last].tolist()
        return [
            (raw[offsets[i] - base : offsets[i + 1] - base].decode("utf-8", "surrogatepass"), self._language(code))
            for i, code in enumerate(codes)
        ]

    def count(self, entity_id: int) -> int:
        """The hyperlink count of an id."""
        return int(self._counts[entity_id])

    def items(self) -> Iterator[tuple[Entity, int]]:
        """``((title, language), id)`` of every key, in id order (read in chunks)."""
        for first in range(0, self.n_keys, _ITEMS_CHUNK):
            last = min(first + _ITEMS_CHUNK, self.n_keys)
            offsets = self._offsets[first : last + 1].tolist()
            raw = self._titles[offsets[0] : offsets[-1]].tobytes()
            base = offsets[0]
            ids = self._ids[first:last].tolist()
            codes = self._languages[first:last].tolist()
            for i, (entity_id, code) in enumerate(zip(ids, codes, strict=True)):
                title = raw[offsets[i] - base : offsets[i + 1] - base].decode("utf-8", "surrogatepass")
                yield (title, self._language(code)), entity_id

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
        and len(index._id_starts) == index.n_ids + 1
        and n_buckets > 0
        and n_buckets & (n_buckets - 1) == 0
        and index._offsets[:1].tolist() == [0]
        and index._offsets[-1:].tolist() == [len(index._titles)]
        and index._id_starts[:1].tolist() == [0]
        and index._id_starts[-1:].tolist() == [index.n_keys]
        and index._buckets[:1].tolist() == [0]
        and index._buckets[-1:].tolist() == [index.n_keys]
        and index._ids[-1:].tolist() == [index.n_ids - 1]
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
