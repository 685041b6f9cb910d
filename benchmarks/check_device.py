"""Correctness and attention-path check of our model on an accelerator (CUDA), against ``transformers``.

The unit tests run on CPU; this script is what we run when a GPU machine is lent, before
``bench_model.py --device cuda``. Base-size config (as ``bench_model.py``), identical weights, dropout off:

1. inference and training (fp32, and bf16 autocast): max |difference| of our hidden states and gradients
   against ``transformers.LukeModel``'s, relative to the largest reference value; and bf16 against fp32;
2. which of the device's fused SDPA kernels accept the ``"stacked"`` entity-aware attention call
   (``luke.kernels.attention.stacked_attention``: queries and keys of head dim 2d, values of d);
3. our model's training step with the ``"stacked"`` path against the same model forced onto the
   materialised ``"reference"`` path (time and peak memory), with attention dropout 0.1.

``--rounding`` instead measures what fp32 rounding alone does to the same training step's gradients: each
implementation in fp32 against ``transformers`` in fp64, and ours in fp64 against ``transformers`` in fp64
(runs on CPU too; a few minutes there). Gradients of the embedding tables sum thousands of terms that cancel,
so fp32 gradients differ from fp64 ones by about 2 % of their largest value in both implementations: that,
not a difference between the implementations, is the scale of the "grads" column above.

    python benchmarks/check_device.py                               # on a machine with CUDA
    python benchmarks/check_device.py --device cpu --rounding       # the fp32 rounding scale
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_model import BASE, CASES, make_inputs  # noqa: E402
from luke import kernels  # noqa: E402
from luke.checkpoint import load_state_dict  # noqa: E402
from luke.config import LukeConfig  # noqa: E402
from luke.kernels.attention import stacked_attention  # noqa: E402
from luke.modeling import LukeModel  # noqa: E402


def build(device: str, attention_dropout: float = 0.0):
    torch.manual_seed(0)
    kw = BASE | dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=attention_dropout)
    hf = transformers.LukeModel(transformers.LukeConfig(**kw))
    ours = LukeModel(LukeConfig(**kw))
    report = load_state_dict(ours, hf.state_dict())
    assert not report.missing_keys and not report.unexpected_keys
    return hf.to(device), ours.to(device)


def run(model, batch, dtype: str, train: bool, device: str):
    """(word states, entity states, {param name: grad}) of one step; fp32 copies. The loss covers the real
    (unpadded) tokens only: what an implementation computes at padding is its own business."""
    model.train(train)
    model.zero_grad(set_to_none=True)
    ctx = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bf16")
    with torch.set_grad_enabled(train), ctx:
        out = model(**batch)
        words, ents = out.last_hidden_state.float(), out.entity_last_hidden_state.float()
    grads = {}
    if train:
        wkeep, ekeep = batch["attention_mask"].bool(), batch["entity_attention_mask"].bool()
        (words[wkeep].pow(2).mean() + ents[ekeep].pow(2).mean()).backward()
        grads = {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}
    return words.detach(), ents.detach(), grads


def rel(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor | None = None) -> float:
    if keep is not None:
        a, b = a[keep], b[keep]
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def compare(device: str) -> None:
    hf, ours = build(device)
    batch = make_inputs(4, 512, 64, device)
    wkeep, ekeep = batch["attention_mask"].bool(), batch["entity_attention_mask"].bool()
    print("| mode | dtype | words rel max|d| | entities rel max|d| | grads rel max|d| (worst parameter) |")
    print("|---|---|---|---|---|")
    reference = {}
    for train in (False, True):
        for dtype in ("fp32", "bf16"):
            w_hf, e_hf, g_hf = run(hf, batch, dtype, train, device)
            w, e, g = run(ours, batch, dtype, train, device)
            if dtype == "fp32":
                reference[train] = (w_hf, e_hf, g_hf)
            worst = max(((rel(g[n], g_hf[n]), n) for n in g_hf), default=(0.0, "-"))
            mode = "train" if train else "infer"
            print(
                f"| {mode} | {dtype} vs transformers {dtype} | {rel(w, w_hf, wkeep):.2e} | {rel(e, e_hf, ekeep):.2e} "
                f"| {worst[0]:.2e} ({worst[1]}) |"
            )
            if dtype == "bf16":
                w32, e32, g32 = reference[train]
                worst = max(((rel(g[n], g32[n]), n) for n in g32), default=(0.0, "-"))
                print(
                    f"| {mode} | ours bf16 vs transformers fp32 | {rel(w, w32, wkeep):.2e} | {rel(e, e32, ekeep):.2e} "
                    f"| {worst[0]:.2e} ({worst[1]}) |"
                )


def sdpa_backends(device: str) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, h, N, L, d = 4, 12, 576, 512, 64
    for dtype in (torch.float32, torch.bfloat16):
        q_tw, q_te, k, v = (torch.randn(B, h, N, d, device=device, dtype=dtype) for _ in range(4))
        mask = torch.zeros(B, 1, 1, N, device=device, dtype=dtype)
        for backend in (SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION):
            try:
                with sdpa_kernel(backend):
                    stacked_attention(q_tw, q_te, k, v, mask, L, d**-0.5)
                verdict = "runs"
            except RuntimeError as err:
                verdict = f"refused ({str(err).splitlines()[0][:80]})"
            print(f"# stacked attention, {dtype}, {backend.name}: {verdict}")


def path_timing(device: str, iters: int) -> None:
    _, ours = build(device, attention_dropout=0.1)
    original = kernels.attention.attention_path
    print("| case | dtype | stacked ms | reference ms | speed-up | peak MiB stacked / reference |")
    print("|---|---|---|---|---|---|")
    for case in ("train-128", "train-512"):
        _, B, L, E = CASES[case]
        batch = make_inputs(B, L, E, device)
        for dtype in ("fp32", "bf16"):
            row = {}
            for path in ("stacked", "reference"):
                kernels.attention.attention_path = (lambda *a, p=path: p) if path == "reference" else original
                times = []
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                for i in range(iters + 1):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    run(ours, batch, dtype, True, device)
                    torch.cuda.synchronize()
                    if i:
                        times.append(time.perf_counter() - t0)
                row[path] = (statistics.median(times) * 1000, (torch.cuda.max_memory_allocated() - base) / 2**20)
            kernels.attention.attention_path = original
            (s_ms, s_mem), (r_ms, r_mem) = row["stacked"], row["reference"]
            print(f"| {case} | {dtype} | {s_ms:.1f} | {r_ms:.1f} | {r_ms / s_ms:.2f}x | {s_mem:.0f} / {r_mem:.0f} |")


def rounding(device: str) -> None:
    hf, ours = build(device)
    batch = make_inputs(4, 512, 64, device)
    grads = {}
    for name, model in (("transformers", hf), ("ours", ours)):
        for dtype in (torch.float32, torch.float64):
            grads[name, dtype] = run(model.to(dtype), batch, "fp32", True, device)[2]
        model.float()
    reference = grads["transformers", torch.float64]
    print("| training gradients | rel max|d| (worst parameter) |")
    print("|---|---|")
    for label, key in (
        ("transformers fp32 vs transformers fp64", ("transformers", torch.float32)),
        ("ours fp32 vs transformers fp64", ("ours", torch.float32)),
        ("ours fp64 vs transformers fp64", ("ours", torch.float64)),
    ):
        worst = max((rel(grads[key][n], reference[n]), n) for n in reference)
        print(f"| {label} | {worst[0]:.2e} ({worst[1]}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--rounding", action="store_true", help="only the fp32-vs-fp64 gradient comparison")
    args = parser.parse_args()
    if args.rounding:
        rounding(args.device)
        return
    if args.device == "cuda":
        print(f"# {torch.cuda.get_device_name()} torch={torch.__version__} transformers={transformers.__version__}")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in the comparison
    compare(args.device)
    sdpa_backends(args.device)
    path_timing(args.device, args.iters)


if __name__ == "__main__":
    main()
