"""Entity disambiguation (ED): the entity of each gold mention of a document, among its candidates.

The model is :class:`~luke.modeling.LukeForEntityDisambiguation`: LUKE with the masked-entity head of
``LukeForMaskedLM``, so a pretrained folder starts it with its entity knowledge, and ``luke evaluate
entity_disambiguation --model PRETRAINED`` scores that head zero-shot. The pretrained entity vocabulary is
the label space (``keeps_entity_vocab``): a candidate outside it cannot be predicted (dropped and counted).

Data: ``{split}.jsonl`` in our JSON Lines format (:mod:`luke.finetuning.ed_data`) or AIDA-CoNLL TSV
(``{split}.tsv``). Candidates, top ``--max-candidates`` by prior: a mention's own ``candidates`` in the file,
else ``--candidates-file`` (per mention, as the standard ED releases give them), else ``--mention-db``
(p(e|m) from Wikipedia anchors, ``luke build-mention-db``). A mention without candidates is NIL.

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

Scores (``luke evaluate``): in-KB accuracy (correct / gold mentions with a title, i.e. not NIL), micro
precision / recall / F1 of the strong match (predicted titles against gold titles), the same on the
ambiguous mentions (more than one candidate), and the candidate counts.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from luke.dataclass_args import option
from luke.errors import ConfigError, DataError
from luke.finetuning import ed_inference
from luke.finetuning.ed_data import EdDocument, document_from_record, document_record, read_jsonl, write_jsonl
from luke.finetuning.options import EntityCapOptions, TaskOptions
from luke.finetuning.tasks.base import IGNORE_INDEX, Feature, Task, TaskDefaults

__all__ = ["EntityDisambiguationTask", "EntityDisambiguationOptions"]

logger = logging.getLogger(__name__)
_LABEL = "entity"  # the task has no label list: its labels are the entity vocabulary


@dataclass(frozen=True)
class EntityDisambiguationOptions(TaskOptions, EntityCapOptions):
    """Entity disambiguation options: candidates, inference order, the fine-tuning recipe's masking."""

    max_candidates: int = option(30, "candidates per mention (the best by prior)", at_least=1)
    inference: Literal["global", "local"] = option(
        "global", "global: fix the most confident mention, feed its entity back, repeat; local: one pass"
    )
    mask_ratio: float = option(
        0.9, "fine-tuning: share of mentions masked and predicted (the rest get their gold entity)", above=0,
        at_most=1,
    )  # fmt: skip
    freeze_entity_table: bool = option(
        True, "fine-tuning: train the entity table and output bias too", flag="--no-freeze-entity-table"
    )
    mention_db: Path | None = option(None, "mention database (luke build-mention-db): candidates with p(e|m)")
    candidates_file: Path | None = option(None, "candidates per mention (JSONL or the deep-ed TSV)")


