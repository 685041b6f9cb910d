"""Entity disambiguation (ED): the entity of each gold mention of a document, among its candidates.

The model is :class:`~luke.modeling.LukeForEntityDisambiguation`: LUKE with the masked-entity head of
``LukeForMaskedLM``, so a pretrained folder starts it with its entity knowledge, and ``luke evaluate
entity_disambiguation --model PRETRAINED`` scores that head zero-shot. The pretrained entity vocabulary is
the label space (``keeps_entity_vocab``): a candidate outside it cannot be predicted (dropped and counted).

Data: per split ``{split}.jsonl`` (our JSON Lines, :mod:`luke.finetuning.ed_data`) or ``{split}.tsv``
(AIDA-CoNLL), else the one file AIDA is released as, ``AIDA-YAGO2-dataset.tsv``, split by document id
(:func:`~luke.finetuning.ed_data.aida_split`): train = its train documents, dev = testa, test = testb.
Candidates, top ``--max-candidates`` by prior among those in the model's entity vocabulary: a mention's own
``candidates`` in the file, else ``--candidates-file`` (per mention, as the standard ED releases give them),
else ``--mention-db`` (p(e|m) from Wikipedia anchors, ``luke build-mention-db``); they are attached when the
documents are featurized (:func:`~luke.finetuning.ed_data.attach_candidates`, with the tokenizer's entity
vocabulary), and the counts (out-of-vocabulary candidates dropped included) are logged and reported under
``"candidates"``. A mention without candidates is NIL.

Features and inference: :mod:`luke.finetuning.ed_inference` (windows, local / global order).

Fine-tuning (Yamada et al., NAACL 2022, and the authors' code, spec §6): lr 2e-5, batch 16, 2 epochs,
warm-up 10 %, gradient clipping 1.0, final weights. In each training window ``--mask-ratio`` (90 %) of the
mentions are ``[MASK]`` and predicted; the others get their gold entity as input and no loss (which ones is
drawn once per window, seeded). The loss is the cross-entropy over the mention's candidates (the gold entity
must be among them; a mention whose gold is not is input context only). The entity table and the head's
output bias are frozen (``--no-freeze-entity-table`` trains them): the pretrained entity embeddings are the
label space, and updating only the rows seen in a small training set would pull them away from the rest.
The ``[MASK]`` row stays trainable (the authors train a separate mask embedding): the frozen rows get no
gradient and no weight decay, so they do not move at all.

Inference (``--inference``): ``global`` and ``local`` (:mod:`~luke.finetuning.ed_inference`), or ``prior``,
the baseline without a model pass: each mention takes its highest-prior candidate in the entity vocabulary.

Scores (``luke evaluate``, :func:`luke.finetuning.metrics.ed_prf`, the scorer of ``luke score`` too): in-KB
accuracy (correct / gold mentions with a title, i.e. not NIL), micro precision / recall / F1 of the strong
match, and the same as ``ambiguous_*`` on the *ambiguous* mentions: those with more than one candidate the
model chooses among (in its entity vocabulary, among the top ``--max-candidates``; ``luke score`` counts the
candidates the gold file gives), plus the candidate counts under ``"candidates"`` (see
:meth:`EntityDisambiguationTask.featurize`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from luke.dataclass_args import option
from luke.errors import ConfigError, DataError
from luke.finetuning import ed_data, ed_inference
from luke.finetuning.data import find_split_file
from luke.finetuning.ed_data import EdDocument, document_from_record, document_record, normalize_title, write_jsonl
from luke.finetuning.metrics import ed_prf
from luke.finetuning.options import EntityCapOptions, TaskOptions
from luke.finetuning.tasks.base import IGNORE_INDEX, Feature, Task, TaskDefaults

__all__ = ["EntityDisambiguationTask", "EntityDisambiguationOptions"]

logger = logging.getLogger(__name__)
_LABEL = "entity"  # the task has no label list: its labels are the entity vocabulary
#: the one file AIDA-CoNLL is released as, and the AIDA split of each of our splits
AIDA_FILE = "AIDA-YAGO2-dataset.tsv"
AIDA_SPLIT_OF = {"train": "train", "dev": "testa", "test": "testb"}


@dataclass(frozen=True)
class EntityDisambiguationOptions(TaskOptions, EntityCapOptions):
    """Entity disambiguation options: candidates, inference order, the fine-tuning recipe's masking."""

    max_candidates: int = option(30, "candidates per mention (the best by prior)", at_least=1)
    inference: Literal["global", "local", "prior"] = option(
        "global",
        "global: fix the most confident mention, feed its entity back, repeat; local: one pass; prior: "
        "no model, each mention takes its highest-prior candidate (the baseline)",
    )
    mask_ratio: float = option(
        0.9, "fine-tuning: share of mentions masked and predicted (the rest get their gold entity)", above=0,
        at_most=1,
    )  # fmt: skip
    freeze_entity_table: bool = option(
        True,
        "fine-tuning: keep the entity table and output bias as pretrained (all but [MASK]; "
        "--no-freeze-entity-table trains them)",
    )
    mention_db: Path | None = option(None, "mention database (luke build-mention-db): candidates with p(e|m)")
    candidates_file: Path | None = option(
        None, "candidates per mention (JSONL {id, start, end, candidates} or the deep-ed TSV)"
    )


