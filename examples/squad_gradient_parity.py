"""Our SQuAD model's gradients against ``transformers.LukeForQuestionAnswering`` on one real batch with entities
(issue #22: is there a defect in the entity-aware backward at real shapes?).

Builds the model exactly as ``luke finetune squad`` does (``--entity-init words`` from a BERT folder, entity
table frozen), featurizes a seeded sample of real questions with entity features, keeps windows that have
entities, loads the same weights into ``transformers.LukeForQuestionAnswering``, and compares, in fp64 with
dropout off, the loss (the same masked start/end cross-entropy computed outside both heads) and every
parameter's gradient. The gradients of ``key.bias``, ``qa_outputs.bias`` and the last layer's output LayerNorm bias are
zero in exact arithmetic (softmax shift invariance), so their relative differences are noise and are listed apart.

    python examples/squad_gradient_parity.py --model $MINILM --data-dir split \\
        --entity-vocab vocab-links2.jsonl --mention-db mentions-any.jsonl
"""

from __future__ import annotations

import argparse
import random
import tempfile

import torch
import torch.nn.functional as F
import transformers

from luke.finetuning.commands import _build_model, make_task

ZERO_IN_EXACT_ARITHMETIC = ("key.bias", "qa_outputs.bias")  # and the last layer's output LayerNorm bias


def loss_and_grads(model, batch) -> tuple[float, dict[str, torch.Tensor]]:
    model.double().train()
    for module in model.modules():
        if hasattr(module, "p"):  # dropout off on both sides
            module.p = 0.0
    model.zero_grad()
    inputs = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
    logits = model.qa_outputs(model.luke(**inputs).last_hidden_state)
    logits = logits.masked_fill(~inputs["attention_mask"].bool().unsqueeze(-1), -10000.0)
    loss = (
        F.cross_entropy(logits[..., 0], batch["start_positions"])
        + F.cross_entropy(logits[..., 1], batch["end_positions"])
    ) / 2
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the BERT folder the runs start from")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--entity-vocab", required=True)
    p.add_argument("--mention-db", required=True)
    p.add_argument("--min-link-prob", type=float, default=0.05)
    p.add_argument("--windows", type=int, default=16)
    p.add_argument("--seed", type=int, default=14)
    a = p.parse_args()
    task = make_task(
        "squad", None, "error", entity_vocab=a.entity_vocab, mention_db=a.mention_db,
        min_link_prob=a.min_link_prob, entity_init="words", max_seq_length=256, doc_stride=128,
    )  # fmt: skip
    train = task.load_splits(a.data_dir, ("train",))["train"]
    task.set_labels_from(train)
    examples = random.Random(a.seed).sample(train, 4 * a.windows)
    with tempfile.TemporaryDirectory() as tmp:
        ours, tok = _build_model(task, a.model, "luke", a.seed, tmp)
        features = [f for f in task.featurize(examples, tok) if len(f.get("entity_ids", ()))]
        batch = task.collate(features[: a.windows], tok.pad_token_id)
        ours.save_pretrained(f"{tmp}/ours")
        theirs = transformers.LukeForQuestionAnswering.from_pretrained(f"{tmp}/ours")
        theirs.luke.entity_embeddings.entity_embeddings.weight.requires_grad_(False)
        print("batch:", {k: tuple(v.shape) for k, v in batch.items()})
        (loss_a, ga), (loss_b, gb) = loss_and_grads(ours, batch), loss_and_grads(theirs, batch)
    print(f"loss: ours {loss_a:.12f}, transformers {loss_b:.12f}")
    assert ga.keys() == gb.keys(), sorted(set(ga) ^ set(gb))
    rel = {n: float((ga[n] - gb[n]).abs().max() / gb[n].abs().max().clamp_min(1e-300)) for n in ga}
    last = f"layer.{ours.config.num_hidden_layers - 1}.output.LayerNorm.bias"
    zero = ZERO_IN_EXACT_ARITHMETIC + (last,)
    real = {n: r for n, r in rel.items() if not n.endswith(zero)}
    worst = max(real, key=real.get)
    print(f"{len(ga)} parameters with gradients; worst relative max |difference|: {real[worst]:.2e} ({worst})")
    noise = max(float(ga[n].abs().max()) for n in rel if n.endswith(zero))
    print(f"gradients that are zero in exact arithmetic ({', '.join(zero)}): largest {noise:.1e}")


if __name__ == "__main__":
    main()
