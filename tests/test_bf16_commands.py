"""bf16 is real on every command that takes it: ``luke finetune`` (training steps, the dev evaluation at each
epoch end, the test evaluation), ``luke evaluate`` and ``luke predict`` with ``--mixed-precision bf16``, and
``luke pretrain`` (training steps, held-out evaluation) and ``luke evaluate-pretraining`` with bf16 precision run
every attention call of the encoder under bf16 autocast (on the device it runs on: the CPU here), on bf16
activations; without it (the default) none does. A spy on ``luke.modeling.entity_aware_attention`` (every layer
of every forward goes through it) records where it was called from and the autocast state there, so a path that
silently drops autocast fails here.
(``luke link --mixed-precision bf16``: tests/test_link.py::test_bf16_links_under_autocast.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from luke import modeling
from luke.cli import main as cli_main
from luke.finetuning import commands as finetuning_commands
from luke.finetuning.trainer import Trainer as FinetuningTrainer
from luke.pretraining import trainer as pretraining_trainer
from test_entity_disambiguation import _doc, _write_docs, bert, pretrained  # noqa: F401 (fixtures)
from test_finetuning_tasks import FIXTURES
from test_finetuning_training import _args, tiny_bert  # noqa: F401 (tiny_bert: a fixture)
from test_pretraining_train import inputs, tiny_config  # noqa: F401 (inputs: a fixture)

BF16 = ("--mixed-precision", "bf16")


@dataclass(frozen=True)
class Call:
    """One attention call: the phase of the run it came from, and the state it ran in."""

    phase: str
    training: bool
    autocast: bool  # torch.is_autocast_enabled(device), on the device the layer ran on
    autocast_dtype: torch.dtype  # torch.get_autocast_dtype(device)
    query_dtype: torch.dtype  # the dtype of the projected queries the layer computed


class AttentionSpy:
    """Replaces ``luke.modeling.entity_aware_attention`` (the name the attention layers call) by a recorder.

    ``phase`` names the part of the run the calls come from; :meth:`mark` sets it for the duration of a
    function's calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, phase: str = "run") -> None:
        self.calls: list[Call] = []
        self.phase = phase
        self.monkeypatch = monkeypatch
        original = modeling.entity_aware_attention

        def spy(q_tw: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            self.calls.append(
                Call(
                    self.phase,
                    bool(kwargs.get("training")),
                    torch.is_autocast_enabled(q_tw.device.type),
                    torch.get_autocast_dtype(q_tw.device.type),
                    q_tw.dtype,
                )
            )
            return original(q_tw, *args, **kwargs)

        monkeypatch.setattr(modeling, "entity_aware_attention", spy)

    def mark(self, owner: Any, name: str, phase: str) -> None:
        """Calls made inside ``owner.name`` belong to ``phase`` (the previous phase resumes after it)."""
        original: Callable = getattr(owner, name)

        def marked(*args: Any, **kwargs: Any) -> Any:
            before, self.phase = self.phase, phase
            try:
                return original(*args, **kwargs)
            finally:
                self.phase = before

        self.monkeypatch.setattr(owner, name, marked)

    def take(self) -> list[Call]:
        """The calls recorded so far (the record starts again empty)."""
        calls, self.calls = self.calls, []
        return calls

    def phases(self, calls: list[Call]) -> set[tuple[str, bool]]:
        return {(c.phase, c.training) for c in calls}


def assert_bf16(calls: list[Call]) -> None:
    assert calls, "no forward pass was recorded"
    fp32 = [c for c in calls if not (c.autocast and c.autocast_dtype == torch.bfloat16)]
    assert not fp32, f"{len(fp32)} of {len(calls)} attention calls ran without bf16 autocast: {fp32[:3]}"
    assert {c.query_dtype for c in calls} == {torch.bfloat16}


def assert_fp32(calls: list[Call]) -> None:
    assert calls, "no forward pass was recorded"
    assert not any(c.autocast for c in calls)
    assert {c.query_dtype for c in calls} == {torch.float32}


@pytest.fixture
def spy(monkeypatch) -> AttentionSpy:
    return AttentionSpy(monkeypatch)


def _finetune_spy(spy: AttentionSpy) -> AttentionSpy:
    """Phases of ``luke finetune``: training steps, the dev evaluation at each epoch end, the test evaluation."""
    spy.mark(FinetuningTrainer, "train", "train")
    spy.mark(FinetuningTrainer, "_end_epoch", "dev")
    spy.mark(finetuning_commands, "_evaluate_splits", "test")
    return spy


@pytest.mark.parametrize("precision", ["bf16", "no"])
def test_finetune_evaluate_predict_autocast(precision, tiny_bert, tmp_path, spy, capsys):  # noqa: F811
    """relation_classification: every forward of ``finetune`` (training, dev, test), ``evaluate`` and
    ``predict`` is under bf16 autocast with ``--mixed-precision bf16``, and none is by default."""
    check = assert_bf16 if precision == "bf16" else assert_fp32
    flags = ("--mixed-precision", precision)
    task, out = "relation_classification", tmp_path / "out"
    _finetune_spy(spy)
    args = _args(task, tiny_bert, out, *flags, "--num-train-epochs", "1", "--max-test-examples", "3")
    assert cli_main(args) == 0
    calls = spy.take()
    # The dev split is scored at the epoch end (and that result reused); test after training.
    assert spy.phases(calls) == {("train", True), ("dev", False), ("test", False)}
    check(calls)
    assert json.loads((out / "results.json").read_text())["training"]["mixed_precision"] == precision

    spy.phase = "evaluate"
    evaluate = ["evaluate", task, "--model", str(out), "--data-dir", str(FIXTURES / task), "--no-progress"]
    assert cli_main([*evaluate, *flags, "--max-eval-examples", "3"]) == 0
    calls = spy.take()
    assert spy.phases(calls) == {("evaluate", False)}
    check(calls)

    spy.phase = "predict"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "The fire caused smoke .", "head": [4, 8], "tail": [16, 21]}) + "\n")
    capsys.readouterr()
    assert cli_main(["predict", task, "--model", str(out), "--input", str(src), "--no-progress", *flags]) == 0
    assert "relation" in json.loads(capsys.readouterr().out)
    calls = spy.take()
    assert spy.phases(calls) == {("predict", False)}
    check(calls)


