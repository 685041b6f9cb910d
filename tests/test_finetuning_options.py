"""Fine-tuning settings declared once (luke.finetuning.options, luke.dataclass_args): the command-line flags
derive from the dataclasses, the task defaults reach the tasks, and luke_task.json files (old and new) load."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from conftest import minilm_folder
from luke.cli import build_parser
from luke.dataclass_args import add_arguments, flag_fields, from_mapping, option
from luke.entity_vocab import EntityVocab
from luke.errors import ConfigError, DataError
from luke.finetuning import commands
from luke.finetuning.options import TaskDefaults, TrainingArguments, per_task_note, task_option_fields
from luke.finetuning.tasks import TASKS, NerTask, RecordTask, RelationClassificationTask, SquadTask
from luke.tokenization import LukeTokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "finetuning"


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _actions(name: str) -> dict[str, argparse.Action]:
    return {a.dest: a for a in _subparser(name)._actions if a.option_strings}


# ---------------------------------------------------------------------------------------------- the helper


@dataclass(frozen=True)
class _Example:
    path: Path = option(help="a required path")
    size: int = option(3, "a size")
    ratio: float | None = option(None, "an optional ratio")
    mode: Literal["a", "b"] = option("a", "a mode")
    quiet: bool = option(False, "be quiet")
    color: bool = option(True, "no colors", flag="--no-color")
    hidden: int = 7


def test_flags_from_dataclass_fields():
    p = argparse.ArgumentParser()
    add_arguments(p, _Example)
    acts = {a.dest: a for a in p._actions if a.option_strings and a.dest != "help"}
    assert set(acts) == {"path", "size", "ratio", "mode", "quiet", "color"}  # no flag for plain fields
    assert acts["path"].required and acts["path"].type is Path and acts["path"].option_strings == ["--path"]
    assert (acts["size"].type, acts["size"].default, acts["size"].help) == (int, 3, "a size")
    assert acts["ratio"].type is float and acts["ratio"].default is None
    assert acts["mode"].choices == ("a", "b") and acts["mode"].type is None
    assert isinstance(acts["quiet"], argparse._StoreTrueAction)
    assert isinstance(acts["color"], argparse._StoreFalseAction) and acts["color"].option_strings == ["--no-color"]
    args = p.parse_args(["--path", "x", "--ratio", "0.5", "--mode", "b", "--quiet", "--no-color"])
    assert (args.path, args.ratio, args.mode, args.quiet, args.color) == (Path("x"), 0.5, "b", True, False)
    # unset: absent flags parse to None (their value comes from elsewhere); a True bool gets --x/--no-x
    p = argparse.ArgumentParser()
    add_arguments(p, _Example, flag_fields(_Example)[1:], unset=True)
    assert vars(p.parse_args([])) == dict.fromkeys(("size", "ratio", "mode", "quiet", "color"))


def test_from_mapping_converts_and_names_bad_keys():
    ex = from_mapping(_Example, {"path": "a/b", "size": 4.0, "ratio": 1}, "x.json")
    assert ex.path == Path("a/b") and ex.size == 4 and isinstance(ex.ratio, float)
    with pytest.raises(ConfigError, match=r"x\.json: unknown option 'sizes'"):
        from_mapping(_Example, {"path": "p", "sizes": 1}, "x.json")
    with pytest.raises(ConfigError, match=r"x\.json: mode must be one of a, b"):
        from_mapping(_Example, {"path": "p", "mode": "c"}, "x.json")
    with pytest.raises(ConfigError, match=r"x\.json: size must be int"):
        from_mapping(_Example, {"path": "p", "size": "many"}, "x.json")
    with pytest.raises(ConfigError, match=r"x\.json: quiet must be true or false, got 'false'"):
        from_mapping(_Example, {"path": "p", "quiet": "false"}, "x.json")


def test_per_task_note():
    assert per_task_note({"a": 5, "b": 5}) == " (default 5)"
    assert per_task_note({"a": 5, "b": 5, "c": 6}) == " (default 5; c 6)"
    assert per_task_note({"a": 1, "b": 2}) == " (a 1, b 2)"
    assert per_task_note({"a": None, "b": 16, "c": 30}) == " (b 16, c 30)"
    assert per_task_note({"squad": 128, "record": 128}, everyone=False) == " (squad, record: 128)"
    assert per_task_note({"squad": None}, everyone=False) == " (squad)"
    assert per_task_note({"a": False, "b": False}) == ""
    assert per_task_note({"a": True, "b": True, "c": False}) == " (default yes; c no)"


# ---------------------------------------------------------------------------------------------- luke finetune


def test_every_declared_setting_is_one_finetune_flag_with_its_help_and_default():
    acts = _actions("finetune")
    flags = [s for a in _subparser("finetune")._actions for s in a.option_strings]
    assert len(flags) == len(set(flags))  # no flag twice
    paper = {f.name for f in dataclasses.fields(TaskDefaults)}
    for f in flag_fields(TrainingArguments):
        meta_help = (f.metadata["help"] if "help" in f.metadata else "").split(" (")[0]
        assert meta_help in acts[f.name].help
        expected = None if f.name in paper else (f.default if f.default is not dataclasses.MISSING else None)
        assert acts[f.name].default == expected, f.name
    for name, (_, f) in task_option_fields(TASKS.values()).items():
        assert acts[name].default is None, name  # unset unless given: the task's default applies
        assert f.metadata["help"].split(" (")[0] in acts[name].help
    assert "(squad 64, record 90)" in acts["max_query_length"].help
    assert "(ner 16, record 30)" in acts["max_mention_length"].help
    assert (
        "ner 35" in acts["seed"].help
        and "(default 1e-05; squad 1.5e-05, entity_disambiguation 2e-05)" in acts["learning_rate"].help
    )
    assert acts["select_best"].option_strings == ["--select-best", "--no-select-best"]
    assert acts["entity_init"].choices == ("random", "words")
    assert acts["mention_db"].type is Path and acts["dev_ratio"].type is float


def test_evaluate_and_predict_share_the_declared_flags():
    for name in ("evaluate", "predict"):
        acts = _actions(name)
        assert acts["eval_batch_size"].default == 32 and acts["eval_batch_size"].type is int
        assert acts["mixed_precision"].choices == ("no", "bf16", "fp16") and acts["progress"].default is True


def test_cli_passes_given_options_and_paper_defaults(monkeypatch, tmp_path, caplog):
    seen = {}

    def fake_finetune(task, model, data_dir, output_dir, **kw):
        seen.update(kw, task=task)
        return {"main_metric": "f1"}

    monkeypatch.setattr(commands, "finetune", fake_finetune)
    argv = ["finetune", "ner", "--model", str(tmp_path), "--data-dir", str(tmp_path), "--output-dir", str(tmp_path),
            "--max-mention-length", "8", "--doc-stride", "10", "--seed", "3", "--no-progress"]  # fmt: skip
    args = build_parser().parse_args(argv)
    with caplog.at_level(logging.WARNING):
        assert args.func(args) == 0
    assert seen["task_options"] == {"max_mention_length": 8}  # --doc-stride is squad/record's: dropped, warned
    assert "doc_stride does not apply to task ner" in caplog.text
    assert seen["seed"] == 3 and "learning_rate" not in seen  # unset: finetune() takes the task's
    assert seen["progress"] is False and seen["tensorboard"] is True and "warmup_ratio" not in seen  # the task's


def test_paper_defaults_fill_training_arguments():
    args = commands._training_arguments(NerTask(), "out", {"seed": 3, "learning_rate": None})
    assert (args.seed, args.learning_rate, args.num_train_epochs, args.select_best) == (3, 1e-5, 5, False)
    assert args.output_dir == Path("out") and args.warmup_ratio == 0.06


# ---------------------------------------------------------------------------------------------- tasks


def test_task_defaults_reach_the_featurizer(monkeypatch):
    assert NerTask().options.max_mention_length == 16 and RecordTask().options.max_mention_length == 30
    assert SquadTask().options.max_query_length == 64 and RecordTask().options.max_query_length == 90
    tokenizer = LukeTokenizer.from_pretrained(minilm_folder(), entity_vocab=EntityVocab.from_counts([]))
    from luke.finetuning.tasks import ner

    widths = []
    real = ner.enumerate_spans

    def spy(starts, ends, max_mention_length):
        widths.append(max_mention_length)
        return real(starts, ends, max_mention_length)

    monkeypatch.setattr(ner, "enumerate_spans", spy)
    task = NerTask()
    docs = task.read(FIXTURES / "ner" / "train.txt")
    task.set_labels_from(docs)
    task.featurize(docs, tokenizer)
    assert widths and set(widths) == {16}


def test_task_options_are_typed_and_checked():
    task = RelationClassificationTask(dev_ratio=0.2, dev_seed=None)
    assert task.options.dev_ratio == 0.2 and task.options.dev_seed == 0
    with pytest.raises(ConfigError, match="task ner: unknown option 'doc_stride'"):
        NerTask(doc_stride=10)
    squad = SquadTask(mention_db="m.tsv")
    assert squad.options.mention_db == Path("m.tsv")
    assert squad.state()["options"] == {"mention_db": "m.tsv"}  # what luke_task.json records: the given ones
    assert squad.model_settings()["entity_vocab_path"] is None


def test_tokenizer_mention_length_is_cut_only_when_given():
    assert NerTask().model_settings()["max_mention_length"] == 512  # NER's 16 is for its own candidates
    assert NerTask(max_mention_length=8).model_settings()["max_mention_length"] == 8
    assert RelationClassificationTask(max_seq_length=64).model_settings()["max_mention_length"] == 64
    settings = NerTask(no_entity_aware_attention=True, entity_init="words").model_settings()
    assert settings["entity_aware_attention"] is False and settings["entity_init"] == "words"


# ---------------------------------------------------------------------------------------------- luke_task.json


def _folder(tmp_path: Path, options: object, task: str = "ner") -> Path:
    state = {"task": task, "labels": ["NIL", "PER"], "options": options}
    (tmp_path / "luke_task.json").write_text(json.dumps(state), encoding="utf-8")
    return tmp_path


@pytest.fixture
def fake_load(monkeypatch):
    def load(model_path, class_name, task_name, tokenizer_path=None):
        return "model", "tokenizer", json.loads((Path(model_path) / "luke_task.json").read_text())

    monkeypatch.setattr(commands, "load_finetuned", load)


def test_old_luke_task_json_loads(tmp_path, fake_load, caplog):
    # Written by the old code: only the given options, including other tasks' (the CLI passed them all).
    folder = _folder(tmp_path, {"max_seq_length": 64, "doc_stride": 10, "mention_db": "/x.tsv"})
    with caplog.at_level(logging.WARNING):
        task, model, tokenizer = commands.load_task_model("ner", folder)
    assert (model, tokenizer) == ("model", "tokenizer") and task.labels == ["NIL", "PER"]
    assert task.options.max_seq_length == 64 and task.options.max_mention_length == 16
    assert task.given_options == {"max_seq_length": 64}
    assert "doc_stride does not apply to task ner" in caplog.text
    task, _, _ = commands.load_task_model("ner", _folder(tmp_path, {}))
    assert task.options == NerTask().options


def test_luke_task_json_round_trip(tmp_path, fake_load):
    RecordTask(["answer"], max_seq_length=48, doc_stride=16).save(tmp_path)
    assert json.loads((tmp_path / "luke_task.json").read_text())["options"] == {"max_seq_length": 48, "doc_stride": 16}
    task, _, _ = commands.load_task_model("record", tmp_path)
    assert (task.options.max_seq_length, task.options.doc_stride, task.options.max_query_length) == (48, 16, 90)


def test_unknown_or_bad_luke_task_json_option_names_file_and_key(tmp_path, fake_load):
    path = tmp_path / "luke_task.json"
    with pytest.raises(ConfigError, match=rf"{path}: unknown option 'max_seq_len'"):
        commands.load_task_model("ner", _folder(tmp_path, {"max_seq_len": 64}))
    with pytest.raises(ConfigError, match=rf"{path}: max_seq_length must be int"):
        commands.load_task_model("ner", _folder(tmp_path, {"max_seq_length": "long"}))
    with pytest.raises(ConfigError, match=rf"{path}: 'options' must be a JSON object"):
        commands.load_task_model("ner", _folder(tmp_path, [1, 2]))


def test_relation_features_via_the_shared_builder():
    tokenizer = LukeTokenizer.from_pretrained(minilm_folder(), entity_vocab=EntityVocab.from_counts([]))
    task = RelationClassificationTask(max_seq_length=512)
    examples = task.read(FIXTURES / "relation_classification" / "train.jsonl")
    task.set_labels_from(examples)
    feats = task.featurize(examples, tokenizer)
    assert [f["example_index"] for f in feats] == list(range(len(examples)))
    assert all(isinstance(f["labels"], int) and f["input_ids"].dtype == np.int64 for f in feats)
    with pytest.raises(DataError, match="more than --max-seq-length 8"):
        RelationClassificationTask(task.labels, max_seq_length=8).featurize(examples, tokenizer)
