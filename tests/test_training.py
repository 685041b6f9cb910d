"""The training toolkit (``luke.training``) shared by the pretraining and fine-tuning loops: the no-decay rule,
the schedules (equal to the two loops' former implementations), atomic checkpoints, keep-last-N, the
metrics log and the accelerator reset."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import luke.training as training
from luke.errors import CheckpointError, ConfigError
from luke.training import (
    CheckpointFolders,
    MetricsLog,
    WarmupSchedule,
    create_accelerator,
    parameter_groups,
    warmup_factor,
)

ONE_PROCESS = SimpleNamespace(is_main_process=True, wait_for_everyone=lambda: None)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(7, 4)
        self.LayerNorm = nn.LayerNorm(4)
        self.dense = nn.Linear(4, 4)
        self.layer_norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 7)
        self.head.weight = self.embeddings.weight  # tied
        self.pooler = nn.Linear(4, 4)
        self.pooler.requires_grad_(False)


def test_parameter_groups_no_decay_rule() -> None:
    model = Tiny()
    decay, no_decay = parameter_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in decay["params"]] == ["embeddings.weight", "dense.weight"]  # tied: once
    assert [names[id(p)] for p in no_decay["params"]] == [
        "LayerNorm.weight",
        "LayerNorm.bias",
        "dense.bias",
        "layer_norm.weight",
        "layer_norm.bias",
        "head.bias",
    ]  # the frozen pooler is in neither


def _former_pretraining(step: int, warmup: int, total: int, kind: str) -> float:
    """``luke.pretraining.optim.WarmupSchedule`` before the toolkit."""
    if step < warmup:
        return (step + 1) / warmup
    if kind == "warmup_constant":
        return 1.0
    return max(0.0, (total - step) / max(1, total - warmup))


def _former_finetuning(step: int, warmup: int, total: int) -> float:
    """The fine-tuning loop's schedule before the toolkit."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


@pytest.mark.parametrize(("warmup", "total"), [(0, 4), (1, 1), (4, 10), (3, 7), (6, 100)])
def test_schedules_equal_the_former_implementations(warmup: int, total: int) -> None:
    for step in range(total + 2):
        for kind in ("warmup_linear", "warmup_constant"):
            assert WarmupSchedule(warmup, total, kind)(step) == _former_pretraining(step, warmup, total, kind)
        assert warmup_factor(step, warmup, total, ramp_steps=warmup + 1) == _former_finetuning(step, warmup, total)


