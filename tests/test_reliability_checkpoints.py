"""Checkpoints under attack and under fire (issue #18).

* Nothing in a checkpoint folder is unpickled: a tampered file of each kind in each loop's checkpoint folder (a
  pickle whose ``__reduce__`` would create a marker file) is a one-line ``CheckpointError`` naming the file, and
  the marker never appears; a truncated or garbage file of each kind likewise.
* A run killed at any phase resumes to the uninterrupted run's losses and weights, bit for bit on CPU, with the
  default settings: pretraining within stage 1, during the stage-1 export, after the stage-end checkpoint,
  during an evaluation, during a checkpoint write, within stage 2; fine-tuning mid-epoch, after the epoch-end
  checkpoint, during the best-model save, during a checkpoint write, between the two renames that replace
  ``checkpoint/``.
* Output paths that cannot be written are refused before any work.

The kills are simulated in-process (the ``LUKE_FAULT`` points raise instead of SIGKILL, which keeps the file
fast); tests/test_pretraining_train.py kills real processes.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import luke.finetuning.trainer as finetuning_trainer
import luke.pretraining.trainer as pretraining_trainer
import luke.training as training
from luke.cli import main
from luke.errors import CheckpointError
from luke.pretraining.config import PretrainingConfig
from luke.pretraining.trainer import Trainer, latest_checkpoint
from test_finetuning_training import _args as finetune_args
from test_finetuning_training import make_tiny_bert
from test_pretraining_train import _metrics, inputs, tiny_config  # noqa: F401 - `inputs` is a fixture

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the tampered payloads

# -------------------------------------------------------------------------------------------- helpers


class Killed(BaseException):
    """What a simulated SIGKILL raises (a BaseException: no ``except Exception`` handler swallows it)."""


def simulated_fault(point: str | None):
    """A stand-in for ``luke.training.fault``: the point ``point`` raises :class:`Killed`."""

    def fault(name: str) -> None:
        if name == point:
            raise Killed(name)

    return fault


@pytest.fixture
def kill_at(monkeypatch):
    """``kill_at(point)``: the ``LUKE_FAULT`` point ``point`` raises :class:`Killed` in this process."""

    def arm(point: str | None) -> None:
        for module in (training, pretraining_trainer, finetuning_trainer):
            monkeypatch.setattr(module, "fault", simulated_fault(point))

    return arm


class Evil:
    """Unpickling this creates ``marker``: the code-execution probe."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def payloads(marker: Path, original: bytes, tmp: Path) -> dict[str, bytes]:
    """Replacement contents for a checkpoint file: two tampered pickles (raw, and inside torch's zip format),
    the file cut in half, and garbage."""
    zipped = tmp / "zipped.pt"
    torch.save({"state": Evil(marker)}, zipped)
    return {
        "pickle": pickle.dumps(Evil(marker)),
        "torch-zip-pickle": zipped.read_bytes(),
        "truncated": original[: len(original) // 2],
        "garbage": b"\x00\xffnot a checkpoint\n" * 3,
    }


def test_the_tampered_pickle_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The probe is real: plain unpickling creates the marker (so its absence below means nothing ran)."""
    marker = tmp_path / "marker"
    pickle.loads(payloads(marker, b"", tmp_path)["pickle"])
    assert marker.exists()


def one_error_line(capsys, command: str, name: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"luke {command}: error: ") and name in err[0], err[0]
    return err[0]


# --------------------------------------------------------------------------------------- pretraining

TRAIN_KEYS = ("loss", "mlm_loss", "mep_loss", "mlm_accuracy", "mep_accuracy", "learning_rate", "stage")


def pretraining_config(inputs, out: Path) -> dict:  # noqa: F811
    """Two stages of 3 steps, a checkpoint every 2 steps, held-out evaluation, log windows of 2 steps (open
    across the checkpoint at step 4), dropout on; default keep_checkpoints."""
    config = tiny_config(inputs, out, save_every_steps=2, log_every_steps=2, hidden_dropout_prob=0.1)
    config.update(batch_size=2, gradient_accumulation_steps=1, eval_max_items=8)
    config["stages"][0]["max_steps"] = config["stages"][1]["max_steps"] = 3
    return config


def _records(out: Path) -> tuple[list, list]:
    records = _metrics(out)
    train = [(r["step"], *(r[k] for k in TRAIN_KEYS)) for r in records if "mlm_loss" in r]
    evals = [r for r in records if "eval_mlm_loss" in r]
    return train, evals


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


# Steps: stage 1 = 1-3, stage 2 = 4-6; checkpoints at 2, 3 (stage end), 4, 6 (stage end); evaluations at 0, 2,
# 3, 4, 6. Each point kills the run resumed after the previous kill: (phase, point, latest checkpoint after it).
# In the first sequence the third run resumes mid-stage 1 and crosses into stage 2 (where the RNG state of the
# old checkpoint used to be reloaded) and its checkpoint at step 4 is resumed from; only one run per sequence
# can cross from stage 1, hence two sequences.
PRETRAINING_KILLS = {
    "across the stage boundary": [
        ("within stage 1", "step:3", "step-00000002"),
        ("during the stage-1 export", "export:stage1", "step-00000002"),
        ("within stage 2, after crossing the boundary", "step:5", "step-00000004"),
        ("during an evaluation", "eval:6", "step-00000004"),
        ("during a checkpoint write", "checkpoint:6", "step-00000004"),
        ("after the last stage-end checkpoint", "stage-end:1", "step-00000006"),
    ],
    "at the stage boundary": [
        ("after the stage-end checkpoint", "stage-end:0", "step-00000003"),
        ("during the first evaluation of stage 2", "eval:4", "step-00000003"),
    ],
}


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("reference") / "out"
    Trainer(PretrainingConfig.from_dict(pretraining_config(inputs, out))).run()
    return out


@pytest.mark.parametrize("sequence", list(PRETRAINING_KILLS))
def test_pretraining_killed_at_every_phase_resumes_exactly(inputs, reference, kill_at, tmp_path, sequence) -> None:  # noqa: F811
    """Default settings (keep_checkpoints 2): the run killed at each phase in turn, each time resumed, ends with
    the uninterrupted run's training and held-out records and exported weights, bit for bit."""
    out = tmp_path / "out"
    config = PretrainingConfig.from_dict(pretraining_config(inputs, out))
    for number, (phase, point, latest) in enumerate(PRETRAINING_KILLS[sequence]):
        kill_at(point)
        with pytest.raises(Killed):
            Trainer(config, resume=number > 0).run()
        assert latest_checkpoint(out).name == latest, phase
    kill_at(None)
    Trainer(config, resume=True).run()
    (ref_train, ref_evals), (train, evals) = _records(reference), _records(out)
    assert [r[0] for r in train] == [2, 3, 5, 6]
    assert train == ref_train  # every training record, bit for bit (timings aside)
    assert evals == ref_evals
    for folder in ("stage1", "stage2", "final"):
        ref, got = _weights(reference / folder), _weights(out / folder)
        assert ref.keys() == got.keys()
        for key in ref:
            assert torch.equal(ref[key], got[key]), (folder, key)
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-00000004", "step-00000006"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no leftovers of the killed runs


@pytest.fixture(scope="module")
def mid_stage(inputs, tmp_path_factory) -> Path:  # noqa: F811
    """An output folder whose latest checkpoint (step 2) is mid-stage 1: resuming it reads every file."""
    out = tmp_path_factory.mktemp("mid") / "out"
    config = pretraining_config(inputs, out) | {"eval_dataset": None}
    (out.parent / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as mp:
        for module in (training, pretraining_trainer):
            mp.setattr(module, "fault", simulated_fault("step:3"))
        with pytest.raises(Killed):
            Trainer(PretrainingConfig.from_dict(config | {"eval_dataset": None})).run()
    assert latest_checkpoint(out).name == "step-00000002"
    return out


PRETRAINING_FILES = ("model.pt", "optimizer.pt", "scheduler.json", "rng-rank0.pt", "trainer_state.json")


@pytest.mark.parametrize("name", PRETRAINING_FILES)
def test_pretraining_checkpoint_files_are_never_unpickled(mid_stage, tmp_path, capsys, name) -> None:
    """Each file of a mid-stage checkpoint (every one is read on resume), tampered, cut or garbage."""
    marker = tmp_path / "marker"
    target = mid_stage / "checkpoints" / "step-00000002" / name
    original = target.read_bytes()
    try:
        for kind, data in payloads(marker, original, tmp_path).items():
            target.write_bytes(data)
            capsys.readouterr()
            assert main(["pretrain", str(mid_stage.parent / "config.yaml"), "--resume"]) == 2, kind
            one_error_line(capsys, "pretrain", str(target))
            assert not marker.exists(), f"{kind}: code ran while loading {name}"
    finally:
        target.write_bytes(original)


@pytest.mark.parametrize(
    "state",
    [
        {"global_step": "two"},
        {"global_step": 2, "stage": 0, "stage_step": 2, "tokens": 0, "extra": [], "unknown": 1},
        {"global_step": 2, "stage": 7, "stage_step": 2, "tokens": 0, "extra": {}},
        ["not", "an", "object"],
        {"global_step": 99, "stage": 0, "stage_step": 99, "tokens": 0, "extra": {}},
        {"global_step": 10**12, "stage": 0, "stage_step": 2, "tokens": 0, "extra": {}},
        {"global_step": 5, "stage": 0, "stage_step": 2, "tokens": 0, "extra": {}},
    ],
)
def test_pretraining_trainer_state_of_the_wrong_shape(mid_stage, state) -> None:
    target = mid_stage / "checkpoints" / "step-00000002" / "trainer_state.json"
    original = target.read_bytes()
    target.write_text(json.dumps(state))
    config = yaml.safe_load((mid_stage.parent / "config.yaml").read_text())
    try:
        with pytest.raises(CheckpointError, match="trainer_state.json"):
            Trainer(PretrainingConfig.from_dict(config), resume=True).run()
    finally:
        target.write_bytes(original)


def _edit_scheduler(key, value):
    def edit(path: Path) -> None:
        state = json.loads(path.read_text())
        state[key] = value
        path.write_text(json.dumps(state))

    return edit


def _edit_schedule_values(path: Path) -> None:
    state = json.loads(path.read_text())
    for schedule in state["lr_lambdas"]:
        schedule["total_steps"] = 0  # valid shape, but no longer this run's schedule (lr 0 from now on)
    path.write_text(json.dumps(state))


def _edit_scheduler_nan_rates(path: Path) -> None:
    state = json.loads(path.read_text())
    state["base_lrs"] = [float("nan")] * len(state["base_lrs"])
    path.write_text(json.dumps(state))


def _edit_optimizer(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    first = next(iter(state["state"]))
    state["state"][first]["exp_avg"] = torch.zeros(2)
    torch.save(state, path)


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("scheduler.json", _edit_scheduler("last_epoch", "x"), "'last_epoch' should look like"),
        ("scheduler.json", _edit_scheduler("base_lrs", [0.1, 0.1, 0.1]), "'base_lrs' should look like"),
        ("scheduler.json", _edit_schedule_values, "'lr_lambdas' is"),
        ("scheduler.json", _edit_scheduler_nan_rates, "'base_lrs' is \\[NaN"),
        ("scheduler.json", _edit_scheduler("last_epoch", -4), "'last_epoch' must be >= 0"),
        ("optimizer.pt", _edit_optimizer, r"exp_avg has shape \(2,\) for a parameter of"),
        ("../../metrics.jsonl", lambda p: p.write_bytes(b"\xff\xfegarbage\n"), "metrics.jsonl:1: not UTF-8"),
        ("../../metrics.jsonl", lambda p: p.write_text("[1]\n"), "metrics.jsonl:1: expected a JSON object"),
    ],
)
def test_pretraining_resume_files_with_wrong_contents(mid_stage, tmp_path, capsys, name, edit, message) -> None:
    out = tmp_path / "run"
    shutil.copytree(mid_stage, out)
    config = yaml.safe_load((mid_stage.parent / "config.yaml").read_text()) | {"output_dir": str(out)}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    edit(out / "checkpoints" / "step-00000002" / name)
    assert main(["pretrain", str(tmp_path / "config.yaml"), "--resume"]) == 2
    line = one_error_line(capsys, "pretrain", Path(name).name)
    assert re.search(message, line), line


def test_pretraining_saved_config_garbage_and_missing_rank_file(mid_stage, tmp_path) -> None:
    config = yaml.safe_load((mid_stage.parent / "config.yaml").read_text())
    out = tmp_path / "a"
    shutil.copytree(mid_stage, out)
    (out / "config.json").write_bytes(b"\x80garbage")
    with pytest.raises(CheckpointError, match="config.json"):
        Trainer(PretrainingConfig.from_dict(config | {"output_dir": str(out)}), resume=True).run()
    out = tmp_path / "b"
    shutil.copytree(mid_stage, out)
    (out / "checkpoints" / "step-00000002" / "rng-rank0.pt").unlink()
    with pytest.raises(CheckpointError, match=r"rng-rank0\.pt: missing"):
        Trainer(PretrainingConfig.from_dict(config | {"output_dir": str(out)}), resume=True).run()


# ---------------------------------------------------------------------------------------- fine-tuning

COMMON = ("--train-batch-size", "1", "--gradient-accumulation-steps", "1", "--seed", "3", "--select-best")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def _finetune_result(out: Path) -> tuple:
    results = json.loads((out / "results.json").read_text())
    return results["history"], results["best_epoch"], results["test"], results["dev"]


# 3 steps per epoch, 2 epochs, checkpoints at the epoch ends (default save_steps 0). Each point kills the run
# resumed after the previous kill: (phase, point, global step of the checkpoint left, or None).
FINETUNING_KILLS = [
    ("during the best-model save", "best:1", None),
    ("after the epoch-end checkpoint", "epoch-end:1", 3),
    ("mid-epoch", "step:5", 3),
    ("during a checkpoint write", "checkpoint:6", 3),
    ("between the renames replacing checkpoint/", "publish:checkpoint", 3),
]


def test_finetuning_killed_at_every_phase_resumes_exactly(tiny_bert, kill_at, tmp_path) -> None:
    reference = tmp_path / "reference"
    assert main(finetune_args("ner", tiny_bert, reference, *COMMON)) == 0
    out = tmp_path / "out"
    for number, (phase, point, step) in enumerate(FINETUNING_KILLS):
        kill_at(point)
        with pytest.raises(Killed):
            main(finetune_args("ner", tiny_bert, out, *COMMON, *(["--resume"] if number else [])))
        latest = finetuning_trainer.CheckpointFolders(out, "checkpoint").latest()
        assert (latest and finetuning_trainer.CheckpointFolders.read_state(latest)["global_step"]) == step, phase
    assert not (out / "checkpoint").exists() and latest == out / ".old-checkpoint"  # killed between the renames
    kill_at(None)
    assert main(finetune_args("ner", tiny_bert, out, *COMMON, "--resume")) == 0
    assert _finetune_result(out) == _finetune_result(reference)
    ref, got = _weights(reference), _weights(out)
    for key in ref:
        assert torch.equal(ref[key], got[key]), key  # bit for bit
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") or "checkpoint" in p.name) == []


@pytest.fixture(scope="module")
def finetune_checkpoint(tiny_bert, tmp_path_factory) -> Path:
    """An output folder holding a mid-epoch checkpoint (step 2 of 3)."""
    out = tmp_path_factory.mktemp("ft-ckpt") / "out"
    args = finetune_args("ner", tiny_bert, out, *COMMON, "--max-steps", "2", "--save-steps", "2", "--keep-checkpoints")
    assert main(args) == 0
    assert json.loads((out / "checkpoint" / "trainer_state.json").read_text())["global_step"] == 2
    return out


FINETUNE_FILES = ("model.safetensors", "optimizer.pt", "scheduler.json", "rng-rank0.pt", "trainer_state.json")


@pytest.mark.parametrize("name", FINETUNE_FILES)
def test_finetuning_checkpoint_files_are_never_unpickled(tiny_bert, finetune_checkpoint, tmp_path, capsys, name):
    marker = tmp_path / "marker"
    original = (finetune_checkpoint / "checkpoint" / name).read_bytes()
    out = tmp_path / "out"
    shutil.copytree(finetune_checkpoint, out)
    target = out / "checkpoint" / name
    for kind, data in payloads(marker, original, tmp_path).items():
        target.write_bytes(data)
        capsys.readouterr()
        assert main(finetune_args("ner", tiny_bert, out, *COMMON, "--resume")) == 2, kind
        one_error_line(capsys, "finetune", str(target))
        assert not marker.exists(), f"{kind}: code ran while loading {name}"
    assert not [p for p in finetune_checkpoint.parent.rglob("*.pkl")]  # no accelerate pickles are written


def test_finetuning_checkpoint_of_another_process_count(tiny_bert, finetune_checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(finetune_checkpoint, out)
    state_file = out / "checkpoint" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["loop"]["processes"] = 2
    state_file.write_text(json.dumps(state))
    assert main(finetune_args("ner", tiny_bert, out, *COMMON, "--resume")) == 2
    assert "written by 2 processes" in one_error_line(capsys, "finetune", str(state_file))


# --------------------------------------------------------------------------------------- output paths


def test_pretrain_output_dir_that_cannot_be_written(inputs, tmp_path, capsys) -> None:  # noqa: F811
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out, expected in ((a_file, "exists and is not a folder"), (a_file / "out", "is a file, not a folder")):
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(yaml.safe_dump(tiny_config(inputs, out)))
        assert main(["pretrain", str(cfg)]) == 2
        assert expected in one_error_line(capsys, "pretrain", str(out))
        with pytest.raises(Exception, match=expected):  # the library checks too, before loading anything
            Trainer(PretrainingConfig.from_dict(tiny_config(inputs, out))).run()


def test_pretrain_output_dir_in_a_read_only_folder(inputs, tmp_path, capsys, permissions_as_user) -> None:  # noqa: F811
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(yaml.safe_dump(tiny_config(inputs, locked / "out")))
        assert main(["pretrain", str(cfg)]) == 2
        assert "permission denied" in one_error_line(capsys, "pretrain", "locked")
    finally:
        locked.chmod(0o700)


def test_finetune_trainer_output_dir_that_is_a_file(tiny_bert, tmp_path, capsys) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main(finetune_args("ner", tiny_bert, a_file, "--num-train-epochs", "1")) == 2
    line = one_error_line(capsys, "finetune", str(a_file))
    assert "not a folder" in line or "exists" in line


def test_plot_training_output_that_is_a_folder(tmp_path, capsys) -> None:
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "stage": "s", "mlm_loss": 1.0}) + "\n")
    (tmp_path / "folder.png").mkdir()
    assert main(["plot-training", str(tmp_path), "--out", str(tmp_path / "folder.png")]) == 2
    assert "is a folder" in one_error_line(capsys, "plot-training", "folder.png")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main(["plot-training", str(tmp_path), "--out", str(a_file / "curves.png")]) == 2
    assert "is a file, not a folder" in one_error_line(capsys, "plot-training", "curves.png")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "metrics.jsonl: no such file"),
        (b'{"step": 1}\n\xff\n', "metrics.jsonl:2: not UTF-8"),
        (b'{"step": 1}\n[1, 2]\n', "metrics.jsonl:2: expected a JSON object"),
        (b'{"step": 1, "stage": "s", "mlm_loss": 1.0}\n', "lacks numeric ['mlm_accuracy', 'mep_loss', 'mep_accuracy']"),
        (
            b'{"step": "x", "stage": "s", "mlm_loss": 1, "mlm_accuracy": 1, "mep_loss": 1, "mep_accuracy": 1}\n',
            "['step']",
        ),
    ],
)
def test_plot_training_bad_metrics(tmp_path, capsys, content, expected) -> None:
    if content is not None:
        (tmp_path / "metrics.jsonl").write_bytes(content)
    assert main(["plot-training", str(tmp_path)]) == 2
    assert expected in one_error_line(capsys, "plot-training", "metrics.jsonl")
    assert not (tmp_path / "training_curves.png").exists()


def test_plot_training_never_writes_over_its_metrics(tmp_path, capsys) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps({"step": 1}) + "\n")
    link = tmp_path / "curves.png"
    link.symlink_to(metrics)
    for out in (metrics, link):
        assert main(["plot-training", str(tmp_path), "--out", str(out)]) == 2
        assert "would replace the input" in one_error_line(capsys, "plot-training", out.name)
    assert metrics.read_text() == json.dumps({"step": 1}) + "\n"


def test_plot_training_skips_a_cut_last_line(tmp_path, capsys) -> None:
    record = {"step": 1, "stage": "s", "mlm_loss": 1.0, "mlm_accuracy": 0.1, "mep_loss": 2.0, "mep_accuracy": 0.2}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(record) + "\n" + json.dumps(record)[:20])
    assert main(["plot-training", str(tmp_path)]) == 0
    assert (tmp_path / "training_curves.png").stat().st_size > 0
    (tmp_path / "metrics.jsonl").write_text(json.dumps(record)[:20] + "\n" + json.dumps(record) + "\n")
    assert main(["plot-training", str(tmp_path)]) == 2  # a bad line in the middle is still an error
    assert "metrics.jsonl:1: not valid JSON" in one_error_line(capsys, "plot-training", "metrics.jsonl")
