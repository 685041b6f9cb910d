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

Special entities (``[PAD]``, ``[UNK]``, ``[MASK]``, ``[MASK2]``) are always resolved *by name*: their
ids differ between released vocabularies (the original monolingual vocab has ``[PAD]=0``; the "lite"
checkpoints have ``[MASK]=0, [UNK]=1, [PAD]=2, [MASK2]=3``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from luke.errors import DataError, shorten
from luke.files import read_text, text_lines, write_text_atomic

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

        Raises:
            ValueError: unknown suffix, malformed line (with file name and 1-based line number),
                duplicate titles or ids, id gaps.
            FileNotFoundError: the file does not exist.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".tsv":
            vocab = cls._load_tsv(path)
        elif suffix == ".jsonl":
            vocab = cls._load_jsonl(path)
        elif suffix == ".json":
            vocab = cls._load_json(path, multilingual=multilingual)
        else:
            raise DataError(f"{path}: unknown entity vocabulary format {suffix!r} (expected .tsv, .jsonl or .json)")
        if not len(vocab):
            raise DataError(
                path, "the entity vocabulary is empty (expected at least the special entities [PAD] and [UNK])"
            )
        vocab.source = path
        return vocab

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
        try:
            from luke.hub import pop_hub_kwargs, resolve_pretrained
        except ImportError:  # TEMPORARY until luke.hub lands
            folder = path
        else:
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
        def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
            seen: dict[str, object] = {}
            for key, value in pairs:
                if key in seen:
                    raise DataError(f"{path}: duplicate title {key!r} in JSON object")
                seen[key] = value
            return seen

        try:
            data = json.loads(read_text(path), object_pairs_hook=no_duplicates)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
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
                entities = self._id_to_entities[entity_id]
                if len(entities) != 1 or entities[0][1] is not None:
                    raise DataError(
                        f"{path}: the TSV format holds one title without language per id; id {entity_id} has "
                        f"{entities!r} (save as .jsonl instead)"
                    )
                title = entities[0][0]
                if "\t" in title or "\n" in title:
                    raise DataError(f"{path}: title {title!r} contains a tab or newline (save as .jsonl)")
                lines.append(f"{title}\t{self._counts[entity_id]}\n")
            text = "".join(lines)
        elif suffix == ".jsonl":
            text = "".join(
                json.dumps(
                    {
                        "id": entity_id,
                        "entities": [[t, lang] for t, lang in self._id_to_entities[entity_id]],
                        "count": self._counts[entity_id],
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
        for entity_id in range(len(self)):
            for title, language in self._id_to_entities[entity_id]:
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
        entity_id = len(self)
        self._add_entry(entity_id, [(title, language)], count, where=None)
        return entity_id

    # ------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        """Number of distinct ids."""
        return len(self._id_to_entities)

    def _resolve(self, title: str, language: str | None) -> int | None:
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
            ids = self._title_to_ids.get(title)
            if ids and language is None:
                langs = sorted({lang_ for i in ids for t, lang_ in self._id_to_entities[i] if t == title}, key=str)
                hint = f"; the title exists with languages {langs}, pass one (vocab.get_id(title, language=...))"
            raise KeyError(f"entity {title!r}{lang} is not in the entity vocabulary ({len(self)} ids){hint}")
        return entity_id

    def titles(self, entity_id: int) -> list[tuple[str, str | None]]:
        """All ``(title, language)`` pairs of an id."""
        try:
            return list(self._id_to_entities[entity_id])
        except KeyError:
            raise KeyError(f"entity id {entity_id} is out of range (vocabulary has {len(self)} ids)") from None

    def count(self, entity_id: int) -> int:
        """The hyperlink count of an id (0 for special entities and for vocabularies without counts)."""
        try:
            return self._counts[entity_id]
        except KeyError:
            raise KeyError(f"entity id {entity_id} is out of range (vocabulary has {len(self)} ids)") from None

    def items(self) -> Iterator[tuple[Entity, int]]:
        """Iterate over ``((title, language), id)`` in id order."""
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
        return self._id_to_entities == other._id_to_entities and self._counts == other._counts

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