def test_warmup_schedule_state_is_unchanged() -> None:
    """Pretraining checkpoints store the schedule's attributes in ``scheduler.json``: still the same three."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(2, 9, "warmup_constant"))
    assert scheduler.state_dict()["lr_lambdas"] == [{"warmup_steps": 2, "total_steps": 9, "kind": "warmup_constant"}]


def _save(folders: CheckpointFolders, step: int, payload: str = "") -> Path:
    def write(folder: Path) -> None:
        (folder / "model.pt").write_text(payload or f"weights {step}")

    return folders.save(f"step-{step:08d}", {"global_step": step}, write, ONE_PROCESS)


def test_checkpoint_is_written_completely_then_renamed(tmp_path: Path) -> None:
    folders = CheckpointFolders(tmp_path / "checkpoints", "step-*", pointer="latest")
    assert folders.latest() is None
    final = _save(folders, 3)
    assert final == tmp_path / "checkpoints" / "step-00000003"
    assert sorted(p.name for p in final.iterdir()) == ["model.pt", "trainer_state.json"]
    assert json.loads((final / "trainer_state.json").read_text()) == {"global_step": 3}
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-00000003\n"
    assert folders.latest() == final and CheckpointFolders.read_state(final) == {"global_step": 3}
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_crash_between_write_and_rename_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    folders = CheckpointFolders(tmp_path / "checkpoints", "step-*", pointer="latest")
    _save(folders, 1)

    real_replace = training.os.replace

    def crash(src, dst, *args, **kwargs):
        if Path(dst).name.startswith("step-"):  # the folder's rename (the state file's own rename goes through)
            raise KeyboardInterrupt("killed before the rename")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(training.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(folders, 2)
    monkeypatch.undo()
    root = tmp_path / "checkpoints"
    assert (root / ".tmp-step-00000002" / "trainer_state.json").is_file()  # written, never renamed
    assert folders.latest() == root / "step-00000001"
    assert CheckpointFolders(root, "step-*").latest() == root / "step-00000001"  # without the pointer too

    def failing_write(folder: Path) -> None:  # a full disk while writing
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        folders.save("step-00000002", {"global_step": 2}, failing_write, ONE_PROCESS)
    assert folders.latest() == root / "step-00000001"
    assert _save(folders, 2) == folders.latest() == root / "step-00000002"  # the stale temporary is replaced


def test_latest_skips_an_incomplete_folder_named_by_the_pointer(tmp_path: Path) -> None:
    folders = CheckpointFolders(tmp_path, "step-*", pointer="latest")
    _save(folders, 1)
    _save(folders, 2)
    (tmp_path / "step-00000002" / "trainer_state.json").unlink()
    assert folders.latest() == tmp_path / "step-00000001"


def test_keep_last_n(tmp_path: Path) -> None:
    folders = CheckpointFolders(tmp_path, "step-*", pointer="latest", keep=2)
    for step in (2, 4, 6, 8, 10):
        _save(folders, step)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000008", "step-00000010"]
    assert folders.latest() == tmp_path / "step-00000010"
    everything = CheckpointFolders(tmp_path / "all", "step-*")
    for step in (1, 2, 3):
        _save(everything, step)
    assert len(everything.complete()) == 3


def test_single_folder_checkpoint_is_replaced(tmp_path: Path, monkeypatch) -> None:
    """Fine-tuning's one ``checkpoint/`` folder: a new save replaces it; a failed save leaves the old one."""
    folders = CheckpointFolders(tmp_path, "checkpoint")

    def save(text: str) -> Path:
        def write(folder: Path) -> None:
            (folder / "model.safetensors").write_text(text)

        return folders.save("checkpoint", {"global_step": len(text)}, write, ONE_PROCESS)

    save("a")
    save("bb")
    assert folders.latest() == tmp_path / "checkpoint"
    assert (tmp_path / "checkpoint" / "model.safetensors").read_text() == "bb"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    monkeypatch.setattr(training, "fsync_tree", lambda folder: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError):
        save("ccc")
    assert CheckpointFolders.read_state(folders.latest()) == {"global_step": 2}


def test_kill_between_the_renames_of_a_replaced_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """Replacing ``checkpoint/`` sets the old folder aside, then renames the new one in: killed between the two
    renames, no ``checkpoint/`` is left and :meth:`latest` finds the folder set aside; the next save cleans up."""
    folders = CheckpointFolders(tmp_path, "checkpoint")

    def save(text: str) -> Path:
        def write(folder: Path) -> None:
            (folder / "model.safetensors").write_text(text)

        return folders.save("checkpoint", {"global_step": len(text)}, write, ONE_PROCESS)

    def killed(point: str) -> None:
        if point == "publish:checkpoint":
            raise KeyboardInterrupt(point)

    save("a")
    monkeypatch.setattr(training, "fault", killed)
    with pytest.raises(KeyboardInterrupt):
        save("bb")
    monkeypatch.undo()
    assert not (tmp_path / "checkpoint").exists()
    assert folders.latest() == tmp_path / ".old-checkpoint"
    assert CheckpointFolders.read_state(folders.latest()) == {"global_step": 1}
    save("ccc")
    assert folders.latest() == tmp_path / "checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_a_garbage_pointer_falls_back_to_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    folders = CheckpointFolders(tmp_path / "c", "step-*", pointer="latest")
    _save(folders, 1)
    _save(folders, 2)
    for garbage in (b"\xff\xfe", b"../../etc\n", b"step-00000009\n", b"trainer_state.json"):
        (tmp_path / "c" / "latest").write_bytes(garbage)
        assert folders.latest() == tmp_path / "c" / "step-00000002"


def _draws() -> tuple:
    return (random.random(), random.gauss(0, 1), float(np.random.rand()), float(np.random.normal()), torch.rand(2))


