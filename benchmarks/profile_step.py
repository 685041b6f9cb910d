"""Where the time goes: the numbers behind the explanations in docs/benchmarks.md (not a test).

    python benchmarks/profile_step.py --kernels                     # dropout masks and AdamW steps, timed
    python benchmarks/profile_step.py --case infer-128 --impl luke  # torch.profiler table of one model step
    python benchmarks/profile_step.py --ner --impl transformers      # one 8-window NER training batch
    python benchmarks/profile_step.py --task relation_classification --mode eval   # 32 SemEval features
    python benchmarks/profile_step.py --onednn-ab infer-512 --iters 8  # EncoderLinear: oneDNN vs MKL vs tuned

``--case`` uses the base-size models and inputs of ``bench_model.py``; ``--ner`` the MiniLM-L6 span model and
real CoNLL-2003 windows (512 subwords) of ``bench_finetuning.py``. Profiles print the top operators by self
CPU time and the share of the linear layers' GEMMs (``aten::addmm`` + ``aten::mm``, and oneDNN's linear and
weight re-layout where ``EncoderLinear`` uses them) and of ``aten::bmm``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from luke.kernels import dropout_keep_mask  # noqa: E402


def _median_ms(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def kernels() -> None:
    n = 4 * 12 * 576 * 576  # one layer's attention-dropout mask at 4x(512+64), base size
    cpu = torch.device("cpu")
    print(f"dropout mask, {n:,} elements (p = 0.1):")
    print(f"  torch bernoulli_ (nn.Dropout)  {_median_ms(lambda: torch.empty(n).bernoulli_(0.9)):8.1f} ms")
    print(f"  luke dropout_keep_mask          {_median_ms(lambda: dropout_keep_mask((n,), 0.1, cpu)):8.1f} ms")
    # One 375 x 375 head (the NER windows of bench_finetuning): the casts DenseAttention avoids.
    probs, keep = torch.rand(1, 375, 375), torch.rand(1, 375, 375) > 0.1
    buf = torch.empty(1, 375, 375)

    def mask_by_ge():  # the same draw, thresholded by torch.ge (bool output)
        n, threshold = 375 * 375, 2 * round(0.1 * 32768) - 32768
        lanes = torch.empty(-(-n // 4), dtype=torch.int64).random_(-(2**63), None).view(torch.int16)[:n]
        torch.ge(lanes.view(1, 375, 375), threshold, out=keep)

    print("one 375x375 head, 100 repetitions:")
    for name, fn in (
        ("probs * bool mask", lambda: torch.mul(probs, keep, out=buf)),
        ("probs * mask viewed as uint8", lambda: torch.mul(probs, keep.view(torch.uint8), out=buf)),
        ("mask: draw + torch.ge", mask_by_ge),
        ("mask: dropout_keep_mask", lambda: dropout_keep_mask((1, 375, 375), 0.1, cpu, out=keep)),
    ):
        print(f"  {name:30s} {_median_ms(lambda fn=fn: [fn() for _ in range(100)]):8.1f} ms")
    import bench_finetuning
    from luke.finetuning.model_io import build_for_finetuning

    model, _ = build_for_finetuning(bench_finetuning.minilm(), "LukeForEntityClassification", ["a", "b"], seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    print(f"AdamW step, MiniLM-L6 entity-typing model ({sum(p.numel() for p in params):,} parameters):")
    for name, kw in (("default (per-tensor loop)", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        opt = torch.optim.AdamW(params, lr=1e-5, **kw)
        print(f"  {name:30s} {_median_ms(opt.step, repeats=5):8.1f} ms")


def _profile(step) -> None:
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))
    total = sum(e.self_cpu_time_total for e in events)
    linear_ops = ("aten::addmm", "aten::mm", "mkldnn::_linear_pointwise", "mkldnn::_reorder_linear_weight")
    gemm = sum(e.self_cpu_time_total for e in events if e.key in linear_ops)
    bmm = sum(e.self_cpu_time_total for e in events if e.key == "aten::bmm")
    print(f"self CPU total {total / 1e6:.2f} s; linear layers (addmm, mm, oneDNN linear + weight re-layout) "
          f"{gemm / 1e6:.2f} s ({100 * gemm / total:.0f} %); "
          f"bmm {bmm / 1e6:.2f} s ({100 * bmm / total:.0f} %)")  # fmt: skip


def model_case(case: str, impl: str, dtype: str = "fp32") -> None:
    from bench_model import CASES, build_models, make_inputs, step_fn

    mode, B, L, E = CASES[case]
    model = build_models("cpu")[impl]
    _profile(step_fn(model, make_inputs(B, L, E, "cpu"), mode, dtype, "cpu"))


def onednn_ab(case: str, iters: int) -> None:
    """Our model's step three ways, interleaved as in ``bench_model.py``: every eligible product forced onto
    oneDNN, every product on ``nn.Linear``/MKL, and the autotuner's per-class choice (``LUKE_LINEAR_BACKEND``
    = onednn / mkl / auto; the tuner's timings happen in the warm-up call). Training cases: forward and
    backward with dropout off (so the three compute the same function), products of both passes tuned."""
    from bench_model import CASES, build_models, interleave, make_inputs
    from luke.kernels import autotune

    mode, B, L, E = CASES[case]
    model, batch = build_models("cpu", attention_dropout=0.0)["luke"], make_inputs(B, L, E, "cpu")
    if mode == "train":
        for module in model.modules():
            if hasattr(module, "p"):
                module.p = 0.0
    model.train(mode == "train")
    settings = {"oneDNN": "onednn", "MKL only": "mkl", "tuned": "auto"}
    saved = os.environ.get(autotune.BACKEND_ENV)
    outputs = {}

    def run(name: str):
        def step():
            os.environ[autotune.BACKEND_ENV] = settings[name]
            states = model(**batch).last_hidden_state
            if mode == "train":
                states.pow(2).mean().backward()
                model.zero_grad(set_to_none=True)
            outputs[name] = states.detach()

        return step

    try:
        with torch.set_grad_enabled(mode == "train"):
            times = interleave({name: run(name) for name in settings}, iters)
    finally:
        if saved is None:
            os.environ.pop(autotune.BACKEND_ENV, None)
        else:
            os.environ[autotune.BACKEND_ENV] = saved
    diff = (outputs["oneDNN"] - outputs["MKL only"]).abs().max().item()
    print(f"{case}, {iters} iterations, max |difference| of the word states oneDNN vs MKL {diff:.2e}")
    for name, ts in times.items():
        print(f"  {name:9s} median {statistics.median(ts):.3f} s   " + " ".join(f"{t:.2f}" for t in ts))
    for name in ("oneDNN", "tuned"):
        pairs = [b / a for a, b in zip(times[name], times["MKL only"], strict=True)]
        ratio = statistics.median(times["MKL only"]) / statistics.median(times[name])
        print(f"  speed-up of {name} over MKL only: {ratio:.3f}x (pairs {min(pairs):.2f}-{max(pairs):.2f})")
    for label, d in autotune.TUNER.decisions().items():
        ms = ", ".join(f"{b} {t:.2f} ms" for b, t in d["ms"].items()) or "from the disk cache"
        print(f"  tuned {label}: {d['backend']} ({ms})")


def attention_ab(case: str, dtype: str, paths: list[str], iters: int) -> None:
    """Our model's step (``bench_model.py``'s, attention dropout 0.1) with the attention kernel forced to each
    of ``paths`` (``luke.kernels.attention.attention_path`` replaced), interleaved."""
    from bench_model import CASES, build_models, interleave, make_inputs, step_fn
    from luke import kernels

    mode, B, L, E = CASES[case]
    model, batch = build_models("cpu")["luke"], make_inputs(B, L, E, "cpu")
    chosen = kernels.attention.attention_path
    run = step_fn(model, batch, mode, dtype, "cpu")

    def forced(path: str):
        def step():
            kernels.attention.attention_path = (lambda *a: path) if path != "default" else chosen
            try:
                run()
            finally:
                kernels.attention.attention_path = chosen

        return step

    times = interleave({path: forced(path) for path in paths}, iters)
    print(f"{case} {dtype}, {iters} iterations, attention path forced")
    for path, ts in times.items():
        print(f"  {path:10s} median {statistics.median(ts):.3f} s   " + " ".join(f"{t:.2f}" for t in ts))


def task_batch(name: str, impl: str, mode: str) -> None:
    """Profile one batch of a fine-tuning task as ``bench_finetuning.py`` runs it: 8 training features
    (forward + backward + AdamW) or 32 evaluation features (forward under no_grad)."""
    import bench_finetuning as bf
    from luke.finetuning.commands import make_task
    from luke.finetuning.model_io import build_for_finetuning, to_transformers

    task = make_task(name, max_seq_length=512 if name == "ner" else None)
    splits = task.load_splits(bf.DATA[name], ("train",))
    task.set_labels_from(splits["train"])
    examples = random.Random(0).sample(splits["train"], len(splits["train"]))
    model, tok = build_for_finetuning(bf.minilm(), task.model_class_name, task.labels, seed=0)
    size = 8 if mode == "train" else 32
    feats = task.featurize(examples[: 2 * size], tok)[:size]
    if impl == "transformers":
        with tempfile.TemporaryDirectory() as tmp:
            model = to_transformers(model, tmp)
    batches = bf.batches(task, feats, size, tok.pad_token_id, mode == "train")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True) if mode == "train" else None
    _profile(lambda: bf.run(model, batches, mode == "train", opt))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernels", action="store_true", help="time dropout masks and AdamW variants")
    p.add_argument("--case", choices=["infer-128", "infer-512", "train-128", "train-512"], help="profile a model step")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="with --case: bf16 = autocast")
    p.add_argument("--ner", action="store_true", help="same as --task ner --mode train")
    p.add_argument(
        "--task",
        choices=["entity_typing", "relation_classification", "ner"],
        help="profile one batch of this fine-tuning task (MiniLM-L6, real data, as bench_finetuning.py)",
    )
    p.add_argument("--mode", choices=["train", "eval"], default="train", help="with --task")
    p.add_argument("--impl", choices=["luke", "transformers"], default="luke")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument(
        "--onednn-ab",
        choices=["infer-128", "infer-512", "train-128", "train-512"],
        help="time our step with every product on oneDNN, on MKL, and as tuned (interleaved)",
    )
    p.add_argument("--iters", type=int, default=8, help="with --onednn-ab / --attention-ab")
    p.add_argument(
        "--attention-ab",
        choices=["infer-128", "infer-512", "train-128", "train-512"],
        help="time our step (--dtype) with the attention kernel forced to each of --paths (interleaved)",
    )
    p.add_argument("--paths", nargs="+", default=["default", "reference"], help="with --attention-ab")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.kernels:
        kernels()
    if args.case:
        model_case(args.case, args.impl, args.dtype)
    if args.ner or args.task:
        task_batch(args.task or "ner", args.impl, args.mode)
    if args.onednn_ab:
        onednn_ab(args.onednn_ab, args.iters)
    if args.attention_ab:
        attention_ab(args.attention_ab, args.dtype, args.paths, args.iters)
    if not (args.kernels or args.case or args.ner or args.task or args.onednn_ab or args.attention_ab):
        p.error("choose --kernels, --case, --task, --ner, --onednn-ab or --attention-ab")


if __name__ == "__main__":
    main()