class EntityDisambiguationTask(Task):
    """Entity disambiguation on gold mentions (``luke finetune entity_disambiguation``); see the module
    docstring."""

    name = "entity_disambiguation"
    model_class_name = "LukeForEntityDisambiguation"
    defaults = TaskDefaults(learning_rate=2e-5, train_batch_size=16, num_train_epochs=2, select_best=False,
                            warmup_ratio=0.1, max_grad_norm=1.0)  # fmt: skip
    options_class = EntityDisambiguationOptions
    options: EntityDisambiguationOptions
    split_files = {s: (f"{s}.jsonl", f"{s}.tsv") for s in ("train", "dev", "test")}
    raw_input = "{'id', 'text', 'entities': [{'start', 'end', optional 'candidates': [[title, prior], ...]}]}"
    main_metric = "accuracy"
    label_kind = "entity"
    label_keys = ("entity_labels",)
    keeps_entity_vocab = True

    def __init__(self, labels=None, unseen_labels: str = "error", **options: Any) -> None:
        super().__init__([_LABEL], unseen_labels, **options)
        self._sources: dict[str, Any] = {}
        self.mask_entity_id = 2  # set from the tokenizer by featurize
        self.candidate_counts: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------ data
    def read(self, path: str | Path) -> list[EdDocument]:
        try:
            from luke.finetuning.ed_data import read_documents
        except ImportError:  # until the AIDA reader lands: our JSON Lines only
            read_documents = read_jsonl
        return self.attach_candidates(read_documents(path), Path(path))

    def attach_candidates(self, docs: list[EdDocument], path: Path) -> list[EdDocument]:
        """Fill the candidates of mentions that have none from ``--candidates-file``, then ``--mention-db``;
        without either, a mention whose ``candidates`` are missing is an error naming the file."""
        for name in ("candidates_file", "mention_db"):
            if getattr(self.options, name) is not None:
                _attach(docs, self._source(name), self.options.max_candidates)
        missing = next(((d, m) for d in docs for m in d.mentions if m.candidates is None), None)
        if missing is not None:
            doc = missing[0]
            raise DataError(
                doc.path or path, f"document {doc.id!r}: a mention without 'candidates'; give them in the file, "
                "or pass --mention-db DB or --candidates-file FILE", doc.line,
            )  # fmt: skip
        return docs

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
                try:
                    from luke.finetuning.ed_data import read_candidates_file
                except ImportError:
                    raise ConfigError("--candidates-file is not available in this version") from None
                self._sources[name] = read_candidates_file(path)
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
        from luke.finetuning.model_io import TASK_FILE, _finetuned_tokenizer, model_folder
        from luke.modeling import LukeForEntityDisambiguation

        folder = model_folder(model_path, **hub_kwargs)
        model = LukeForEntityDisambiguation.from_pretrained(folder)  # refuses a folder without an entity head
        tokenizer = _finetuned_tokenizer(str(model_path), folder, LukeConfig.from_pretrained(folder), tokenizer_path,
                                         hub_kwargs)  # fmt: skip
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
        o = self.options
        self.mask_entity_id = tokenizer.entity_mask_token_id
        features, counts = ed_inference.document_features(
            examples, tokenizer, max_seq_length=o.max_seq_length, max_entity_length=o.max_entity_length,
            max_candidates=o.max_candidates,
        )  # fmt: skip
        self.candidate_counts = counts
        logger.info("candidates: %s", counts)
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
        """Documents with predictions, in ``--inference`` order (:func:`ed_inference.run_windows`)."""
        results = ed_inference.run_windows(
            model, features, mode=self.options.inference, batch_size=batch_size, pad_token_id=pad_token_id,
            progress=progress and (accelerator is None or accelerator.is_local_main_process), desc=desc,
        )  # fmt: skip
        return ed_inference.fill_predictions(examples, features, results)

    def decode(self, examples, features, logits) -> list[EdDocument]:
        """Local decoding of one pass's candidate probabilities or logits (E, K) per feature."""
        results = [(np.asarray(x).argmax(-1), _softmax_max(np.asarray(x))) for x in logits]
        return ed_inference.fill_predictions(examples, features, results)

    def score(self, examples, predictions) -> dict[str, Any]:
        out = ed_scores(examples, predictions)
        if self.candidate_counts:
            out["candidates"] = dict(self.candidate_counts)
        return out

    def write_predictions(self, path, examples, predictions) -> None:
        write_jsonl(path, predictions, predictions=True)

    def score_files(self, gold, predictions) -> dict[str, Any]:
        """``luke score entity_disambiguation --gold G --predictions P`` (both our JSON Lines)."""
        if gold is None:
            raise DataError(predictions, "scoring entity disambiguation needs the gold file: pass --gold FILE")
        gold_docs = {d.id: d for d in read_jsonl(gold)}
        predicted = read_jsonl(predictions)
        golds, preds = [], []
        for p in predicted:  # by document id and span; the others are misses
            g = gold_docs.get(p.id)
            if g is not None:
                spans = {(m.start, m.end): m.title for m in p.mentions}
                golds.append(g)
                preds.append(dataclasses.replace(p, mentions=[
                    dataclasses.replace(m, predicted=spans.get((m.start, m.end))) for m in g.mentions]))  # fmt: skip
        missing = [d for i, d in gold_docs.items() if i not in {p.id for p in predicted}]
        golds += missing
        preds += [dataclasses.replace(d, mentions=[dataclasses.replace(m, predicted=None) for m in d.mentions])
                  for d in missing]  # fmt: skip
        scores = ed_scores(golds, preds)
        return {k: scores[k] for k in ("precision", "recall", "f1", "accuracy")}

    def examples_from_raw(self, records, path) -> list[EdDocument]:
        docs = [document_from_record(rec, Path(path), line) for line, rec in records]
        return self.attach_candidates(docs, Path(path))

    def format_prediction(self, example: EdDocument, prediction: EdDocument) -> dict[str, Any]:
        """``{"id", "text", "entities": [{"start", "end", "mention", "title", "score"}]}`` (title null: NIL)."""
        return document_record(prediction, predictions=True)


def _softmax_max(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return (z / z.sum(-1, keepdims=True)).max(-1)


def _attach(docs: list[EdDocument], source: Any, k: int) -> None:
    """Candidates from ``source`` for the mentions that have none (the shared ``attach_candidates`` when
    present)."""
    try:
        from luke.finetuning.ed_data import attach_candidates
    except ImportError:
        for d in docs:
            for m in d.mentions:
                if m.candidates is None:
                    m.candidates = source.candidates(m.text_in(d), k)
        return
    attach_candidates(docs, source, k=k)


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    p = 100.0 * correct / predicted if predicted else 0.0
    r = 100.0 * correct / gold if gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def ed_scores(gold_docs: Sequence[EdDocument], predicted_docs: Sequence[EdDocument]) -> dict[str, Any]:
    """In-KB accuracy and strong-match P/R/F1 (percent) of documents whose mentions carry the gold ``title``
    and the ``predicted`` one (same mentions in both lists), on all mentions and on the ambiguous ones."""
    from luke.finetuning.ed_data import normalize_title

    out: dict[str, Any] = {}
    for name, keep in (("", lambda m: True), ("ambiguous_", lambda m: len(m.candidates or ()) > 1)):
        correct = predicted = gold = 0
        for g_doc, p_doc in zip(gold_docs, predicted_docs, strict=True):
            for g, p in zip(g_doc.mentions, p_doc.mentions, strict=True):
                if not keep(g):
                    continue
                gold += g.title is not None
                predicted += p.predicted is not None
                correct += (
                    g.title is not None
                    and p.predicted is not None
                    and (normalize_title(g.title) == normalize_title(p.predicted))
                )
        scores = {"accuracy": 100.0 * correct / gold if gold else 0.0, **_prf(correct, predicted, gold)}
        out |= {f"{name}{k}": v for k, v in scores.items()}
        out[f"{name}gold_mentions"] = gold
    return out