class EntityDisambiguationTask(Task):
    """Entity disambiguation on gold mentions (``luke finetune entity_disambiguation``); see the module
    docstring."""

    name = "entity_disambiguation"
    model_class_name = "LukeForEntityDisambiguation"
    defaults = TaskDefaults(learning_rate=2e-5, train_batch_size=16, num_train_epochs=2, select_best=False,
                            warmup_ratio=0.1, max_grad_norm=1.0)  # fmt: skip
    options_class = EntityDisambiguationOptions
    options: EntityDisambiguationOptions
    split_files = {s: (f"{s}.jsonl", f"{s}.tsv", AIDA_FILE) for s in ("train", "dev", "test")}
    raw_input = "{'id', 'text', 'entities': [{'start', 'end', optional 'candidates': [[title, prior], ...]}]}"
    main_metric = "accuracy"
    label_kind = "entity"
    label_keys = ("entity_labels",)
    keeps_entity_vocab = True

    def __init__(self, labels=None, unseen_labels: str = "error", **options: Any) -> None:
        super().__init__([_LABEL], unseen_labels, **options)
        self._sources: dict[str, Any] = {}
        self.mask_entity_id = 2  # set from the tokenizer by featurize
        self._counts: list[tuple[Sequence[EdDocument], dict[str, int]]] = []  # featurized examples -> counts

    # ------------------------------------------------------------------------------------------ data
    def read(self, path: str | Path) -> list[EdDocument]:
        """Documents of one file, our JSON Lines or AIDA-CoNLL TSV (:func:`ed_data.read_documents`)."""
        return self._checked(ed_data.read_documents(path), Path(path))

    def load_splits(self, data_dir: str | Path, splits: Sequence[str] = ("train", "dev", "test")) -> dict[str, list]:
        """Each split from its own file, else from ``AIDA-YAGO2-dataset.tsv`` by document id (module
        docstring); a split of which that file has no document is absent (train: an error)."""
        data_dir = Path(data_dir)
        aida = data_dir / AIDA_FILE
        own = [s for s in splits if find_split_file(data_dir, self.split_files[s][:-1]) or not aida.exists()]
        out = super().load_splits(data_dir, own) if own else {}
        everything: list[EdDocument] | None = None
        for split in (s for s in splits if s not in own):
            if everything is None:
                everything = self._checked(ed_data.read_aida(aida), aida)
            docs = [d for d in everything if ed_data.aida_split(d.id) == AIDA_SPLIT_OF[split]]
            if docs:
                out[split] = docs
            elif split == "train":
                raise DataError(aida, "no training document (ids without 'testa'/'testb', e.g. '1 EU')")
        return out

    def _checked(self, docs: list[EdDocument], path: Path) -> list[EdDocument]:
        """``docs``, once the candidate sources load; without a source every mention needs its own
        ``candidates`` (a :class:`DataError` names the first document without)."""
        sources = [self._source(name) for name in ("candidates_file", "mention_db") if getattr(self.options, name)]
        missing = next(((d, m) for d in docs for m in d.mentions if m.candidates is None), None)
        if missing is not None and not sources:
            doc = missing[0]
            raise DataError(
                doc.path or path, f"document {doc.id!r}: a mention without 'candidates'; give them in the file, "
                "or pass --mention-db DB or --candidates-file FILE", doc.line,
            )  # fmt: skip
        return docs

    def attach_candidates(self, docs: Sequence[EdDocument], entity_vocab: Any = None) -> dict[str, int]:
        """Fill the candidates of mentions that have none from ``--candidates-file``, then ``--mention-db``
        (:func:`ed_data.attach_candidates`: top ``--max-candidates`` by prior among those in ``entity_vocab``);
        every mention's candidates are then sorted by prior. Returns counts: ``attached``,
        ``out_of_vocab_candidates`` (dropped), ``not_looked_up`` (no source had the mention: NIL), and for a
        candidates file ``documents_in_file`` and ``unmatched_rows``."""
        counts = {"attached": 0, "out_of_vocab_candidates": 0}
        for name in ("candidates_file", "mention_db"):
            if getattr(self.options, name) is not None:
                got = ed_data.attach_candidates(
                    docs, self._source(name), k=self.options.max_candidates, entity_vocab=entity_vocab
                )
                logger.info("candidates from %s: %s", getattr(self.options, name), got)
                counts["attached"] += got["attached"]
                counts["out_of_vocab_candidates"] += got["dropped_out_of_vocab"]
                counts |= {k: got[k] for k in ("documents_in_file", "unmatched_rows") if k in got}
        counts["not_looked_up"] = 0
        for doc in docs:
            for m in doc.mentions:
                if m.candidates is None:
                    counts["not_looked_up"] += 1
                else:
                    m.candidates = sorted(m.candidates, key=lambda c: -c[1])  # stable: ties keep their order
        if counts["not_looked_up"]:
            logger.warning("%d mention(s) got no candidate lookup from the candidate sources (NIL)",
                           counts["not_looked_up"])  # fmt: skip
        return counts

    def _source(self, name: str) -> Any:
        """The candidate source of option ``name`` (loaded once)."""
        if name not in self._sources:
            path = Path(getattr(self.options, name))
            if not path.is_file():
                raise DataError(path, f"file not found (--{name.replace('_', '-')})")
            if name == "mention_db":
                from luke.wikipedia.mention_db import MentionCandidates

                self._sources[name] = MentionCandidates.from_file(path)
            else:
                self._sources[name] = ed_data.read_candidates_file(path)
        return self._sources[name]

    def gold_labels(self, example: EdDocument) -> list[str]:
        return []

    def set_labels_from(self, train) -> None:
        self.labels = [_LABEL]

    def check_labels(self, examples, split) -> None:
        """Gold titles are entities, not labels: one outside the vocabulary counts as a miss."""

    # ------------------------------------------------------------------------------------------ model
    @classmethod
    def load_model(cls, model_path, tokenizer_path=None, **hub_kwargs) -> tuple[Any, Any, dict[str, Any]]:
        """A folder fine-tuned for this task, or a pretrained LUKE folder with its masked-entity head
        (zero-shot: the task's default options)."""
        from luke.config import LukeConfig
        from luke.files import read_json
        from luke.finetuning.model_io import TASK_FILE, finetuned_tokenizer, model_folder
        from luke.modeling import LukeForEntityDisambiguation

        folder = model_folder(model_path, **hub_kwargs)
        model = LukeForEntityDisambiguation.from_pretrained(folder)  # refuses a folder without an entity head
        config = LukeConfig.from_pretrained(folder)
        if tokenizer_path is None and not (folder / TASK_FILE).is_file():
            _fit_marker_rows(model, folder)
            config = model.config
        tokenizer = finetuned_tokenizer(str(model_path), folder, config, tokenizer_path, hub_kwargs)
        state = {"labels": [_LABEL], "options": {}, "folder": str(folder)}
        if (folder / TASK_FILE).is_file():
            saved = read_json(folder / TASK_FILE, expected=dict)
            if saved.get("task") != cls.name:
                raise ConfigError(f"{folder / TASK_FILE}: a model for {saved.get('task')!r}, not for {cls.name}")
            state["options"] = saved.get("options") or {}
        return model, tokenizer, state

    def prepare_model(self, model: Any) -> None:
        """Freeze the entity table (all rows but ``[MASK]``) and the head's output bias (module docstring)."""
        if not self.options.freeze_entity_table or not hasattr(model, "entity_predictions"):
            return
        model.entity_predictions.bias.requires_grad_(False)
        table = model.luke.entity_embeddings.entity_embeddings.weight

        def only_mask_row(grad: torch.Tensor) -> torch.Tensor:
            keep = torch.zeros_like(grad)
            keep[self.mask_entity_id] = grad[self.mask_entity_id]
            return keep

        table.register_hook(only_mask_row)
        table.no_weight_decay = True  # zero gradients and no decay: AdamW leaves those rows exactly as they are

    # ------------------------------------------------------------------------------------------ features
    def featurize(self, examples: Sequence[EdDocument], tokenizer: Any) -> list[Feature]:
        """Candidates attached with the tokenizer's entity vocabulary (:meth:`attach_candidates`), then the
        windows of :func:`ed_inference.document_features`. The counts, logged and reported by :meth:`score`
        under ``"candidates"``: ``mentions``; ``with_candidates`` (scored: a candidate in the vocabulary),
        ``no_candidates`` (NIL), ``ambiguous`` (more than one candidate in the vocabulary, among the top
        ``--max-candidates``: the mentions of the ``ambiguous_*`` scores); ``gold_mentions`` and
        ``gold_in_candidates`` (their title among those candidates: the bound on recall);
        ``out_of_vocab_candidates`` (dropped); ``unscorable`` (longer than a window: NIL); those of
        :meth:`attach_candidates`."""
        o = self.options
        self.mask_entity_id = tokenizer.entity_mask_token_id
        counts = self.attach_candidates(examples, tokenizer.entity_vocab)
        features, window_counts = ed_inference.document_features(
            examples, tokenizer, max_seq_length=o.max_seq_length, max_entity_length=o.max_entity_length,
            max_candidates=o.max_candidates,
        )  # fmt: skip
        counts = _candidate_counts(examples, features, counts, window_counts)
        logger.info("candidates: %s", counts)
        self._counts = [(ex, c) for ex, c in self._counts if ex is not examples] + [(examples, counts)]
        return features

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, torch.Tensor]:
        """A training batch: in each window ``mask_ratio`` of the mentions stay ``[MASK]`` with their gold
        candidate as target; the others get their gold entity as input and no target."""
        inputs, labels = [], []
        for f in features:
            shown = (f["mask_draw"] >= self.options.mask_ratio) & (f["gold_entity_ids"] >= 0)
            inputs.append(np.where(shown, f["gold_entity_ids"], f["entity_ids"]))
            labels.append(np.where(shown, IGNORE_INDEX, f["labels"]))
        batch = ed_inference.collate_windows(features, pad_token_id, inputs)
        E = batch["entity_ids"].shape[1]
        target = np.full((len(features), E), IGNORE_INDEX, np.int64)
        for n, row in enumerate(labels):
            target[n, : len(row)] = row
        batch["entity_labels"] = torch.from_numpy(target)
        return batch

    # ------------------------------------------------------------------------------------------ outputs
    def predict(self, model, examples, features, batch_size, pad_token_id, accelerator=None, progress=True,
                desc="eval") -> list[EdDocument]:  # fmt: skip
        """Documents with predictions, in ``--inference`` order (:func:`ed_inference.run_windows`; ``prior``:
        no model pass). Each predicted mention's ``candidates`` are the ones it was scored among."""
        if self.options.inference == "prior":
            return self._predictions(examples, features, _prior_choices(examples, features))
        results = ed_inference.run_windows(
            model, features, mode=self.options.inference, batch_size=batch_size, pad_token_id=pad_token_id,
            progress=progress and (accelerator is None or accelerator.is_local_main_process), desc=desc,
        )  # fmt: skip
        return self._predictions(examples, features, results)

    def decode(self, examples, features, logits) -> list[EdDocument]:
        """Local decoding of one pass's candidate probabilities or logits (E, K) per feature."""
        results = [(np.asarray(x).argmax(-1), _softmax_max(np.asarray(x))) for x in logits]
        return self._predictions(examples, features, results)

    def _predictions(self, examples, features, results) -> list[EdDocument]:
        """:func:`ed_inference.fill_predictions`, each mention's ``candidates`` set to those it was scored
        among (``[]``: none; what the ``ambiguous_*`` scores count)."""
        predictions = ed_inference.fill_predictions(examples, features, results)
        scored = _scored_candidates(examples, features)
        for d, doc in enumerate(predictions):
            for i, m in enumerate(doc.mentions):
                m.candidates = scored.get((d, i), [])
        return predictions

    def score(self, examples, predictions) -> dict[str, Any]:
        """:func:`~luke.finetuning.metrics.ed_prf` (module docstring) and the candidate counts of these
        examples (:meth:`featurize`) under ``"candidates"``."""
        out = ed_prf(examples, predictions)
        counts = next((c for ex, c in self._counts if ex is examples), None)
        if counts is not None:
            out["candidates"] = dict(counts)
        return out

    def write_predictions(self, path, examples, predictions) -> None:
        write_jsonl(path, predictions, predictions=True)

    def score_files(self, gold, predictions) -> dict[str, Any]:
        """``luke score entity_disambiguation --gold G --predictions P``: :func:`ed_data.score_files` (gold: our
        JSON Lines or AIDA-CoNLL; predictions: our JSON Lines; missing documents are misses, unknown ones are
        counted and ignored)."""
        if gold is None:
            raise DataError(predictions, "scoring entity disambiguation needs the gold file: pass --gold FILE")
        return ed_data.score_files(gold, predictions)

    def examples_from_raw(self, records, path) -> list[EdDocument]:
        docs = [document_from_record(rec, Path(path), line) for line, rec in records]
        return self._checked(docs, Path(path))

    def format_prediction(self, example: EdDocument, prediction: EdDocument) -> dict[str, Any]:
        """``{"id", "text", "entities": [{"start", "end", "mention", "title", "score"}]}`` (title null: NIL)."""
        return document_record(prediction, predictions=True)


