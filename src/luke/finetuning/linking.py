"""Entity linking on raw text: ``luke link`` and its Python API, :class:`EntityLinker` / :func:`luke.link`.

Text in, Wikipedia entities out, in three steps that reuse the entity disambiguation task's pieces:

1. **Mention detection** — :meth:`MentionCandidates.detect <luke.wikipedia.mention_db.MentionCandidates.detect>`
   on our mention database (``luke build-mention-db``): at each word, left to right, the longest word
   sequence that was a Wikipedia anchor with link probability ``>= min_link_prob``; ambiguous mentions are
   kept (they are what disambiguation is for). Works on any text, not only Wikipedia.
2. **Candidates** — the mention's targets in the database with their priors ``p(e|m)``, best first, at most
   ``max_candidates``. A database given as a path is loaded with the model's entity vocabulary as a filter:
   candidates outside it are dropped and an anchor left without any is not a mention at all (so the longest
   match goes to text the model can link). The counts dropped are logged.
3. **Disambiguation** — :func:`luke.finetuning.ed_inference.run_windows` with the masked-entity head
   (:class:`~luke.modeling.LukeForEntityDisambiguation`): *global* order by default (fix the most confident
   mention, feed its entity back, repeat), or *local* (one pass). Long texts are cut into mention-centred
   windows; texts are batched together.

Output: each input's record with ``entities``: ``[{"start", "end", "mention", "title", "score"}]``
(character offsets, end exclusive; ``score`` = the probability of ``title`` among the mention's candidates).
A detected mention with no candidate in the model's entity vocabulary (possible only with a database
loaded without that filter) is NIL and **left out** of ``entities``: ``luke link`` lists linked entities
only; ``luke evaluate entity_disambiguation`` is the place where NIL mentions are scored.

Python::

    import luke

    linker = luke.EntityLinker.from_pretrained("path/to/model", mention_db="mentions.jsonl")
    linker("Paris is the capital of France.")
    # {"text": "Paris is ...", "entities": [{"start": 0, "end": 5, "mention": "Paris", "title": "Paris",
    #   "score": 0.98}, {"start": 24, "end": 30, "mention": "France", "title": "France", "score": 0.99}]}
    linker(["one text", {"id": "d2", "text": "another"}])  # a list in, a list out; other keys are kept

    luke.link(["Paris is the capital of France."], model="path/to/model", mention_db="mentions.jsonl")

``model`` is a folder fine-tuned by ``luke finetune entity_disambiguation`` or a pretrained LUKE folder
whose ``LukeForMaskedLM`` weights hold the masked-entity head (zero-shot), or a Hub repo id of either.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from luke.errors import ConfigError, DataError, shorten
from luke.finetuning.ed_data import EdDocument, EdMention

__all__ = ["EntityLinker", "link", "read_link_input", "register"]

logger = logging.getLogger(__name__)

_INPUT = "input"  # the "file" name DataError messages give the inputs of a Python call
_STDIN = "<stdin>"
_CHUNK = 1024  # documents per disambiguation call of the command (bounded memory, batches stay full)


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer of at least 1, got {value!r}")
    return value


def _device(device: str | None) -> Any:
    """The torch device of a ``device=`` argument (:func:`luke.finetuning.pipeline.check_device`'s rule)."""
    import torch

    from luke.finetuning.pipeline import check_device

    check_device(device)
    return torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")


class EntityLinker:
    """A LUKE entity-disambiguation model and a mention database, loaded once, linking raw texts (see the
    module docstring). Build it with :meth:`from_pretrained` (or from loaded parts with the constructor).

    Attributes: ``model``, ``tokenizer``, ``mentions`` (the :class:`~luke.wikipedia.mention_db.MentionCandidates`),
    ``inference``, ``min_link_prob``, ``max_candidates``, ``batch_size``, ``max_seq_length``,
    ``max_entity_length``; ``counts``: what the last call saw (``documents``, ``mentions`` detected,
    ``linked``, ``out_of_vocab_candidates``, ``unscorable``).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        mentions: Any,
        *,
        inference: str = "global",
        min_link_prob: float = 0.01,
        max_candidates: int = 30,
        batch_size: int = 32,
        max_seq_length: int = 512,
        max_entity_length: int = 128,
        device: str | None = None,
        mixed_precision: str = "no",
    ) -> None:
        from luke.finetuning.ed_inference import INFERENCE_MODES
        from luke.training import log_bf16_choice

        if inference not in INFERENCE_MODES:
            raise ConfigError(f"inference must be one of {', '.join(INFERENCE_MODES)}, got {inference!r}")
        if isinstance(min_link_prob, bool) or not isinstance(min_link_prob, int | float) or not 0 <= min_link_prob <= 1:
            raise ConfigError(f"min_link_prob must be a number in [0, 1], got {min_link_prob!r}")
        for name, value in (("max_candidates", max_candidates), ("batch_size", batch_size),
                            ("max_entity_length", max_entity_length)):  # fmt: skip
            _positive(name, value)
        if _positive("max_seq_length", max_seq_length) < 3:
            raise ConfigError(f"max_seq_length must be at least 3, got {max_seq_length}")
        self.tokenizer, self.mentions = tokenizer, mentions
        self.inference, self.min_link_prob = inference, float(min_link_prob)
        self.max_candidates, self.batch_size = max_candidates, batch_size
        self.max_seq_length, self.max_entity_length = max_seq_length, max_entity_length
        if mixed_precision not in ("no", "bf16"):
            raise ConfigError(f"mixed_precision must be 'no' or 'bf16', got {mixed_precision!r}")
        self.model = model.to(_device(device)).eval()
        self.mixed_precision = mixed_precision
        if mixed_precision == "bf16":
            log_bf16_choice(self.model.device.type)
        self.counts: dict[str, int] = {}

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path,
        mention_db: str | Path | Any,
        *,
        tokenizer: str | Path | None = None,
        inference: str | None = None,
        min_link_prob: float = 0.01,
        max_candidates: int | None = None,
        batch_size: int = 32,
        device: str | None = None,
        mixed_precision: str = "no",
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool | None = None,
        token: str | bool | None = None,
    ) -> EntityLinker:
        """Load ``model`` (a fine-tuned entity-disambiguation folder, a pretrained LUKE folder with its
        masked-entity head, or a Hub repo id of either; ``revision`` ... ``token`` as in ``transformers``)
        and ``mention_db`` (a file written by ``luke build-mention-db``, loaded with the model's entity
        vocabulary as a filter, or a :class:`~luke.wikipedia.mention_db.MentionCandidates` used as it is).

        ``inference`` (``"global"`` or ``"local"``) and ``max_candidates`` default to the fine-tuned model's
        own options (``luke_task.json``), else global and 30; so do the window sizes. ``device``: None (a GPU
        when there is one), ``"cpu"`` or ``"cuda"``. ``mixed_precision``: ``"no"`` or ``"bf16"`` (the model
        runs under bf16 autocast; on a CPU without native bf16 the log warns that it will be slow).

        Raises:
            CheckpointError: the model is missing or has no masked-entity head (one line saying what it is).
            DataError: the mention database is missing or malformed (its file and line).
            ConfigError: a bad option.
        """
        from luke.finetuning.tasks.entity_disambiguation import EntityDisambiguationTask

        _device(device)  # a bad device or database path before anything is loaded
        if isinstance(mention_db, str | Path) and not Path(mention_db).is_file():
            what = "is a folder, expected" if Path(mention_db).is_dir() else "no such"
            raise DataError(Path(mention_db), f"{what} mention database file (luke build-mention-db)")
        hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
        hub = {k: v for k, v in hub.items() if v is not None}
        loaded, tok, state = EntityDisambiguationTask.load_model(model, tokenizer, **hub)
        saved = state.get("options") or {}
        max_candidates = max_candidates if max_candidates is not None else saved.get("max_candidates", 30)
        if inference is None:  # the model's own order, if it is one a model runs ("prior" is a baseline)
            inference = saved.get("inference") if saved.get("inference") in ("global", "local") else "global"
        mentions = load_mention_db(mention_db, tok.entity_vocab, max_candidates)
        return cls(
            loaded, tok, mentions, inference=inference,
            min_link_prob=min_link_prob, max_candidates=max_candidates, batch_size=batch_size,
            max_seq_length=saved.get("max_seq_length", 512), max_entity_length=saved.get("max_entity_length", 128),
            device=device, mixed_precision=mixed_precision,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------------ steps
    def detect(self, text: str) -> list[EdMention]:
        """The mentions of ``text`` (module docstring, steps 1 and 2), each with its candidates."""
        out = []
        for start, end in self.mentions.detect(text, min_link_prob=self.min_link_prob):
            out.append(EdMention(start, end, candidates=self.mentions.candidates(text[start:end], self.max_candidates)))
        return out

    def link_documents(self, documents: Sequence[EdDocument], *, progress: bool = False) -> list[EdDocument]:
        """Copies of ``documents`` (mentions with candidates) with ``predicted`` / ``score`` filled (step 3);
        updates :attr:`counts`."""
        from luke.finetuning import ed_inference

        features, counts = ed_inference.document_features(
            documents, self.tokenizer, max_seq_length=self.max_seq_length, max_entity_length=self.max_entity_length,
            max_candidates=self.max_candidates,
        )  # fmt: skip
        import torch

        bf16 = self.mixed_precision == "bf16"
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=bf16):
            results = ed_inference.run_windows(
                self.model, features, mode=self.inference, batch_size=self.batch_size,
                pad_token_id=self.tokenizer.pad_token_id, progress=progress, desc="link",
            )  # fmt: skip
        linked = ed_inference.fill_predictions(documents, features, results)
        self.counts = {
            "documents": len(documents),
            "mentions": counts["mentions"],
            "linked": sum(m.predicted is not None for d in linked for m in d.mentions),
            "out_of_vocab_candidates": counts["out_of_vocab_candidates"],
            "unscorable": counts["unscorable"],
        }
        left_out = counts["mentions"] - self.counts["linked"]
        if left_out:
            logger.info(
                "%d of %d detected mention(s) left out: no candidate in the entity vocabulary (%d candidate(s) "
                "outside it) or longer than a window (%d)", left_out, counts["mentions"],
                counts["out_of_vocab_candidates"], counts["unscorable"],
            )  # fmt: skip
        return linked

    def link_records(
        self, records: Sequence[tuple[int, Mapping[str, Any]]], path: str | Path = _INPUT, *, progress: bool = False
    ) -> list[dict[str, Any]]:
        """``(line, record)`` pairs (each record a mapping with a string ``"text"``) → the records with
        ``entities`` added (other keys kept; an existing ``entities`` is replaced). A record without a
        string ``text`` is a :class:`DataError` naming ``path`` and its line."""
        docs = []
        for line, record in records:
            if not isinstance(record, Mapping):
                raise DataError(path, f"expected a JSON object with 'text', got {type(record).__name__}", line)
            text = record.get("text")
            if not isinstance(text, str):
                what = (
                    "missing field 'text'" if "text" not in record else f"'text' must be a string, got {shorten(text)}"
                )
                raise DataError(path, what, line)
            docs.append(EdDocument(f"line-{line}", text, self.detect(text), Path(path), line))
        linked = self.link_documents(docs, progress=progress)
        return [{**record, "entities": _entities(doc)} for (_, record), doc in zip(records, linked, strict=True)]

    def __call__(
        self, texts: str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]], *, progress: bool = False
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Link one text (a string, or a mapping with ``"text"`` whose other keys are kept) or a list of them:
        ``{"text", ..., "entities": [{"start", "end", "mention", "title", "score"}]}`` per input, in order (a
        dict for one input, a list for a list). A bad input is a :class:`DataError` naming its position
        (``input:2: ...``, counted from 1)."""
        single = isinstance(texts, str | Mapping)
        if not single and not isinstance(texts, Iterable):
            what = "None" if texts is None else f"a {type(texts).__name__}"
            raise DataError(
                _INPUT, f"expected a text (a string or a dict with 'text') or a list of them, got {what}", 1
            )
        items = [texts] if single else list(texts)  # type: ignore[list-item]
        records = [(i, {"text": x} if isinstance(x, str) else x) for i, x in enumerate(items, start=1)]
        out = self.link_records(records, _INPUT, progress=progress)
        return out[0] if single else out

    def __repr__(self) -> str:
        return (
            f"EntityLinker(inference={self.inference!r}, min_link_prob={self.min_link_prob}, "
            f"max_candidates={self.max_candidates}, mentions={len(self.mentions)})"
        )


def _entities(doc: EdDocument) -> list[dict[str, Any]]:
    """The linked mentions of ``doc`` (NIL ones left out), as output records."""
    return [
        {"start": m.start, "end": m.end, "mention": m.text_in(doc), "title": m.predicted,
         "score": round(float(m.score), 6)}
        for m in doc.mentions if m.predicted is not None
    ]  # fmt: skip


def load_mention_db(mention_db: str | Path | Any, entity_vocab: Any, max_candidates: int) -> Any:
    """A :class:`~luke.wikipedia.mention_db.MentionCandidates` from a path (filtered by ``entity_vocab``,
    the ``max_candidates`` best kept per mention; the counts dropped logged), or ``mention_db`` itself
    when it is already one (anything with ``detect`` and ``candidates``)."""
    if hasattr(mention_db, "detect") and hasattr(mention_db, "candidates"):
        return mention_db
    from luke.wikipedia.mention_db import MentionCandidates

    if not isinstance(mention_db, str | Path):
        raise ConfigError(f"mention_db must be a path or a MentionCandidates, got {type(mention_db).__name__}")
    mentions = MentionCandidates.from_file(mention_db, entity_vocab=entity_vocab, max_candidates=max_candidates)
    if not len(mentions):
        raise DataError(
            Path(mention_db), f"none of its {mentions.stats['mentions_read']} mention(s) has a candidate in the "
            "model's entity vocabulary: another knowledge base than the model's?",
        )  # fmt: skip
    return mentions


def link(
    texts: str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]],
    *,
    model: str | Path,
    mention_db: str | Path | Any,
    **options: Any,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Link ``texts`` in one call: ``EntityLinker.from_pretrained(model, mention_db, **options)(texts)``.
    Loads the model each time; keep an :class:`EntityLinker` to link more than once."""
    return EntityLinker.from_pretrained(model, mention_db, **options)(texts)


# ---------------------------------------------------------------------------------------------- input


def read_link_input(path: str | Path) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """The documents of ``luke link``'s input (``"-"``: standard input) as ``(line, record)`` pairs, and the
    format found: ``"jsonl"`` when the first non-blank line is a JSON object (then every non-blank line must
    be one, with a string ``text``; other fields are kept), else ``"text"``: each non-blank line is a
    document ``{"id": "line-N", "text": LINE}``. Errors name the file (``<stdin>``) and line."""
    from luke.files import decoded_lines, text_lines

    name = _STDIN if str(path) == "-" else Path(path)
    lines = decoded_lines(getattr(sys.stdin, "buffer", sys.stdin), _STDIN) if name == _STDIN else text_lines(name)
    records: list[tuple[int, dict[str, Any]]] = []
    kind = None
    for number, line in lines:
        if not line.strip():
            continue
        if kind is None:
            kind = "jsonl" if _json_object(line) is not None else "text"
        if kind == "text":
            records.append((number, {"id": f"line-{number}", "text": line}))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(name, f"not valid JSON ({err.msg}, column {err.colno}); the input is JSON Lines "
                            "(its first line is a JSON object)", number) from None  # fmt: skip
        if not isinstance(record, dict):
            raise DataError(name, f"expected a JSON object with 'text', got {type(record).__name__}", number)
        if not isinstance(record.get("text"), str):
            what = "missing field 'text'" if "text" not in record else "field 'text' must be a string"
            raise DataError(name, what, number)
        records.append((number, record))
    return records, kind or "text"


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------------------------------------- command

_LINK = """\
link entities in raw text: mention detection with a mention database, then entity disambiguation