def test_rng_state_file_round_trip_loads_weights_only(tmp_path: Path) -> None:
    """torch, numpy (a cached Gaussian included) and python states, restored exactly from a file that loads
    with ``weights_only=True``; a state of the wrong shape is a one-line CheckpointError naming the file."""
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1), np.random.normal()  # leave a cached Gaussian in both
    training.save_rng_state(tmp_path / "rng.pt")
    expected = _draws()
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    training.load_rng_state(tmp_path / "rng.pt")
    got = _draws()
    assert got[:4] == expected[:4] and torch.equal(got[4], expected[4])
    assert set(torch.load(tmp_path / "rng.pt", weights_only=True)) == {"torch", "numpy", "python"}
    torch.save({"torch": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad\.pt: not a valid RNG state file") as err:
        training.load_rng_state(tmp_path / "bad.pt")
    assert "\n" not in str(err.value)


def test_scheduler_state_of_another_schedule_is_refused(tmp_path: Path) -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(2, 9))
    optimizer.step()
    scheduler.step()
    training.save_json_state(tmp_path / "s.json", scheduler.state_dict())
    other = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(2, 9))
    training.load_scheduler_state(other, tmp_path / "s.json")
    assert other.state_dict() == scheduler.state_dict()
    plain = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)  # no stored settings
    with pytest.raises(CheckpointError, match=r"s\.json: does not fit this scheduler"):
        training.load_scheduler_state(plain, tmp_path / "s.json")
    (tmp_path / "s.json").write_text('{"last_epoch": 1}')
    with pytest.raises(CheckpointError, match="expected the keys"):
        training.load_scheduler_state(other, tmp_path / "s.json")


def test_metrics_log_drops_records_after_the_resume_step(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path, enabled=True, tensorboard=False, resume_step=None)
    for step in range(1, 6):
        log.log({"step": step, "loss": 1.0 / step})
    log.close()
    resumed = MetricsLog(tmp_path, enabled=True, tensorboard=False, resume_step=3)
    resumed.log({"step": 4, "loss": 0.5})
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4] and lines[-1]["loss"] == 0.5
    MetricsLog(tmp_path, enabled=True, tensorboard=False, resume_step=None)
    assert (tmp_path / "metrics.jsonl").read_text() == ""  # a new run starts an empty log
    MetricsLog(tmp_path / "other", enabled=False, tensorboard=True, resume_step=None).log({"step": 1})
    assert not (tmp_path / "other").exists()  # not the main process: nothing written


def test_accelerators_with_other_settings_follow_each_other() -> None:
    first = create_accelerator(cpu=True, mixed_precision="bf16", gradient_accumulation_steps=3)
    assert first.mixed_precision == "bf16" and first.gradient_accumulation_steps == 3
    second = create_accelerator(cpu=True, mixed_precision="no")
    assert second.mixed_precision == "no" and second.gradient_accumulation_steps == 1


def test_parameter_groups_scale_the_entity_aware_queries():
    """``entity_query_lr_scale``: the trainer marks the w2e/e2w/e2e query parameters (and only those) with an
    ``lr_scale``; ``parameter_groups`` puts them in groups of their own at lr * scale (decay kept apart), and
    an optimiser step with scale 0 leaves them where they were while ``query`` moves."""
    from luke.config import LukeConfig
    from luke.finetuning.trainer import ENTITY_QUERY_SUFFIXES
    from luke.modeling import LukeModel
    from luke.training import parameter_groups

    model = LukeModel(LukeConfig(vocab_size=20, entity_vocab_size=5, hidden_size=8, entity_emb_size=4,
                                 num_hidden_layers=2, num_attention_heads=2, intermediate_size=12,
                                 max_position_embeddings=16))  # fmt: skip
    marked = [n for n, _ in model.named_parameters() if n.endswith(ENTITY_QUERY_SUFFIXES)]
    assert len(marked) == 2 * 3 * 2 and all(("w2e" in n) or ("e2w" in n) or ("e2e" in n) for n in marked)
    plain = parameter_groups(model, 0.01)
    assert [g["weight_decay"] for g in plain] == [0.01, 0.0] and all("lr" not in g for g in plain)
    for name, param in model.named_parameters():
        if name in marked:
            param.lr_scale = 0.0
    with pytest.raises(ConfigError, match="lr_scale"):
        parameter_groups(model, 0.01)
    groups = parameter_groups(model, 0.01, lr=1e-3)
    assert [(g["weight_decay"], g.get("lr")) for g in groups] == [(0.01, None), (0.0, None), (0.01, 0.0), (0.0, 0.0)]
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for g in groups[2:] for p in g["params"]) == sorted(marked)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    optimizer = torch.optim.AdamW(groups, lr=1e-3, fused=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = model(torch.randint(3, 20, (2, 6)), entity_ids=torch.ones(2, 2, dtype=torch.long),
                entity_position_ids=torch.tensor([[[1, -1], [2, 3]], [[4, -1], [1, -1]]]))  # fmt: skip
    (out.last_hidden_state.pow(2).mean() + out.entity_last_hidden_state.pow(2).mean()).backward()
    optimizer.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert not moved & set(marked) and "encoder.layer.0.attention.self.query.weight" in moved
