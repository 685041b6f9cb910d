"""End-to-end pretraining on a tiny BERT and a tiny dataset built in the test session: two stages, freezing,
export to transformers, evaluation, plots, bad inputs, and exact resumption after SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import minilm_folder, require_shared
from luke.cli import main
from luke.errors import CheckpointError, ConfigError
from luke.pretraining.config import PretrainingConfig
from luke.pretraining.data import DatasetError, PretrainingDataset
from luke.pretraining.trainer import Trainer, latest_checkpoint

TINY_DUMP = Path(__file__).parent / "fixtures" / "wikipedia" / "tiny-export-0.10.xml"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def build_inputs(root: Path) -> dict[str, Path]:
    """A tiny BERT folder (MiniLM's uncased WordPiece tokenizer, random 2-layer weights) and a dataset built
    from the tiny XML fixture with that tokenizer."""
    from transformers import BertConfig, BertForMaskedLM

    from luke.wikipedia.dump_db import DumpDB, build_dump_db
    from luke.wikipedia.entity_vocab_builder import build_entity_vocab
    from luke.wikipedia.pretraining_dataset import DatasetOptions, build_pretraining_dataset

    tok = minilm_folder()
    bert = root / "bert"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertForMaskedLM(config).save_pretrained(bert)
    for name in TOKENIZER_FILES:
        shutil.copyfile(tok / name, bert / name)
    build_dump_db(TINY_DUMP, root / "db.sqlite", progress=False)
    vocab, _ = build_entity_vocab(DumpDB(root / "db.sqlite"), vocab_size=100)
    vocab.save(root / "vocab.jsonl")
    options = DatasetOptions(max_seq_length=48, max_entity_length=8, min_sentence_length=2)
    build_pretraining_dataset(root / "db.sqlite", tok, root / "vocab.jsonl", root / "ds", options, progress=False)
    return {"bert": bert, "ds": root / "ds", "db": root / "db.sqlite", "vocab": root / "vocab.jsonl"}


def tiny_config(inputs: dict[str, Path], out: Path, **overrides) -> dict:
    config = {
        "dataset": str(inputs["ds"]),
        "eval_dataset": str(inputs["ds"]),
        "model": str(inputs["bert"]),
        "output_dir": str(out),
        "entity_emb_size": 16,
        "batch_size": 4,
        "gradient_accumulation_steps": 2,
        "save_every_steps": 2,
        "log_every_steps": 1,
        "num_workers": 0,
        "progress": False,
        "tensorboard": False,
        "stages": [
            {"name": "stage1", "trainable": "entity", "max_steps": 3, "learning_rate": 1e-2, "warmup_steps": 1},
            {"name": "stage2", "trainable": "all", "max_steps": 4, "learning_rate": 1e-3, "warmup_steps": 1},
        ],
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_inputs(tmp_path_factory.mktemp("pretraining-inputs"))


@pytest.fixture(scope="session")
def trained(inputs, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """One in-process two-stage run; returns (output dir, initial state dict, state dict after stage 1)."""
    from luke.modeling import LukeForMaskedLM

    out = tmp_path_factory.mktemp("run") / "out"
    cfg = PretrainingConfig.from_dict(tiny_config(inputs, out))
    trainer = Trainer(cfg)
    result = trainer.run()
    assert result["masked_entities"] > 0
    stage1 = LukeForMaskedLM.from_pretrained(out / "stage1").state_dict()
    return out, stage1, result


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]


def test_two_stages_freeze_train_and_export(inputs, trained) -> None:
    from luke.checkpoint import init_from_transformers
    from luke.modeling import LukeForMaskedLM

    out, stage1, _ = trained
    initial, _ = init_from_transformers(
        inputs["bert"],
        LukeForMaskedLM,
        entity_vocab_size=len(PretrainingDataset(inputs["ds"]).entity_vocab),
        entity_emb_size=16,
        use_entity_aware_attention=False,
        seed=0,
    )
    initial = initial.state_dict()
    final = LukeForMaskedLM.from_pretrained(out / "final").state_dict()
    # stage 1 trained only the entity side: the word side is bit-identical to the BERT initialisation
    for key in ("luke.embeddings.word_embeddings.weight", "luke.encoder.layer.0.attention.self.query.weight"):
        assert torch.equal(stage1[key], initial[key]), key
        assert not torch.equal(final[key], stage1[key]), key  # ... and stage 2 trained it
    for key in (
        "luke.entity_embeddings.entity_embeddings.weight",
        "luke.entity_embeddings.position_embeddings.weight",
        "entity_predictions.transform.dense.weight",
        "entity_predictions.bias",
    ):
        assert not torch.equal(stage1[key], initial[key]), key  # trained in stage 1
    assert torch.equal(stage1["lm_head.dense.weight"], initial["lm_head.dense.weight"])  # frozen in stage 1
    records = _metrics(out)
    train = [r for r in records if "mlm_loss" in r]
    assert [r["step"] for r in train] == list(range(1, 8))
    assert [r["stage"] for r in train] == ["stage1"] * 3 + ["stage2"] * 4
    assert all(r["mep_loss"] > 0 and 0 <= r["mep_accuracy"] <= 1 for r in train)
    assert train[0]["learning_rate"] == pytest.approx(1e-2) and train[3]["learning_rate"] == pytest.approx(1e-3)
    assert [r["step"] for r in records if "eval_mlm_loss" in r] == [0, 2, 3, 4, 6, 7]
    saved = json.loads((out / "config.json").read_text())
    assert saved["stages"][1]["max_steps"] == 4


def test_export_loads_in_transformers_without_missing_keys(trained) -> None:
    import transformers

    from luke.modeling import LukeForMaskedLM
    from luke.tokenization import LukeTokenizer

    out, _, _ = trained
    folder = out / "final"
    theirs, info = transformers.LukeForMaskedLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ours = LukeForMaskedLM.from_pretrained(folder)
    checkpoint = torch.load(latest_checkpoint(out) / "model.pt")
    for key, value in checkpoint.items():  # nothing lost in the export (lm_head bias included)
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)
    torch.testing.assert_close(theirs.lm_head.bias, checkpoint["lm_head.bias"], rtol=0, atol=0)
    tokenizer = LukeTokenizer.from_pretrained(folder)
    enc = tokenizer("Anarchism is a political philosophy.", entity_spans=[(0, 9)], entities=["Anarchism"])
    assert enc["input_ids"][0] == tokenizer.cls_token_id
    assert (folder / "pretraining_metadata.json").is_file()


def test_evaluate_and_plot_commands(inputs, trained, capsys: pytest.CaptureFixture[str]) -> None:
    out, _, result = trained
    assert main(["evaluate-pretraining", str(out / "final"), str(inputs["ds"]), "--json", "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == pytest.approx(result, rel=1e-5)  # the same masking as the trainer's held-out evaluation
    for key in ("mlm_loss", "mlm_accuracy", "mep_loss", "mep_accuracy", "mep_majority_accuracy"):
        assert key in printed
    # --train-dataset adds the "most frequent training entity" baseline.
    args = ["evaluate-pretraining", str(out / "final"), str(inputs["ds"]), "--train-dataset", str(inputs["ds"])]
    assert main([*args, "--json", "--no-progress"]) == 0
    with_train = json.loads(capsys.readouterr().out)
    from collections import Counter

    import datasets

    vocab = PretrainingDataset(inputs["ds"]).entity_vocab
    counts = Counter(e for row in datasets.load_from_disk(str(inputs["ds"]))["entity_ids"] for e in row)
    for special in vocab.special_ids().values():
        counts.pop(special, None)
    top = max(counts.values())
    assert with_train["mep_train_frequent_entity"] in {e for e, n in counts.items() if n == top}
    assert 0.0 < with_train["mep_train_frequent_accuracy"] <= with_train["mep_majority_accuracy"]
    pytest.importorskip("matplotlib")
    assert main(["plot-training", str(out)]) == 0
    png = out / "training_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_resume_without_checkpoint_and_reuse_of_output_dir(inputs, trained, tmp_path: Path) -> None:
    out, _, _ = trained
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        Trainer(PretrainingConfig.from_dict(tiny_config(inputs, out))).run()
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        Trainer(PretrainingConfig.from_dict(tiny_config(inputs, tmp_path / "new")), resume=True).run()


# ------------------------------------------------------------------------------------------ bad input


def test_missing_and_corrupt_shards(inputs, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    shutil.copytree(inputs["ds"], missing)
    shard = next(missing.glob("data-*.arrow"))
    shard.unlink()
    with pytest.raises(DatasetError, match=f"missing dataset shard\\(s\\): {shard.name}"):
        PretrainingDataset(missing)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(inputs["ds"], corrupt)
    shard = next(corrupt.glob("data-*.arrow"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(DatasetError, match="corrupt dataset shard"):
        PretrainingDataset(corrupt)
    with pytest.raises(DatasetError, match="not a pretraining dataset"):
        PretrainingDataset(inputs["bert"])


def test_cli_errors_before_training(inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt"
    shutil.copytree(inputs["ds"], corrupt)
    shard = next(corrupt.glob("data-*.arrow"))
    shard.write_bytes(b"garbage")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(inputs, tmp_path / "out", dataset=str(corrupt))))
    assert main(["pretrain", str(cfg)]) == 2
    assert "corrupt dataset shard" in capsys.readouterr().err
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_dataset_with_another_tokenizer_is_rejected(inputs, tmp_path: Path) -> None:
    from luke.wikipedia.pretraining_dataset import DatasetOptions, build_pretraining_dataset

    roberta = require_shared("tokenizers", "roberta-base")
    other = tmp_path / "ds-roberta"
    options = DatasetOptions(max_seq_length=48, max_entity_length=8, min_sentence_length=2)
    build_pretraining_dataset(inputs["db"], roberta, inputs["vocab"], other, options, progress=False)
    cfg = PretrainingConfig.from_dict(tiny_config(inputs, tmp_path / "out", dataset=str(other), eval_dataset=None))
    with pytest.raises(DatasetError, match="different tokenizers"):
        Trainer(cfg).run()
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_same_size_tokenizer_with_other_tokens_is_rejected(inputs, tmp_path: Path) -> None:
    bert = tmp_path / "bert-other-vocab"
    shutil.copytree(inputs["bert"], bert)
    data = json.loads((bert / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    vocab["apple"], vocab["banana"] = vocab["banana"], vocab["apple"]
    (bert / "tokenizer.json").write_text(json.dumps(data))
    cfg = PretrainingConfig.from_dict(tiny_config(inputs, tmp_path / "out", model=str(bert), eval_dataset=None))
    with pytest.raises(DatasetError, match="different tokenizer than the one in"):
        Trainer(cfg).run()


def test_luke_checkpoint_with_another_entity_vocab_is_rejected(inputs, trained, tmp_path: Path) -> None:
    from luke.entity_vocab import EntityVocab
    from luke.wikipedia.pretraining_dataset import DatasetOptions, build_pretraining_dataset

    out, _, _ = trained
    vocab = EntityVocab.load(inputs["vocab"])
    titles = [title for title in vocab if title not in ("[PAD]", "[UNK]", "[MASK]", "[MASK2]")]
    smaller = tmp_path / "smaller.jsonl"
    EntityVocab.from_counts([(t, 1) for t in titles[:-1]]).save(smaller)
    options = DatasetOptions(max_seq_length=48, max_entity_length=8, min_sentence_length=2)
    ds = tmp_path / "ds-small-vocab"
    build_pretraining_dataset(inputs["db"], minilm_folder(), smaller, ds, options, progress=False)
    cfg = tiny_config(inputs, tmp_path / "out", model=str(out / "final"), dataset=str(ds), eval_dataset=None)
    with pytest.raises(DatasetError, match="different entity vocabularies"):
        Trainer(PretrainingConfig.from_dict(cfg)).run()
    # same size, other ids
    shuffled = tmp_path / "shuffled.jsonl"
    EntityVocab.from_counts([(t, 1) for t in reversed(titles)]).save(shuffled)
    ds2 = tmp_path / "ds-shuffled"
    build_pretraining_dataset(inputs["db"], minilm_folder(), shuffled, ds2, options, progress=False)
    assert len(titles) > 1 and EntityVocab.load(shuffled).to_dict() != vocab.to_dict()
    cfg = tiny_config(inputs, tmp_path / "out2", model=str(out / "final"), dataset=str(ds2), eval_dataset=None)
    with pytest.raises(DatasetError, match="different entity vocabulary"):
        Trainer(PretrainingConfig.from_dict(cfg)).run()


# ------------------------------------------------------------------------------- kill and resume


def _run_cli(config_path: Path, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("LUKE_FAULT", None)
    if fault:
        env["LUKE_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "luke", "pretrain", str(config_path), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _train_losses(out: Path) -> dict[int, tuple[float, ...]]:
    keys = ("loss", "mlm_loss", "mep_loss", "mlm_accuracy", "mep_accuracy", "learning_rate")
    return {r["step"]: tuple(r[k] for k in keys) for r in _metrics(out) if "mlm_loss" in r}


def test_sigkill_then_resume_equals_uninterrupted_run(inputs, tmp_path: Path) -> None:
    """Dropout on, one data-loader worker: the resumed run reproduces every later step exactly (model,
    optimiser, scheduler, RNG and data position restored). Killed twice: after step 5 (checkpoint at step 4
    is mid-stage 2), and while writing the checkpoint of step 6 (``latest`` must still name step 4)."""
    configs = {}
    for name in ("reference", "killed"):
        cfg = tiny_config(inputs, tmp_path / name, num_workers=1, eval_dataset=None, save_every_steps=2)
        cfg["hidden_dropout_prob"] = 0.1
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(cfg))
    reference = _run_cli(configs["reference"])
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed = _run_cli(configs["killed"], fault="step:5")
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert latest_checkpoint(tmp_path / "killed").name == "step-00000004"
    assert max(_train_losses(tmp_path / "killed")) == 5

    killed = _run_cli(configs["killed"], "--resume", fault="checkpoint:6")
    assert killed.returncode == -9, killed.stderr[-3000:]
    root = tmp_path / "killed" / "checkpoints"
    assert (root / "latest").read_text().strip() == "step-00000004"  # the half-written step 6 is not "latest"
    assert (root / ".tmp-step-00000006").is_dir() and not (root / "step-00000006").exists()

    resumed = _run_cli(configs["killed"], "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = _train_losses(tmp_path / "reference"), _train_losses(tmp_path / "killed")
    assert sorted(got) == list(range(1, 8))
    assert got == expected  # bit-for-bit equal floats at every step
    final_ref = torch.load(latest_checkpoint(tmp_path / "reference") / "model.pt")
    final_res = torch.load(latest_checkpoint(tmp_path / "killed") / "model.pt")
    for key, value in final_ref.items():
        assert torch.equal(value, final_res[key]), key
    kept = sorted(p.name for p in root.glob("step-*"))
    assert kept == ["step-00000006", "step-00000007"]  # keep_checkpoints = 2 (the stage ends at 3 and 7)


def test_full_disk_during_checkpoint_keeps_latest_valid(inputs, tmp_path: Path, monkeypatch) -> None:
    """An OSError (ENOSPC) while writing a checkpoint stops training with that error; ``latest`` still names
    the previous complete checkpoint and ``--resume`` continues from it."""
    import errno

    import luke.pretraining.trainer as trainer_module

    real_save = torch.save

    def failing_save(obj, path, *args, **kwargs):
        if "step-00000004" in str(path) and str(path).endswith("optimizer.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    out = tmp_path / "out"
    config = tiny_config(inputs, out, eval_dataset=None)
    monkeypatch.setattr(trainer_module.torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        Trainer(PretrainingConfig.from_dict(config)).run()
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000003"
    assert latest_checkpoint(out).name == "step-00000003"
    monkeypatch.setattr(trainer_module.torch, "save", real_save)
    Trainer(PretrainingConfig.from_dict(config), resume=True).run()
    assert sorted(r["step"] for r in _metrics(out) if "mlm_loss" in r) == list(range(1, 8))


def test_entity_position_init_from_word_positions(inputs, tmp_path: Path) -> None:
    from luke.pretraining.trainer import load_model

    dataset = PretrainingDataset(inputs["ds"])
    cfg = PretrainingConfig.from_dict(tiny_config(inputs, tmp_path / "o", entity_position_init="word"))
    model, kind = load_model(cfg, dataset)
    assert kind == "transformers"
    word = model.luke.embeddings.position_embeddings.weight
    entity = model.luke.entity_embeddings.position_embeddings.weight
    torch.testing.assert_close(entity[:10], word[1:11], rtol=0, atol=0)  # BERT init: pad 0, words from row 1
    random_init, _ = load_model(PretrainingConfig.from_dict(tiny_config(inputs, tmp_path / "p")), dataset)
    assert not torch.equal(random_init.luke.entity_embeddings.position_embeddings.weight[:10], word[1:11])


def test_entity_init_from_title_words(inputs, tmp_path: Path) -> None:
    """``entity_init: words``: each entity row is the mean word embedding of its title's word pieces (the
    dataset's tokenizer), specials stay random; a table wider than the hidden size is refused."""

    from luke.pretraining.trainer import load_model

    dataset = PretrainingDataset(inputs["ds"])
    cfg = PretrainingConfig.from_dict(tiny_config(inputs, tmp_path / "o", entity_emb_size=32, entity_init="words"))
    model, _ = load_model(cfg, dataset)
    vocab, tokenizer = dataset.entity_vocab, dataset.tokenizer
    words = model.luke.embeddings.word_embeddings.weight
    table = model.luke.entity_embeddings.entity_embeddings.weight
    titles = [(t, i) for (t, _), i in vocab.items() if i not in vocab.special_ids().values()]
    assert len(titles) >= 3
    for title, entity_id in titles:
        ids = tokenizer(title, add_special_tokens=False)["input_ids"]
        torch.testing.assert_close(table[entity_id], words[ids].mean(0), rtol=0, atol=0)
    mask_id = vocab.special_ids()["[MASK]"]
    assert not torch.equal(table[mask_id], torch.zeros_like(table[mask_id]))
    torch.testing.assert_close(
        model.luke.entity_embeddings.LayerNorm.weight, model.luke.embeddings.LayerNorm.weight, rtol=0, atol=0
    )
    with pytest.raises(ConfigError, match="entity_emb_size == the model's hidden_size"):
        load_model(PretrainingConfig.from_dict(tiny_config(inputs, tmp_path / "p", entity_init="words")), dataset)


def test_stage1_memorises_one_batch(inputs) -> None:
    """Gradient flow through the masked-only heads: repeating one batch drives the entity loss to ~0 with
    the word side frozen (and the word side gets no gradient)."""
    from luke.pretraining.data import MicroBatches, StreamLayout
    from luke.pretraining.optim import LukeAdamW
    from luke.pretraining.trainer import PretrainingModule, load_model, set_trainable
    from luke.training import parameter_groups

    dataset = PretrainingDataset(inputs["ds"])
    cfg = PretrainingConfig.from_dict(tiny_config(inputs, Path("unused"), hidden_dropout_prob=0.0))
    model, _ = load_model(cfg, dataset)
    set_trainable(model, cfg.stages[0])
    layout = StreamLayout(len(dataset), 4, 1, 1, 0)
    batch = MicroBatches(
        dataset, layout, 0, 0, 1, cfg.masking, dataset.word_info(model.config.vocab_size), dataset.entity_info()
    )[0]
    module = PretrainingModule(model).train()
    optimizer = LukeAdamW(parameter_groups(model, 0.0), lr=1e-2)
    n_e = int((batch["entity_labels"] != -100).sum())
    losses = []
    for _ in range(30):
        out = module(batch)
        (out["mep_sum"] / n_e).backward()
        assert model.luke.encoder.layer[0].attention.self.query.weight.grad is None
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(out["mep_sum"].detach()) / n_e)
    assert losses[-1] < 0.1 * losses[0], losses
    assert int(module(batch)["mep_correct"]) == n_e


@pytest.mark.parametrize("kind", ["DEEPSPEED", "FSDP"])
def test_deepspeed_or_fsdp_configuration_is_refused_not_ignored(inputs, tmp_path: Path, monkeypatch, kind) -> None:
    """accelerate on CPU never selects DeepSpeed/FSDP, so the distributed type is faked: the trainer must stop
    with a clear message instead of silently training with its own DDP wrapper."""
    import accelerate
    from accelerate.utils import DistributedType

    monkeypatch.setattr(accelerate.Accelerator, "distributed_type", property(lambda self: DistributedType[kind]))
    with pytest.raises(ConfigError, match=f"configured for {kind}.*does not support"):
        Trainer(PretrainingConfig.from_dict(tiny_config(inputs, tmp_path / "o"))).run()
    assert not (tmp_path / "o").exists()
