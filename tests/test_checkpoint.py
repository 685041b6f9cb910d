"""Checkpoint exchange: transformers <-> luke round trips, original archives, BERT initialisation from the
real MiniLM folder, the `convert`/`info` commands and clear errors for bad checkpoints."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open

from conftest import minilm_folder
from luke import modeling
from luke.checkpoint import (
    init_from_transformers,
    load_original_archive,
    read_state_dict,
)
from luke.cli import main as cli_main
from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError
from test_modeling import TINY, make_batch, tiny_config

HEADS = [
    ("LukeModel", {}),
    ("LukeForMaskedLM", {}),
    ("LukeForEntityClassification", {"id2label": {0: "a", 1: "b", 2: "c"}}),
    ("LukeForEntityPairClassification", {"id2label": {0: "a", 1: "b", 2: "c"}}),
    ("LukeForEntitySpanClassification", {"id2label": {0: "a", 1: "b", 2: "c"}}),
]


def _head_inputs(name: str) -> dict:
    batch = make_batch()
    if name == "LukeForEntitySpanClassification":
        batch["entity_start_positions"] = torch.tensor([[1, 2, 3, 0]] * 3)
        batch["entity_end_positions"] = torch.tensor([[2, 2, 5, 0]] * 3)
    return batch


def assert_same_outputs(name: str, ours, ref, batch) -> None:
    """Compare the defined outputs: real word tokens for encoders/MLM, examples whose classified entities
    are real for the entity heads (states at padding are zeros here, arbitrary in transformers)."""
    if name in ("LukeModel", "LukeForMaskedLM"):
        keep = batch["attention_mask"].bool()
        a, b = (o.logits if name == "LukeForMaskedLM" else o.last_hidden_state for o in (ours, ref))
    elif name == "LukeForEntitySpanClassification":
        keep = batch["entity_attention_mask"].bool()
        a, b = ours.logits, ref.logits
    else:
        n = 1 if name == "LukeForEntityClassification" else 2
        keep = batch["entity_attention_mask"][:, :n].bool().all(dim=1)
        a, b = ours.logits, ref.logits
    assert keep.any()
    torch.testing.assert_close(a[keep], b[keep], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,extra", HEADS)
def test_ours_to_transformers_to_ours(tmp_path, name, extra):
    ours = getattr(modeling, name)(tiny_config(**extra)).eval()
    with torch.no_grad():  # every tensor random (biases start at zero, which would hide a bias not loaded)
        for param in ours.parameters():
            param.normal_(std=0.2)
    ours.save_pretrained(tmp_path / "ours")
    hf, info = getattr(transformers, name).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    hf.eval()
    batch = _head_inputs(name)
    with torch.no_grad():
        assert_same_outputs(name, ours(**batch), hf(**batch), batch)
    # ... and back: transformers' own save loads here with identical outputs.
    hf.save_pretrained(tmp_path / "hf")
    back, report = getattr(modeling, name).from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not report.missing_keys and not report.unexpected_keys
    with torch.no_grad():
        assert_same_outputs(name, back(**batch), hf(**batch), batch)


def test_saved_keys_are_transformers_keys(tmp_path):
    model = modeling.LukeForMaskedLM(tiny_config())
    model.save_pretrained(tmp_path)
    hf = transformers.LukeForMaskedLM(transformers.LukeConfig(**TINY))
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        saved = set(f.keys())
    assert saved <= set(hf.state_dict())
    # The MLM decoder is written although tied (transformers 5.x does not re-tie it on load).
    assert "lm_head.decoder.weight" in saved
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "luke" and config["architectures"] == ["LukeForMaskedLM"]


def test_config_preserves_unknown_keys(tmp_path):
    config = tiny_config()
    data = config.to_dict() | {"bert_model_name": "roberta-base", "cls_entity_prediction": False}
    (tmp_path / "config.json").write_text(json.dumps(data))
    loaded = modeling.LukeConfig.from_pretrained(tmp_path)
    assert loaded.extra["bert_model_name"] == "roberta-base"
    loaded.save_pretrained(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["bert_model_name"] == "roberta-base" and again["cls_entity_prediction"] is False


def test_transformers_checkpoint_without_entity_aware_queries_gets_copies(tmp_path):
    hf = transformers.LukeModel(transformers.LukeConfig(use_entity_aware_attention=False, **TINY))
    hf.save_pretrained(tmp_path)
    model, report = modeling.LukeModel.from_pretrained(
        tmp_path, use_entity_aware_attention=True, output_loading_info=True
    )
    assert len(report.copied_queries) == 6 * TINY["num_hidden_layers"]
    layer = model.encoder.layer[1].attention.self
    assert torch.equal(layer.e2e_query.weight, layer.query.weight)
    batch = make_batch()
    with torch.no_grad():
        assert_same_outputs("LukeModel", model(**batch), hf.eval()(**batch), batch)


def test_shape_mismatch_names_the_tensor(tmp_path):
    modeling.LukeModel(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"entity_embeddings\.entity_embeddings\.weight has shape \(10, 6\)"):
        modeling.LukeModel.from_pretrained(tmp_path, entity_vocab_size=20)


def test_missing_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        modeling.LukeModel.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="empty is not a model folder"):
        modeling.LukeModel.from_pretrained(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="^'' is not a model folder"):
        modeling.LukeModel.from_pretrained("")
    tiny_config().save_pretrained(tmp_path / "noweights")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        modeling.LukeModel.from_pretrained(tmp_path / "noweights")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json:1: not valid JSON"):
        modeling.LukeModel.from_pretrained(tmp_path / "bad")


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"a": Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="weights-only"):
        read_state_dict(tmp_path / "pytorch_model.bin")


# ------------------------------------------------------------------------------ original archives


def _write_original_archive(folder: Path, roberta: bool) -> tuple[modeling.LukeForMaskedLM, EntityVocab]:
    """An archive in the original project's format (spec §4.2), built from a random model."""
    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_config(
        use_entity_aware_attention=False,
        pad_token_id=1 if roberta else 0,
        word_position_style="roberta" if roberta else "bert",
    )
    model = modeling.LukeForMaskedLM(config).eval()
    state = {}
    for key, value in model.state_dict().items():
        key = key.removeprefix("luke.")
        if not roberta:  # BERT-based originals use BertPreTrainingHeads names and TF-style LayerNorm names
            key = key.replace("lm_head.layer_norm.", "cls.predictions.transform.LayerNorm.")
            key = key.replace("lm_head.dense.", "cls.predictions.transform.dense.")
            key = key.replace("lm_head.decoder.", "cls.predictions.decoder.").replace(
                "lm_head.bias", "cls.predictions.bias"
            )
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[key] = value.clone()
    torch.save(state, folder / "pytorch_model.bin")
    model_config = {k: v for k, v in config.to_dict().items() if k not in ("use_entity_aware_attention", "extra")}
    model_config["bert_model_name"] = "roberta-base" if roberta else "bert-base-uncased"
    metadata = {
        "model_config": model_config,
        "max_seq_length": 512,
        "max_entity_length": 128,
        "max_mention_length": 30,
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    titles = ["[PAD]", "[UNK]", "[MASK]"] + [f"Entity {i}" for i in range(TINY["entity_vocab_size"] - 3)]
    (folder / "entity_vocab.tsv").write_text("".join(f"{t}\t{i * 3}\n" for i, t in enumerate(titles)))
    return model, EntityVocab.load(folder / "entity_vocab.tsv")


@pytest.mark.parametrize("roberta", [True, False])
def test_original_archive_tar_gz(tmp_path, roberta):
    original, vocab = _write_original_archive(tmp_path / "src", roberta)
    archive_path = tmp_path / "luke_tiny.tar.gz"
    with tarfile.open(archive_path, "w:gz") as tar:
        tar.add(tmp_path / "src", arcname="luke_tiny")
    loaded = load_original_archive(archive_path)
    assert loaded.metadata["max_mention_length"] == 30
    assert len(loaded.entity_vocab) == len(vocab) and loaded.entity_vocab.mask_id == 2
    assert isinstance(loaded.model, modeling.LukeForMaskedLM)
    assert loaded.model.config.word_position_style == ("roberta" if roberta else "bert")
    batch = make_batch(pad=1 if roberta else 0)
    with torch.no_grad():
        ref = original(**batch)
        got = loaded.model(**batch)  # entity-aware, queries copied: identical to the vanilla original
    torch.testing.assert_close(got.logits, ref.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.entity_logits, ref.entity_logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("roberta", [True, False])
def test_convert_command_output_loads_in_transformers(tmp_path, roberta, capsys):
    original, _ = _write_original_archive(tmp_path / "src", roberta)
    assert cli_main(["convert", str(tmp_path / "src"), str(tmp_path / "out")]) == 0
    hf = transformers.LukeForMaskedLM.from_pretrained(tmp_path / "out").eval()
    assert hf.config.use_entity_aware_attention
    batch = make_batch(pad=1 if roberta else 0)
    with torch.no_grad():
        # BERT-based archives were shifted to RoBERTa-style positions: transformers now agrees (on real
        # tokens; padding tokens get the padding position instead of a real one, so their outputs differ).
        keep = batch["attention_mask"].bool()
        torch.testing.assert_close(hf(**batch).logits[keep], original(**batch).logits[keep], atol=1e-5, rtol=0)
    assert EntityVocab.load(tmp_path / "out" / "entity_vocab.json").get_id("Entity 2") == 5
    assert cli_main(["info", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "LukeForMaskedLM" in text and "entity vocab 10" in text


def test_info_json_and_bad_path(tmp_path, capsys):
    modeling.LukeModel(tiny_config()).save_pretrained(tmp_path)
    assert cli_main(["info", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["class"] == "LukeModel"
    assert info["parameters"]["entity table"] == 10 * 6
    assert info["parameters"]["total"] == modeling.LukeModel(tiny_config()).num_parameters()
    assert cli_main(["info", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_corrupt_archive_is_reported(tmp_path, capsys):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    assert cli_main(["convert", str(bad), str(tmp_path / "out")]) == 2
    assert "not a readable tar archive" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ BERT initialisation


def test_init_from_real_minilm_reproduces_bert_outputs():
    folder = minilm_folder()
    model, report = init_from_transformers(folder, entity_vocab_size=20, entity_emb_size=64)
    assert not report.missing_keys, report.missing_keys
    assert report.unexpected_keys == []
    assert len(report.copied_queries) == 6 * 6
    assert model.config.word_position_style == "roberta" and model.config.max_position_embeddings == 513
    bert = transformers.AutoModel.from_pretrained(folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    enc = tok(
        ["Tokyo is the capital of Japan.", "Ana Ivanovic won at Wimbledon."],
        padding=True,
        return_tensors="pt",
    )
    model.eval()
    with torch.no_grad():
        ref = bert(**enc).last_hidden_state
        got = model(**enc).last_hidden_state
        # With entities the word states change, but stay finite and the entity states exist.
        with_ent = model(
            **enc,
            entity_ids=torch.tensor([[4], [5]]),
            entity_position_ids=torch.tensor([[[1, -1]], [[1, 2]]]),
        )
    mask = enc["attention_mask"].bool()
    torch.testing.assert_close(got[mask], ref[mask], atol=1e-5, rtol=0)
    assert with_ent.entity_last_hidden_state.shape == (2, 1, 384)


def test_minilm_luke_exports_to_transformers(tmp_path):
    model, _ = init_from_transformers(
        minilm_folder(), modeling.LukeForMaskedLM, entity_vocab_size=20, entity_emb_size=64
    )
    model.save_pretrained(tmp_path)
    hf, info = transformers.LukeForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    batch = {
        "input_ids": torch.tensor([[101, 5522, 2003, 1996, 3007, 1997, 2900, 1012, 102]]),
        "entity_ids": torch.tensor([[3, 4]]),
        "entity_position_ids": torch.tensor([[[1, -1], [6, -1]]]),
    }
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(**batch).logits, hf.eval()(**batch).logits, atol=1e-4, rtol=0)


def test_keep_bert_positions_option():
    model, _ = init_from_transformers(
        minilm_folder(), entity_vocab_size=8, entity_emb_size=None, word_position_style="bert"
    )
    assert model.config.word_position_style == "bert" and model.config.max_position_embeddings == 512
    assert model.config.entity_emb_size == 384 and not hasattr(model.entity_embeddings, "entity_embedding_dense")


def test_init_from_non_bert_folder_fails(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="not BERT or RoBERTa"):
        init_from_transformers(tmp_path, entity_vocab_size=4)
