"""``luke link`` throughput: our path (:class:`luke.EntityLinker`, model loaded once, windows batched) against
a loop that runs ``transformers.LukeForMaskedLM`` once per mention on the same weights.

Both sides start from the same raw texts and pay for the same mention detection and candidate lookup
(:meth:`EntityLinker.detect`: the mention database, longest match, link-probability threshold) and one
tokenisation per document; model loading is excluded. The transformers loop then scores each mention alone:
its window is the one our code gives a mention on its own (the whole text if it fits, else ``max_seq_length``
tokens centred on the mention), its entity input a single ``[MASK]``, and the answer the argmax of the
full-vocabulary entity logits over the mention's candidates (local inference). ``transformers-per-mention-ent``
is the same loop without the word head (the encoder and ``entity_predictions`` only: no word logits), to
tell what batching gains from what skipping the word logits gains. Ours runs local (all mentions of a window
masked, one pass) and global (one pass per ambiguous mention of a window — single-candidate mentions are fixed before
the first pass —, batched across windows).

Our timings are of the API call ``linker(texts)`` (records out). Runs are interleaved (ours-local,
ours-global, transformers in every repeat, order rotated; one untimed warm-up of each first) and the median
of each is reported with documents/s and mentions/s, and the speed-up. Agreement of the titles:
transformers' per-mention answers against (a) our local path with one mention per window
(``max_entity_length=1``: the same inputs, so this checks that both run the same model) and (b) our default
local path (all mentions of a text masked together: other context, so some answers may differ).

    python benchmarks/bench_link.py --model /work/pretrain-real/run-words/final \\
        --mention-db mentions-train.jsonl --documents ed-heldout.jsonl --threads 1

``--documents``: JSON Lines with ``"text"`` (e.g. ``luke build-ed-dataset`` held-out articles) or plain text;
``--paragraphs`` cuts texts at blank lines (paragraph-sized documents, the usual ``luke link`` input).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers

from luke.finetuning.ed_data import EdDocument
from luke.finetuning.ed_inference import candidate_ids
from luke.finetuning.linking import EntityLinker, read_link_input


def cpu_description() -> str:
    """The CPU model and the vector-extension flags that matter for torch (from lscpu)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    model = fields.get("Model name", "?").strip()
    flags = fields.get("Flags", "").split()
    wanted = [f for f in flags if f.startswith(("avx", "amx", "fma")) or f in ("f16c", "sse4_2")]
    return f"{model}, {fields.get('CPU(s)', '?').strip()} CPU(s); flags: {' '.join(wanted)}"


def load_texts(path: Path, paragraphs: bool, max_documents: int, linker: EntityLinker) -> list[str]:
    """Up to ``max_documents`` texts of ``path`` (paragraphs when asked) that hold at least one mention."""
    records, _ = read_link_input(path)
    texts = []
    for _, rec in records:
        parts = [p.strip() for p in rec["text"].split("\n\n")] if paragraphs else [rec["text"]]
        for part in parts:
            if part and any(m.candidates for m in linker.detect(part)):
                texts.append(part)
                if len(texts) >= max_documents:
                    return texts
    return texts


def _entity_logits_only(hf: torch.nn.Module, **inputs: torch.Tensor) -> torch.Tensor:
    """``LukeForMaskedLM``'s entity logits without its word head (the encoder, then ``entity_predictions``)."""
    states = hf.luke(**inputs).entity_last_hidden_state
    return hf.entity_predictions(states)


