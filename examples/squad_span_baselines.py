"""Trivial SQuAD baselines that know only answer lengths, scored with the official semantics.

* ``first-N``: the first N words of the passage;
* ``overlap-N``: the N words right after the passage window (N + 10 words) that shares the most words with
  the question (question words excluded from the answer), a cheap "sliding window" heuristic.

N is the median gold answer length (in words) of the training file. A fine-tuned model should be far above
both; docs/results.md reports them next to the SQuAD runs.

    python examples/squad_span_baselines.py TRAIN.json EVAL.json [--max-questions N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics

from luke.finetuning.metrics import normalize_answer, qa_scores
from luke.finetuning.tasks.squad import read_squad


def _words(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def first_n(context: str, n: int) -> str:
    spans = _words(context)[:n]
    return context[spans[0][0] : spans[-1][1]] if spans else ""


def overlap_n(question: str, context: str, n: int, window: int = 10) -> str:
    q = set(normalize_answer(question).split())
    spans = _words(context)
    norm = [normalize_answer(context[s:e]) for s, e in spans]
    best, best_i = -1, 0
    for i in range(len(spans)):
        score = sum(1 for w in norm[i : i + window] if w in q)
        if score > best:
            best, best_i = score, i
    rest = [k for k in range(best_i, len(spans)) if norm[k] not in q][:n]
    if not rest:
        return first_n(context, n)
    return context[spans[rest[0]][0] : spans[rest[-1]][1]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train", help="SQuAD file whose answers give N (median answer length in words)")
    p.add_argument("eval", help="SQuAD file to score")
    p.add_argument("--max-questions", type=int, help="score a seeded subset (seed 0, as luke finetune does)")
    args = p.parse_args()
    train, examples = read_squad(args.train), read_squad(args.eval)
    if args.max_questions and args.max_questions < len(examples):
        idx = sorted(random.Random(0).sample(range(len(examples)), args.max_questions))
        examples = [examples[i] for i in idx]
    n = int(statistics.median(len(text.split()) for ex in train for _, text in ex.answers[:1]))
    gold = {ex.qid: [t for _, t in ex.answers] for ex in examples}
    out = {"N": n, "questions": len(examples)}
    baselines = {
        "first-N": lambda ex: first_n(ex.context, n),
        "overlap-N": lambda ex: overlap_n(ex.question, ex.context, n),
    }
    for name, fn in baselines.items():
        scores = qa_scores(gold, {ex.qid: fn(ex) for ex in examples})
        out[name] = {"exact_match": round(scores["exact_match"], 2), "f1": round(scores["f1"], 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
