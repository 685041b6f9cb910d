"""``luke plot-training RUN_DIR``: training and held-out curves from ``metrics.jsonl`` as one PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from luke.errors import ConfigError, DataError


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``RUN_DIR/metrics.jsonl`` (training windows and ``eval_*`` records)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl (not a `luke pretrain` output folder?)")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: corrupt line: {err}") from None
    if not records:
        raise DataError(f"{path}: no records yet")
    return records


def plot_training(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write a 2×2 PNG (MLM loss, MLM accuracy, entity loss, entity accuracy; training and held-out, stage
    boundaries marked) and return its path (default ``RUN_DIR/training_curves.png``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plot-training needs matplotlib: pip install matplotlib") from None
    records = read_metrics(run_dir)
    train = [r for r in records if "mlm_loss" in r]
    evals = [r for r in records if "eval_mlm_loss" in r]
    out = Path(out) if out is not None else Path(run_dir) / "training_curves.png"
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    panels = [
        ("mlm_loss", "masked-word loss"),
        ("mlm_accuracy", "masked-word accuracy"),
        ("mep_loss", "masked-entity loss"),
        ("mep_accuracy", "masked-entity accuracy"),
    ]
    boundaries = [a["step"] for a, b in zip(train, train[1:], strict=False) if a["stage"] != b["stage"]]
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        ax.plot([r["step"] for r in train], [r[key] for r in train], label="train", lw=1)
        if evals:
            ax.plot([r["step"] for r in evals], [r[f"eval_{key}"] for r in evals], "o-", label="held-out", ms=3)
        if key == "mep_accuracy" and evals:
            ax.plot(
                [r["step"] for r in evals],
                [r["eval_mep_majority_accuracy"] for r in evals],
                "--",
                color="grey",
                label="most frequent entity (held-out)",
            )
        for step in boundaries:
            ax.axvline(step, color="k", ls=":", lw=0.8)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("optimiser step")
    fig.suptitle(f"luke pretrain: {Path(run_dir).name}")
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