@torch.no_grad()
def transformers_loop(
    hf: torch.nn.Module, linker: EntityLinker, texts: list[str], entity_head_only: bool = False
) -> list[list[str | None]]:
    """Per text, the title of each detected mention (None: no candidate in the vocabulary), one
    ``LukeForMaskedLM`` forward pass per mention (with ``entity_head_only``, its encoder and entity head
    only: no word logits)."""
    tok = linker.tokenizer
    vocab, mask_id, cap = tok.entity_vocab, tok.entity_mask_token_id, linker.max_seq_length - 2
    out = []
    for text in texts:
        mentions = linker.detect(text)
        titles: list[str | None] = [None] * len(mentions)
        scored = [(i, *candidate_ids(m.candidates, vocab, linker.max_candidates)) for i, m in enumerate(mentions)]
        scored = [s for s in scored if s[1]]
        if scored:
            spans = [(mentions[i].start, mentions[i].end) for i, _, _ in scored]
            enc = tok(text, entity_spans=spans, task=None, max_entity_length=len(spans))
            ids = list(enc["input_ids"])
            inner = ids[1:-1]
            positions = torch.tensor(enc["entity_position_ids"]).reshape(len(spans), -1)  # (E, M) full sequence
            for (i, cand, names), pos in zip(scored, positions, strict=True):
                real = pos[pos >= 0]
                first, last = int(real.min()) - 1, int(real.max()) - 1  # inner-token indices
                if last - first >= cap:
                    continue
                a = max(0, min((first + last) // 2 - cap // 2, len(inner) - cap))
                words = torch.tensor([[ids[0], *inner[a : a + cap], ids[-1]]])  # (1, L)
                ent_pos = torch.where(pos >= 0, pos - a, -1)[None, None]  # (1, 1, M)
                inputs = {
                    "input_ids": words,
                    "attention_mask": torch.ones_like(words),
                    "entity_ids": torch.tensor([[mask_id]]),
                    "entity_attention_mask": torch.ones(1, 1, dtype=torch.long),
                    "entity_position_ids": ent_pos,
                }
                if entity_head_only:
                    logits = _entity_logits_only(hf, **inputs)[0, 0]  # (V,)
                else:
                    logits = hf(**inputs).entity_logits[0, 0]  # (V,)
                titles[i] = names[int(logits[torch.tensor(cand)].argmax())]
        out.append(titles)
    return out


def ours(linker: EntityLinker, texts: list[str], mode: str, max_entity_length: int | None = None):
    """Our titles per text, for every detected mention (None: not linked)."""
    linker.inference = mode
    saved = linker.max_entity_length
    if max_entity_length is not None:
        linker.max_entity_length = max_entity_length
    try:
        docs = [EdDocument(f"d{n}", t, linker.detect(t)) for n, t in enumerate(texts)]
        linked = linker.link_documents(docs)
    finally:
        linker.max_entity_length = saved
    return [[m.predicted for m in d.mentions] for d in linked]


def agreement(a: list[list[str | None]], b: list[list[str | None]]) -> tuple[int, int]:
    pairs = [(x, y) for xs, ys in zip(a, b, strict=True) for x, y in zip(xs, ys, strict=True) if x or y]
    return sum(x == y for x, y in pairs), len(pairs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="/work/pretrain-real/run-words/final")
    p.add_argument("--mention-db", required=True)
    p.add_argument("--documents", required=True, type=Path)
    p.add_argument("--paragraphs", action="store_true", help="documents = paragraphs of the texts")
    p.add_argument("--max-documents", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-link-prob", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    print(f"CPU: {cpu_description()}")
    print(f"torch {torch.__version__} ({a.threads} thread(s)), transformers {transformers.__version__}, "
          f"python {platform.python_version()}")  # fmt: skip
    linker = EntityLinker.from_pretrained(
        a.model, a.mention_db, min_link_prob=a.min_link_prob, batch_size=a.batch_size, device="cpu"
    )
    hf = transformers.LukeForMaskedLM.from_pretrained(a.model).eval()
    texts = load_texts(a.documents, a.paragraphs, a.max_documents, linker)
    detected = [linker.detect(t) for t in texts]
    n_mentions = sum(map(len, detected))
    vocab, k = linker.tokenizer.entity_vocab, linker.max_candidates
    n_ambiguous = sum(len(candidate_ids(m.candidates, vocab, k)[0]) > 1 for ms in detected for m in ms)
    n_tokens = sum(len(linker.tokenizer(t)["input_ids"]) for t in texts)
    print(f"model {a.model}: {linker.model.config.num_hidden_layers} layers, hidden {linker.model.config.hidden_size}, "
          f"{len(linker.tokenizer.entity_vocab)} entities; mention db {a.mention_db}: {len(linker.mentions)} mentions "
          f"in the vocabulary")  # fmt: skip
    print(f"documents: {len(texts)} from {a.documents}{' (paragraphs)' if a.paragraphs else ''}, {n_tokens} tokens, "
          f"{n_mentions} mentions detected (min_link_prob {a.min_link_prob}), {n_ambiguous} with more than one "
          f"candidate; repeats {a.repeats}, batch {a.batch_size}")  # fmt: skip

    def api(mode: str) -> list:
        linker.inference = mode
        return linker(texts)

    runs = {
        "ours-local": lambda: api("local"),
        "ours-global": lambda: api("global"),
        "transformers-per-mention": lambda: transformers_loop(hf, linker, texts),
        "transformers-per-mention-ent": lambda: transformers_loop(hf, linker, texts, entity_head_only=True),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    results: dict[str, list] = {}
    names = list(runs)
    for name in names:  # warm-up
        results[name] = runs[name]()
    for r in range(a.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            results[name] = runs[name]()
            times[name].append(time.perf_counter() - start)

    base = statistics.median(times["transformers-per-mention"])
    print(f"\n{'path':30s} {'median s':>9s} {'docs/s':>9s} {'mentions/s':>11s} {'speed-up':>9s}  runs (s)")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:30s} {t:9.3f} {len(texts) / t:9.2f} {n_mentions / t:11.1f} {base / t:8.2f}x  "
              f"{' '.join(f'{x:.2f}' for x in ts)}")  # fmt: skip

    hf_titles = results["transformers-per-mention"]
    same, total = agreement(results["transformers-per-mention-ent"], hf_titles)
    print(f"\nagreement, transformers per mention: full LukeForMaskedLM vs its entity head only: {same}/{total}")
    same, total = agreement(ours(linker, texts, "local", max_entity_length=1), hf_titles)
    print(f"agreement, transformers per mention vs ours local one mention per window (same inputs): "
          f"{same}/{total} = {100 * same / max(total, 1):.2f}%")  # fmt: skip
    local = ours(linker, texts, "local")
    same, total = agreement(local, hf_titles)
    print(f"agreement, transformers per mention vs ours local (all mentions of a text masked together): "
          f"{same}/{total} = {100 * same / max(total, 1):.2f}%")  # fmt: skip
    same, total = agreement(local, ours(linker, texts, "global"))
    print(f"agreement, ours local vs ours global: {same}/{total} = {100 * same / max(total, 1):.2f}%")
    print(json.dumps({k: statistics.median(v) for k, v in times.items()}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
