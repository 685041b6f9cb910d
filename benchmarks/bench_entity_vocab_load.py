"""Loading an mLUKE-sized entity vocabulary: luke.entity_vocab.EntityVocab.load vs transformers.

Generates an ``entity_vocab.json`` like mLUKE's (default 1.2M ids, each titled in 3-8 of mLUKE's 24
languages under ``lang:Title`` keys, Latin/Cyrillic/CJK titles of realistic length) in a temp dir, then times
``EntityVocab.load`` against what ``transformers.MLukeTokenizer`` does with the same file (``json.load`` of it,
all its post-processing: ``MLukeTokenizer.from_pretrained`` on a folder holding the file takes the same time
within a few percent, measured with transformers 5.25).
Prints the CPU model and the ratio.  Not a test: ``.venv/bin/python benchmarks/bench_entity_vocab_load.py
[--entities 1200000]`` (about 2-3 GB of memory at full size).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

LANGS = "ar bn de nl el en es fi fr hi id it ja ko pl pt ru sv sw te th tr vi zh".split()
SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyzéü",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюя",
    "cjk": "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000)) + "".join(chr(c) for c in range(0x30A1, 0x30F6)),
}
SCRIPT_OF = {"ja": "cjk", "zh": "cjk", "ko": "cjk", "ru": "cyrillic"}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def generate(path: Path, n: int, seed: int = 0) -> int:
    """Write an mLUKE-like ``{lang:Title: id}`` file with ``n`` ids; returns the number of keys."""
    rng = random.Random(seed)
    vocab: dict[str, int] = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2}
    for entity_id in range(3, n - 1):
        for lang in rng.sample(LANGS, rng.randint(3, 8)):
            letters = SCRIPTS[SCRIPT_OF.get(lang, "latin")]
            if SCRIPT_OF.get(lang) == "cjk":
                title = "".join(rng.choices(letters, k=rng.randint(2, 8)))
            else:
                words = ("".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(rng.randint(1, 4)))
                title = " ".join(w.capitalize() for w in words)
            vocab[f"{lang}:{title} ({entity_id})"] = entity_id  # unique per id, like real disambiguated titles
    vocab["[MASK2]"] = n - 1
    with open(path, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=2)
    return len(vocab)


def best(fn, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        del result
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_200_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from luke.entity_vocab import EntityVocab

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "entity_vocab.json"
        keys = generate(path, args.entities)
        size = path.stat().st_size
        print(f"CPU: {cpu_model()}; {args.entities:,} ids, {keys:,} keys, {size / 1e6:.0f} MB")

        def transformers_load() -> dict:
            with open(path, encoding="utf-8") as f:  # MLukeTokenizer.__init__ with entity_vocab_file
                return json.load(f)

        theirs = best(transformers_load, args.repeats)
        ours = best(lambda: EntityVocab.load(path), args.repeats)
        print(f"transformers (json.load)   {theirs:8.2f} s")
        print(f"luke EntityVocab.load      {ours:8.2f} s   ratio transformers/luke {theirs / ours:5.2f}x")


if __name__ == "__main__":
    main()
