"""Entity disambiguation inference: documents with candidates in, the chosen entity of each mention out.

One function, :func:`disambiguate`, serves ``luke evaluate`` / ``predict entity_disambiguation``, ``luke link``
and the Python API. Its steps are public for the task module, which featurizes once and trains on the same
windows:

1. :func:`document_features` — each document's mentions with at least one candidate in the model's entity
   vocabulary become ``[MASK]`` entities at their word positions; the candidates (``max_candidates`` best by
   prior, those outside the vocabulary dropped and counted) become ``entity_candidate_ids`` (E, K).
   A document that fits (``max_seq_length`` tokens, ``max_entity_length`` mentions) is one window. A longer
   one is cut into mention-centred windows: consecutive mentions are grouped while the group spans less
   than half a window of tokens (and at most ``max_entity_length`` mentions), and the window is centred on
   its group, so each mention has about a quarter window of context on either side (less at the document's
   edges). Every mention is scored in exactly one window, the one of its group; a window's entities are its
   group's mentions only.
2. :func:`run_windows` — *local*: one pass with every mention masked, each takes the argmax of its
   candidates. *Global* (Yamada et al., NAACL 2022): every mention starts masked; at each pass the single
   most confident unresolved mention of every window (highest softmax probability over its candidates) is
   fixed to its best candidate, whose entity id replaces its ``[MASK]`` as input for the next pass; windows
   with unresolved mentions are batched together until none is left. A mention with a single candidate has
   probability 1 at every pass, so the confidence order would fix it first: all of them are fixed (and fed in)
   before the first pass, and a window of E mentions, A of them with several candidates, takes A passes, not
   E (the same choices, except where another mention's probability also rounds to exactly 1.0).
3. :func:`fill_predictions` — copies of the documents with ``predicted`` (a title) and ``score`` (the
   softmax probability over the mention's candidates when it was fixed) on every mention that had a
   candidate; the others stay NIL (``predicted`` None).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from luke.finetuning.ed_data import EdDocument, normalize_title
from luke.finetuning.tasks.base import IGNORE_INDEX, Feature, collate_features

__all__ = [
    "INFERENCE_MODES",
    "disambiguate",
    "document_features",
    "collate_windows",
    "run_windows",
    "fill_predictions",
    "candidate_ids",
]

logger = logging.getLogger(__name__)
INFERENCE_MODES = ("global", "local")


def candidate_ids(
    candidates: Sequence[tuple[str, float]] | None, entity_vocab: Any, k: int, counts: dict[str, int] | None = None
) -> tuple[list[int], list[str]]:
    """The entity ids and vocabulary titles of a mention's ``k`` best candidates that are in ``entity_vocab``
    (a title is looked up as given, then normalised: ``_`` -> space, first letter upper-cased); duplicates
    after the lookup are dropped. ``counts["out_of_vocab_candidates"]`` counts the candidates left out."""
    ids: list[int] = []
    titles: list[str] = []
    for title, _prior in candidates or ():
        if len(ids) >= k:
            break
        entity_id = entity_vocab.get_id(title, None, None)
        found = title
        if entity_id is None:
            found = normalize_title(title)
            entity_id = entity_vocab.get_id(found, None, None)
        if entity_id is None:
            if counts is not None:
                counts["out_of_vocab_candidates"] = counts.get("out_of_vocab_candidates", 0) + 1
            continue
        if entity_id not in ids:
            ids.append(int(entity_id))
            titles.append(found)
    return ids, titles


def _gold_id(title: str | None, entity_vocab: Any) -> int:
    if title is None:
        return -1
    found = entity_vocab.get_id(title, None, None)
    if found is None:
        found = entity_vocab.get_id(normalize_title(title), None, None)
    return -1 if found is None else int(found)


def _groups(first: list[int], last: list[int], half: int, max_entities: int) -> list[list[int]]:
    """Consecutive mentions (token ranges ``first..last``) grouped while a group spans < ``half`` tokens."""
    groups: list[list[int]] = []
    for j in range(len(first)):
        g = groups[-1] if groups else None
        if g is not None and last[j] - first[g[0]] < half and len(g) < max_entities:
            g.append(j)
        else:
            groups.append([j])
    return groups


def _document_windows(
    doc_index: int, doc: EdDocument, tokenizer: Any, options: dict[str, Any], counts: dict[str, int]
) -> list[Feature]:
    """The window features of one document (see the module docstring)."""
    vocab = tokenizer.entity_vocab
    scored: list[tuple[int, list[int], list[str]]] = []  # (mention index, candidate ids, titles)
    for i, m in enumerate(doc.mentions):
        ids, titles = candidate_ids(m.candidates, vocab, options["max_candidates"], counts)
        if ids:
            scored.append((i, ids, titles))
    counts["mentions"] = counts.get("mentions", 0) + len(doc.mentions)
    counts["with_candidates"] = counts.get("with_candidates", 0) + len(scored)
    if not scored:
        return []
    spans = [(doc.mentions[i].start, doc.mentions[i].end) for i, _, _ in scored]
    enc = tokenizer(doc.text, entity_spans=spans, task=None, max_entity_length=len(spans))
    ids = list(enc["input_ids"])
    cls_id, sep_id, inner = ids[0], ids[-1], ids[1:-1]
    positions = np.asarray(enc["entity_position_ids"], np.int64).reshape(len(spans), -1)  # (E, M) full-sequence
    valid = positions >= 0
    # inner token indices (no [CLS]); a mention without tokens (never, for a non-blank span) gets an empty range
    first = [int(p[v].min()) - 1 if v.any() else 0 for p, v in zip(positions, valid, strict=True)]
    last = [int(p[v].max()) - 1 if v.any() else -1 for p, v in zip(positions, valid, strict=True)]
    cap = options["max_seq_length"] - 2
    if len(inner) <= cap and len(scored) <= options["max_entity_length"]:
        groups = [list(range(len(scored)))]
    else:
        groups = _groups(first, last, cap // 2, options["max_entity_length"])
    out = []
    for w, group in enumerate(groups):
        kept = [j for j in group if 0 <= last[j] - first[j] < cap]  # longer than a window (or no token): NIL
        counts["unscorable"] = counts.get("unscorable", 0) + len(group) - len(kept)
        group = kept
        if not group:
            continue
        centre = (first[group[0]] + last[group[-1]]) // 2
        a = max(0, min(centre - cap // 2, len(inner) - cap))
        b = min(len(inner), a + cap)
        out.append(_window(doc_index, w, doc, scored, group, positions, a, (cls_id, inner[a:b], sep_id), vocab,
                           tokenizer.entity_mask_token_id))  # fmt: skip
    return out


def _window(
    doc_index: int, w: int, doc: EdDocument, scored: list, group: list[int], positions: np.ndarray, a: int,
    words: tuple[int, list[int], int], vocab: Any, mask_id: int,
) -> Feature:  # fmt: skip
    """One window's feature: words ``[CLS] inner[a:b] [SEP]``, the group's mentions as ``[MASK]`` entities."""
    cls_id, inner, sep_id = words
    pos = positions[group]
    pos = np.where(pos >= 0, pos - a, -1)  # full-sequence index p -> window index p - a
    k = max(len(scored[j][1]) for j in group)
    cands = np.zeros((len(group), k), np.int64)
    cand_mask = np.zeros((len(group), k), bool)
    gold_index = np.full(len(group), IGNORE_INDEX, np.int64)
    gold_id = np.full(len(group), -1, np.int64)
    for r, j in enumerate(group):
        i, ids, _ = scored[j]
        cands[r, : len(ids)], cand_mask[r, : len(ids)] = ids, True
        gold_id[r] = _gold_id(doc.mentions[i].title, vocab)
        if gold_id[r] in ids:
            gold_index[r] = ids.index(int(gold_id[r]))
    rng = np.random.default_rng([doc_index, w])  # which mentions training leaves unmasked: fixed per window
    return {
        "input_ids": np.asarray([cls_id, *inner, sep_id], np.int64),
        "entity_ids": np.full(len(group), mask_id, np.int64),
        "entity_position_ids": pos,
        "entity_candidate_ids": cands,
        "entity_candidate_mask": cand_mask,
        "labels": gold_index,
        "gold_entity_ids": gold_id,
        "mask_draw": rng.random(len(group)),
        "candidate_titles": [scored[j][2] for j in group],
        "mention_indices": [scored[j][0] for j in group],
        "example_index": doc_index,
    }


def document_features(
    documents: Sequence[EdDocument],
    tokenizer: Any,
    *,
    max_seq_length: int = 512,
    max_entity_length: int = 128,
    max_candidates: int = 30,
) -> tuple[list[Feature], dict[str, int]]:
    """The window features of ``documents`` (module docstring, step 1) and counts: ``mentions``,
    ``with_candidates`` (mentions scored), ``out_of_vocab_candidates`` (candidates dropped: not in the
    tokenizer's entity vocabulary), ``unscorable`` (mentions longer than a window: NIL). Mentions whose
    ``candidates`` are None count as having none."""
    if max_seq_length < 3 or max_entity_length < 1 or max_candidates < 1:
        raise ValueError("max_seq_length must be >= 3, max_entity_length and max_candidates >= 1")
    options = {"max_seq_length": max_seq_length, "max_entity_length": max_entity_length,
               "max_candidates": max_candidates}  # fmt: skip
    counts = {"mentions": 0, "with_candidates": 0, "out_of_vocab_candidates": 0, "unscorable": 0}
    features: list[Feature] = []
    for d, doc in enumerate(documents):
        features.extend(_document_windows(d, doc, tokenizer, options, counts))
    return features, counts


def collate_windows(
    features: Sequence[Feature], pad_token_id: int, entity_ids: Sequence[np.ndarray] | None = None
) -> dict[str, torch.Tensor]:
    """A model batch of window features (no labels): words, entities (``entity_ids`` replace the features'
    when given: global inference), candidates (B, E, K) padded with id 0 and mask False."""
    rows = [
        {"input_ids": f["input_ids"], "entity_ids": f["entity_ids"] if entity_ids is None else entity_ids[n],
         "entity_position_ids": f["entity_position_ids"]}
        for n, f in enumerate(features)
    ]  # fmt: skip
    batch = collate_features(rows, pad_token_id, "entity")
    E = batch["entity_ids"].shape[1]
    K = max(f["entity_candidate_ids"].shape[1] for f in features)
    cands = np.zeros((len(features), E, K), np.int64)
    mask = np.zeros((len(features), E, K), bool)
    for n, f in enumerate(features):
        e, k = f["entity_candidate_ids"].shape
        cands[n, :e, :k], mask[n, :e, :k] = f["entity_candidate_ids"], f["entity_candidate_mask"]
    batch["entity_candidate_ids"], batch["entity_candidate_mask"] = torch.from_numpy(cands), torch.from_numpy(mask)
    return batch


def _probabilities(model: Any, features: Sequence[Feature], inputs: list[np.ndarray], pad_token_id: int) -> list:
    """Softmax over each entity's candidates, (E, K) per feature, from one forward pass."""
    batch = collate_windows(features, pad_token_id, inputs)
    device = next(model.parameters()).device
    logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float()  # (B, E, K)
    probs = torch.softmax(logits, dim=-1).masked_fill(~batch["entity_candidate_mask"].to(device), 0.0)
    probs = probs.cpu().numpy()
    return [probs[n, : len(f["entity_ids"]), : f["entity_candidate_ids"].shape[1]] for n, f in enumerate(features)]


@torch.no_grad()
def run_windows(
    model: Any,
    features: Sequence[Feature],
    *,
    mode: str = "global",
    batch_size: int = 32,
    pad_token_id: int = 1,
    progress: bool = False,
    desc: str = "disambiguate",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each window feature, the chosen candidate index (E,) and its probability (E,) (module docstring,
    step 2). Windows are batched by length; ``model`` is put in evaluation mode for the call."""
    if mode not in INFERENCE_MODES:
        raise ValueError(f"mode must be one of {INFERENCE_MODES}, got {mode!r}")
    was_training = model.training
    model.eval()
    inputs = [f["entity_ids"].copy() for f in features]
    choice = [np.full(len(f["entity_ids"]), -1, np.int64) for f in features]
    score = [np.zeros(len(f["entity_ids"])) for f in features]
    bar = tqdm(total=sum(len(f["entity_ids"]) for f in features), desc=desc, disable=not progress, leave=False)
    if mode == "global":  # a mention with one candidate has probability 1 at every pass: fixed before the first
        for n, f in enumerate(features):
            single = np.flatnonzero([len(titles) == 1 for titles in f["candidate_titles"]])
            choice[n][single], score[n][single] = 0, 1.0
            inputs[n][single] = f["entity_candidate_ids"][single, 0]
            bar.update(len(single))
    active = sorted((n for n, f in enumerate(features) if (choice[n] < 0).any()),
                    key=lambda n: len(features[n]["input_ids"]) + len(features[n]["entity_ids"]))  # fmt: skip
    while active:
        for s in range(0, len(active), batch_size):
            part = active[s : s + batch_size]
            probs = _probabilities(model, [features[n] for n in part], [inputs[n] for n in part], pad_token_id)
            for n, p in zip(part, probs, strict=True):
                best, top = p.argmax(-1), p.max(-1)  # (E,), (E,)
                todo = np.flatnonzero(choice[n] < 0)
                fix = todo if mode == "local" else todo[[int(top[todo].argmax())]]
                choice[n][fix], score[n][fix] = best[fix], top[fix]
                inputs[n][fix] = features[n]["entity_candidate_ids"][fix, best[fix]]
                bar.update(len(fix))
        active = [n for n in active if (choice[n] < 0).any()]
    bar.close()
    model.train(was_training)
    return list(zip(choice, score, strict=True))


def fill_predictions(
    documents: Sequence[EdDocument], features: Sequence[Feature], results: Sequence[tuple[np.ndarray, np.ndarray]]
) -> list[EdDocument]:
    """Copies of ``documents`` whose mentions carry ``predicted`` / ``score`` from ``results`` (one per
    feature, as :func:`run_windows` returns); mentions of no feature are NIL (``predicted`` None)."""
    out = [
        dataclasses.replace(d, mentions=[dataclasses.replace(m, predicted=None, score=None) for m in d.mentions])
        for d in documents
    ]
    for f, (choice, score) in zip(features, results, strict=True):
        doc = out[f["example_index"]]
        for r, i in enumerate(f["mention_indices"]):
            doc.mentions[i].predicted = f["candidate_titles"][r][int(choice[r])]
            doc.mentions[i].score = float(score[r])
    return out


def disambiguate(
    model: Any,
    tokenizer: Any,
    documents: Sequence[EdDocument],
    *,
    mode: str = "global",
    batch_size: int = 32,
    max_seq_length: int = 512,
    max_entity_length: int = 128,
    max_candidates: int = 30,
    progress: bool = False,
) -> list[EdDocument]:
    """Disambiguate the mentions of ``documents`` (each with ``candidates``: (title, prior) pairs, best
    first) with ``model`` (a :class:`~luke.modeling.LukeForEntityDisambiguation`) and its ``tokenizer``
    (whose entity vocabulary is the model's). Returns copies of the documents with ``predicted`` and
    ``score`` filled; mentions without a candidate in the vocabulary are NIL. ``mode``: ``"global"`` or
    ``"local"`` (module docstring)."""
    features, counts = document_features(
        documents, tokenizer, max_seq_length=max_seq_length, max_entity_length=max_entity_length,
        max_candidates=max_candidates,
    )  # fmt: skip
    if counts["out_of_vocab_candidates"]:
        logger.info("%d candidates are not in the entity vocabulary (left out)", counts["out_of_vocab_candidates"])
    results = run_windows(
        model, features, mode=mode, batch_size=batch_size, pad_token_id=tokenizer.pad_token_id, progress=progress
    )
    return fill_predictions(documents, features, results)
