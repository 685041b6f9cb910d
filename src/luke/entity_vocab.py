"""Entity vocabulary for LUKE / mLUKE.

An :class:`EntityVocab` maps Wikipedia entity titles (optionally qualified by a language code) to
integer ids and keeps the hyperlink count of every id.  Several ``(title, language)`` pairs may share
one id (mLUKE: the same Wikidata concept in different languages).

Three on-disk formats are read and written; the format is chosen from the file suffix:

``.tsv``
    The legacy format of the original LUKE release: one ``title<TAB>count`` line per entity, the id
    is the (0-based) line number.
``.jsonl``
    The current format of the original repository: one JSON object per line,
    ``{"id": int, "entities": [[title, language_or_null], ...], "count": int}``.
``.json``
    The ``transformers`` format (``entity_vocab.json``): a single object ``{title: id}`` (LUKE) or
    ``{"lang:title": id}`` (mLUKE; special entities are stored without a language prefix).

A large vocabulary file (the real mLUKE ``entity_vocab.json``: 1.2M ids, about 6M keys) is not read into
dicts: it is parsed and checked once into the arrays of a :class:`luke.entity_index.EntityIndex` (a ``.json``
by :mod:`luke.entity_vocab_json`, without a Python object per key), cached on disk, and memory-mapped on later
loads (a few milliseconds instead of seconds; see that module for the cache, its location and
``LUKE_ENTITY_VOCAB_CACHE=0``).  Such a vocabulary answers every lookup exactly as one held in
dicts; :meth:`EntityVocab.add` turns it into dicts first.

Special entities (``[PAD]``, ``[UNK]``, ``[MASK]``, ``[MASK2]``) are always resolved *by name*: their
ids differ between released vocabularies (the original monolingual vocab has ``[PAD]=0``; the "lite"
checkpoints have ``[MASK]=0, [UNK]=1, [PAD]=2, [MASK2]=3``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from luke.entity_index import EntityIndex, IndexCache, index_min_bytes
from luke.entity_vocab_json import index_json_file
from luke.errors import DataError, shorten
from luke.files import read_text, text_lines, write_text_atomic
from luke.hub import pop_hub_kwargs, resolve_pretrained

__all__ = [
    "EntityVocab",
    "PAD_TOKEN",
    "UNK_TOKEN",
    "MASK_TOKEN",
    "MASK2_TOKEN",
    "DEFAULT_SPECIALS",
    "ENTITY_VOCAB_FILES",
]

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
MASK_TOKEN = "[MASK]"
MASK2_TOKEN = "[MASK2]"
DEFAULT_SPECIALS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, MASK_TOKEN, MASK2_TOKEN)

Entity = tuple[str, str | None]
#: The file names :meth:`EntityVocab.from_pretrained` looks for in a folder, in this order.
ENTITY_VOCAB_FILES: tuple[str, ...] = ("entity_vocab.json", "entity_vocab.jsonl", "entity_vocab.tsv")

# mLUKE keys look like "en:Japan", "zh-yue:...": a short lowercase language code and a colon.
_LANG_KEY = re.compile(r"^([a-z]{2,3}(?:-[a-z0-9]+)*):(.+)$", re.DOTALL)


class EntityVocab:
    """A bidirectional mapping between entities ``(title, language)`` and integer ids.

    Ids are always contiguous (``0 .. len(vocab) - 1``).  Use :meth:`load`, :meth:`from_counts`,
    :meth:`from_dict` or :meth:`from_hf_dict` to build one.
    """

    def __init__(self, entries: Iterable[tuple[int, Sequence[Entity], int]] = ()) -> None:
        """Build a vocabulary from ``(id, [(title, language), ...], count)`` triples.

        Raises:
            ValueError: on a duplicate id, a duplicate ``(title, language)``, an id without titles or a
                gap in the ids.
        """
        #: The file the vocabulary was loaded from (named in errors), if any.
        self.source: Path | None = None
        #: The arrays of a large vocabulary loaded from a file (then the dicts below are empty), else None.
        self._index: EntityIndex | None = None
        self._entity_to_id: dict[Entity, int] = {}
        self._id_to_entities: dict[int, list[Entity]] = {}
        self._counts: dict[int, int] = {}
        self._title_to_ids: dict[str, set[int]] = {}
        for entity_id, entities, count in entries:
            self._add_entry(int(entity_id), list(entities), int(count), where=None)
        self._check_contiguous(where=None)

    # ------------------------------------------------------------------ construction helpers
    def _add_entry(self, entity_id: int, entities: list[Entity], count: int, where: str | None) -> None:
        prefix = f"{where}: " if where else ""
        if entity_id < 0:
            raise DataError(f"{prefix}negative entity id {entity_id}")
        if entity_id in self._id_to_entities:
            raise DataError(f"{prefix}duplicate entity id {entity_id}")
        if not entities:
            raise DataError(f"{prefix}entity id {entity_id} has no titles")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            got = shorten(count)
            raise DataError(f"{prefix}entity id {entity_id}: count must be a non-negative integer, got {got}")
        for title, language in entities:
            if not isinstance(title, str) or not title.strip():
                raise DataError(
                    f"{prefix}entity id {entity_id}: title must be a non-empty string (not only whitespace), "
                    f"got {shorten(repr(title))}"
                )
            if language is not None and not isinstance(language, str):
                raise DataError(f"{prefix}entity id {entity_id}: language must be a string or null")
            key = (title, language)
            if key in self._entity_to_id:
                lang = f" (language {language!r})" if language else ""
                raise DataError(
                    f"{prefix}duplicate title {title!r}{lang}: already has id {self._entity_to_id[key]}, "
                    f"again for id {entity_id}"
                )
            self._entity_to_id[key] = entity_id
            self._title_to_ids.setdefault(title, set()).add(entity_id)
        self._id_to_entities[entity_id] = [(t, lang) for t, lang in entities]
        self._counts[entity_id] = count

    def _check_contiguous(self, where: str | None) -> None:
        n = len(self._id_to_entities)
        if n and max(self._id_to_entities) != n - 1:
            missing = next(i for i in range(n) if i not in self._id_to_entities)
            prefix = f"{where}: " if where else ""
            raise DataError(
                f"{prefix}entity ids are not contiguous: id {missing} is missing "
                f"({n} ids, largest id {max(self._id_to_entities)})"
            )

    @classmethod
    def from_counts(
        cls,
        items: Iterable[tuple[str, int]],
        *,
        language: str | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
    ) -> EntityVocab:
        """Build a vocabulary from ``(title, count)`` pairs.

        The special entities get ids ``0 ..`` in the given order (count 0, no language); the items
        follow in the given order with contiguous ids.  All items get ``language``.
        """
        entries: list[tuple[int, list[Entity], int]] = []
        for name in specials:
            entries.append((len(entries), [(name, None)], 0))
        for title, count in items:
            entries.append((len(entries), [(title, language)], int(count)))
        return cls(entries)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, int], *, multilingual: bool | None = None) -> EntityVocab:
        """Build a vocabulary from a ``transformers``-style ``{key: id}`` mapping (counts are 0).

        Args:
            mapping: ``{title: id}`` (LUKE) or ``{"lang:title": id}`` (mLUKE).
            multilingual: whether keys are ``lang:title``.  ``None`` detects it: keys are treated as
                language-prefixed when every non-special key looks like ``xx:Title``.
        """
        return cls._from_mapping(mapping.items(), multilingual=multilingual, where=None)

    @classmethod
    def _from_mapping(
        cls, pairs: Iterable[tuple[str, int]], *, multilingual: bool | None, where: str | None
    ) -> EntityVocab:
        pairs = list(pairs)
        prefix = f"{where}: " if where else ""
        for key, value in pairs:
            if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int):
                raise DataError(f"{prefix}expected a mapping of title -> integer id, got {key!r}: {value!r}")
        if multilingual is None:
            regular = [k for k, _ in pairs if k not in DEFAULT_SPECIALS]
            multilingual = bool(regular) and all(_LANG_KEY.match(k) for k in regular)
        grouped: dict[int, list[Entity]] = {}
        for key, entity_id in pairs:
            entity: Entity = (key, None)
            if multilingual and key not in DEFAULT_SPECIALS:
                match = _LANG_KEY.match(key)
                if match is None:
                    raise DataError(f"{prefix}key {key!r} is not of the form 'lang:title'")
                entity = (match.group(2), match.group(1))
            grouped.setdefault(entity_id, []).append(entity)
        vocab = cls()
        for entity_id in sorted(grouped):
            vocab._add_entry(entity_id, grouped[entity_id], 0, where=where)
        vocab._check_contiguous(where=where)
        return vocab

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, multilingual: bool | None = None) -> EntityVocab:
        """Load a vocabulary; the format is chosen from the suffix (``.tsv``, ``.jsonl``, ``.json``).

        A file of at least :data:`luke.entity_index.INDEX_MIN_BYTES` is indexed instead of read into dicts:
        its first load parses and checks it as usual and writes an index cache, later loads of the unchanged
        file memory-map that cache (see :mod:`luke.entity_index`).  The answers are the same either way.

        Raises:
            ValueError: unknown suffix, malformed line (with file name and 1-based line number),
                duplicate titles or ids, id gaps.
            FileNotFoundError: the file does not exist.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".tsv", ".jsonl", ".json"):
            raise DataError(f"{path}: unknown entity vocabulary format {suffix!r} (expected .tsv, .jsonl or .json)")
        vocab = cls._load_indexed(path, suffix, multilingual)
        if vocab is None:
            vocab = cls._load_format(path, suffix, multilingual)
        if not len(vocab):
            raise DataError(
                path, "the entity vocabulary is empty (expected at least the special entities [PAD] and [UNK])"
            )
        vocab.source = path
        return vocab

    @classmethod
    def _load_format(cls, path: Path, suffix: str, multilingual: bool | None) -> EntityVocab:
        """The file read into dicts (every check, FILE:LINE errors)."""
        if suffix == ".tsv":
            return cls._load_tsv(path)
        if suffix == ".jsonl":
            return cls._load_jsonl(path)
        vocab = cls._load_json(path, multilingual=multilingual)
        assert vocab is not None
        return vocab

    @classmethod
    def _load_indexed(cls, path: Path, suffix: str, multilingual: bool | None) -> EntityVocab | None:
        """A large file as an indexed vocabulary: from its cache, else parsed (and cached); ``None`` for a small
        file or one that cannot be stat'ed (read into dicts then, which reports a missing file)."""
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file() or stat.st_size < index_min_bytes():
            return None
        cache = IndexCache.for_source(path, stat, variant=f"{suffix}:{multilingual}")
        index = cache.open() if cache is not None else None
        if index is None:
            index = index_json_file(path, multilingual, DEFAULT_SPECIALS) if suffix == ".json" else None
            if index is None:  # .tsv, .jsonl, or a .json the fast reader does not vouch for: its error
                vocab = cls._load_format(path, suffix, multilingual)
                if not len(vocab):
                    return vocab
                index = EntityIndex.build(*vocab._columns())
            if cache is not None:
                index = cache.store(index) or index
        vocab = cls()
        vocab._index = index
        return vocab

    def _columns(self) -> tuple[list[str], list[str | None], np.ndarray, np.ndarray]:
        """``(titles, languages, ids, counts)`` of every key in id order, for :meth:`EntityIndex.build`."""
        titles: list[str] = []
        languages: list[str | None] = []
        ids: list[int] = []
        for (title, language), entity_id in self.items():
            titles.append(title)
            languages.append(language)
            ids.append(entity_id)
        counts = np.fromiter((self.count(i) for i in range(len(self))), dtype=np.int64, count=len(self))
        return titles, languages, np.asarray(ids, dtype=np.int64), counts

    def _materialize(self) -> None:
        """Turn an indexed vocabulary into dicts (before a change)."""
        index = self._index
        if index is None:
            return
        self._index = None
        for entity_id in range(index.n_ids):
            self._add_entry(entity_id, index.entities(entity_id), index.count(entity_id), where=None)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], *, multilingual: bool | None = None, **kwargs: Any
    ) -> EntityVocab:
        """The entity vocabulary of a file, a model/tokenizer folder or a Hugging Face Hub repo id.

        A folder is searched for :data:`ENTITY_VOCAB_FILES` (``entity_vocab.json``, ``.jsonl``, ``.tsv``), then
        for an ``entity_vocab`` object inside ``tokenizer_config.json`` (transformers 5 writes it there).  An
        existing local path always wins; anything else is a repo id, read through :mod:`luke.hub` with the hub
        keyword arguments ``revision``, ``cache_dir``, ``local_files_only`` and ``token``.

        Raises:
            DataError: no entity vocabulary in the folder, or a malformed one (naming the file).
            CheckpointError: a repo id that cannot be resolved (see :func:`luke.hub.resolve_pretrained`).
        """
        path = Path(pretrained_model_name_or_path)
        if path.is_file():
            if kwargs:
                raise TypeError(f"unexpected keyword arguments for a file: {sorted(kwargs)}")
            return cls.load(path, multilingual=multilingual)
        hub_kwargs = pop_hub_kwargs(kwargs)
        if kwargs:
            raise TypeError(f"unexpected keyword arguments: {sorted(kwargs)}")
        folder = resolve_pretrained(pretrained_model_name_or_path, files="entity_vocab", **hub_kwargs)
        for name in ENTITY_VOCAB_FILES:
            if (folder / name).is_file():
                return cls.load(folder / name, multilingual=multilingual)
        config = folder / "tokenizer_config.json"
        if config.is_file():
            vocab = cls._load_json(config, multilingual=multilingual, embedded_only=True)
            if vocab is not None:
                vocab.source = config
                return vocab
        names = "/".join(ENTITY_VOCAB_FILES)
        kind = non_luke_model_type(folder)
        if kind is not None:  # e.g. a BERT repo: say what it is rather than only what is missing
            raise DataError(
                f"{pretrained_model_name_or_path} is a {kind!r} model, not LUKE: it has no entity vocabulary "
                f"({names}); load one from a LUKE model or an entity vocabulary file"
            )
        raise DataError(folder, f"no entity vocabulary found ({names}, or 'entity_vocab' in tokenizer_config.json)")

    @classmethod
    def _load_tsv(cls, path: Path) -> EntityVocab:
        vocab = cls()
        for line_no, line in text_lines(path):
            where = f"{path}:{line_no}"
            if not line.strip():
                raise DataError(f"{where}: empty line (the TSV format has one 'title<TAB>count' per line)")
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"{where}: expected 'title<TAB>count', got {shorten(line)!r}")
            title, count_str = parts
            try:
                count = int(count_str)
            except ValueError:
                raise DataError(f"{where}: count {shorten(count_str)!r} is not an integer") from None
            vocab._add_entry(line_no - 1, [(title, None)], count, where=where)
        return vocab

    @classmethod
    def _load_jsonl(cls, path: Path) -> EntityVocab:
        vocab = cls()
        for line_no, raw in text_lines(path):
            where = f"{path}:{line_no}"
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: invalid JSON ({e.msg})") from None
            if not isinstance(obj, dict) or "id" not in obj or "entities" not in obj:
                raise DataError(f"{where}: expected an object with keys 'id', 'entities', 'count'")
            entity_id = obj["id"]
            if isinstance(entity_id, bool) or not isinstance(entity_id, int):
                raise DataError(f"{where}: 'id' must be an integer, got {entity_id!r}")
            raw_entities = obj["entities"]
            if not isinstance(raw_entities, list):
                raise DataError(f"{where}: 'entities' must be a list of [title, language] pairs")
            entities: list[Entity] = []
            for item in raw_entities:
                if not isinstance(item, list | tuple) or len(item) != 2:
                    raise DataError(f"{where}: each entity must be a [title, language] pair, got {item!r}")
                entities.append((item[0], item[1]))
            count = obj.get("count", 0)
            if isinstance(count, bool) or not isinstance(count, int):
                raise DataError(f"{where}: 'count' must be an integer, got {count!r}")
            vocab._add_entry(entity_id, entities, count, where=where)
        vocab._check_contiguous(where=str(path))
        return vocab

    @classmethod
    def _load_json(cls, path: Path, *, multilingual: bool | None, embedded_only: bool = False) -> EntityVocab | None:
        data = _read_json(path)
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected a JSON object mapping title -> id")
        if "entity_vocab" in data and isinstance(data["entity_vocab"], dict):
            # a transformers tokenizer_config.json that embeds the vocabulary
            data = data["entity_vocab"]
        elif embedded_only:
            return None
        return cls._from_mapping(data.items(), multilingual=multilingual, where=str(path))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary; the format is chosen from the suffix (``.tsv``, ``.jsonl``, ``.json``).

        Raises:
            ValueError: unknown suffix, or the vocabulary cannot be represented in the format (the
                TSV format has exactly one language-less title per id).
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".tsv":
            lines = []
            for entity_id in range(len(self)):
                entities = self.titles(entity_id)
                if len(entities) != 1 or entities[0][1] is not None:
                    raise DataError(
                        f"{path}: the TSV format holds one title without language per id; id {entity_id} has "
                        f"{entities!r} (save as .jsonl instead)"
                    )
                title = entities[0][0]
                if "\t" in title or "\n" in title:
                    raise DataError(f"{path}: title {title!r} contains a tab or newline (save as .jsonl)")
                lines.append(f"{title}\t{self.count(entity_id)}\n")
            text = "".join(lines)
        elif suffix == ".jsonl":
            text = "".join(
                json.dumps(
                    {
                        "id": entity_id,
                        "entities": [[t, lang] for t, lang in self.titles(entity_id)],
                        "count": self.count(entity_id),
                    },
                    ensure_ascii=False,
                )
                + "\n"
                for entity_id in range(len(self))
            )
        elif suffix == ".json":
            text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"
        else:
            raise DataError(f"{path}: unknown entity vocabulary format {suffix!r} (expected .tsv, .jsonl or .json)")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)

    def to_dict(self) -> dict[str, int]:
        """The ``transformers`` mapping ``{title: id}`` (``{"lang:title": id}`` for titles with a language).

        Raises:
            ValueError: two entries would produce the same key.
        """
        out: dict[str, int] = {}
        for (title, language), entity_id in self.items():
            key = f"{language}:{title}" if language else title
            if key in out and out[key] != entity_id:
                raise DataError(f"key {key!r} would map to both id {out[key]} and id {entity_id}")
            out[key] = entity_id
        return out

    # ------------------------------------------------------------------ mutation
    def add(self, title: str, language: str | None = None, count: int = 0) -> int:
        """Append ``(title, language)`` with a new id (``len(self)``) and return the id.

        Raises:
            ValueError: the entity is already in the vocabulary.
        """
        self._materialize()
        entity_id = len(self)
        self._add_entry(entity_id, [(title, language)], count, where=None)
        return entity_id

    # ------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        """Number of distinct ids."""
        if self._index is not None:
            return self._index.n_ids
        return len(self._id_to_entities)

    def _resolve(self, title: str, language: str | None) -> int | None:
        if self._index is not None:
            return self._resolve_indexed(title, language)
        entity_to_id = self._entity_to_id
        entity_id = entity_to_id.get((title, language))
        if entity_id is not None:
            return entity_id
        if language is not None:
            # special entities are stored without a language
            entity_id = entity_to_id.get((title, None))
            if entity_id is not None:
                return entity_id
        match = _LANG_KEY.match(title)
        if match is not None:  # "ja:東京都", the key transformers.MLukeTokenizer takes
            entity_id = entity_to_id.get((match.group(2), match.group(1)))
            if entity_id is not None or language is not None:
                return entity_id
        if language is None:
            ids = self._title_to_ids.get(title)
            if ids is not None and len(ids) == 1:
                return next(iter(ids))
        return None

    def _resolve_indexed(self, title: str, language: str | None) -> int | None:
        """:meth:`_resolve` on the index: the same four steps, on the keys that share the title."""
        index = self._index
        assert index is not None
        keys = index.lookup(title)
        for key_language, entity_id in keys:
            if key_language == language:
                return entity_id
        if language is not None:
            for key_language, entity_id in keys:
                if key_language is None:
                    return entity_id
        match = _LANG_KEY.match(title)
        if match is not None:
            for key_language, entity_id in index.lookup(match.group(2)):
                if key_language == match.group(1):
                    return entity_id
            if language is not None:
                return None
        if language is None and keys and len({entity_id for _, entity_id in keys}) == 1:
            return keys[0][1]
        return None

    def _title_languages(self, title: str) -> list[str | None]:
        """The languages in which ``title`` exists (for the hint of a KeyError)."""
        if self._index is not None:
            return sorted({language for language, _ in self._index.lookup(title)}, key=str)
        ids = self._title_to_ids.get(title) or ()
        return sorted({lang_ for i in ids for t, lang_ in self._id_to_entities[i] if t == title}, key=str)

    def get_id(self, title: str, language: str | None = None, default: int | None = None) -> int | None:
        """Id of ``title`` (in ``language``), or ``default`` when absent.

        ``title`` may be a plain title or an mLUKE key ``"lang:Title"`` (``"ja:東京都"``, the strings
        ``transformers.MLukeTokenizer`` takes in ``entities=``), which names its language itself.  The order:

        1. the exact entry ``(title, language)``;
        2. with a language: a language-less entry (the special entities ``[MASK]``, ... and LUKE titles);
        3. ``"lang:Title"``: ``Title`` in ``lang``;
        4. without a language: a title that exists (in any languages) under a single id.

        A plain title given with a language is only found in that language (``get_id("Paris", "ja")`` is
        ``default`` when Paris has no Japanese title).
        """
        entity_id = self._resolve(title, language)
        return default if entity_id is None else entity_id

    def __contains__(self, item: object) -> bool:
        """``title``, ``"lang:Title"`` or ``(title, language)`` is in the vocabulary (as :meth:`get_id` finds it)."""
        if isinstance(item, str):
            return self._resolve(item, None) is not None
        if isinstance(item, tuple) and len(item) == 2:
            return self._resolve(item[0], item[1]) is not None
        return False

    def __getitem__(self, item: str | Entity) -> int:
        """Id of ``title``, ``"lang:Title"`` or ``(title, language)`` (see :meth:`get_id`); ``KeyError`` if absent."""
        title, language = (item, None) if isinstance(item, str) else item
        entity_id = self._resolve(title, language)
        if entity_id is None:
            lang = f" in language {language!r}" if language else ""
            hint = ""
            langs = self._title_languages(title) if language is None else []
            if langs:
                hint = f"; the title exists with languages {langs}, pass one (vocab.get_id(title, language=...))"
            raise KeyError(f"entity {title!r}{lang} is not in the entity vocabulary ({len(self)} ids){hint}")
        return entity_id

    def titles(self, entity_id: int) -> list[tuple[str, str | None]]:
        """All ``(title, language)`` pairs of an id."""
        if self._index is not None:
            return self._index.entities(self._index_id(entity_id))
        try:
            return list(self._id_to_entities[entity_id])
        except KeyError:
            raise KeyError(f"entity id {entity_id} is out of range (vocabulary has {len(self)} ids)") from None

    def count(self, entity_id: int) -> int:
        """The hyperlink count of an id (0 for special entities and for vocabularies without counts)."""
        if self._index is not None:
            return self._index.count(self._index_id(entity_id))
        try:
            return self._counts[entity_id]
        except KeyError:
            raise KeyError(f"entity id {entity_id} is out of range (vocabulary has {len(self)} ids)") from None

    def items(self) -> Iterator[tuple[Entity, int]]:
        """Iterate over ``((title, language), id)`` in id order."""
        if self._index is not None:
            yield from self._index.items()
            return
        for entity_id in range(len(self)):
            for entity in self._id_to_entities[entity_id]:
                yield entity, entity_id

    def __iter__(self) -> Iterator[str]:
        """Iterate over titles in id order."""
        for (title, _), _ in self.items():
            yield title

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntityVocab):
            return NotImplemented
        if self._index is None and other._index is None:
            return self._id_to_entities == other._id_to_entities and self._counts == other._counts
        if len(self) != len(other):
            return False
        if self._index is not None and other._index is not None and self._index.same_as(other._index):
            return True
        return all(self.titles(i) == other.titles(i) and self.count(i) == other.count(i) for i in range(len(self)))

    def _index_id(self, entity_id: int) -> int:
        """``entity_id`` as a position in the index; KeyError as the dicts raise it (same message)."""
        if isinstance(entity_id, Integral) or (isinstance(entity_id, float) and entity_id.is_integer()):
            position = int(entity_id)
            if 0 <= position < len(self):
                return position
        raise KeyError(f"entity id {entity_id} is out of range (vocabulary has {len(self)} ids)")

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EntityVocab(size={len(self)}, specials={self.special_ids()})"

    # ------------------------------------------------------------------ special entities
    def _special(self, name: str) -> int:
        entity_id = self._resolve(name, None)
        if entity_id is None:
            where = f"{self.source}: " if self.source is not None else ""
            raise DataError(
                f"{where}the entity vocabulary ({len(self)} ids) has no special entity {name!r}, which is needed here"
            )
        return entity_id

    @property
    def pad_id(self) -> int:
        """Id of ``[PAD]`` (looked up by name; DataError naming the file if absent)."""
        return self._special(PAD_TOKEN)

    @property
    def unk_id(self) -> int:
        """Id of ``[UNK]`` (looked up by name; DataError naming the file if absent)."""
        return self._special(UNK_TOKEN)

    @property
    def mask_id(self) -> int:
        """Id of ``[MASK]`` (looked up by name; DataError naming the file if absent)."""
        return self._special(MASK_TOKEN)

    @property
    def mask2_id(self) -> int | None:
        """Id of ``[MASK2]``, or ``None`` when the vocabulary has none (the original LUKE vocab)."""
        return self._resolve(MASK2_TOKEN, None)

    def special_ids(self) -> dict[str, int]:
        """``{name: id}`` of the special entities present."""
        out = {}
        for name in DEFAULT_SPECIALS:
            entity_id = self._resolve(name, None)
            if entity_id is not None:
                out[name] = entity_id
        return out


# ---------------------------------------------------------------------------------------------- fast .json reading
def non_luke_model_type(folder: str | os.PathLike[str]) -> str | None:
    """The ``model_type`` of ``folder/config.json`` when it names another kind of model than LUKE (``"bert"``),
    else None (LUKE, no config or an unreadable one): for messages that say what a folder is."""
    try:
        data = json.loads(Path(folder, "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = data.get("model_type") if isinstance(data, dict) else None
    return shorten(kind) if isinstance(kind, str) and kind and kind != "luke" else None


def _unique_keys(path: Path) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """``object_pairs_hook`` refusing a key twice in one object (the first repeated key is named)."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise DataError(f"{path}: duplicate title {key!r} in JSON object")
                seen.add(key)
        return obj

    return hook


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path), object_pairs_hook=_unique_keys(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
