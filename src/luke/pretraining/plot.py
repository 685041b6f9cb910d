"""``luke plot-training RUN_DIR``: training and held-out curves from ``metrics.jsonl`` as one PNG."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from luke.errors import ConfigError, DataError, shorten
from luke.files import atomic_output, json_lines

logger = logging.getLogger(__name__)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``RUN_DIR/metrics.jsonl`` (training windows and ``eval_*`` records)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise DataError(path, "no such file (is this a `luke pretrain` output folder?)")
    try:
        records = [record for _, record in json_lines(path)]
    except DataError as err:
        # a run killed while writing leaves a cut last line (no newline at the end): plot what is complete
        lines = path.read_bytes().splitlines(keepends=True)
        if err.line != len(lines) or lines[-1].endswith(b"\n"):
            raise
        logger.warning("%s: ignoring the incomplete last line %d (a run killed while writing?)", path, err.line)
        records = [json.loads(line) for line in lines[:-1] if line.strip()]
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
    panels = [
        ("mlm_loss", "masked-word loss"),
        ("mlm_accuracy", "masked-word accuracy"),
        ("mep_loss", "masked-entity loss"),
        ("mep_accuracy", "masked-entity accuracy"),
    ]
    keys = [key for key, _ in panels]
    train = _records_with(records, "mlm_loss", ["step", "stage", *keys], run_dir)
    evals = _records_with(records, "eval_mlm_loss", ["step", *(f"eval_{k}" for k in keys)], run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "training_curves.png"
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
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
    try:
        with atomic_output(out) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return out


def _records_with(records: list[dict[str, Any]], marker: str, keys: list[str], run_dir: str | Path) -> list[dict]:
    """The records holding ``marker``; each must hold every key in ``keys`` (numbers; ``stage`` a name)."""
    chosen = [r for r in records if marker in r]
    for r in chosen:
        bad = [k for k in keys if k not in r or (k != "stage" and not _is_number(r[k]))]
        if bad:
            raise DataError(
                Path(run_dir) / "metrics.jsonl",
                f"a record with {marker!r} lacks numeric {bad}: {shorten(json.dumps(r), 100)}",
            )
    return chosen


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