def _fit_marker_rows(model: Any, folder: Path) -> None:
    """A pretrained folder's own tokenizer may list the entity markers ``<ent>``/``<ent2>`` after the word table
    (pretraining exports and ``transformers``' LUKE tokenizer add them; the table gets their rows only at
    fine-tuning). ED inputs never contain them; the table gets the two rows (from ``@``/``#``, as fine-tuning
    does) so that the tokenizer fits the model. Any other size difference is left to the tokenizer check."""
    from luke.finetuning.model_io import marker_init
    from luke.tokenization import LukeTokenizer

    tokenizer = LukeTokenizer.from_pretrained(folder)
    rows = model.config.vocab_size
    markers = {tokenizer.entity_1_token_id, tokenizer.entity_2_token_id}
    if len(tokenizer) > rows and set(range(rows, len(tokenizer))) <= markers:
        model.resize_token_embeddings(len(tokenizer), init_from=marker_init(tokenizer))


def _softmax_max(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return (z / z.sum(-1, keepdims=True)).max(-1)


def _scored_candidates(examples: Sequence[EdDocument], features: Sequence[Feature]) -> dict:
    """``(document index, mention index) -> [(title, prior), ...]``: the candidates each scored mention is
    scored among, in the features' order (vocabulary titles; the prior of the mention's candidate of that
    title)."""
    out = {}
    for f in features:
        doc = examples[f["example_index"]]
        for r, i in enumerate(f["mention_indices"]):
            priors: dict[str, float] = {}
            for title, prior in doc.mentions[i].candidates or ():
                priors.setdefault(normalize_title(title), prior)
            out[f["example_index"], i] = [(t, priors.get(normalize_title(t), 0.0)) for t in f["candidate_titles"][r]]
    return out


def _prior_choices(examples: Sequence[EdDocument], features: Sequence[Feature]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The prior-only baseline as :func:`ed_inference.run_windows` results: each mention's highest-prior
    candidate (the first on ties) and its prior as the score."""
    scored = _scored_candidates(examples, features)
    results = []
    for f in features:
        priors = [np.asarray([p for _, p in scored[f["example_index"], i]]) for i in f["mention_indices"]]
        choice = np.asarray([int(p.argmax()) for p in priors], np.int64)
        results.append((choice, np.asarray([float(p.max()) for p in priors])))
    return results


def _candidate_counts(
    examples: Sequence[EdDocument], features: Sequence[Feature], attached: dict[str, int], windows: dict[str, int]
) -> dict[str, int]:
    """The counts :meth:`EntityDisambiguationTask.featurize` reports (see there)."""
    scored = _scored_candidates(examples, features)
    counts = {"mentions": windows["mentions"], "with_candidates": len(scored)}
    counts["no_candidates"] = counts["mentions"] - len(scored)
    counts["ambiguous"] = sum(len(c) > 1 for c in scored.values())
    golds = [((d, i), m.title) for d, doc in enumerate(examples) for i, m in enumerate(doc.mentions) if m.title]
    counts["gold_mentions"] = len(golds)
    counts["gold_in_candidates"] = sum(
        normalize_title(title) in {normalize_title(t) for t, _ in scored.get(key, ())} for key, title in golds
    )
    counts["out_of_vocab_candidates"] = attached["out_of_vocab_candidates"] + windows["out_of_vocab_candidates"]
    counts["unscorable"] = windows["unscorable"]
    return counts | {k: v for k, v in attached.items() if k not in counts}
