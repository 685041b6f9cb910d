"""Benchmark of the three Wikipedia pretraining-data steps with 1 and N workers (not a test).

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_wikipedia.py [--dump PATH] [--workers 1 2] [--json OUT]

Measures wall time, pages/s and tokens/s of ``build-dump-db``, ``build-entity-vocab`` and
``build-pretraining-dataset`` on the 106-article 2016 dump in ``../shared/data/wikipedia`` (RoBERTa tokenizer),
plus the throughput of the single XML/bz2 reader that feeds step 1's workers, and prints an extrapolation to
full English Wikipedia on a 32-core machine (arithmetic shown; assumptions stated).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from luke.wikipedia.dump_db import DumpDB, DumpReader, build_dump_db  # noqa: E402
from luke.wikipedia.entity_vocab_builder import build_entity_vocab  # noqa: E402
from luke.wikipedia.pretraining_dataset import DatasetOptions, build_pretraining_dataset  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DUMP = SHARED / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
TOKENIZER = SHARED / "tokenizers" / "roberta-base"

# Assumptions for the extrapolation (not measured here).
FULL_ARTICLES = 6_900_000  # English Wikipedia articles (issue #5)
FULL_WORDS = 2_500_000_000  # words of English Wikipedia prose (BERT paper, Devlin et al. 2019, §3.1)
CORES = 32
TARGET_HOURS = 12


CPU: dict[str, float] = {}


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    """Wall seconds of ``fn``; its CPU seconds (this process + reaped workers) go to ``CPU[fn.__name__ + workers]``."""
    start, cpu = time.perf_counter(), _cpu()
    result = fn(*args, **kwargs)
    CPU[f"{getattr(fn, '__name__', 'fn')}/{kwargs.get('num_workers', 1)}"] = _cpu() - cpu
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", type=Path, default=DEFAULT_DUMP)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    results: dict[str, object] = {"dump": args.dump.name, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        reader = DumpReader(args.dump)
        seconds, n_pages = _timed(lambda: sum(1 for _ in reader))
        xml_bytes = sum(len(p.text.encode("utf-8")) for p in DumpReader(args.dump))
        results["reader"] = {"seconds": seconds, "pages": n_pages, "wikitext_bytes": xml_bytes}

        step1: dict[int, float] = {}
        for workers in args.workers:
            seconds, stats = _timed(
                build_dump_db, args.dump, tmp / f"db{workers}.sqlite", num_workers=workers, progress=False
            )
            step1[workers] = seconds
        db_path = tmp / f"db{args.workers[0]}.sqlite"
        db = DumpDB(db_path)
        articles = len(db)
        seconds2, (vocab, vocab_stats) = _timed(build_entity_vocab, db, vocab_size=1_000_000)
        vocab.save(tmp / "vocab.jsonl")

        step3: dict[int, float] = {}
        meta: dict = {}
        for workers in args.workers:
            out = tmp / f"ds{workers}"
            seconds, meta = _timed(
                build_pretraining_dataset,
                db_path,
                TOKENIZER,
                tmp / "vocab.jsonl",
                out,
                DatasetOptions(seed=0),
                num_workers=workers,
                progress=False,
            )
            step3[workers] = seconds
        tokens = meta["counts"]["tokens"]
        words = _count_words(db)

    w_lo, w_hi = min(args.workers), max(args.workers)
    results.update(
        articles=articles,
        tokens=tokens,
        words=words,
        step1_seconds=step1,
        step2_seconds=seconds2,
        step3_seconds=step3,
        vocab_size=len(vocab),
        items=meta["number_of_items"],
    )
    print(f"dump: {args.dump.name}  ({articles} articles, {results['reader']['wikitext_bytes']:,} bytes of wikitext)")
    print(f"  reader (bz2 + XML, single process): {results['reader']['seconds']:.2f} s")
    for w in args.workers:
        print(
            f"  step 1 build-dump-db       {w} worker(s): {step1[w]:6.2f} s  {articles / step1[w]:7.1f} pages/s  "
            f"{tokens / step1[w]:9,.0f} tokens/s"
        )
    print(f"  step 2 build-entity-vocab  1 process  : {seconds2:6.2f} s  ({len(vocab):,} ids)")
    for w in args.workers:
        print(
            f"  step 3 build-pretraining   {w} worker(s): {step3[w]:6.2f} s  {articles / step3[w]:7.1f} pages/s  "
            f"{tokens / step3[w]:9,.0f} tokens/s"
        )
    for name in ("build_dump_db", "build_pretraining_dataset"):
        cpu = {w: CPU[f"{name}/{w}"] for w in args.workers}
        print(
            f"  CPU seconds of {name} (all processes): " + ", ".join(f"{w} worker(s) {c:.2f}" for w, c in cpu.items())
        )
    results["cpu_seconds"] = CPU
    print(f"  load average during the run: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    speedup1, speedup3 = step1[w_lo] / step1[w_hi], step3[w_lo] / step3[w_hi]
    print(f"  scaling {w_lo}->{w_hi} workers: step 1 x{speedup1:.2f}, step 3 x{speedup3:.2f}")

    # Extrapolation by volume: the sample's articles are long, so pages/s would overstate the cost; scale by
    # words of article text (paragraph words in the dump database) instead.
    eff1 = speedup1 / (w_hi / w_lo)
    eff3 = speedup3 / (w_hi / w_lo)
    per_core1 = words / (step1[w_lo] * w_lo)
    per_core3 = words / (step3[w_lo] * w_lo)
    h1 = FULL_WORDS / (per_core1 * CORES * eff1) / 3600
    h3 = FULL_WORDS / (per_core3 * CORES * eff3) / 3600
    reader_wps = words / results["reader"]["seconds"]
    h_reader = FULL_WORDS / reader_wps / 3600
    h2 = seconds2 * (FULL_ARTICLES / articles) / 3600  # step 2 scales with distinct targets; pessimistic
    print(f"\nExtrapolation to English Wikipedia on {CORES} cores (assumed: 2.5e9 words, 6.9e6 articles):")
    print(f"  sample: {words:,} words of paragraph text, {tokens:,} tokens in items")
    print(
        f"  step 1: 2.5e9 / ({per_core1:,.0f} words/s/core x {CORES} x efficiency {eff1:.2f}) = {h1:.2f} h; "
        f"single bz2/XML reader: 2.5e9 / {reader_wps:,.0f} words/s = {h_reader:.2f} h -> {max(h1, h_reader):.2f} h"
    )
    print(f"  step 2: {seconds2:.2f} s x {FULL_ARTICLES:,} / {articles} articles = {h2:.2f} h (upper bound)")
    print(f"  step 3: 2.5e9 / ({per_core3:,.0f} words/s/core x {CORES} x efficiency {eff3:.2f}) = {h3:.2f} h")
    total = max(h1, h_reader) + h2 + h3
    print(f"  total: {total:.2f} h (target < {TARGET_HOURS} h)")
    results["extrapolation_hours"] = {"step1": max(h1, h_reader), "step2": h2, "step3": h3, "total": total}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _count_words(db: DumpDB) -> int:
    words = 0
    for page_id in db.page_ids():
        _, paragraphs = db.get_page(page_id)
        words += sum(len(p.text.split()) for p in paragraphs)
    return words


if __name__ == "__main__":
    main()
