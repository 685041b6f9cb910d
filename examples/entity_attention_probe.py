"""Where the words' attention goes, and how far the entity-aware queries moved (issue #22's diagnosis).

For each fine-tuned SQuAD folder (``luke finetune squad`` with entity features), on the first ``--windows``
windows of a split:

* per layer, the attention mass that word queries put on entity keys (mean over heads and real word rows of
  windows that have at least one entity): how much of each word's representation comes from the entities;
* per layer, how far each extra query matrix (w2e, e2w, e2e) has moved from the start against how far
  ``query`` moved (all four start as the same matrix, ``query`` of the initial model: ``--init``), as
  ||W - Q0|| / ||Q0|| (Frobenius).

    python examples/entity_attention_probe.py out-ew out-ew-q0 --data-dir split --init $MINILM
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from safetensors.torch import load_file

from luke.finetuning.commands import load_task_model


def initial_queries(init: Path) -> dict[int, torch.Tensor]:
    """layer -> the initial model's query weight (BERT or LUKE key names)."""
    state = load_file(str(init / "model.safetensors"))
    out = {}
    for key, value in state.items():
        if key.endswith("attention.self.query.weight"):
            layer = int(key.split("layer.")[1].split(".")[0])
            out[layer] = value.float()
    return out


def drift(model: torch.nn.Module, q0: dict[int, torch.Tensor]) -> list[dict[str, float]]:
    rows = []
    for i, layer in enumerate(model.luke.encoder.layer):
        att, start = layer.attention.self, q0[i]
        norm = float(start.norm())
        row = {"query": float((att.query.weight.detach() - start).norm()) / norm}
        for name in ("w2e_query", "e2w_query", "e2e_query"):
            if hasattr(att, name):
                row[name] = float((getattr(att, name).weight.detach() - start).norm()) / norm
        rows.append(row)
    return rows


@torch.no_grad()
def entity_mass(model, task, features, pad_token_id: int, batch_size: int) -> list[float]:
    """Per layer: mean attention mass of real word queries on real entity keys (windows with entities)."""
    sums: list[list[float]] = []
    for s in range(0, len(features), batch_size):
        batch = task.collate(features[s : s + batch_size], pad_token_id)
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "start_positions", "end_positions")}
        if "entity_ids" not in inputs:
            continue
        out = model.luke(**inputs, output_attentions=True)
        words, ents = inputs["attention_mask"].bool(), inputs["entity_attention_mask"].bool()
        L = words.shape[1]
        has = ents.any(1)
        for i, probs in enumerate(out.attentions):  # (B, h, N, N)
            on_entities = (probs[:, :, :L, L:] * ents[:, None, None, :]).sum(-1).mean(1)  # (B, L)
            per_window = (on_entities * words).sum(1) / words.sum(1)
            if len(sums) <= i:
                sums.append([])
            sums[i].extend(per_window[has].tolist())
    return [statistics.mean(v) if v else float("nan") for v in sums]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path, help="fine-tuned squad folders")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--split", default="dev")
    p.add_argument("--windows", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--init", type=Path, required=True, help="the model the runs started from (its query weights)")
    args = p.parse_args()
    q0 = initial_queries(args.init)
    for folder in args.folders:
        task, model, tok = load_task_model("squad", folder)
        model.eval()
        examples = task.load_splits(args.data_dir, (args.split,))[args.split]
        features = task.featurize(examples[: args.windows], tok)[: args.windows]
        mass = entity_mass(model, task, features, tok.pad_token_id, args.batch_size)
        print(f"== {folder}: {len(features)} windows")
        print("| layer | word->entity attention mass | drift query | w2e | e2w | e2e |")
        print("|---|---|---|---|---|---|")
        for i, (m, d) in enumerate(zip(mass, drift(model, q0), strict=True)):
            extra = " | ".join(f"{d[k]:.4f}" if k in d else "-" for k in ("w2e_query", "e2w_query", "e2e_query"))
            print(f"| {i} | {m:.4f} | {d['query']:.4f} | {extra} |")


if __name__ == "__main__":
    main()
