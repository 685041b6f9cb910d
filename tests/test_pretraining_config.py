"""Pretraining config: YAML/JSON files, dotted overrides, unknown keys with suggestions, type errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from luke.cli import main
from luke.pretraining.config import ConfigError, PretrainingConfig

BASE = {"dataset": "ds", "model": "bert", "output_dir": "out"}


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_yaml_file_with_stages_and_overrides(tmp_path: Path) -> None:
    path = _yaml(
        tmp_path,
        "dataset: ds\nmodel: bert\noutput_dir: out\nbatch_size: 8\n"
        "stages:\n  - {name: s1, trainable: entity, max_steps: 3, learning_rate: 5.0e-4}\n"
        "  - {name: s2, max_steps: 4, learning_rate: 1e-5}\n",
    )
    cfg = PretrainingConfig.load(
        path,
        [
            "batch_size=16",
            "stages.1.max_steps=7",
            "optimizer.bias_correction=false",
            "masking.masked_entity_prob=0.3",
            "stages.0.extra_trainable=[lm_head.dense.]",
            "eval_dataset=null",
        ],
    )
    assert cfg.batch_size == 16
    assert [(s.name, s.trainable, s.max_steps) for s in cfg.stages] == [("s1", "entity", 3), ("s2", "all", 7)]
    assert cfg.stages[1].learning_rate == 1e-5  # YAML 1.1 reads "1e-5" as a string: accepted as a number
    assert cfg.optimizer.bias_correction is False
    assert cfg.masking.masked_entity_prob == 0.3
    assert cfg.stages[0].extra_trainable == ["lm_head.dense."]
    assert cfg.eval_dataset is None


def test_json_file_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({**BASE, "precision": "bf16", "optimizer": {"eps": 1e-8}}))
    cfg = PretrainingConfig.load(path)
    assert cfg.precision == "bf16" and cfg.optimizer.eps == 1e-8
    cfg.save(tmp_path / "saved.json")
    assert PretrainingConfig.load(tmp_path / "saved.json") == cfg


def test_defaults_follow_the_two_stage_recipe() -> None:
    cfg = PretrainingConfig.load(None, [f"{k}={v}" for k, v in BASE.items()])
    assert [s.trainable for s in cfg.stages] == ["entity", "all"]
    assert cfg.masking.masked_lm_prob == 0.15 and cfg.masking.masked_entity_prob == 0.15
    assert cfg.masking.whole_word_masking


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_sise=3", "unknown config key 'batch_sise'; did you mean 'batch_size'?"),
        ("optimizer.weight_decy=0", "unknown config key 'optimizer.weight_decy'; did you mean 'weight_decay'?"),
        ("stages.0.learning_rat=1", "unknown config key 'stages.0.learning_rat'; did you mean 'learning_rate'?"),
        ("masking.whole_word=false", "did you mean 'whole_word_masking'?"),
    ],
)
def test_unknown_override_suggests_closest(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?").replace(".", r"\.")):
        PretrainingConfig.load(None, [f"{k}={v}" for k, v in BASE.items()] + [override])


def test_unknown_key_in_file_suggests_closest(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "dataset: ds\nmodel: m\noutput_dir: o\nstages:\n  - {name: a, max_step: 3}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'stages\.0\.max_step'; did you mean 'max_steps'\?"):
        PretrainingConfig.load(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=abc", "batch_size: expected an integer"),
        ("precision=fp16", r"precision: expected one of \['fp32', 'bf16'\]"),
        ("stages.0.trainable=words", "stages.0.trainable: expected one of"),
        ("batch_size=6", "not divisible by gradient_accumulation_steps"),
        ("masking.masked_lm_prob=1.5", r"masked_lm_prob must be a finite number in \[0.0, 1.0\], got 1.5"),
        ("stages.0.learning_rate=.nan", r"stages.0.learning_rate must be a finite number in \(0.0, inf\)"),
        ("stages.0.learning_rate=.inf", r"stages.0.learning_rate must be a finite number"),
        ("stages.0.warmup_steps=150", r"stages.0.warmup_steps must be between 0 and 100, got 150"),
        ("stages.1.name=stage1", "used by an earlier stage"),
        ("stages.0.name=final", "cannot be a folder name in output_dir"),
        ("stages.0.name=checkpoints", "cannot be a folder name in output_dir"),
        ("stages.0.name=../esc", "cannot be a folder name in output_dir"),
        ("stages.0.name=a/b", "cannot be a folder name in output_dir"),
        ("stages.0.name=''", "cannot be a folder name in output_dir"),
        ("stages.1.extra_trainable=[lm_head.]", "extra_trainable only applies to trainable: entity"),
        ("batch_size=1000000000000000000", "batch_size must be between 1 and 1,048,576"),
        ("entity_emb_size=0", "entity_emb_size must be at least 1, got 0"),
        ("hidden_dropout_prob=2", r"hidden_dropout_prob must be a finite number in \[0.0, 1.0\)"),
        ("seed=-1", "seed must be between 0 and 4,294,967,295, got -1"),
        ("seed=1180591620717411303424", "seed must be between 0 and"),
        ("eval_batch_size=0", "eval_batch_size must be between 1 and"),
        ("eval_max_items=-1", "eval_max_items must be at least 1, got -1"),
        ("num_workers=-2", "num_workers must be between 0 and 256"),
        ("optimizer.beta1=1.5", r"optimizer.beta1 must be a finite number in \[0.0, 1.0\), got 1.5"),
        ("optimizer.eps=0", r"optimizer.eps must be a finite number in \(0.0, inf\)"),
        ("optimizer.weight_decay=-1", "optimizer.weight_decay must be a finite number"),
        ("optimizer.max_grad_norm=-1", "optimizer.max_grad_norm must be a finite number"),
        ("batch_size.x=1", "'batch_size' is a single value, not a section"),
        ("stages.0.extra_trainable.0.x=1", "is a single value, not a section"),
        ("output_dir=ds", "output_dir ds is dataset ds or inside it"),
        ("output_dir=ds/run", "output_dir ds/run is dataset ds or inside it"),
        ("optimizer.bias_correction=maybe", "expected true or false"),
        ("batch_size", "not of the form key=value"),
    ],
)
def test_bad_values(override: str, message: str) -> None:
    overrides = [f"{k}={v}" for k, v in BASE.items()] + ["gradient_accumulation_steps=4", override]
    with pytest.raises(ConfigError, match=message):
        PretrainingConfig.load(None, overrides)


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match="config key 'dataset' is required"):
        PretrainingConfig.load(None, ["model=m", "output_dir=o"])


def test_cli_reports_unknown_key_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _yaml(tmp_path, "dataset: ds\nmodel: m\noutput_dir: o\nlearning_rate: 1e-4\n")
    assert main(["pretrain", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'learning_rate'" in err
    assert "luke pretrain: error:" in err
    assert not (tmp_path / "o").exists()


def test_errors_name_the_config_file(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "dataset: ds\nmodel: m\noutput_dir: o\nbatch_size: 0\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml: batch_size must be between 1 and"):
        PretrainingConfig.load(path)
    empty = _yaml(tmp_path, "")
    with pytest.raises(ConfigError, match=r"cfg.yaml: config key 'dataset' is required"):
        PretrainingConfig.load(empty)


def test_extra_trainable_must_name_parameters() -> None:
    from luke.config import LukeConfig
    from luke.modeling import LukeForMaskedLM
    from luke.pretraining.config import StageConfig
    from luke.pretraining.trainer import set_trainable

    model = LukeForMaskedLM(
        LukeConfig(vocab_size=20, entity_vocab_size=5, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=16, entity_emb_size=8, max_position_embeddings=16)
    )  # fmt: skip
    assert set_trainable(model, StageConfig(trainable="entity", extra_trainable=["lm_head.dense."])) > 0
    with pytest.raises(ConfigError, match=r"extra_trainable \['no.such.'\] match no parameter"):
        set_trainable(model, StageConfig(trainable="entity", extra_trainable=["no.such."]))
