"""``luke convert ARCHIVE OUT --task T --task-checkpoint FILE``: the original task checkpoints (the
``--checkpoint-file`` of the 2020-21 README) as fine-tuned folders, and Hub repo ids for ``info``/``convert``.

The archive and the task files are built here from the spec's key names (§3, §4.2) with ``transformers``'
LUKE classes (whose keys are the original ones): a plain state dict of the task model without the
``luke.`` prefix, the original head names (``typing``, ``classifier``, ``scorer``, ``qa_outputs``), the word
table enlarged by the task's markers, the entity table shrunk to ``[PAD], [MASK] (, [MASK])`` and the
entity-aware queries.  The reference is computed by hand from the same tensors in the original id space
(markers at rows V.., entity ids 1/2, BERT-style positions 0..L-1)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import transformers

from luke import modeling
from luke.cli import main as cli_main
from luke.entity_vocab import EntityVocab
from luke.finetuning.commands import make_task
from luke.finetuning.original_tasks import CONLL_LABELS, OPEN_ENTITY_LABELS, TACRED_LABELS
from luke.tokenization import LukeTokenizer
from test_finetuning_tasks import FIXTURES

H, ENTITIES = 32, 10
#: per task: markers appended to the word table (legacy order), the marker rows that play <ent> and <ent2>,
#: legacy entity rows for our [MASK] / [MASK2], the head (original names -> shape), label count
SPEC = {
    "entity_typing": dict(markers=1, ent=(0, None), mask=(1, None), rows=2, n=9,
                          head={"typing.weight": (9, H), "typing.bias": (9,)}),
    "relation_classification": dict(markers=2, ent=(0, 1), mask=(1, 2), rows=3, n=42,
                                    head={"classifier.weight": (42, 2 * H)}),
    "ner": dict(markers=0, ent=(None, None), mask=(1, None), rows=2, n=5,
                head={"classifier.weight": (5, 3 * H), "classifier.bias": (5,)}),
    "record": dict(markers=3, ent=(2, 1), mask=(1, None), rows=2, n=1,
                   head={"scorer.weight": (1, 2 * H), "scorer.bias": (1,)}),
    "squad": dict(markers=0, ent=(None, None), mask=(None, None), rows=ENTITIES, n=2,
                  head={"qa_outputs.weight": (2, H), "qa_outputs.bias": (2,)}),
}  # fmt: skip
TACRED_TEST = [
    {"relation": "per:city_of_birth", "token": ["Ana", "was", "born", "in", "Leeds", "."],
     "subj_start": 0, "subj_end": 0, "obj_start": 4, "obj_end": 4, "subj_type": "PERSON", "obj_type": "CITY"},
    {"relation": "no_relation", "token": ["Acme", "Corp", "sells", "wine", "in", "Porto", "."],
     "subj_start": 0, "subj_end": 1, "obj_start": 5, "obj_end": 5, "subj_type": "ORG", "obj_type": "CITY"},
]  # fmt: skip
DATA = {"entity_typing": "test", "relation_classification": "test", "ner": "test", "record": "dev", "squad": "test"}


def _words() -> list[str]:
    words = set()
    for path in FIXTURES.rglob("*"):
        if path.is_file():
            words |= {w.lower() for w in re.findall(r"\w+|[^\w\s]", path.read_text())}
    for rec in TACRED_TEST:
        words |= {t.lower() for t in rec["token"]}
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "@", "#", *sorted(words - {"@", "#"})]


VOCAB = _words()
V = len(VOCAB)


def _config(**changes) -> transformers.LukeConfig:
    base = dict(
        vocab_size=V, entity_vocab_size=ENTITIES, hidden_size=H, entity_emb_size=6, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=37, max_position_embeddings=512, type_vocab_size=2,
        pad_token_id=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return transformers.LukeConfig(**(base | changes))


def _randomised(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The module's tensors drawn anew (LayerNorms and biases too), without ``position_ids`` buffers."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(v.shape, generator=g) * 0.2
        for k, v in module.state_dict().items()
        if not k.endswith("position_ids")
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A BERT word tokenizer folder and an original archive (spec §4.2) of a tiny random LUKE."""
    root = tmp_path_factory.mktemp("original")
    tok = root / "tokenizer"
    tok.mkdir()
    (tok / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (tok / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    archive = root / "archive"
    archive.mkdir()
    config = _config(use_entity_aware_attention=False)
    mlm = transformers.LukeForMaskedLM(config)
    state = {k.removeprefix("luke."): v for k, v in _randomised(mlm, 0).items()}
    state["entity_predictions.decoder.weight"] = state["entity_embeddings.entity_embeddings.weight"]
    torch.save(state, archive / "pytorch_model.bin")
    model_config = {k: v for k, v in config.to_dict().items() if k != "use_entity_aware_attention"}
    model_config["bert_model_name"] = "bert-base-uncased"
    metadata = {"model_config": model_config, "max_seq_length": 512, "max_entity_length": 128,
                "max_mention_length": 30}  # fmt: skip
    (archive / "metadata.json").write_text(json.dumps(metadata))
    titles = ["[PAD]", "[UNK]", "[MASK]"] + [f"Entity {i}" for i in range(ENTITIES - 3)]
    (archive / "entity_vocab.tsv").write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(titles)))
    tacred = root / "tacred"
    tacred.mkdir()
    (tacred / "test.json").write_text(json.dumps(TACRED_TEST))
    return {"tokenizer": tok, "archive": archive, "tacred": tacred, "root": root}