Reads JSON Lines ({"text": ..., other fields kept}) or plain text (one document per non-blank line; the
format is told by the first non-blank line: a JSON object means JSON Lines) from --input (default: standard
input) and writes the same records with "entities": [{"start", "end", "mention", "title", "score"}]
(character offsets, end exclusive; plain-text lines become {"id": "line-N", "text"}) to --output (default:
standard output). Mentions: the longest anchor texts of the mention database (luke build-mention-db) whose
link probability is at least --min-link-prob; candidates: their link targets in the model's entity
vocabulary, best by prior; a mention with none is left out. --model: a model fine-tuned by luke finetune
entity_disambiguation, or a pretrained LUKE folder (its masked-entity head, zero-shot)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``link``."""
    from luke.command_args import add_command, add_no_progress, add_revision

    p = add_command(sub, "link", _link, _LINK)
    p.add_argument("--model", required=True, type=str, help="model folder, or a Hugging Face Hub repo id (ORG/NAME)")
    p.add_argument("--mention-db", required=True, type=Path, help="mention database (luke build-mention-db)")
    p.add_argument("--input", default="-", help="JSONL or plain-text input; - for standard input (default)")
    p.add_argument("--output", default="-", help="JSONL output; - for standard output (default)")
    p.add_argument("--inference", choices=("global", "local"),
                   help="global: fix the most confident mention, feed its entity back, repeat; local: one pass "
                   "(default: the model's own, else global)")  # fmt: skip
    p.add_argument("--min-link-prob", type=float, default=0.01,
                   help="keep a mention whose text is a link in at least this share of its occurrences (default "
                   "0.01)")  # fmt: skip
    p.add_argument("--max-candidates", type=int, help="candidates per mention, best by prior (default: the model's "
                   "own, else 30)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default 32)")
    p.add_argument("--mixed-precision", choices=("no", "bf16"), default="no",
                   help="bf16: run the model under bf16 autocast (fast on CPUs with avx512_bf16/AMX and on GPUs; "
                   "the log says what this CPU offers)")  # fmt: skip
    add_revision(p)
    add_no_progress(p)


def _link(a: argparse.Namespace) -> int:
    from luke.files import atomic_output, check_output

    for flag, value in (("--max-candidates", a.max_candidates), ("--batch-size", a.batch_size)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if not 0 <= a.min_link_prob <= 1:
        raise ConfigError(f"--min-link-prob must lie in [0, 1], got {a.min_link_prob}")
    if a.input != "-" and Path(a.input).is_dir():
        raise DataError(Path(a.input), "is a folder, expected a file")
    if a.input != "-" and not Path(a.input).is_file():
        raise DataError(Path(a.input), "no such file")
    inputs = [a.input if a.input != "-" else None, a.mention_db, Path(a.model)]
    if a.output != "-":
        check_output(a.output, kind="file", overwrite=True, what="--output", inputs=inputs)
    records, _kind = read_link_input(a.input)
    linker = EntityLinker.from_pretrained(
        a.model, a.mention_db, inference=a.inference, min_link_prob=a.min_link_prob,
        max_candidates=a.max_candidates, batch_size=a.batch_size, revision=a.revision,
        mixed_precision=a.mixed_precision,
    )  # fmt: skip
    name = "<stdin>" if a.input == "-" else a.input
    if a.output == "-":
        _write_linked(linker, records, name, sys.stdout, not a.no_progress)
    else:
        with atomic_output(a.output) as tmp, open(tmp, "w", encoding="utf-8") as out:
            _write_linked(linker, records, name, out, not a.no_progress)
    return 0


def _write_linked(linker: EntityLinker, records: list, name: str, out: TextIO, progress: bool) -> None:
    """Link ``records`` in chunks, writing each chunk's lines; the totals go to the log."""
    totals = dict.fromkeys(("documents", "mentions", "linked", "out_of_vocab_candidates"), 0)
    for s in range(0, len(records), _CHUNK):
        for rec in linker.link_records(records[s : s + _CHUNK], name, progress=progress):
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        for k in totals:
            totals[k] += linker.counts.get(k, 0)
    out.flush()
    logger.info(
        "linked %d of %d detected mention(s) in %d document(s)", totals["linked"], totals["mentions"],
        totals["documents"],
    )  # fmt: skip
