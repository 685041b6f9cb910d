"""The released fine-tuned checkpoints (``studio-ousia/luke-large-finetuned-open-entity``, ``-tacred``,
``-conll-2003``) by repo id in ``luke predict`` / ``luke evaluate``, against ``transformers`` on the same id.

Each test writes a tiny model in the layout ``transformers`` writes for those repos (its
``LukeForEntityClassification`` / ``...PairClassification`` / ``...SpanClassification`` with ``id2label``,
``pytorch_model.bin`` as the Hub holds, and its ``LukeTokenizer.save_pretrained`` with the repo's ``task``;
no ``luke_task.json``) into an offline Hugging Face cache built in the test (``hf_cache``), then checks that
our commands, given the repo id, decide the same labels with the same probabilities as ``transformers``
run the way the model cards do.  The label orders are the repos' own (not the order ``luke finetune``
would sort them in), so a mix-up of labels shows.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file

from luke.cli import main as cli_main
from luke.finetuning.metrics import multilabel_micro_f1, relation_micro_f1

FIXTURES = Path(__file__).parent / "fixtures" / "finetuning"
OPEN_ENTITY = ["entity", "event", "group", "location", "object", "organization", "person", "place", "time"]
_TACRED_ORG = ["alternate_names", "city_of_headquarters", "country_of_headquarters", "dissolved", "founded",
               "founded_by", "member_of", "members", "number_of_employees/members", "parents",
               "political/religious_affiliation", "shareholders", "stateorprovince_of_headquarters", "subsidiaries",
               "top_members/employees", "website"]  # fmt: skip
_TACRED_PER = ["age", "alternate_names", "cause_of_death", "charges", "children", "cities_of_residence",
               "city_of_birth", "city_of_death", "countries_of_residence", "country_of_birth", "country_of_death",
               "date_of_birth", "date_of_death", "employee_of", "origin", "other_family", "parents", "religion",
               "schools_attended", "siblings", "spouse", "stateorprovince_of_birth", "stateorprovince_of_death",
               "stateorprovinces_of_residence", "title"]  # fmt: skip
TACRED = ["no_relation"] + [f"org:{r}" for r in _TACRED_ORG] + [f"per:{r}" for r in _TACRED_PER]
random.Random(7).shuffle(TACRED)  # the repo's id2label order, not ours
CONLL = ["NIL", "MISC", "PER", "ORG", "LOC"]  # the original code's order (ours would sort them)

#: repo name -> (head class, tokenizer_config task, labels, our task)
RELEASED = {
    "luke-large-finetuned-open-entity": ("LukeForEntityClassification", "entity_classification", OPEN_ENTITY,
                                         "entity_typing"),
    "luke-large-finetuned-tacred": ("LukeForEntityPairClassification", "entity_pair_classification", TACRED,
                                    "relation_classification"),
    "luke-large-finetuned-conll-2003": ("LukeForEntitySpanClassification", "entity_span_classification", CONLL,
                                        "ner"),
}  # fmt: skip
TYPING_INPUTS = [
    {"text": "Sam Wu visited Porto in May .", "span": [0, 6]},
    {"text": "Sam Wu visited Porto in May .", "span": [15, 20]},
    {"text": "Acme Corp opened a store in Leeds .", "span": [0, 9]},
]
RELATION_INPUTS = [
    {"text": "Ana Silva works for Acme Corp in Leeds .", "head": [0, 9], "tail": [20, 29]},
    {"text": "Acme Corp was founded by Ana Silva .", "head": [0, 9], "tail": [25, 34]},
]
NER_INPUTS = [{"tokens": ["Sam", "Wu", "visited", "Porto", "."]}, {"tokens": ["Acme", "Corp", "opened", "."]}]


def bpe_base(folder: Path) -> Path:
    """A tiny byte-level BPE vocabulary (RoBERTa's kind, as the released models have) trained on the fixture
    texts, with the four special entities: what ``transformers.LukeTokenizer`` starts from."""
    from tokenizers import ByteLevelBPETokenizer

    folder.mkdir(parents=True, exist_ok=True)
    texts = [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.rglob("*")) if p.is_file()]
    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(texts, vocab_size=600, min_frequency=1, special_tokens=specials, show_progress=False)
    bpe.model.save(str(folder))
    (folder / "entity_vocab.json").write_text(json.dumps({"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LukeTokenizer"}))
    return folder


@pytest.fixture(scope="session")
def bpe(tmp_path_factory) -> Path:
    return bpe_base(tmp_path_factory.mktemp("bpe"))


def _tokenizer_files_2021(folder: Path, base: Path, task: str) -> None:
    """The tokenizer files the Hub repos hold (written by transformers 4.x): ``vocab.json`` + ``merges.txt``,
    ``added_tokens.json`` with the markers, ``special_tokens_map.json``, a 2021 ``tokenizer_config.json``
    with the ``task`` (legacy ``entity_token_1/2`` keys), ``entity_vocab.json``; no ``tokenizer.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt", "entity_vocab.json"):
        shutil.copyfile(base / name, folder / name)
    n = len(json.loads((base / "vocab.json").read_text()))
    (folder / "added_tokens.json").write_text(json.dumps({"<ent>": n, "<ent2>": n + 1}))
    mask = {"content": "<mask>", "lstrip": True, "normalized": True, "rstrip": False, "single_word": False}
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": mask,
                "additional_special_tokens": ["<ent>", "<ent2>"]}  # fmt: skip
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    config = {"add_prefix_space": False, "errors": "replace", "entity_token_1": "<ent>", "entity_token_2": "<ent2>",
              "entity_unk_token": "[UNK]", "entity_pad_token": "[PAD]", "entity_mask_token": "[MASK]",
              "entity_mask2_token": "[MASK2]", "max_entity_length": 32, "max_mention_length": 30,
              "model_max_length": 512, "task": task, "tokenizer_class": "LukeTokenizer",
              "name_or_path": "studio-ousia/luke-large", "special_tokens_map_file": None}  # fmt: skip
    config |= {k: v for k, v in specials.items() if k != "additional_special_tokens"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def released_folder(
    folder: Path,
    name: str,
    base: Path,
    *,
    max_position_embeddings: int = 514,
    tokenizer_task: str | None = None,
    layout: str = "transformers",
) -> Path:
    """A tiny fine-tuned folder in the layout of ``studio-ousia/<name>``: tokenizer files as ``transformers``
    5 saves them (``layout="transformers"``) or as the Hub repos hold them (``"2021"``); the model written by
    ``transformers``, weights in ``pytorch_model.bin``."""
    cls_name, task, labels, _ = RELEASED[name]
    if layout == "2021":
        _tokenizer_files_2021(folder, base, tokenizer_task or task)
        tokenizer = transformers.LukeTokenizer.from_pretrained(str(folder))
        assert not (folder / "tokenizer.json").exists()
    else:
        tokenizer = transformers.LukeTokenizer.from_pretrained(str(base), task=tokenizer_task or task)
        tokenizer.save_pretrained(folder)
    config = transformers.LukeConfig(
        vocab_size=len(tokenizer), entity_vocab_size=4, hidden_size=32, entity_emb_size=16, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=37, max_position_embeddings=max_position_embeddings,
        type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )  # fmt: skip
    torch.manual_seed(3)
    model = getattr(transformers, cls_name)(config).eval()
    with torch.no_grad():
        for param in model.parameters():  # not the init values: every weight matters to the comparison
            param.normal_(0.0, 0.3)
        if labels[0] == "NIL":  # fewer NIL decisions: entities to compare
            model.classifier.bias[0] -= 1.0
    model.save_pretrained(folder)
    if (folder / "model.safetensors").is_file():  # the released repos hold pytorch_model.bin
        torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    assert not (folder / "luke_task.json").exists()
    assert json.loads((folder / "tokenizer_config.json").read_text())["task"] == (tokenizer_task or task)
    return folder


def add_released(hf_cache, tmp_path: Path, base: Path, name: str, **kwargs) -> str:
    """``studio-ousia/<name>`` in the offline cache; returns the repo id."""
    repo_id = f"studio-ousia/{name}"
    hf_cache.add(repo_id, released_folder(tmp_path / name, name, base, **kwargs))
    return repo_id


def run_predict(capsys, task: str, model: str, records: list[dict], tmp_path: Path, *extra: str) -> list[dict]:
    src = tmp_path / f"{task}-in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    rc = cli_main(["predict", task, "--model", model, "--input", str(src), "--no-progress", "--cpu", *extra])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()]


# ------------------------------------------------------------------------------ transformers, as the model cards
def theirs_typing(repo_id: str, records: list[dict]) -> list[tuple[list[str], list[float]]]:
    tok = transformers.LukeTokenizer.from_pretrained(repo_id)
    model = transformers.LukeForEntityClassification.from_pretrained(repo_id).eval()
    out = []
    for rec in records:
        enc = tok(rec["text"], entity_spans=[tuple(rec["span"])], return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0]
        out.append(([model.config.id2label[i] for i in torch.nonzero(logits > 0).flatten().tolist()],
                    torch.sigmoid(logits).tolist()))  # fmt: skip
    return out


def theirs_relations(repo_id: str, records: list[dict]) -> list[list[tuple[str, float]]]:
    """Every relation with its probability, most probable first."""
    tok = transformers.LukeTokenizer.from_pretrained(repo_id)
    model = transformers.LukeForEntityPairClassification.from_pretrained(repo_id).eval()
    out = []
    for rec in records:
        enc = tok(rec["text"], entity_spans=[tuple(rec["head"]), tuple(rec["tail"])], return_tensors="pt")
        with torch.no_grad():
            probs = torch.softmax(model(**enc).logits[0], -1)
        order = torch.argsort(-probs, stable=True).tolist()
        out.append([(model.config.id2label[i], probs[i].item()) for i in order])
    return out


def theirs_ner(repo_id: str, tokens: list[str]) -> list[dict]:
    """The model card's recipe: every word span is a candidate; argmax, non-NIL, then (as the original code)
    the best-scoring first without overlaps.  Our reader encodes every word with its leading space, so the
    transformers side reads the sentence with a leading space (the same word pieces)."""
    tok = transformers.LukeTokenizer.from_pretrained(repo_id)
    model = transformers.LukeForEntitySpanClassification.from_pretrained(repo_id).eval()
    text = " ".join(tokens)
    starts = np.cumsum([0] + [len(t) + 1 for t in tokens[:-1]]).tolist()
    words = [(s, s + len(t)) for s, t in zip(starts, tokens, strict=True)]
    spans = [(words[i][0], words[j][1]) for i in range(len(words)) for j in range(i, len(words))]
    enc = tok(" " + text, entity_spans=[(s + 1, e + 1) for s, e in spans], return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits[0]
    probs = torch.softmax(logits, -1)
    best = sorted(range(len(spans)), key=lambda k: -logits[k].max().item())
    taken: list[tuple[int, int]] = []
    found = []
    for k in best:
        label = int(logits[k].argmax())
        s, e = spans[k]
        if label == 0 or any(s < te and ts < e for ts, te in taken):
            continue
        taken.append((s, e))
        found.append({"start": s, "end": e, "text": text[s:e], "type": model.config.id2label[label],
                      "score": probs[k, label].item()})  # fmt: skip
    return sorted(found, key=lambda x: x["start"])


# ------------------------------------------------------------------------------ luke predict by repo id
@pytest.mark.parametrize("layout", ["transformers", "2021"])
def test_open_entity_by_repo_id_predicts_as_transformers(layout, hf_cache, bpe, tmp_path, capsys):
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-open-entity", layout=layout)
    ours = run_predict(capsys, "entity_typing", repo, TYPING_INPUTS, tmp_path)
    theirs = theirs_typing(repo, TYPING_INPUTS)
    assert any(o["labels"] for o in ours) and any(len(o["labels"]) < 9 for o in ours)  # a real decision
    for out, (labels, probs) in zip(ours, theirs, strict=True):
        assert out["labels"] == labels
        assert list(out["scores"]) == OPEN_ENTITY  # every label of the repo, in its order
        np.testing.assert_allclose(list(out["scores"].values()), probs, atol=1e-5)


@pytest.mark.parametrize("layout", ["transformers", "2021"])
def test_tacred_by_repo_id_predicts_as_transformers(layout, hf_cache, bpe, tmp_path, capsys):
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-tacred", layout=layout)
    ours = run_predict(capsys, "relation_classification", repo, RELATION_INPUTS, tmp_path, "--top-k", "3")
    theirs = theirs_relations(repo, RELATION_INPUTS)
    for out, ranked in zip(ours, theirs, strict=True):
        assert out["relation"] == ranked[0][0] and out["score"] == pytest.approx(ranked[0][1], abs=1e-5)
        assert [t["relation"] for t in out["top"]] == [r for r, _ in ranked[:3]]
        np.testing.assert_allclose([t["score"] for t in out["top"]], [p for _, p in ranked[:3]], atol=1e-5)


@pytest.mark.parametrize("layout", ["transformers", "2021"])
def test_conll_by_repo_id_predicts_as_transformers(layout, hf_cache, bpe, tmp_path, capsys):
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-conll-2003", layout=layout)
    ours = run_predict(capsys, "ner", repo, NER_INPUTS, tmp_path)
    found = 0
    for out, rec in zip(ours, NER_INPUTS, strict=True):
        theirs = theirs_ner(repo, rec["tokens"])
        assert [{k: e[k] for k in ("start", "end", "text", "type")} for e in out["entities"]] == [
            {k: e[k] for k in ("start", "end", "text", "type")} for e in theirs
        ]
        np.testing.assert_allclose([e["score"] for e in out["entities"]], [e["score"] for e in theirs], atol=1e-5)
        found += len(theirs)
    assert found  # the comparison saw entities


# ------------------------------------------------------------------------------ luke evaluate by repo id
def test_evaluate_open_entity_by_repo_id_scores_transformers_decisions(hf_cache, bpe, tmp_path, capsys):
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-open-entity")
    out = tmp_path / "eval"
    rc = cli_main(["evaluate", "entity_typing", "--model", repo, "--data-dir", str(FIXTURES / "entity_typing"),
                   "--output-dir", str(out), "--no-progress", "--cpu"])  # fmt: skip
    assert rc == 0
    scores = json.loads(capsys.readouterr().out)
    gold = json.loads((FIXTURES / "entity_typing" / "test.json").read_text())
    records = [{"text": g["sent"], "span": [g["start"], g["end"]]} for g in gold]
    theirs = [labels for labels, _ in theirs_typing(repo, records)]
    written = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert [w["labels"] for w in written] == theirs
    expected = multilabel_micro_f1([g["labels"] for g in gold], theirs)
    assert scores["f1"] == pytest.approx(expected["f1"]) and scores["examples"] == len(gold)


def test_evaluate_tacred_by_repo_id_scores_transformers_decisions(hf_cache, bpe, tmp_path, capsys):
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-tacred")
    data = tmp_path / "tacred"
    data.mkdir()
    rows = [  # official TACRED JSON fields (inclusive token spans)
        {"token": "Ana Silva works for Acme Corp in Leeds .".split(), "subj_start": 0, "subj_end": 1,
         "obj_start": 4, "obj_end": 5, "relation": "per:employee_of"},
        {"token": "Acme Corp was founded by Ana Silva .".split(), "subj_start": 0, "subj_end": 1,
         "obj_start": 5, "obj_end": 6, "relation": "org:founded_by"},
        {"token": "Sam Wu visited Porto .".split(), "subj_start": 0, "subj_end": 1, "obj_start": 3,
         "obj_end": 3, "relation": "no_relation"},
    ]  # fmt: skip
    (data / "test.json").write_text(json.dumps(rows))
    (data / "train.json").write_text(json.dumps(rows))
    rc = cli_main(["evaluate", "relation_classification", "--model", repo, "--data-dir", str(data), "--no-progress",
                   "--cpu"])  # fmt: skip
    assert rc == 0
    scores = json.loads(capsys.readouterr().out)
    records = []
    for r in rows:
        text = " ".join(r["token"])
        starts = np.cumsum([0] + [len(t) + 1 for t in r["token"][:-1]]).tolist()
        span = [
            (starts[r[f"{w}_start"]], starts[r[f"{w}_end"]] + len(r["token"][r[f"{w}_end"]])) for w in ("subj", "obj")
        ]
        records.append({"text": text, "head": list(span[0]), "tail": list(span[1])})
    theirs = [ranked[0][0] for ranked in theirs_relations(repo, records)]
    expected = relation_micro_f1([r["relation"] for r in rows], theirs, "no_relation")
    assert scores["f1"] == pytest.approx(expected["f1"])


def test_evaluate_conll_by_repo_id_uses_the_repo_labels(hf_cache, bpe, tmp_path, capsys):
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-conll-2003")
    out = tmp_path / "eval"
    rc = cli_main(["evaluate", "ner", "--model", repo, "--data-dir", str(FIXTURES / "ner"), "--output-dir", str(out),
                   "--no-progress", "--cpu"])  # fmt: skip
    assert rc == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0.0 <= scores["f1"] <= 1.0
    tags = {line.split()[-1] for line in (out / "test_predictions.conll").read_text().splitlines() if line.strip()}
    assert tags - {"O"} and {t.split("-", 1)[-1] for t in tags - {"O"}} <= set(CONLL[1:])


# ------------------------------------------------------------------------------ what the folder holds
def test_a_released_folder_for_another_task_is_a_one_line_error(hf_cache, bpe, tmp_path, capsys):
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-open-entity")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Sam Wu visited Porto ."}) + "\n")
    capsys.readouterr()
    assert cli_main(["predict", "ner", "--model", repo, "--input", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("luke predict: error:")
    assert repo in err[0] and "entity_typing" in err[0] and "not for task ner" in err[0]
    rc = cli_main(["evaluate", "relation_classification", "--model", repo, "--data-dir", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a model for entity_typing, not for task relation_classification" in err[0]


def test_a_tokenizer_task_that_contradicts_the_head_is_refused(hf_cache, bpe, tmp_path, capsys):
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-tacred", tokenizer_task="entity_classification")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(RELATION_INPUTS[0]) + "\n")
    capsys.readouterr()
    assert cli_main(["predict", "relation_classification", "--model", repo, "--input", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tokenizer_config.json task 'entity_classification'" in err[0], err


def test_a_pretrained_model_without_a_head_says_so(hf_cache, bpe, tmp_path, capsys):
    folder = released_folder(tmp_path / "typing", "luke-large-finetuned-open-entity", bpe)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["LukeForMaskedLM"]
    (folder / "config.json").write_text(json.dumps(config))
    hf_cache.add("studio-ousia/luke-base", folder)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(TYPING_INPUTS[0]) + "\n")
    capsys.readouterr()
    assert cli_main(["predict", "entity_typing", "--model", "studio-ousia/luke-base", "--input", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "without a task head (architectures: LukeForMaskedLM)" in err[0], err


def test_a_repo_missing_from_the_offline_cache_is_named(hf_cache, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(TYPING_INPUTS[0]) + "\n")
    rc = cli_main(["predict", "entity_typing", "--model", "studio-ousia/no-such-model", "--input", str(src)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "studio-ousia/no-such-model" in err[0] and "Hugging Face cache" in err[0], err


def test_released_options_follow_the_model(hf_cache, bpe, tmp_path):
    """No luke_task.json: the labels are id2label's; the options the task's recipe, the window capped at
    the model's word positions."""
    from luke.finetuning.commands import load_task_model

    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-conll-2003", max_position_embeddings=66)
    task, _, tokenizer = load_task_model("ner", repo)
    assert task.labels == CONLL and task.options.max_seq_length == 64 and task.options.max_mention_length == 16
    assert tokenizer.max_mention_length == 30  # the tokenizer's own setting (typing/relations mentions)
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-open-entity")
    task, _, _ = load_task_model("entity_typing", repo)
    assert task.labels == OPEN_ENTITY and task.options.max_seq_length == 512


def test_finetune_starts_from_a_repo_id(hf_cache, bpe, tmp_path, capsys):
    """``luke finetune --model ORG/NAME``: a pretrained LUKE repo (2021 layout, no task head) from the cache."""
    folder = released_folder(tmp_path / "base", "luke-large-finetuned-open-entity", bpe, layout="2021")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["LukeForMaskedLM"]
    (folder / "config.json").write_text(json.dumps(config))
    hf_cache.add("studio-ousia/luke-base", folder)
    out = tmp_path / "out"
    rc = cli_main(["finetune", "entity_typing", "--model", "studio-ousia/luke-base", "--data-dir",
                   str(FIXTURES / "entity_typing"), "--output-dir", str(out), "--num-train-epochs", "1",
                   "--no-progress", "--no-tensorboard", "--cpu"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["model"] == "studio-ousia/luke-base"
    (record,) = run_predict(capsys, "entity_typing", str(out), TYPING_INPUTS[:1], tmp_path)
    assert set(record["scores"]) == set(json.loads((out / "luke_task.json").read_text())["labels"])


def test_revision_selects_a_cached_branch_in_predict_evaluate_and_finetune(hf_cache, bpe, tmp_path, capsys):
    """``--revision`` of ``--model``: a repo cached only at branch ``v1`` is found with it, not without."""
    name = "luke-large-finetuned-open-entity"
    hf_cache.add(f"studio-ousia/{name}", released_folder(tmp_path / name, name, bpe), ref="v1")
    repo = f"studio-ousia/{name}"
    (record,) = run_predict(capsys, "entity_typing", repo, TYPING_INPUTS[:1], tmp_path, "--revision", "v1")
    assert list(record["scores"]) == OPEN_ENTITY
    src = tmp_path / "entity_typing-in.jsonl"
    assert cli_main(["predict", "entity_typing", "--model", repo, "--input", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "revision main" in err[0] and "cached: v1" in err[0], err
    data = ["--data-dir", str(FIXTURES / "entity_typing"), "--no-progress", "--cpu"]
    assert cli_main(["evaluate", "entity_typing", "--model", repo, "--revision", "v1", "--split", "dev", *data]) == 0
    assert "f1" in json.loads(capsys.readouterr().out)
    out = tmp_path / "tuned"
    args = ["finetune", "entity_typing", "--model", repo, "--revision", "v1", "--output-dir", str(out), *data]
    assert cli_main([*args, "--num-train-epochs", "1", "--no-tensorboard", "--max-train-examples", "4"]) == 0
    assert json.loads((out / "config.json").read_text())["entity_vocab_size"] == 4  # the table surgery ran
    capsys.readouterr()
    assert cli_main([*args[:4], "--revision", "v2", "--output-dir", str(tmp_path / "v2"), *data]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "revision v2" in err[0], err
