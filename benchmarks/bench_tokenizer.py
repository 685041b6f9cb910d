"""Batch tokenization throughput: luke.tokenization.LukeTokenizer vs transformers.LukeTokenizer.

Tokenizes all 5,994 Open Entity examples (``entity_classification``) and all 10,717 SemEval-2010 Task 8
examples (``entity_pair_classification``) with the real roberta-base vocabulary, padded batches returned
as PyTorch tensors, in the same process, alternating the two implementations. Prints examples/s and the
speed-up. Not a test: run ``.venv/bin/python benchmarks/bench_tokenizer.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROBERTA = DATA / "tokenizers" / "roberta-base"
ENTITY_VOCAB = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3}


def load_open_entity() -> tuple[list[str], list[list[tuple[int, int]]]]:
    """All Open Entity examples (train+dev+test): text and the single mention span."""
    texts, spans = [], []
    for split in ("train", "dev", "test"):
        for ex in json.loads((DATA / "open_entity" / "ernie_format" / f"{split}.json").read_text()):
            texts.append(ex["sent"])
            spans.append([(ex["start"], ex["end"])])
    return texts, spans


def load_semeval() -> tuple[list[str], list[list[tuple[int, int]]]]:
    """All SemEval examples (train+test): space-joined tokens and (subject, object) character spans."""
    texts, spans = [], []
    for split in ("train", "test"):
        with open(DATA / "semeval2010_task8" / f"{split}.jsonl", encoding="utf-8") as f:
            for line in f:
                ex = json.loads(line)
                tokens = ex["token"]
                starts, pos = [], 0
                for tok in tokens:
                    starts.append(pos)
                    pos += len(tok) + 1
                subj = (starts[ex["subj_start"]], starts[ex["subj_end"]] + len(tokens[ex["subj_end"]]))
                obj = (starts[ex["obj_start"]], starts[ex["obj_end"]] + len(tokens[ex["obj_end"]]))
                texts.append(" ".join(tokens))
                spans.append([subj, obj])
    return texts, spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=0, help="0 = the whole data set in one call")
    args = parser.parse_args()

    import torch
    from transformers import LukeTokenizer as HFLukeTokenizer

    from luke.tokenization import LukeTokenizer

    torch.set_num_threads(2)
    ours = LukeTokenizer.from_files(
        vocab=ROBERTA / "vocab.json", merges=ROBERTA / "merges.txt", entity_vocab=ENTITY_VOCAB
    )
    workloads = [("Open Entity", "entity_classification", *load_open_entity())]
    workloads.append(("SemEval-2010 Task 8", "entity_pair_classification", *load_semeval()))
    print(f"torch threads: {torch.get_num_threads()}, cpu count: {os.cpu_count()}")
    for name, task, texts, spans in workloads:
        hf = HFLukeTokenizer(
            vocab=str(ROBERTA / "vocab.json"),
            merges=str(ROBERTA / "merges.txt"),
            entity_vocab=ENTITY_VOCAB,
            task=task,
        )
        bs = args.batch_size or len(texts)

        def run_ours(texts=texts, spans=spans, bs=bs, task=task):
            for i in range(0, len(texts), bs):
                ours(texts[i : i + bs], entity_spans=spans[i : i + bs], task=task, padding=True, return_tensors="pt")

        def run_hf(texts=texts, spans=spans, bs=bs, hf=hf):
            for i in range(0, len(texts), bs):
                hf(texts[i : i + bs], entity_spans=spans[i : i + bs], padding=True, return_tensors="pt")

        # same ids on the whole data set
        a = ours(texts, entity_spans=spans, task=task, padding=True, return_tensors="pt")
        b = hf(texts, entity_spans=spans, padding=True, return_tensors="pt")
        same = all(torch.equal(a[k], b[k]) for k in b)
        times: dict[str, list[float]] = {"ours": [], "transformers": []}
        for _ in range(args.repeats):
            for label, fn in (("ours", run_ours), ("transformers", run_hf)):
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
        ours_s = statistics.median(times["ours"])
        hf_s = statistics.median(times["transformers"])
        print(
            f"{name} ({task}, {len(texts)} examples, batch {bs}): "
            f"ours {len(texts) / ours_s:,.0f} ex/s, transformers {len(texts) / hf_s:,.0f} ex/s, "
            f"speed-up {hf_s / ours_s:.1f}x, identical outputs: {same}"
        )


if __name__ == "__main__":
    main()