def test_finetune_with_gradient_accumulation_and_best_epoch_autocasts(tiny_bert, tmp_path, spy):  # noqa: F811
    """NER (its own span features) with gradient accumulation over two epochs and the best dev epoch kept:
    the training steps, both epochs' dev evaluations and the test evaluation of the kept weights are all
    under bf16 autocast."""
    _finetune_spy(spy)
    args = _args("ner", tiny_bert, tmp_path / "out", *BF16, "--gradient-accumulation-steps", "2")
    assert cli_main([*args, "--train-batch-size", "2", "--max-test-examples", "2", "--select-best"]) == 0
    calls = spy.take()
    assert spy.phases(calls) == {("train", True), ("dev", False), ("test", False)}
    assert_bf16(calls)


def test_entity_disambiguation_autocast(pretrained, tmp_path, spy, capsys):  # noqa: F811
    """entity_disambiguation has its own inference (document windows, global order): ``finetune``,
    ``evaluate`` (local and global) and ``predict`` with bf16 run every forward under bf16 autocast."""
    data = tmp_path / "data"
    data.mkdir()
    _write_docs(data / "train.jsonl", [_doc(f"t{i}") for i in range(2)])
    _write_docs(data / "dev.jsonl", [_doc("v1")])
    _write_docs(data / "test.jsonl", [_doc("e1")])
    out = tmp_path / "out"
    _finetune_spy(spy)
    args = ["finetune", "entity_disambiguation", "--model", str(pretrained), "--data-dir", str(data),
            "--output-dir", str(out), "--train-batch-size", "2", "--num-train-epochs", "1", "--max-seq-length", "32",
            "--inference", "local", "--no-progress", "--no-tensorboard", *BF16]  # fmt: skip
    assert cli_main(args) == 0
    calls = spy.take()
    assert spy.phases(calls) == {("train", True), ("dev", False), ("test", False)}
    assert_bf16(calls)
    for inference in ("local", "global"):
        spy.phase = f"evaluate {inference}"
        evaluate = ["evaluate", "entity_disambiguation", "--model", str(out), "--data-dir", str(data)]
        assert cli_main([*evaluate, "--inference", inference, "--no-progress", *BF16]) == 0
        assert_bf16(spy.take())
    spy.phase = "predict"
    _write_docs(tmp_path / "in.jsonl", [_doc("p1")])
    predict = ["predict", "entity_disambiguation", "--model", str(out), "--input", str(tmp_path / "in.jsonl")]
    assert cli_main([*predict, "--no-progress", *BF16]) == 0
    assert_bf16(spy.take())
    assert cli_main([*predict, "--no-progress"]) == 0  # the default: fp32
    assert_fp32(spy.take())
    capsys.readouterr()


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_pretrain_and_evaluate_pretraining_autocast(precision, inputs, tmp_path, spy, capsys):  # noqa: F811
    """``luke pretrain`` with ``precision: bf16`` runs the training steps of both stages and the held-out
    evaluations under bf16 autocast, ``luke evaluate-pretraining --precision bf16`` too; fp32 runs none."""
    check = assert_bf16 if precision == "bf16" else assert_fp32
    out = tmp_path / "out"
    stages = [
        {"name": "stage1", "trainable": "entity", "max_steps": 1, "learning_rate": 1e-2, "warmup_steps": 0},
        {"name": "stage2", "trainable": "all", "max_steps": 1, "learning_rate": 1e-3, "warmup_steps": 0},
    ]
    config = tiny_config(inputs, out, precision=precision, stages=stages, save_every_steps=10, eval_max_items=4)
    (tmp_path / "config.json").write_text(json.dumps(config))
    spy.mark(pretraining_trainer.Trainer, "_train_stage", "train")
    spy.mark(pretraining_trainer.Trainer, "_evaluate", "held-out")
    assert cli_main(["pretrain", str(tmp_path / "config.json")]) == 0
    calls = spy.take()
    assert spy.phases(calls) == {("train", True), ("held-out", False)}
    check(calls)

    spy.phase = "evaluate-pretraining"
    capsys.readouterr()  # luke pretrain's result
    evaluate = ["evaluate-pretraining", str(out / "final"), str(inputs["ds"]), "--max-items", "4", "--no-progress"]
    assert cli_main([*evaluate, "--precision", precision, "--json"]) == 0
    assert "mlm_loss" in json.loads(capsys.readouterr().out)
    calls = spy.take()
    assert spy.phases(calls) == {("evaluate-pretraining", False)}
    check(calls)
