"""Model benchmark: our LukeModel vs transformers.LukeModel, identical weights and inputs, same process.

Runs are interleaved (the two implementations alternate within every iteration, order flipped each
time) and the median is reported, because timings on shared machines drift by +-15% over minutes.
The "pairs" column gives the range of the per-iteration speed-ups (each from two adjacent runs, so both
saw the same machine state): a spread that includes 1.0 means the difference is within the noise.
Peak memory is measured separately: each (implementation, case) runs once in a fresh subprocess and we
report how far the process's resident memory rose above its level before that one step (CPU; first
step, so it includes one-time allocations such as gradient buffers), or torch's peak allocated memory
(CUDA).

The header names the machine (CPU model, the flags that matter, torch's CPU capability, threads) and, on
CPU, the measured GEMM peaks of ``luke.kernels.cpu.gemm_peaks`` (fp32 MKL, fp32 oneDNN, bf16; ``--no-peaks``
skips them). Per case, "GFLOP/s" is ``encoder_flops`` (below: the encoder's matrix products over the real,
unpadded tokens, the same count for both implementations, so it measures useful work) divided by the median
step time, and "luke % of peak" is our rate over the best fp32 peak (and, for bf16 cases, over the bf16 peak).

    python benchmarks/bench_model.py                      # all cases, base-size config
    python benchmarks/bench_model.py --quick              # fewer iterations
    python benchmarks/bench_model.py --cases infer-128 --dtypes fp32 --iters 3
    python benchmarks/bench_model.py --device cuda --dtypes bf16   # on a GPU machine
    python benchmarks/bench_model.py --device cuda --batch-scale 8 # 8x the batch of every case
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

import torch
import transformers

from luke.checkpoint import load_state_dict
from luke.config import LukeConfig
from luke.kernels.cpu import machine_report
from luke.modeling import LukeModel

BASE = dict(
    vocab_size=50265,
    entity_vocab_size=1000,
    hidden_size=768,
    entity_emb_size=256,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=514,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
)
# name -> (mode, batch, words, entities)
CASES = {
    "infer-128": ("infer", 8, 128, 16),
    "infer-512": ("infer", 4, 512, 64),
    "train-128": ("train", 8, 128, 16),
    "train-512": ("train", 4, 512, 64),
}


def make_inputs(B: int, L: int, E: int, device: str, M: int = 30, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs with realistic padding: every other example has its last 10% of words and a quarter
    of its entities padded; mentions are 1-4 tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, BASE["vocab_size"], (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.long)
    ent = torch.randint(3, BASE["entity_vocab_size"], (B, E), generator=g)
    emask = torch.ones(B, E, dtype=torch.long)
    pos = torch.full((B, E, M), -1)
    for b in range(B):
        n_words = L - (L // 10 if b % 2 else 0)
        ids[b, n_words:], mask[b, n_words:] = 1, 0
        n_ent = E - (E // 4 if b % 2 else 0)
        ent[b, n_ent:], emask[b, n_ent:] = 0, 0
        for e in range(n_ent):
            start = int(torch.randint(1, n_words - 5, (1,), generator=g))
            length = int(torch.randint(1, 5, (1,), generator=g))
            pos[b, e, :length] = torch.arange(start, start + length)
    batch = dict(
        input_ids=ids, attention_mask=mask, entity_ids=ent, entity_attention_mask=emask, entity_position_ids=pos
    )
    return {k: v.to(device) for k, v in batch.items()}


def encoder_flops(batch: dict[str, torch.Tensor], mode: str, entity_aware: bool = True) -> float:
    """FLOPs of the encoder's matrix products for one step on ``batch``, counted from BASE and the real
    (unpadded) token counts: per example with w real words and e real entities, t = w + e, and per layer:
    the query projections (2 per token with entity-aware attention: to-word and to-entity; else 1), key,
    value and attention-output projections, 2·t·H·H each; the two FFN products, 2·t·H·I each; the attention
    scores and the probability-weighted values over the t real keys, 2·t·t·H each. A product of (m, k) by
    (k, n) counts 2·m·k·n. Training counts 3x (the backward pass has two products per forward product).
    Not counted: embeddings (the entity embedding's 256->768 projection included), LayerNorm, softmax, GELU,
    dropout, biases, the padding transformers computes and the loss."""
    H, I, layers = BASE["hidden_size"], BASE["intermediate_size"], BASE["num_hidden_layers"]
    queries = 2 if entity_aware else 1
    per_layer = 0
    words = batch["attention_mask"].sum(1).tolist()
    entities = batch["entity_attention_mask"].sum(1).tolist()
    for w, e in zip(words, entities, strict=True):
        t = w + e
        per_layer += 2 * t * H * H * (queries + 3) + 2 * 2 * t * H * I + 2 * 2 * t * t * H
    return float(per_layer * layers * (3 if mode == "train" else 1))


def print_machine(device: str, peaks: bool) -> dict:
    """Print the CPU and (on CPU, unless ``peaks`` is False) the measured GEMM peaks at the current thread
    count; return the peaks as {backend: GFLOP/s or None}."""
    lines, measured = machine_report(device, peaks)
    if device == "cuda":
        measured = cuda_gemm_peaks() if peaks else {}
        rates = ", ".join(f"{k} {v / 1000:.0f} TFLOP/s" for k, v in measured.items())
        lines.append(f"GPU: {torch.cuda.get_device_name()}; GEMM peaks, 8192^3: {rates or 'not measured'}")
    for line in lines:
        print(f"# {line}")
    return measured


def cuda_gemm_peaks(n: int = 8192, iters: int = 10) -> dict[str, float]:
    """GFLOP/s of one n x n by n x n product on the GPU in fp32 (TF32 off, as torch's default) and bf16."""
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = (torch.randn(n, n, device="cuda", dtype=dtype) for _ in "ab")
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            a @ b
        torch.cuda.synchronize()
        rates[name] = 2 * n**3 * iters / (time.perf_counter() - t0) / 1e9
    return rates


def peak_share(gflops: float, dtype: str, peaks: dict) -> tuple[str, dict[str, float]]:
    """(the "luke % of peak" cell, the fractions) of ``gflops`` against the best fp32 peak and, for bf16, the
    bf16 peak."""
    fp32 = max((v for k, v in peaks.items() if k.startswith("fp32") and v), default=None)
    shares = {"fp32": gflops / fp32} if fp32 else {}
    if dtype == "bf16" and peaks.get("bf16"):
        shares["bf16"] = gflops / peaks["bf16"]
    return ", ".join(f"{v * 100:.0f} % {k}" for k, v in shares.items()) or "-", shares


def build_models(device: str, entity_aware: bool = True, attention_dropout: float = 0.1):
    torch.manual_seed(0)
    kw = BASE | dict(use_entity_aware_attention=entity_aware, attention_probs_dropout_prob=attention_dropout)
    hf = transformers.LukeModel(transformers.LukeConfig(**kw))
    ours = LukeModel(LukeConfig(**kw))
    report = load_state_dict(ours, hf.state_dict())
    assert not report.missing_keys and not report.unexpected_keys
    return {"transformers": hf.to(device), "luke": ours.to(device)}


def step_fn(model, batch, mode: str, dtype: str, device: str):
    autocast = torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
    if mode == "infer":
        model.eval()

        def run():
            with torch.no_grad(), autocast:
                model(**batch)

    else:
        model.train()

        def run():
            with autocast:
                out = model(**batch)
                loss = out.last_hidden_state.float().pow(2).mean() + out.entity_last_hidden_state.float().pow(2).mean()
            loss.backward()
            model.zero_grad(set_to_none=True)

    return run


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_case(models, case: str, dtype: str, device: str, iters: int) -> dict[str, list[float]]:
    mode, B, L, E = CASES[case]
    batch = make_inputs(B, L, E, device)
    return interleave({name: step_fn(m, batch, mode, dtype, device) for name, m in models.items()}, iters, device)


def interleave(runs: dict, iters: int, device: str = "cpu") -> dict[str, list[float]]:
    """Seconds per call of each run, after one warm-up call each; the runs alternate inside every
    iteration and the order flips each time, so all of them see the same machine drift."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(iters):
        for name in names if i % 2 == 0 else names[::-1]:
            sync(device)
            t0 = time.perf_counter()
            runs[name]()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def _rss_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_child(impl: str, case: str, dtype: str, device: str, attention_dropout: float) -> None:
    """Run one step in this (fresh) process and print the extra memory it needed at its peak, in MiB.

    CPU: the kernel's peak-RSS counter is reset just before the step (``/proc/self/clear_refs``), after
    returning freed heap memory to the OS, so model construction does not hide the step's own peak."""
    torch.manual_seed(0)
    kw = BASE | dict(use_entity_aware_attention=True, attention_probs_dropout_prob=attention_dropout)
    model = (
        transformers.LukeModel(transformers.LukeConfig(**kw)) if impl == "transformers" else LukeModel(LukeConfig(**kw))
    )
    model = model.to(device)
    mode, B, L, E = CASES[case]
    run = step_fn(model, make_inputs(B, L, E, device), mode, dtype, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        import ctypes
        import gc

        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _rss_kib("VmRSS")
        run()
        peak = (_rss_kib("VmHWM") - before) * 1024
    print(json.dumps({"peak_mib": peak / 2**20}))


BATCH_SCALE = [1]  # --batch-scale, passed on to the memory-measuring child processes


def peak_memory(impl: str, case: str, dtype: str, device: str, attention_dropout: float) -> float:
    cmd = [sys.executable, __file__, "--_child", impl, case, dtype, "--device", device]
    cmd += ["--attention-dropout", str(attention_dropout), "--batch-scale", str(BATCH_SCALE[0])]
    # glibc: serve every allocation >= 64 KiB with its own mapping, returned on free, so resident memory
    # tracks live tensors and the peak is not blurred by the allocator's caching (tested: +-1 MiB).
    env = os.environ | {"PYTHONWARNINGS": "ignore", "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 iterations, no memory measurement")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-peaks", action="store_true", help="do not measure the GEMM peaks (saves ~5 s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument(
        "--attention-dropout",
        type=float,
        default=0.1,
        help="attention_probs_dropout_prob of both models (matters for training steps only)",
    )
    parser.add_argument(
        "--batch-scale",
        type=int,
        default=1,
        help="multiply every case's batch size (e.g. 8 on a GPU, which small batches leave idle)",
    )
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    BATCH_SCALE[0] = args.batch_scale
    for case, (mode, B, L, E) in CASES.items():
        CASES[case] = (mode, B * args.batch_scale, L, E)
    if args._child:
        peak_memory_child(*args._child, args.device, args.attention_dropout)
        return
    iters = 3 if args.quick else args.iters
    print(
        f"# device={args.device} threads={torch.get_num_threads()} torch={torch.__version__} "
        f"transformers={transformers.__version__} iters={iters} attention_dropout={args.attention_dropout}"
    )
    print("# base config: hidden 768, 12 layers, 12 heads, FFN 3072, entity emb 256, entity-aware attention")
    peaks = print_machine(args.device, not args.no_peaks)
    models = build_models(args.device, attention_dropout=args.attention_dropout)
    header = (
        "| case | dtype | transformers ms | luke ms | luke tokens/s | speed-up | pairs | peak MiB hf / luke "
        "| GFLOP/s hf / luke | luke % of peak |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for case in args.cases:
        mode, B, L, E = CASES[case]
        for dtype in args.dtypes:
            times = time_case(models, case, dtype, args.device, iters)
            hf_ms = statistics.median(times["transformers"]) * 1000
            ours_ms = statistics.median(times["luke"]) * 1000
            tokens = B * (L + E)
            mem = "-"
            # same-iteration speed-ups: each from two adjacent runs
            pairs = [a / b for a, b in zip(times["transformers"], times["luke"], strict=True)]
            row = dict(case=case, dtype=dtype, hf_ms=hf_ms, luke_ms=ours_ms, speedup=hf_ms / ours_ms, pairs=pairs)
            if not (args.quick or args.no_memory):
                m_hf = peak_memory("transformers", case, dtype, args.device, args.attention_dropout)
                m_ours = peak_memory("luke", case, dtype, args.device, args.attention_dropout)
                mem = f"{m_hf:.0f} / {m_ours:.0f}"
                row |= dict(peak_mib_hf=m_hf, peak_mib_luke=m_ours)
            flops = encoder_flops(make_inputs(B, L, E, "cpu"), mode)
            gf_hf, gf_ours = flops / hf_ms / 1e6, flops / ours_ms / 1e6
            share, fractions = peak_share(gf_ours, dtype, peaks)
            row |= dict(gflop=flops / 1e9, gflops_hf=gf_hf, gflops_luke=gf_ours, peak_gflops=peaks)
            row |= {f"fraction_{k}_peak": v for k, v in fractions.items()}
            results.append(row)
            label = f"{mode} {B}x({L}+{E})"
            print(
                f"| {label} | {dtype} | {hf_ms:.0f} | {ours_ms:.0f} | {tokens / ours_ms * 1000:.0f} | "
                f"{hf_ms / ours_ms:.2f}x | {min(pairs):.2f}-{max(pairs):.2f} | {mem} | {gf_hf:.0f} / {gf_ours:.0f} "
                f"| {share} |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
