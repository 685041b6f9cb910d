"""Mean ± standard deviation of fine-tuning runs, grouped (issue #22: single runs are not evidence).

Reads each run folder's ``results.json`` (written by ``luke finetune``) and prints, per group, the metric of
the given split for every run and their mean ± sample standard deviation. Groups are given as
``NAME=FOLDER,FOLDER,...``; the training loss at a few steps (``history``) is shown too, when present.

    python examples/aggregate_runs.py "words only=out-noent,out-noent-s15,out-noent-s16" \\
        "entity-aware=out-ew,out-ew-s15,out-ew-s16" --split dev --metrics exact_match f1
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def metric(folder: Path, split: str, name: str) -> float:
    path = folder / "results.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (has the run finished?)")
    results = json.loads(path.read_text(encoding="utf-8"))
    if split not in results or name not in results[split]:
        raise SystemExit(f"{folder}/results.json: no {split}.{name}")
    return float(results[split][name])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("groups", nargs="+", help="NAME=FOLDER,FOLDER,...")
    p.add_argument("--split", default="test")
    p.add_argument("--metrics", nargs="+", default=["f1"])
    p.add_argument("--scale", type=float, default=1.0, help="multiply the metrics (e.g. 100 for fractions)")
    a = p.parse_args()
    print("| group | runs | " + " | ".join(f"{m} (each run)" for m in a.metrics) + " | "
          + " | ".join(f"{m} mean ± std" for m in a.metrics) + " |")  # fmt: skip
    print("|---|---|" + "---|" * (2 * len(a.metrics)))
    for group in a.groups:
        name, _, folders = group.partition("=")
        runs = [Path(f) for f in folders.split(",") if f]
        values = {m: [metric(r, a.split, m) * a.scale for r in runs] for m in a.metrics}
        each = " | ".join(", ".join(f"{v:.1f}" for v in values[m]) for m in a.metrics)
        stats = " | ".join(
            f"{statistics.mean(values[m]):.1f} ± {statistics.stdev(values[m]) if len(runs) > 1 else 0.0:.1f}"
            for m in a.metrics
        )
        print(f"| {name} | {len(runs)} | {each} | {stats} |")


if __name__ == "__main__":
    main()
