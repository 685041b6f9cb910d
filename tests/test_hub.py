"""Hub repo ids wherever a model or tokenizer is named (luke.hub): an offline Hugging Face cache built in the
test (``hf_cache``), parity with transformers loading the same ids, revisions, ``cache_dir``, local folders
winning, one-line errors naming the id, the 2021 layout read weights-only, one weights format, and the
online file selection with the Hub listing and download patched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

from conftest import FakeHubCache, minilm_folder
from luke import hub, modeling
from luke.cli import main
from luke.errors import CheckpointError
from test_checkpoint import assert_same_outputs
from test_modeling import TINY, make_batch

TINY_DUMP = Path(__file__).parent / "fixtures" / "wikipedia" / "tiny-export-0.10.xml"
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


def luke_folder(path: Path, seed: int, *, weights: str = "safetensors", cls: str = "LukeModel") -> Path:
    """A tiny LUKE model written by transformers (random weights from ``seed``): ``model.safetensors`` or
    the 2021 layout (``pytorch_model.bin`` only)."""
    torch.manual_seed(seed)
    model = getattr(transformers, cls)(transformers.LukeConfig(**TINY))
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(std=0.2)
    model.save_pretrained(path)
    if weights == "bin":
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        (path / "model.safetensors").unlink()
        torch.save(state, path / "pytorch_model.bin")
    return path


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def one_line(err: pytest.ExceptionInfo, *needles: str) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


# ------------------------------------------------------------------------------------------ models


def test_repo_id_loads_from_the_cache_like_the_folder_and_transformers(hf_cache: FakeHubCache, tmp_path) -> None:
    snapshot = hf_cache.add("org/tiny-luke", luke_folder(tmp_path / "m", seed=1))
    ours = modeling.LukeModel.from_pretrained("org/tiny-luke")
    assert same_weights(ours, modeling.LukeModel.from_pretrained(snapshot))
    hf = transformers.LukeModel.from_pretrained("org/tiny-luke", cache_dir=hf_cache.root).eval()
    batch = make_batch()
    with torch.no_grad():
        assert_same_outputs("LukeModel", ours(**batch), hf(**batch), batch)
    mlm = modeling.LukeForMaskedLM.from_pretrained("org/tiny-luke", local_files_only=True)
    assert same_weights(mlm.luke, ours)


def test_revision_branch_and_commit(hf_cache: FakeHubCache, tmp_path) -> None:
    hf_cache.add("org/rev", luke_folder(tmp_path / "a", seed=1), commit=COMMIT_A)
    hf_cache.add("org/rev", luke_folder(tmp_path / "b", seed=2), ref="v1", commit=COMMIT_B)
    a = modeling.LukeModel.from_pretrained(tmp_path / "a")
    b = modeling.LukeModel.from_pretrained(tmp_path / "b")
    assert not same_weights(a, b)
    assert same_weights(modeling.LukeModel.from_pretrained("org/rev"), a)
    assert same_weights(modeling.LukeModel.from_pretrained("org/rev", revision="v1"), b)
    assert same_weights(modeling.LukeModel.from_pretrained("org/rev", revision=COMMIT_B), b)
    assert same_weights(modeling.LukeModel.from_pretrained("org/rev", revision=COMMIT_A), a)
    with pytest.raises(CheckpointError) as err:
        modeling.LukeModel.from_pretrained("org/rev", revision="v2")
    one_line(err, "org/rev", "v2", "cached: main, v1")


def test_cache_dir(hf_cache: FakeHubCache, tmp_path) -> None:
    other = FakeHubCache(tmp_path / "elsewhere")
    other.add("org/elsewhere", luke_folder(tmp_path / "m", seed=3))
    with pytest.raises(CheckpointError, match="org/elsewhere"):
        modeling.LukeModel.from_pretrained("org/elsewhere")
    model = modeling.LukeModel.from_pretrained("org/elsewhere", cache_dir=tmp_path / "elsewhere")
    assert same_weights(model, modeling.LukeModel.from_pretrained(tmp_path / "m"))


def test_a_local_folder_wins_over_a_repo_id(hf_cache: FakeHubCache, tmp_path, monkeypatch) -> None:
    hf_cache.add("org/tiny-luke", luke_folder(tmp_path / "cached", seed=1))
    monkeypatch.chdir(tmp_path)
    luke_folder(tmp_path / "org" / "tiny-luke", seed=2)
    model = modeling.LukeModel.from_pretrained("org/tiny-luke")
    assert same_weights(model, modeling.LukeModel.from_pretrained(tmp_path / "org" / "tiny-luke"))
    assert hub.resolve_pretrained("org/tiny-luke") == Path("org/tiny-luke")


def test_2021_layout_is_read_weights_only(hf_cache: FakeHubCache, tmp_path) -> None:
    folder = luke_folder(tmp_path / "old", seed=4, weights="bin")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "pytorch_model.bin"]
    hf_cache.add("org/old", folder)
    ours = modeling.LukeModel.from_pretrained("org/old")
    hf = transformers.LukeModel.from_pretrained(folder).eval()
    batch = make_batch()
    with torch.no_grad():
        assert_same_outputs("LukeModel", ours(**batch), hf(**batch), batch)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil"
    evil.mkdir()
    shutil.copyfile(folder / "config.json", evil / "config.json")
    torch.save({"x": Evil()}, evil / "pytorch_model.bin")
    hf_cache.add("org/evil", evil)
    with pytest.raises(CheckpointError) as err:
        modeling.LukeModel.from_pretrained("org/evil")
    one_line(err, "pytorch_model.bin", "refused")


def test_safetensors_wins_when_a_repo_has_both(hf_cache: FakeHubCache, tmp_path) -> None:
    both = luke_folder(tmp_path / "both", seed=5)
    luke_folder(tmp_path / "other", seed=6, weights="bin")
    shutil.copyfile(tmp_path / "other" / "pytorch_model.bin", both / "pytorch_model.bin")
    hf_cache.add("org/both", both)
    safetensors_only = tmp_path / "st"
    safetensors_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(both / name, safetensors_only / name)
    model = modeling.LukeModel.from_pretrained("org/both")
    assert same_weights(model, modeling.LukeModel.from_pretrained(safetensors_only))
    assert not same_weights(model, modeling.LukeModel.from_pretrained(tmp_path / "other"))


# ------------------------------------------------------------------------------------------ errors


def bert_folder(path: Path, **config) -> Path:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=config.pop("vocab_size", 99),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    transformers.BertForMaskedLM(cfg).save_pretrained(path)
    return path


def test_errors_are_one_line_naming_the_id(hf_cache: FakeHubCache, tmp_path) -> None:
    hf_cache.add("org/tiny-luke", luke_folder(tmp_path / "m", seed=1))
    hf_cache.add("org/bert", bert_folder(tmp_path / "bert"))
    hf_cache.add("org/partial", {"tokenizer_config.json": "{}"})
    cases = [
        ("org/absent", {}, ("org/absent", "revision main", "not in the Hugging Face cache", "hf download org/absent")),
        ("org/tiny-luke", {"revision": "v9"}, ("org/tiny-luke", "v9", "not in the Hugging Face cache")),
        ("org/bert", {}, ("org/bert is a 'bert' model (BertForMaskedLM), not LUKE",)),
        ("org/partial", {}, ("org/partial (revision main)", "no config.json", "hf download org/partial")),
        ("a/b/c", {}, ("a/b/c", "not a Hugging Face Hub repo id")),
        ("./missing/folder", {}, ("./missing/folder", "does not exist")),
        (str(tmp_path / "m" / "config.json"), {}, ("config.json: is a file",)),
    ]
    for name, kwargs, needles in cases:
        with pytest.raises(CheckpointError) as err:
            modeling.LukeModel.from_pretrained(name, **kwargs)
        one_line(err, *needles)


def test_cli_error_lines(hf_cache: FakeHubCache, tmp_path, capsys) -> None:
    hf_cache.add("org/bert", bert_folder(tmp_path / "bert"))
    capsys.readouterr()
    for name, needle in [("org/absent", "org/absent (revision main)"), ("org/bert", "not LUKE")]:
        assert main(["evaluate-pretraining", name, str(tmp_path)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("luke evaluate-pretraining: error: ") and needle in lines[0]


# ------------------------------------------------------------------------------------------ online


@pytest.fixture
def online(hf_cache: FakeHubCache, monkeypatch: pytest.MonkeyPatch) -> dict:
    """No offline mode; the Hub listing and download of luke.hub patched (no network here): ``calls``
    records what was downloaded, ``listing`` is what the "Hub" lists."""
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    state: dict = {"listing": [], "calls": [], "error": None}

    def list_repo_files(repo_id, *, revision=None, token=None):
        if state["error"] is not None:
            raise state["error"]
        state["calls"].append(("list", repo_id, revision, token))
        return list(state["listing"])

    def download_files(repo_id, filenames, *, revision=None, cache_dir=None, token=None):
        state["calls"].append(("download", repo_id, sorted(filenames), revision))
        return hf_cache.add(repo_id, {name: "{}" if name.endswith(".json") else b"x" for name in filenames})

    monkeypatch.setattr(hub, "list_repo_files", list_repo_files)
    monkeypatch.setattr(hub, "download_files", download_files)
    return state


LISTING = [
    ".gitattributes",
    "README.md",
    "config.json",
    "entity_vocab.json",
    "flax_model.msgpack",
    "merges.txt",
    "model.safetensors",
    "pytorch_model.bin",
    "special_tokens_map.json",
    "tf_model.h5",
    "tokenizer_config.json",
    "vocab.json",
]


def test_online_fetches_only_the_needed_files_and_one_weights_format(online: dict) -> None:
    online["listing"] = LISTING
    folder = hub.resolve_pretrained("org/luke", revision="v1", token="t")
    assert online["calls"][0] == ("list", "org/luke", "v1", "t")
    tokenizer = ["entity_vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    assert online["calls"][1] == (
        "download",
        "org/luke",
        sorted(["config.json", "model.safetensors", *tokenizer]),
        "v1",
    )
    assert (folder / "model.safetensors").is_file() and not (folder / "pytorch_model.bin").exists()
    online["calls"].clear()
    online["listing"] = [n for n in LISTING if n != "model.safetensors"]  # the 2021 layout
    hub.resolve_pretrained("org/luke2021")
    assert "pytorch_model.bin" in online["calls"][1][2] and "tf_model.h5" not in online["calls"][1][2]
    online["calls"].clear()
    hub.resolve_pretrained("org/luke2021", files="tokenizer")
    assert online["calls"][1][2] == sorted(["config.json", *tokenizer])
    assert hub.select_files(LISTING, "entity_vocab") == ["entity_vocab.json"]
    assert hub.select_files(LISTING, "config") == ["config.json"]
    sharded = ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors"]
    sharded += ["model-00002-of-00002.safetensors", "pytorch_model.bin"]
    assert hub.select_files(sharded) == sharded[:4]


def test_online_errors_are_one_line(online: dict, hf_cache: FakeHubCache, tmp_path) -> None:
    import httpx2
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    def response(status: int):
        return httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/api/models/org/x"))

    cases = [
        (RepositoryNotFoundError("404 Repository Not Found", response=response(404)), "no such repo"),
        (RevisionNotFoundError("404 Revision Not Found", response=response(404)), "no such revision"),
        (GatedRepoError("403 gated", response=response(403)), "gated"),
        (HfHubHTTPError("401 Unauthorized", response=response(401)), "access denied"),
        (httpx2.ConnectError("no route to host"), "could not be reached"),
    ]
    for error, needle in cases:
        online["error"] = error
        with pytest.raises(CheckpointError) as err:
            hub.resolve_pretrained("org/x", revision="dev")
        one_line(err, "org/x", "dev", needle)
        if needle == "could not be reached":  # not offline mode: never the advice to unset HF_HUB_OFFLINE
            assert "HF_HUB_OFFLINE" not in str(err.value) and "try again when the Hub can be reached" in str(err.value)
    # the Hub out of reach: the cache is used
    snapshot = hf_cache.add("org/cached", luke_folder(tmp_path / "m", seed=1))
    assert hub.resolve_pretrained("org/cached") == snapshot


def test_pop_hub_kwargs() -> None:
    kwargs = {"revision": "v1", "token": "t", "entity_vocab": None}
    assert hub.pop_hub_kwargs(kwargs) == {"revision": "v1", "token": "t"}
    assert kwargs == {"entity_vocab": None}
    assert hub.HUB_KWARGS == ("revision", "cache_dir", "local_files_only", "token")


# ------------------------------------------------------------------------------------------ pretraining


@pytest.fixture(scope="module")
def wiki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny dump's database and entity vocabulary, and a tiny BERT folder with MiniLM's tokenizer."""
    from luke.wikipedia.dump_db import DumpDB, build_dump_db
    from luke.wikipedia.entity_vocab_builder import build_entity_vocab

    root = tmp_path_factory.mktemp("wiki")
    build_dump_db(TINY_DUMP, root / "db.sqlite", progress=False)
    vocab, _ = build_entity_vocab(DumpDB(root / "db.sqlite"), vocab_size=100)
    vocab.save(root / "vocab.jsonl")
    tok = minilm_folder()
    bert = bert_folder(root / "bert", vocab_size=30522)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copyfile(tok / name, bert / name)
    return {"db": root / "db.sqlite", "vocab": root / "vocab.jsonl", "bert": bert}


