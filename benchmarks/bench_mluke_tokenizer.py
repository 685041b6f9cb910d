"""mLUKE tokenization throughput: luke.tokenization.LukeTokenizer vs transformers.MLukeTokenizer.

Trains a SentencePiece unigram model (XLM-R layout) on generated multilingual sentences, writes an mLUKE-like
folder (``sentencepiece.bpe.model``, ``tokenizer_config.json`` naming ``MLukeTokenizer``, ``entity_vocab.json``
with ``lang:Title`` keys) in a temp dir, and tokenizes the same batches of sentences with entity spans in a
few task modes with both tokenizers, alternating them.  Prints the CPU model, examples/s and the speed-up.
Not a test: ``.venv/bin/python benchmarks/bench_mluke_tokenizer.py [--examples 2000]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

WORDS = {
    "en": "the city river capital people history music world company university team music film".split(),
    "de": "die Stadt Fluss Hauptstadt Menschen Geschichte Musik Welt Firma Universität Mannschaft".split(),
    "ja": "東京 日本 首都 大学 歴史 音楽 世界 会社 映画 都市 川 人々 チーム".split(),
    "ru": "город река столица люди история музыка мир компания университет команда".split(),
}
CONFIG = {
    "tokenizer_class": "MLukeTokenizer", "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
    "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>",
    "mask_token": {"__type": "AddedToken", "content": "<mask>", "lstrip": True, "normalized": True,
                   "rstrip": False, "single_word": False},
    "task": None, "max_entity_length": 32, "max_mention_length": 30, "model_max_length": 512,
    "entity_token_1": {"__type": "AddedToken", "content": "<ent>", "lstrip": False, "normalized": True,
                       "rstrip": False, "single_word": False},
    "entity_token_2": {"__type": "AddedToken", "content": "<ent2>", "lstrip": False, "normalized": True,
                       "rstrip": False, "single_word": False},
    "additional_special_tokens": ["<ent>", "<ent2>"], "sp_model_kwargs": {},
}  # fmt: skip


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def sentence(rng: random.Random) -> tuple[str, list[tuple[int, int]], list[str]]:
    """A sentence of 12-40 words (mostly one language, some code-switching) with 2-4 entity spans."""
    lang = rng.choice(list(WORDS))
    sep = "" if lang == "ja" else " "
    words = [rng.choice(WORDS[rng.choice([lang] * 4 + list(WORDS))]) for _ in range(rng.randint(12, 40))]
    text, starts = "", []
    for w in words:
        if text:
            text += sep
        starts.append(len(text))
        text += w
    picks = sorted(rng.sample(range(len(words)), rng.randint(2, 4)))
    spans = [(starts[k], starts[k] + len(words[k])) for k in picks]
    return text + ".", spans, [f"{lang}:{words[k]}" for k in picks]


def build_folder(folder: Path, rng: random.Random) -> None:
    import sentencepiece as spm

    corpus = [sentence(rng)[0] for _ in range(2000)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=400, model_type="unigram",
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    (folder / "sentencepiece.bpe.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(json.dumps(CONFIG))
    vocab = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3}
    for lang, words in WORDS.items():
        for w in words:
            vocab.setdefault(f"{lang}:{w}", len(vocab))
    (folder / "entity_vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from transformers import MLukeTokenizer

    from luke.tokenization import LukeTokenizer

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_folder(folder, rng)
        ours = LukeTokenizer.from_pretrained(folder)
        theirs = MLukeTokenizer.from_pretrained(str(folder))
    data = [sentence(rng) for _ in range(args.examples)]
    bs = args.batch_size
    batches = [data[i : i + bs] for i in range(0, len(data), bs)]
    print(f"CPU: {cpu_model()}; {args.examples} examples, batches of {bs}, best of {args.repeats}")
    for task in (None, "entity_classification", "entity_pair_classification", "entity_span_classification"):
        keep = {"entity_classification": 1, "entity_pair_classification": 2}.get(task, 4)

        def run_ours(task: str | None = task, keep: int = keep) -> None:
            for batch in batches:
                ents = None if task else [e for _, _, e in batch]
                ours([t for t, _, _ in batch], entity_spans=[s[:keep] for _, s, _ in batch], entities=ents,
                     task=task, padding=True, return_tensors="pt")  # fmt: skip

        def run_theirs(task: str | None = task, keep: int = keep) -> None:
            theirs.task = task
            for batch in batches:
                ents = None if task else [e for _, _, e in batch]
                theirs([t for t, _, _ in batch], entity_spans=[s[:keep] for _, s, _ in batch], entities=ents,
                       padding=True, return_tensors="pt")  # fmt: skip

        t_ours, t_theirs = [], []
        for _ in range(args.repeats):
            t_ours.append(timed(run_ours))
            t_theirs.append(timed(run_theirs))
        a, b = min(t_ours), min(t_theirs)
        print(
            f"{task or 'none':28s} luke {args.examples / a:9.0f} ex/s   transformers {args.examples / b:9.0f} ex/s"
            f"   speed-up {b / a:5.1f}x   (median {statistics.median(t_theirs) / statistics.median(t_ours):.1f}x)"
        )


if __name__ == "__main__":
    main()
