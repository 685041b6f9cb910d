"""Every published LUKE layout, as the Hugging Face Hub holds it, loads by repo id and behaves like
``transformers`` on the same id.

Each test writes a tiny model in the file layout of one released repo (the files, file names and config
keys the Hub repo has; tiny sizes) into an offline Hugging Face cache built in the test (``hf_cache``), then
loads it by id through ``luke`` and through ``transformers`` and compares token ids and hidden states:

- ``studio-ousia/luke-base`` (2021): ``pytorch_model.bin``, ``vocab.json`` + ``merges.txt``, ``added_tokens.json``,
  ``entity_vocab.json``, a 2021 ``tokenizer_config.json``, ``architectures: LukeEntityAwareAttentionModel``;
- ``studio-ousia/luke-base-lite``: the same with an entity table holding only the four special entities.

The sentencepiece layouts (mLUKE, LUKE-Japanese) are in ``tests/test_mluke_tokenizer.py`` (tokenizer) and
below (model + tokenizer together).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

from conftest import require_shared
from luke import LukeConfig, LukeModel, LukeTokenizer

TEXT = "Beyoncé lives in Los Angeles, not in the United States of Germany."
SPANS = [(0, 7), (17, 28), (41, 54)]
FULL_ENTITIES = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3, "Beyoncé": 4, "Los Angeles": 5, "United States": 6}
LITE_ENTITIES = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3}

# every test reads repo ids from the offline cache of the hf_cache fixture (HF_HUB_CACHE in a temp folder,
# HF_HUB_OFFLINE=1): nothing here can reach the network
pytestmark = pytest.mark.usefixtures("hf_cache")


def _added_token(content: str, lstrip: bool = False) -> dict:
    return {
        "__type": "AddedToken",
        "content": content,
        "lstrip": lstrip,
        "normalized": True,
        "rstrip": False,
        "single_word": False,
    }


def _tokenizer_config_2021(model_max_length: int = 512) -> dict:
    """``tokenizer_config.json`` as transformers 4.x wrote it for ``studio-ousia/luke-base``."""
    config = {
        "add_prefix_space": False,
        "errors": "replace",
        "entity_token_1": "<ent>",
        "entity_token_2": "<ent2>",
        "entity_unk_token": "[UNK]",
        "entity_pad_token": "[PAD]",
        "entity_mask_token": "[MASK]",
        "entity_mask2_token": "[MASK2]",
        "max_entity_length": 32,
        "max_mention_length": 30,
        "model_max_length": model_max_length,
        "task": None,
        "tokenizer_class": "LukeTokenizer",
        "name_or_path": "studio-ousia/luke-base",
    }
    for name, token in (("bos", "<s>"), ("cls", "<s>"), ("eos", "</s>"), ("sep", "</s>"), ("pad", "<pad>")):
        config[f"{name}_token"] = _added_token(token)
    config["unk_token"] = _added_token("<unk>")
    config["mask_token"] = _added_token("<mask>", lstrip=True)
    return config


def _luke_2021_repo(folder: Path, entities: dict[str, int]) -> Path:
    """A tiny model in the file layout of ``studio-ousia/luke-base`` / ``-lite`` (transformers 4.15 era)."""
    roberta = require_shared("tokenizers", "roberta-base")
    folder.mkdir(parents=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(roberta / name, folder / name)
    word_vocab = json.loads((roberta / "vocab.json").read_text(encoding="utf-8"))
    n_words = len(word_vocab)
    (folder / "added_tokens.json").write_text(json.dumps({"<ent>": n_words, "<ent2>": n_words + 1}))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>"}
    specials |= {"pad_token": "<pad>", "cls_token": "<s>", "mask_token": _added_token("<mask>", lstrip=True)}
    specials["additional_special_tokens"] = ["<ent>", "<ent2>"]
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    (folder / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config_2021()))
    (folder / "entity_vocab.json").write_text(json.dumps(entities, ensure_ascii=False))
    _write_model(folder, vocab_size=n_words + 2, entity_vocab_size=len(entities), entity_aware=True)
    raw = json.loads((folder / "config.json").read_text())
    raw |= {"architectures": ["LukeEntityAwareAttentionModel"], "bert_model_name": "roberta-base"}
    (folder / "config.json").write_text(json.dumps(raw, indent=2))
    return folder


def _compare(repo_id: str, entities: list[str] | None) -> None:
    ours_tok = LukeTokenizer.from_pretrained(repo_id)
    theirs_tok = transformers.LukeTokenizer.from_pretrained(repo_id)
    kwargs = {"entity_spans": SPANS, "return_tensors": "pt"}
    if entities is not None:
        kwargs["entities"] = entities
    ours_enc = ours_tok(TEXT, **kwargs)
    theirs_enc = theirs_tok(TEXT, **kwargs)
    for key in ("input_ids", "attention_mask", "entity_ids", "entity_position_ids", "entity_attention_mask"):
        assert ours_enc[key].tolist() == theirs_enc[key].tolist(), key
    ours = LukeModel.from_pretrained(repo_id).eval()
    theirs = transformers.LukeModel.from_pretrained(repo_id).eval()
    with torch.no_grad():
        a = ours(**{k: v for k, v in ours_enc.items()})
        b = theirs(**{k: v for k, v in theirs_enc.items()})
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.entity_last_hidden_state, b.entity_last_hidden_state, atol=1e-5, rtol=1e-4)


def test_luke_base_2021_layout_by_repo_id(hf_cache, tmp_path):
    snapshot = hf_cache.add("studio-ousia/luke-base", _luke_2021_repo(tmp_path / "luke-base", FULL_ENTITIES))
    assert not (snapshot / "model.safetensors").exists() and not (snapshot / "tokenizer.json").exists()
    _compare("studio-ousia/luke-base", ["Beyoncé", "Los Angeles", "Germany"])  # "Germany" is [UNK]
    config = LukeConfig.from_pretrained("studio-ousia/luke-base")
    assert (config.entity_vocab_size, config.use_entity_aware_attention) == (len(FULL_ENTITIES), True)


def test_luke_base_lite_layout_by_repo_id(hf_cache, tmp_path):
    """-lite: the entity table holds only [PAD]/[UNK]/[MASK]/[MASK2]; entities are given as [MASK] (no titles)
    or as titles that all become [UNK]."""
    hf_cache.add("studio-ousia/luke-base-lite", _luke_2021_repo(tmp_path / "lite", LITE_ENTITIES))
    _compare("studio-ousia/luke-base-lite", None)
    _compare("studio-ousia/luke-base-lite", ["Beyoncé", "Los Angeles", "Germany"])
    assert LukeModel.from_pretrained("studio-ousia/luke-base-lite").config.entity_vocab_size == 4


# ---------------------------------------------------------------------------------------------- sentencepiece
def _mluke_repo(folder: Path, entities: dict[str, int], *, entity_aware: bool, name: str) -> Path:
    """A tiny model in the layout of ``studio-ousia/mluke-base(-lite)`` / ``luke-japanese-base(-lite)``:
    ``sentencepiece.bpe.model``, ``added_tokens.json`` (``<ent>``, ``<ent2>`` after ``<mask>``), an
    ``MLukeTokenizer`` ``tokenizer_config.json``, ``lang:Title`` entity keys, ``pytorch_model.bin``."""
    from test_mluke_tokenizer import CONFIG, train_model, write_folder

    write_folder(folder, train_model(), config={**CONFIG, "name_or_path": name}, vocab=entities)
    n_words = len(LukeTokenizer.from_pretrained(folder)) - 2  # fairseq ids up to <mask>, then the markers
    (folder / "added_tokens.json").write_text(json.dumps({"<ent>": n_words, "<ent2>": n_words + 1}))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>"}
    specials |= {"pad_token": "<pad>", "cls_token": "<s>", "mask_token": _added_token("<mask>", lstrip=True)}
    specials["additional_special_tokens"] = ["<ent>", "<ent2>"]
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    _write_model(
        folder, vocab_size=n_words + 2, entity_vocab_size=len(set(entities.values())), entity_aware=entity_aware
    )
    return folder


def _write_model(folder: Path, *, vocab_size: int, entity_vocab_size: int, entity_aware: bool) -> None:
    config = transformers.LukeConfig(
        vocab_size=vocab_size,
        entity_vocab_size=entity_vocab_size,
        hidden_size=32,
        entity_emb_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        use_entity_aware_attention=entity_aware,
    )
    torch.manual_seed(2)
    model = transformers.LukeModel(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.2)
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "pytorch_model.bin")
    raw = json.loads(config.to_json_string())
    raw |= {"architectures": ["LukeForMaskedLM"], "transformers_version": "4.15.0"}
    (folder / "config.json").write_text(json.dumps(raw, indent=2))


MLUKE_TEXT = "東京都は日本の首都です。 Tokyo is the capital of Japan."
MLUKE_SPANS = [(0, 3), (4, 6), (13, 18), (36, 41)]


def _compare_sentencepiece(repo_id: str, entities: list[str] | None) -> None:
    """Our tokenizer's ids are the fairseq ids the model was trained with (transformers 5's MLukeTokenizer
    gives raw SentencePiece ids, see tests/test_mluke_tokenizer.py), so the tokens are compared with
    transformers' and both models run on our ids."""
    ours_tok = LukeTokenizer.from_pretrained(repo_id)
    theirs_tok = transformers.MLukeTokenizer.from_pretrained(repo_id)
    kwargs: dict = {"entity_spans": MLUKE_SPANS}
    if entities is not None:
        kwargs["entities"] = entities
    ours_enc = ours_tok(MLUKE_TEXT, return_tensors="pt", **kwargs)
    theirs_enc = theirs_tok(MLUKE_TEXT, **kwargs)
    ours_tokens = ours_tok.convert_ids_to_tokens(ours_enc["input_ids"][0].tolist())
    assert ours_tokens == theirs_tok.convert_ids_to_tokens(theirs_enc["input_ids"])
    for key in ("entity_ids", "entity_position_ids"):
        assert ours_enc[key][0].tolist() == theirs_enc[key], key
    ours = LukeModel.from_pretrained(repo_id).eval()
    theirs = transformers.LukeModel.from_pretrained(repo_id).eval()
    with torch.no_grad():
        a = ours(**ours_enc)
        b = theirs(**ours_enc)
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.entity_last_hidden_state, b.entity_last_hidden_state, atol=1e-5, rtol=1e-4)


