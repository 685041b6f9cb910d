"""Loading an mLUKE-sized entity vocabulary: luke.entity_vocab.EntityVocab.load vs transformers.

Generates an ``entity_vocab.json`` like mLUKE's (default 1.2M ids, each titled in 3-8 of mLUKE's 24
languages under ``lang:Title`` keys, Latin/Cyrillic/CJK titles of realistic length) in a temp dir, then times:

- transformers: what ``transformers.MLukeTokenizer`` does with the file (``json.load`` of it, all its
  post-processing: ``MLukeTokenizer.from_pretrained`` on a folder holding the file takes the same time within a
  few percent, measured with transformers 5.25);
- luke cold: ``EntityVocab.load`` with no index cache (``luke.entity_vocab_json`` reads and checks the file
  into the index arrays with numpy, no Python object per key; then the cache is written), each repeat with a
  fresh ``LUKE_CACHE_DIR``;
- luke warm: ``EntityVocab.load`` of the unchanged file with its cache present (memory-mapped);
- luke dicts: the file read into Python dicts, as every load did before the index (``--skip-dicts`` skips it:
  about a minute and several GB at full size);

and lookups/s of 1000 random keys, as ``"lang:Title"`` strings (what ``MLukeTokenizer`` takes in ``entities=``)
and as ``(title, language)`` pairs, in the transformers dict, the indexed vocabulary and the dict one.
Prints the CPU model and whether it has AVX-512.  Not a test: ``.venv/bin/python
benchmarks/bench_entity_vocab_load.py [--entities 1200000]`` (about 5 GB of memory at full size with the dicts).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

LANGS = "ar bn de nl el en es fi fr hi id it ja ko pl pt ru sv sw te th tr vi zh".split()
SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyzéü",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюя",
    "cjk": "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000)) + "".join(chr(c) for c in range(0x30A1, 0x30F6)),
}
SCRIPT_OF = {"ja": "cjk", "zh": "cjk", "ko": "cjk", "ru": "cyrillic"}


def cpu() -> tuple[str, bool]:
    """``lscpu``'s model name, and whether its flags line has AVX-512."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown", False
    lines = out.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), "?")
    flags = next((line for line in lines if line.startswith("Flags")), "")
    return model, "avx512" in flags


def generate(path: Path, n: int, seed: int = 0) -> int:
    """Write an mLUKE-like ``{lang:Title: id}`` file with ``n`` ids (``json.dump(..., indent=2)``'s layout);
    returns the number of keys."""
    rng = random.Random(seed)
    keys = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write('{\n  "[PAD]": 0,\n  "[UNK]": 1,\n  "[MASK]": 2,\n')
        for entity_id in range(3, n - 1):
            lines = []
            for lang in rng.sample(LANGS, rng.randint(3, 8)):
                letters = SCRIPTS[SCRIPT_OF.get(lang, "latin")]
                if SCRIPT_OF.get(lang) == "cjk":
                    title = "".join(rng.choices(letters, k=rng.randint(2, 8)))
                else:
                    words = ("".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(rng.randint(1, 4)))
                    title = " ".join(w.capitalize() for w in words)
                key = f"{lang}:{title} ({entity_id})"  # unique per id, like real disambiguated titles
                lines.append(f"  {json.dumps(key, ensure_ascii=False)}: {entity_id},\n")
            f.write("".join(lines))
            keys += len(lines)
        f.write(f'  "[MASK2]": {n - 1}\n}}\n')
    return keys + 4


def best(fn: Callable[[], Any], repeats: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        del result
    return min(times)


def lookups_per_s(fn: Callable[[Any], Any], queries: list[Any]) -> float:
    for query in queries[:50]:  # warm up (page in what the first lookups touch)
        fn(query)
    start = time.perf_counter()
    for query in queries:
        fn(query)
    return len(queries) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_200_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-dicts", action="store_true", help="do not time the dict-based load")
    args = parser.parse_args()

    from luke.entity_vocab import EntityVocab

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "entity_vocab.json"
        keys = generate(path, args.entities)
        size = path.stat().st_size
        model, avx512 = cpu()
        print(f"CPU: {model}; AVX-512: {'yes' if avx512 else 'no'}")
        print(f"{args.entities:,} ids, {keys:,} keys, {size / 1e6:.0f} MB")

        def transformers_load() -> dict:
            with open(path, encoding="utf-8") as f:  # MLukeTokenizer.__init__ with entity_vocab_file
                return json.load(f)

        runs = iter(range(1_000_000))

        def fresh_cache() -> None:
            os.environ["LUKE_CACHE_DIR"] = str(Path(tmp) / f"cache-{next(runs)}")

        theirs = best(transformers_load, args.repeats)
        cold = best(lambda: EntityVocab.load(path), args.repeats, before=fresh_cache)
        warm = best(lambda: EntityVocab.load(path), max(args.repeats, 3))
        cache = next(Path(os.environ["LUKE_CACHE_DIR"], "entity-vocab").iterdir())
        cache_mb = sum(f.stat().st_size for f in cache.iterdir()) / 1e6
        print(f"transformers (json.load)              {theirs:8.3f} s")
        print(f"luke cold (parse + index + cache)     {cold:8.3f} s   transformers/luke {theirs / cold:6.2f}x")
        print(f"luke warm (mmap of a {cache_mb:.0f} MB cache)".ljust(38), end="")
        print(f"{warm:8.3f} s   transformers/luke {theirs / warm:6.0f}x")

        mapping = transformers_load()
        rng = random.Random(1)
        strings = rng.sample(list(mapping), 1000)
        indexed = EntityVocab.load(path)
        assert indexed._index is not None
        indexed_get = indexed.get_id
        pairs = [indexed.titles(mapping[key])[0] for key in strings]  # not all are the key's own pair: fine
        rates = {
            "transformers dict[key]": (lookups_per_s(mapping.__getitem__, strings), None),
            "luke indexed (warm)": (
                lookups_per_s(indexed.__getitem__, strings),
                lookups_per_s(lambda p: indexed_get(*p), pairs),
            ),
        }
        if not args.skip_dicts:
            os.environ["LUKE_ENTITY_VOCAB_INDEX_MIN_BYTES"] = str(2**62)  # read into dicts, as before
            dicts = best(lambda: EntityVocab.load(path), 1)
            print(f"luke dicts (before the index)         {dicts:8.3f} s   transformers/luke {theirs / dicts:6.2f}x")
            vocab = EntityVocab.load(path)
            assert all(vocab[key] == mapping[key] for key in strings)
            rates["luke dicts"] = (
                lookups_per_s(vocab.__getitem__, strings),
                lookups_per_s(lambda p: vocab.get_id(*p), pairs),
            )
        print("lookups/s (1000 random keys)          'lang:Title'   (title, language)")
        for name, (by_string, by_pair) in rates.items():
            pair = f"{by_pair:14,.0f}" if by_pair is not None else f"{'-':>14}"
            print(f"  {name:34} {by_string:12,.0f}   {pair}")


if __name__ == "__main__":
    main()