def test_build_dataset_and_pretraining_start_from_repo_ids(wiki, hf_cache: FakeHubCache, tmp_path, capsys) -> None:
    from luke.pretraining.config import PretrainingConfig
    from luke.pretraining.data import PretrainingDataset
    from luke.pretraining.trainer import load_model

    hf_cache.add("org/tiny-bert", wiki["bert"])
    common = [str(wiki["vocab"]), "--max-seq-length", "48", "--min-sentence-length", "2", "--no-progress"]
    argv = ["build-pretraining-dataset", str(wiki["db"])]
    assert main([*argv, "org/tiny-bert", common[0], str(tmp_path / "hub"), *common[1:]]) == 0
    assert main([*argv, str(wiki["bert"]), common[0], str(tmp_path / "local"), *common[1:]]) == 0
    capsys.readouterr()
    hub_meta = json.loads((tmp_path / "hub" / "metadata.json").read_text())
    local_meta = json.loads((tmp_path / "local" / "metadata.json").read_text())
    assert hub_meta["tokenizer"]["source"] == "org/tiny-bert"
    assert hub_meta["tokenizer"]["sha256"] == local_meta["tokenizer"]["sha256"]
    assert hub_meta["counts"] == local_meta["counts"] and hub_meta["counts"]["items"] > 0
    assert main([*argv, "org/tiny-bert", common[0], str(tmp_path / "x"), *common[1:], "--revision", "v3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("luke build-pretraining-dataset: error: org/tiny-bert (revision v3)")

    dataset = PretrainingDataset(tmp_path / "hub")
    base = {"dataset": str(tmp_path / "hub"), "output_dir": str(tmp_path / "run"), "entity_emb_size": 16}
    model, kind = load_model(PretrainingConfig.from_dict(base | {"model": "org/tiny-bert"}), dataset)
    assert kind == "transformers"
    bert = transformers.BertForMaskedLM.from_pretrained(wiki["bert"])
    assert torch.equal(model.luke.embeddings.word_embeddings.weight, bert.bert.embeddings.word_embeddings.weight)
    with pytest.raises(CheckpointError) as err:
        load_model(PretrainingConfig.from_dict(base | {"model": "org/tiny-bert", "model_revision": "v3"}), dataset)
    one_line(err, "org/tiny-bert", "v3")
    # a LUKE repo id as the start point (continued pretraining)
    model.save_pretrained(tmp_path / "luke-start")
    hf_cache.add("org/luke-start", tmp_path / "luke-start")
    again, kind = load_model(PretrainingConfig.from_dict(base | {"model": "org/luke-start"}), dataset)
    assert kind == "luke" and same_weights(again, model)