MLUKE_ENTITIES = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "en:Tokyo": 3, "ja:東京都": 3, "en:Japan": 4, "ja:日本": 4}


@pytest.mark.parametrize(
    ("repo_id", "entities", "entity_aware"),
    [
        ("studio-ousia/mluke-base", {**MLUKE_ENTITIES, "[MASK2]": 5}, False),
        ("studio-ousia/mluke-base-lite", LITE_ENTITIES, False),
        ("studio-ousia/luke-japanese-base-lite", LITE_ENTITIES, True),
    ],
)
def test_sentencepiece_layouts_by_repo_id(hf_cache, tmp_path, repo_id, entities, entity_aware):
    hf_cache.add(repo_id, _mluke_repo(tmp_path / "repo", entities, entity_aware=entity_aware, name=repo_id))
    _compare_sentencepiece(repo_id, None)
    _compare_sentencepiece(repo_id, ["ja:東京都", "ja:日本", "en:Tokyo", "en:Japan"])


# ---------------------------------------------------------------------------------------------- README
def test_readme_first_screen_runs_on_the_released_layouts(hf_cache, tmp_path):
    """The README's "Use a released model" Python block, run as written against tiny repos of the same names."""
    from test_released_finetuned import bpe_base, released_folder

    name = "luke-large-finetuned-open-entity"
    hf_cache.add(f"studio-ousia/{name}", released_folder(tmp_path / name, name, bpe_base(tmp_path / "bpe")))
    entities = {**MLUKE_ENTITIES, "[MASK2]": 5}
    hf_cache.add("studio-ousia/mluke-base", _mluke_repo(tmp_path / "mluke", entities, entity_aware=False, name="x"))
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use a released model", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own README
    record = scope["typing"]({"text": "Beyoncé lives in Los Angeles.", "span": [0, 7]})
    assert set(record["scores"]) == set(scope["typing"].task.labels) and "labels" in record
    assert scope["out"].entity_last_hidden_state.shape == (1, 1, 32)