def _task_state(task: str, seed: int = 1, n: int | None = None) -> dict[str, torch.Tensor]:
    """An original task checkpoint: ``LukeEntityAwareAttentionModel`` keys (no prefix) + the head."""
    spec = SPEC[task]
    encoder = transformers.LukeModel(
        _config(vocab_size=V + spec["markers"], entity_vocab_size=spec["rows"], use_entity_aware_attention=True)
    )
    state = _randomised(encoder, seed)
    g = torch.Generator().manual_seed(seed + 100)
    for key, shape in spec["head"].items():
        shape = (n, *shape[1:]) if n is not None else shape
        state[key] = torch.randn(shape, generator=g) * 0.2
    return state


def _write(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def _convert(files, task: str, checkpoint: Path, out: Path, *extra: str) -> int:
    args = ["convert", str(files["archive"]), str(out), "--task", task, "--task-checkpoint", str(checkpoint)]
    return cli_main([*args, "--tokenizer", str(files["tokenizer"]), *extra])


def _examples(task_obj, task: str, files) -> list:
    if task == "relation_classification":
        return task_obj.read(files["tacred"] / "test.json")
    data = FIXTURES / task
    name = {"entity_typing": "test.json", "ner": "test.txt", "record": "dev.json", "squad": "test.json"}[task]
    return task_obj.read(data / name)


def _original_batch(task: str, batch: dict[str, torch.Tensor], vocab: EntityVocab, tok: LukeTokenizer) -> dict:
    """Our batch in the original id space: <ent>/<ent2> -> the legacy marker rows, [MASK]/[MASK2] -> 1/2."""
    spec = SPEC[task]
    out = {k: v.clone() for k, v in batch.items()}
    for ours, legacy in zip((tok.entity_1_token_id, tok.entity_2_token_id), spec["ent"], strict=True):
        if legacy is not None:
            out["input_ids"][batch["input_ids"] == ours] = V + legacy
    if task != "squad":
        ids = batch["entity_ids"]
        assert set(ids.unique().tolist()) <= {vocab.pad_id, vocab.mask_id, vocab.mask2_id}
        out["entity_ids"] = torch.zeros_like(ids)
        for ours, legacy in zip((vocab.mask_id, vocab.mask2_id), spec["mask"], strict=True):
            if legacy is not None:
                out["entity_ids"][ids == ours] = legacy
        assert not ((ids == vocab.mask2_id) & (spec["mask"][1] is None)).any()
    return out


def _reference(task: str, state: dict[str, torch.Tensor], batch: dict) -> torch.Tensor:
    """The original task model's logits, by hand: transformers' encoder with the file's tensors as they are
    (BERT-style positions 0..L-1), then the original head formula."""
    spec = SPEC[task]
    encoder = transformers.LukeModel(
        _config(vocab_size=V + spec["markers"], entity_vocab_size=spec["rows"], use_entity_aware_attention=True)
    ).eval()
    heads = set(spec["head"])
    encoder.load_state_dict({k: v for k, v in state.items() if k not in heads}, strict=False)
    for key, value in encoder.state_dict().items():
        if not key.endswith("position_ids"):
            assert torch.equal(value, state[key]), key
    L = batch["input_ids"].shape[1]
    keys = ("input_ids", "attention_mask", "token_type_ids", "entity_ids", "entity_attention_mask",
            "entity_token_type_ids", "entity_position_ids")  # fmt: skip
    with torch.no_grad():
        out = encoder(**{k: batch[k] for k in keys}, position_ids=torch.arange(L).expand(batch["input_ids"].shape))
    words, ents = out.last_hidden_state, out.entity_last_hidden_state
    if task == "entity_typing":
        return ents[:, 0] @ state["typing.weight"].T + state["typing.bias"]
    if task == "relation_classification":
        return torch.cat([ents[:, 0], ents[:, 1]], -1) @ state["classifier.weight"].T
    if task == "ner":
        gather = lambda pos: torch.gather(words, 1, pos.unsqueeze(-1).expand(-1, -1, H))  # noqa: E731
        feats = torch.cat([gather(batch["entity_start_positions"]), gather(batch["entity_end_positions"]), ents], -1)
        return feats @ state["classifier.weight"].T + state["classifier.bias"]
    if task == "record":
        feats = torch.cat([ents[:, :1].expand(-1, ents.shape[1] - 1, -1), ents[:, 1:]], -1)
        return (feats @ state["scorer.weight"].T + state["scorer.bias"]).squeeze(-1)
    return words @ state["qa_outputs.weight"].T + state["qa_outputs.bias"]  # squad: (B, L, 2)


def _ours(task: str, model, batch: dict) -> torch.Tensor:
    with torch.no_grad():
        out = model(**batch)
    if task == "squad":
        return torch.stack([out.start_logits, out.end_logits], -1)
    return out.logits


def _real(task: str, logits: torch.Tensor, batch: dict) -> torch.Tensor:
    if task == "ner":
        return logits[batch["entity_attention_mask"].bool()]
    if task == "record":
        return logits[batch["entity_attention_mask"][:, 1:].bool()]
    if task == "squad":
        return logits[batch["attention_mask"].bool()]
    return logits


@pytest.mark.parametrize("task", list(SPEC))
def test_task_checkpoint_converts_to_the_same_logits(task, files, tmp_path, capsys):
    state = _task_state(task)
    checkpoint = _write(state, tmp_path / "pytorch_model.bin")
    out = tmp_path / "out"
    assert _convert(files, task, checkpoint, out) == 0, capsys.readouterr().err
    saved = json.loads((out / "luke_task.json").read_text())
    expected_labels = {"entity_typing": list(OPEN_ENTITY_LABELS), "relation_classification": list(TACRED_LABELS),
                       "ner": list(CONLL_LABELS), "record": ["answer"], "squad": ["start", "end"]}[task]  # fmt: skip
    assert saved["task"] == task and saved["labels"] == expected_labels
    assert (out / "tokenizer.json").is_file() and (out / "model.safetensors").is_file()

    task_obj = make_task(task, saved["labels"])
    tok = LukeTokenizer.from_pretrained(out)
    vocab = tok.entity_vocab
    examples = _examples(task_obj, task, files)
    batch = task_obj.collate(task_obj.featurize(examples, tok), tok.pad_token_id)
    for key in task_obj.label_keys:
        batch.pop(key, None)
    if task == "squad":  # words-only features without a mention db: add real entity ids of the archive's table
        B, n_ent = batch["input_ids"].shape[0], 2
        batch["entity_ids"] = torch.tensor([[3, 7]] * B)
        batch["entity_attention_mask"] = torch.ones(B, n_ent, dtype=torch.long)
        batch["entity_token_type_ids"] = torch.zeros(B, n_ent, dtype=torch.long)
        batch["entity_position_ids"] = torch.tensor([[[1, 2, -1], [4, -1, -1]]] * B)
        assert len(vocab) == ENTITIES and vocab.get_id("Entity 4") == 7
    model = getattr(modeling, make_task(task).model_class_name).from_pretrained(out).eval()
    ours = _ours(task, model, batch)
    reference = _reference(task, state, _original_batch(task, batch, vocab, tok))
    torch.testing.assert_close(_real(task, ours, batch), _real(task, reference, batch), atol=2e-5, rtol=1e-4)
    if hasattr(transformers, model.__class__.__name__):  # and transformers reads the folder the same way
        theirs = getattr(transformers, model.__class__.__name__).from_pretrained(str(out)).eval()
        got = _ours(task, theirs, batch)
        torch.testing.assert_close(_real(task, got, batch), _real(task, reference, batch), atol=2e-5, rtol=1e-4)

    # `luke evaluate` uses the folder on a tiny data set
    data = files["tacred"] if task == "relation_classification" else FIXTURES / task
    preds = tmp_path / "preds"
    args = ["evaluate", task, "--model", str(out), "--data-dir", str(data), "--split", DATA[task], "--no-progress"]
    capsys.readouterr()
    assert cli_main([*args, "--output-dir", str(preds), "--unseen-labels", "keep"]) == 0, capsys.readouterr().err
    scores = json.loads(capsys.readouterr().out)
    assert scores["examples"] == len(examples)
    if task == "entity_typing":  # the predicted labels are the reference's logits > 0, in the original order
        records = [json.loads(line) for line in (preds / "test_predictions.jsonl").read_text().splitlines()]
        want = [[OPEN_ENTITY_LABELS[j] for j in torch.nonzero(row > 0).flatten()] for row in reference]
        assert [r["labels"] for r in records] == want


# ------------------------------------------------------------------------------------------ bad inputs


def _one_line(capsys, *parts: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("luke convert: error: "), err
    for part in parts:
        assert part in err, err
    return err


def _wider_key(state):
    state["encoder.layer.1.attention.self.key.weight"] = torch.zeros(H, H + 1)
    return "encoder.layer.1.attention.self.key.weight"


def _no_markers(state):
    state["embeddings.word_embeddings.weight"] = state["embeddings.word_embeddings.weight"][:V]
    return "embeddings.word_embeddings.weight"


def _full_entity_table(state):
    state["entity_embeddings.entity_embeddings.weight"] = torch.zeros(ENTITIES, 6)
    return "entity_embeddings.entity_embeddings.weight"


def _no_head(state):
    del state["typing.weight"]
    return "no typing.weight"


def _no_layer(state):
    del state["encoder.layer.1.output.dense.weight"]
    return "no encoder.layer.1.output.dense.weight"


def _foreign(state):
    state["lm_head.dense.weight"] = torch.zeros(H, H)
    return "unexpected tensor lm_head.dense.weight"


@pytest.mark.parametrize("broken", [_wider_key, _no_markers, _full_entity_table, _no_head, _no_layer, _foreign])
def test_task_file_that_does_not_fit_the_archive(broken, files, tmp_path, capsys):
    state = _task_state("entity_typing")
    key = broken(state)
    checkpoint = _write(state, tmp_path / "typing.bin")
    assert _convert(files, "entity_typing", checkpoint, tmp_path / "out") == 2
    _one_line(capsys, str(checkpoint), key)
    assert not (tmp_path / "out").exists()


def test_checkpoint_of_another_task(files, tmp_path, capsys):
    checkpoint = _write(_task_state("ner"), tmp_path / "ner.bin")
    assert _convert(files, "entity_typing", checkpoint, tmp_path / "out") == 2
    _one_line(capsys, str(checkpoint), "no typing.weight", "looks like a ner checkpoint")
    rc_file = _write(_task_state("relation_classification"), tmp_path / "rc.bin")
    assert _convert(files, "ner", rc_file, tmp_path / "out") == 2
    _one_line(capsys, str(rc_file), "no classifier.bias", "looks like a relation_classification checkpoint")


def test_label_count_and_labels_file(files, tmp_path, capsys):
    checkpoint = _write(_task_state("relation_classification", n=3), tmp_path / "rc.bin")
    assert _convert(files, "relation_classification", checkpoint, tmp_path / "out") == 2
    _one_line(capsys, str(checkpoint), "classifier.weight", "3 classes", "--labels")
    labels = tmp_path / "labels.txt"
    labels.write_text("no_relation\nper:title\nper:title\n")
    assert _convert(files, "relation_classification", checkpoint, tmp_path / "out", "--labels", str(labels)) == 2
    _one_line(capsys, f"{labels}:3", "twice")
    labels.write_text("Other\nCause-Effect(e1,e2)\n\nCause-Effect(e2,e1)\n")
    assert _convert(files, "relation_classification", checkpoint, tmp_path / "out", "--labels", str(labels)) == 0
    saved = json.loads((tmp_path / "out" / "luke_task.json").read_text())
    assert saved["labels"] == ["Other", "Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)"]
    assert json.loads((tmp_path / "out" / "config.json").read_text())["id2label"]["2"] == "Cause-Effect(e2,e1)"
    squad = _write(_task_state("squad"), tmp_path / "squad.bin")
    assert _convert(files, "squad", squad, tmp_path / "out2", "--labels", str(labels)) == 2
    _one_line(capsys, "--labels", "squad")


def test_flag_combinations(files, tmp_path, capsys):
    checkpoint = _write(_task_state("ner"), tmp_path / "ner.bin")
    archive, out = str(files["archive"]), str(tmp_path / "out")
    tok = ["--tokenizer", str(files["tokenizer"])]
    cases = [
        (["--task", "nerr", "--task-checkpoint", str(checkpoint), *tok], ["'nerr'", "unknown task", "ner, record"]),
        (["--task-checkpoint", str(checkpoint), *tok], ["--task-checkpoint needs --task"]),
        (["--labels", str(checkpoint)], ["--labels needs --task"]),
        (["--task", "ner", *tok], ["--task ner needs --task-checkpoint"]),
        (["--task", "ner", "--task-checkpoint", str(checkpoint)], ["--task ner needs --tokenizer"]),
        (["--task", "ner", "--task-checkpoint", str(tmp_path / "nope.bin"), *tok], [str(tmp_path / "nope.bin")]),
        (["--task", "ner", "--task-checkpoint", str(checkpoint), "--no-entity-aware-attention", *tok],
         ["--no-entity-aware-attention"]),
    ]  # fmt: skip
    for extra, parts in cases:
        assert cli_main(["convert", archive, out, *extra]) == 2, extra
        _one_line(capsys, *parts)
    assert not Path(out).exists()


def test_tokenizer_that_does_not_fit_the_archive(files, tmp_path, capsys):
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "vocab.txt").write_text("\n".join([*VOCAB, "extraword"]) + "\n")
    checkpoint = _write(_task_state("ner"), tmp_path / "ner.bin")
    args = ["convert", str(files["archive"]), str(tmp_path / "out"), "--task", "ner"]
    assert cli_main([*args, "--task-checkpoint", str(checkpoint), "--tokenizer", str(tok)]) == 2
    _one_line(capsys, f"--tokenizer {tok}", f"{V + 1} word tokens", f"{V} word rows", "bert-base-uncased")


def test_bert_archive_converts_with_roberta_positions(files, tmp_path, capsys):
    """The converted config says what transformers assumes (RoBERTa-style positions, entity-aware attention),
    and `luke info` reads the folder."""
    checkpoint = _write(_task_state("ner"), tmp_path / "ner.bin")
    assert _convert(files, "ner", checkpoint, tmp_path / "out") == 0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["word_position_style"] == "roberta" and config["use_entity_aware_attention"]
    assert config["vocab_size"] == V + 2 and config["entity_vocab_size"] == 4
    assert config["architectures"] == ["LukeForEntitySpanClassification"]
    capsys.readouterr()
    assert cli_main(["info", str(tmp_path / "out")]) == 0
    assert "LukeForEntitySpanClassification" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ Hub repo ids


def test_info_and_convert_take_hub_repo_ids(files, hf_cache, tmp_path, capsys):
    """`luke info ORG/NAME`, `luke convert ORG/ARCHIVE OUT` and `--tokenizer ORG/NAME` read the Hugging Face
    cache (offline); an id that is not there is one line naming it."""
    hf_cache.add("org/luke-archive", files["archive"])
    hf_cache.add("org/word-tokenizer", files["tokenizer"])
    checkpoint = _write(_task_state("entity_typing"), tmp_path / "typing.bin")
    args = ["convert", "org/luke-archive", str(tmp_path / "hub"), "--task", "entity_typing"]
    assert cli_main([*args, "--task-checkpoint", str(checkpoint), "--tokenizer", "org/word-tokenizer"]) == 0
    assert _convert(files, "entity_typing", checkpoint, tmp_path / "local") == 0
    for name in ("model.safetensors", "tokenizer.json", "luke_task.json", "entity_vocab.json"):
        assert (tmp_path / "hub" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name

    hf_cache.add("org/luke-typing", tmp_path / "hub")
    capsys.readouterr()
    assert cli_main(["info", "org/luke-typing"]) == 0
    assert capsys.readouterr().out.startswith("org/luke-typing: LukeForEntityClassification")
    assert cli_main(["convert", "org/luke-archive", str(tmp_path / "plain")]) == 0
    assert (tmp_path / "plain" / "model.safetensors").is_file()

    capsys.readouterr()
    assert cli_main(["info", "org/not-cached"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("luke info: error: ") and "org/not-cached" in err
    assert cli_main(["convert", "org/luke-typing", str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err.strip()
    assert "org/luke-typing is a transformers-format LUKE folder" in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------ plain conversion, other repos (#19 red team)


def test_plain_convert_adds_the_entity_markers_as_the_original_conversion(files, tmp_path, capsys):
    """`luke convert ARCHIVE OUT --tokenizer WORDS` (no --task) with the archive's own word tokenizer: <ent>
    and <ent2> get word rows (and MLM bias entries) copied from "@" and "#" (spec §4.3); transformers reads
    the folder and gives our outputs."""
    out = tmp_path / "out"
    assert cli_main(["convert", str(files["archive"]), str(out), "--tokenizer", str(files["tokenizer"])]) == 0
    tok = LukeTokenizer.from_pretrained(out)
    assert len(tok) == V + 2 and (tok.entity_1_token_id, tok.entity_2_token_id) == (V, V + 1)
    archive = torch.load(files["archive"] / "pytorch_model.bin", weights_only=True)
    ours = modeling.LukeForMaskedLM.from_pretrained(out).eval()
    theirs = transformers.LukeForMaskedLM.from_pretrained(str(out)).eval()
    at, hash_ = VOCAB.index("@"), VOCAB.index("#")
    for model in (ours, theirs):
        words = model.luke.embeddings.word_embeddings.weight.detach()
        bias = model.lm_head.decoder.bias.detach()
        assert words.shape[0] == V + 2 and torch.equal(words[:V], archive["embeddings.word_embeddings.weight"])
        assert torch.equal(words[V], words[at]) and torch.equal(words[V + 1], words[hash_])
        assert torch.equal(bias[:V], archive["lm_head.decoder.bias"])
        assert bias[V] == bias[at] and bias[V + 1] == bias[hash_]
    text = "ana was born in leeds ."
    batch = tok(text, entity_spans=[(0, 3), (16, 21)], entities=["Entity 1", "Entity 2"], return_tensors="pt")
    batch["input_ids"][0, 1] = V  # the markers' rows take part
    batch["input_ids"][0, 2] = V + 1
    with torch.no_grad():
        a, b = ours(**batch), theirs(**batch)
    torch.testing.assert_close(a.logits, b.logits, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(a.entity_logits, b.entity_logits, atol=2e-5, rtol=1e-4)


def test_plain_convert_refuses_a_tokenizer_of_other_words(files, tmp_path, capsys):
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "vocab.txt").write_text("\n".join([*VOCAB, "extraword"]) + "\n")
    assert cli_main(["convert", str(files["archive"]), str(tmp_path / "out"), "--tokenizer", str(tok)]) == 2
    _one_line(capsys, f"--tokenizer {tok}", f"{V + 1} word tokens", f"{V} word rows", "bert-base-uncased")
    assert not (tmp_path / "out").exists()


def test_convert_and_info_of_a_repo_holding_another_kind_of_model(hf_cache, tmp_path, capsys):
    """A cached BERT repo is not called a transformers-format LUKE folder; both commands name the id."""
    bert = tmp_path / "bert"
    config = transformers.BertConfig(
        vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
    )
    transformers.BertModel(config).save_pretrained(bert)
    hf_cache.add("google/bert-tiny", bert)
    for command in ("convert", "info"):
        args = [command, "google/bert-tiny"] + ([str(tmp_path / "out")] if command == "convert" else [])
        capsys.readouterr()
        assert cli_main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"luke {command}: error: google/bert-tiny is a 'bert' model (BertModel), not LUKE"
    no_type = tmp_path / "no-type"
    no_type.mkdir()
    (no_type / "config.json").write_text("{}")
    assert cli_main(["convert", str(no_type), str(tmp_path / "out")]) == 2
    err = _one_line(capsys, str(no_type), "not an original LUKE archive", "no model_type 'luke'")
    assert "transformers-format LUKE folder" not in err


def test_info_of_a_repo_holding_an_original_archive(files, hf_cache, capsys):
    """`luke info ORG/NAME` describes a Hub repo with an unpacked original archive, as `luke convert` takes it."""
    hf_cache.add("org/luke-archive", files["archive"])
    assert cli_main(["info", "org/luke-archive"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("org/luke-archive: LukeForMaskedLM") and f"word vocab {V:,}" in out
    hf_cache.add("org/readme-only", {"README.md": "hello"})
    assert cli_main(["info", "org/readme-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("luke info: error: org/readme-only") and "config.json" in err
    assert len(err.splitlines()) == 1
