"""Issue #18 (hardening) probes of the fine-tuning commands: every reader and scorer cross-checks what it is
given, bad output paths are refused before the work starts, and user errors are one ``luke CMD: error:`` line
naming the file (and 1-based line)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import unreadable_file
from luke.cli import main as cli_main
from luke.errors import CheckpointError, DataError
from luke.finetuning.commands import finetune, make_task
from luke.finetuning.tasks.squad import read_squad
from test_finetuning_tasks import FIXTURES
from test_finetuning_training import make_tiny_bert


@pytest.fixture(scope="module")
def typing_model(tmp_path_factory) -> Path:
    """A tiny fine-tuned entity-typing folder (one epoch on the fixture)."""
    root = tmp_path_factory.mktemp("reliability_typing")
    bert = make_tiny_bert(root / "bert")
    out = root / "model"
    finetune("entity_typing", bert, FIXTURES / "entity_typing", out, num_train_epochs=1, progress=False,
             tensorboard=False, eval_splits=())  # fmt: skip
    return out


def _one_line_error(capsys, command: str, *names: str) -> str:
    """The command's stderr: exactly one ``luke COMMAND: error:`` line, mentioning each of ``names``."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"luke {command}: error:"), err
    for name in names:
        assert name in err[0], (name, err[0])
    return err[0]


def _squad(path: Path, context: str, answers: list[dict]) -> Path:
    qas = [{"id": "q1", "question": "What?", "answers": answers}]
    path.write_text(
        json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]})
    )
    return path


# ------------------------------------------------------------------------------ answer offsets (SQuAD, ReCoRD)


@pytest.mark.parametrize(
    "answer, message",
    [
        ({"answer_start": -11, "text": "Ann"}, "out of range"),  # -len(context): context[-11:-8] == "Ann"
        ({"answer_start": 99999, "text": ""}, "empty or only whitespace"),
        ({"answer_start": 3, "text": " "}, "empty or only whitespace"),
    ],
)
def test_squad_answer_offsets_are_in_range_and_not_empty(tmp_path, answer, message):
    path = _squad(tmp_path / "train.json", "Ann met Bob", [answer])
    with pytest.raises(DataError, match=rf"train\.json:\d+: question 'q1'.*{message}"):
        read_squad(path)


def test_finetune_squad_refuses_an_answer_outside_its_context(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _squad(data / "train.json", "Ann met Bob", [{"answer_start": -11, "text": "Ann"}])
    rc = cli_main(["finetune", "squad", "--model", str(tmp_path / "no-model"), "--data-dir", str(data),
                   "--output-dir", str(tmp_path / "out"), "--no-progress", "--no-tensorboard"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", str(data / "train.json"), "out of range")


def _record(path: Path, entities: list[dict], answers: list[dict]) -> Path:
    text = "Ann met Bob   in Leeds."
    item = {"id": "p1", "passage": {"text": text, "entities": entities},
            "qas": [{"id": "q1", "query": "@placeholder met Bob.", "answers": answers}]}  # fmt: skip
    path.write_text(json.dumps({"version": "1.0", "data": [item]}, indent=1))
    return path


def test_record_whitespace_candidates_are_refused(tmp_path):
    path = _record(tmp_path / "train.json", [{"start": 0, "end": 2}, {"start": 11, "end": 12}], [])
    with pytest.raises(DataError, match=r"train\.json:\d+: passage p1 entity 1: \[11, 12\] covers only whitespace"):
        make_task("record").read(path)


# ------------------------------------------------------------------------------ scoring cross-checks


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_score_typing_without_gold_anywhere_is_an_error(tmp_path, capsys):
    preds = _jsonl(tmp_path / "p.jsonl", [{"text": "a b", "span": [0, 1], "labels": ["person"]}])
    assert cli_main(["score", "entity_typing", "--predictions", str(preds)]) == 2
    _one_line_error(capsys, "score", "p.jsonl:1", "--gold")


@pytest.mark.parametrize("task", ["entity_typing", "relation_classification"])
def test_score_an_empty_predictions_list_is_an_error(tmp_path, capsys, task):
    preds = tmp_path / "p.json"
    preds.write_text("[]\n")
    assert cli_main(["score", task, "--predictions", str(preds)]) == 2
    _one_line_error(capsys, "score", "p.json", "no predictions")


@pytest.mark.parametrize("content", ["", "\n\n", "-DOCSTART- O O\n\n"])
def test_score_ner_empty_predictions_is_an_error(tmp_path, capsys, content):
    preds = tmp_path / "p.conll"
    preds.write_text(content)
    assert cli_main(["score", "ner", "--predictions", str(preds)]) == 2
    _one_line_error(capsys, "score", "p.conll")


def _typing_predictions(path: Path, gold: Path) -> Path:
    examples = make_task("entity_typing").read(gold)
    return _jsonl(path, [{"index": i, "text": ex.text, "span": [ex.start, ex.end], "gold": ex.labels,
                          "labels": ex.labels} for i, ex in enumerate(examples)])  # fmt: skip


def test_score_typing_predictions_of_other_sentences_is_an_error(tmp_path, capsys):
    preds = _typing_predictions(tmp_path / "dev_predictions.jsonl", FIXTURES / "entity_typing" / "dev.json")
    gold = FIXTURES / "entity_typing" / "test.json"
    assert cli_main(["score", "entity_typing", "--gold", str(gold), "--predictions", str(preds)]) == 2
    _one_line_error(capsys, "score", "dev_predictions.jsonl", "test.json", "another file")


def test_score_typing_against_an_empty_gold_file_is_an_error(tmp_path, capsys):
    preds = _typing_predictions(tmp_path / "p.jsonl", FIXTURES / "entity_typing" / "test.json")
    gold = tmp_path / "gold.json"
    gold.write_text("[]")
    assert cli_main(["score", "entity_typing", "--gold", str(gold), "--predictions", str(preds)]) == 2
    _one_line_error(capsys, "score", "gold.json", "no examples")


def test_score_typing_matches_by_text_and_counts_the_unmatched(tmp_path, capsys, caplog):
    gold = FIXTURES / "entity_typing" / "test.json"
    preds = _typing_predictions(tmp_path / "p.jsonl", gold)
    lines = preds.read_text().splitlines()
    extra = json.dumps({"text": "Other text .", "span": [0, 5], "labels": ["person"]})
    preds.write_text("\n".join([lines[2], lines[0], extra]) + "\n")  # reordered, one missing, one foreign
    with caplog.at_level(logging.WARNING):
        assert cli_main(["score", "entity_typing", "--gold", str(gold), "--predictions", str(preds)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["matched"], out["unmatched_gold"], out["unmatched_predictions"]) == (2, 1, 1)
    assert out["precision"] == 1.0 and out["recall"] < 1.0
    assert "have no prediction" in caplog.text and "match no gold example" in caplog.text


def test_score_relation_predictions_of_other_sentences_is_an_error(tmp_path, capsys):
    task = make_task("relation_classification")
    preds = tmp_path / "p.jsonl"
    train = task.read(FIXTURES / "relation_classification" / "train.jsonl")[:3]  # as many as the test file
    task.set_labels_from(train)
    task.write_predictions(preds, train, [ex.relation for ex in train])
    gold = FIXTURES / "relation_classification" / "test.jsonl"
    assert cli_main(["score", "relation_classification", "--gold", str(gold), "--predictions", str(preds)]) == 2
    _one_line_error(capsys, "score", "p.jsonl", "another file")


@pytest.mark.parametrize("task, content", [("squad", {}), ("squad", {"x1": "a"}), ("record", {"nope": "Ann"})])
def test_score_qa_predictions_matching_no_question_is_an_error(tmp_path, capsys, task, content):
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps(content))
    assert cli_main(["score", task, "--gold", str(FIXTURES / task / "dev.json"), "--predictions", str(preds)]) == 2
    _one_line_error(capsys, "score", "p.json")


# ------------------------------------------------------------------------------ predict input types


@pytest.mark.parametrize(
    "task, record, message",
    [
        ("relation_classification", {"text": "The fire caused smoke .", "head": [True, 5], "tail": [16, 21]},
         "field 'head' must be \\[start, end\\] integer"),
        ("relation_classification", {"text": "The fire   caused smoke .", "head": [8, 11], "tail": [18, 23]},
         "head = \\[8, 11\\] covers only whitespace"),
        ("relation_classification", {"text": "The fire caused smoke .", "head": [4, 8], "tail": [6, 12]}, "overlap"),
        ("entity_typing", {"text": "Sam  Wu", "span": [3, 5]}, "covers only whitespace"),
        ("ner", {"tokens": [1, None, {}]}, "non-blank strings, got 1"),
        ("ner", {"tokens": ["Ann", "  "]}, "non-blank strings"),
        ("record", {"passage": "Ann met  Bob.", "query": "@placeholder met", "entities": [[7, 8]]}, "whitespace"),
        ("record", {"passage": "Ann met Bob.", "query": "@placeholder met", "entities": [[False, 3]]}, "integer"),
        ("squad", {"question": "Who?", "context": "Ann.", "id": ["x"]}, "field 'id'"),
    ],
)  # fmt: skip
def test_predict_input_is_type_checked_with_file_and_line(tmp_path, task, record, message):
    path = tmp_path / "in.jsonl"
    with pytest.raises(DataError, match=rf"in\.jsonl:2: .*{message}"):
        make_task(task).examples_from_raw([(2, record)], path)


@pytest.mark.parametrize(
    "task, record, message",
    [
        ("entity_typing", {"sent": "Ann   met", "start": 3, "end": 6, "labels": ["p"]}, "only whitespace"),
        ("relation_classification", {"relation": "r", "token": ["a", " ", "c"], "subj_start": 0, "subj_end": 0,
                                     "obj_start": 2, "obj_end": 2}, "non-blank"),
    ],
)  # fmt: skip
def test_training_files_refuse_whitespace_only_spans(tmp_path, task, record, message):
    path = _jsonl(tmp_path / "train.json", [record])
    with pytest.raises(DataError, match=rf"train\.json:1: .*{message}"):
        make_task(task).read(path)


def test_predict_relation_error_names_file_and_line_not_example_index(tmp_path):
    path = tmp_path / "in.jsonl"
    good = {"text": "The fire caused smoke .", "head": [4, 8], "tail": [16, 21]}
    bad = {"text": "The fire caused smoke .", "head": [4, 8], "tail": [4, 8]}
    with pytest.raises(DataError) as err:
        make_task("relation_classification").examples_from_raw([(1, good), (2, bad)], path)
    assert str(err.value).startswith(f"{path}:2: ") and "example" not in str(err.value)


# ------------------------------------------------------------------------------ training sets without entities


def test_ner_training_with_only_o_tags_warns(tmp_path, caplog):
    path = tmp_path / "train.txt"
    path.write_text("Ann O\nmet O\n\nBob O\n")
    task = make_task("ner")
    with caplog.at_level(logging.WARNING):
        task.set_labels_from(task.read(path))
    assert "no entity" in caplog.text and "train.txt" in caplog.text


def test_relation_training_with_only_the_negative_class_warns(tmp_path, caplog):
    rec = {"relation": "no_relation", "token": ["a", "b", "c"], "subj_start": 0, "subj_end": 0, "obj_start": 2,
           "obj_end": 2}  # fmt: skip
    path = _jsonl(tmp_path / "train.jsonl", [rec, rec])
    task = make_task("relation_classification")
    with caplog.at_level(logging.WARNING):
        task.set_labels_from(task.read(path))
    assert "no_relation" in caplog.text and "train.jsonl" in caplog.text


def test_typing_training_without_labels_names_the_file(tmp_path):
    path = _jsonl(tmp_path / "train.json", [{"sent": "Ann met Bob", "start": 0, "end": 3, "labels": []}])
    task = make_task("entity_typing")
    with pytest.raises(DataError, match=r"train\.json: the training data has no labels"):
        task.set_labels_from(task.read(path))


# ------------------------------------------------------------------------------ input files: encoding, JSON


@pytest.mark.parametrize(
    "task, name, content, line",
    [
        ("entity_typing", "train.json", b'[\n{"sent": "Ann \xff", "start": 0, "end": 3, "labels": ["p"]}\n]', 2),
        ("relation_classification", "train.jsonl", b'{"relation": "x"}\n\xfe\n', 2),
        ("ner", "train.txt", b"Ann B-PER\n\nBob \xe9 O\n", 3),
        ("squad", "train.json", b'{"version": "1.1",\n "data": [\xff]}', 2),
    ],
)
def test_non_utf8_training_files_name_file_and_line(tmp_path, capsys, task, name, content, line):
    data = tmp_path / "data"
    data.mkdir()
    (data / name).write_bytes(content)
    rc = cli_main(["finetune", task, "--model", str(tmp_path / "m"), "--data-dir", str(data), "--output-dir",
                   str(tmp_path / "out"), "--no-progress", "--no-tensorboard"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", f"{data / name}:{line}:", "UTF-8")


def test_non_utf8_predict_input_names_file_and_line_before_loading_the_model(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"text": "Sam Wu", "span": [0, 3]}\n{"text": "Sam \xff", "span": [0, 3]}\n')
    rc = cli_main(["predict", "entity_typing", "--model", str(tmp_path / "no-model"), "--input", str(src)])
    assert rc == 2
    _one_line_error(capsys, "predict", f"{src}:2:", "UTF-8")


def test_long_values_are_cut_in_messages(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("Ann B-PER\n" + "x" * 5000 + "\n")
    with pytest.raises(DataError) as err:
        make_task("ner").read(path)
    assert "train.txt:2:" in str(err.value) and len(str(err.value)) < 400


# ------------------------------------------------------------------------------ output paths


def test_finetune_output_dir_that_is_a_file_is_refused_before_work(tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("not a folder")
    rc = cli_main(["finetune", "entity_typing", "--model", str(tmp_path / "no-model"), "--data-dir",
                   str(FIXTURES / "entity_typing"), "--output-dir", str(out), "--no-progress"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", str(out), "--output-dir")
    assert out.read_text() == "not a folder"


def test_finetune_results_path_that_is_a_folder_is_refused_before_work(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "results.json").mkdir(parents=True)
    rc = cli_main(["finetune", "entity_typing", "--model", str(tmp_path / "no-model"), "--data-dir",
                   str(FIXTURES / "entity_typing"), "--output-dir", str(out), "--no-progress"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", "results.json", "folder")


def test_evaluate_and_predict_output_paths_are_checked_first(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = cli_main(["evaluate", "entity_typing", "--model", str(tmp_path / "no-model"), "--data-dir",
                   str(FIXTURES / "entity_typing"), "--output-dir", str(blocker / "sub"), "--no-progress"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "evaluate", str(blocker), "not a folder")
    src = _jsonl(tmp_path / "in.jsonl", [{"text": "Sam Wu", "span": [0, 3]}])
    rc = cli_main(["predict", "entity_typing", "--model", str(tmp_path / "no-model"), "--input", str(src),
                   "--output", str(tmp_path), "--no-progress"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "predict", str(tmp_path), "folder")


def test_predict_writes_its_output_whole_or_not_at_all(typing_model, tmp_path, capsys, monkeypatch):
    from luke.finetuning.tasks.entity_typing import EntityTypingTask

    src = _jsonl(
        tmp_path / "in.jsonl", [{"text": "Sam Wu visited Porto .", "span": [s, e]} for s, e in [(15, 20), (0, 6)]]
    )
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    args = ["predict", "entity_typing", "--model", str(typing_model), "--input", str(src), "--output", str(out),
            "--no-progress"]  # fmt: skip
    real = EntityTypingTask.format_prediction

    def fail_on_second(self, example, prediction):
        if example.start == 0:
            raise RuntimeError("simulated crash while writing")
        return real(self, example, prediction)

    monkeypatch.setattr(EntityTypingTask, "format_prediction", fail_on_second)
    assert cli_main(args) == 1
    assert out.read_text() == "old\n"  # the old output is untouched, not half replaced
    monkeypatch.undo()
    capsys.readouterr()
    assert cli_main(args) == 0
    assert [json.loads(x)["span"] for x in out.read_text().splitlines()] == [[15, 20], [0, 6]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]  # no temporary left


def test_empty_predict_input_is_an_error(typing_model, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("[]")
    assert cli_main(["predict", "entity_typing", "--model", str(typing_model), "--input", str(src)]) == 2
    _one_line_error(capsys, "predict", "in.jsonl", "no input records")


# ------------------------------------------------------------------------------ luke_task.json vs the model


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        if p.is_file():
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_task_file_labels_that_do_not_fit_the_model(typing_model, tmp_path, capsys):
    folder = _copy_model(typing_model, tmp_path / "m")
    state = json.loads((folder / "luke_task.json").read_text())
    n = len(state["labels"])
    state["labels"] = [*state["labels"], "extra1", "extra2"]
    (folder / "luke_task.json").write_text(json.dumps(state))
    src = _jsonl(tmp_path / "in.jsonl", [{"text": "Sam Wu", "span": [0, 3]}])
    assert cli_main(["predict", "entity_typing", "--model", str(folder), "--input", str(src)]) == 2
    line = _one_line_error(capsys, "predict", "luke_task.json", f"{n + 2} labels", f"has {n}")
    with pytest.raises(CheckpointError):
        from luke.finetuning.commands import load_task_model

        load_task_model("entity_typing", folder)
    assert "different models" in line


def test_task_file_that_is_not_json_names_file_and_line(typing_model, tmp_path, capsys):
    folder = _copy_model(typing_model, tmp_path / "m")
    (folder / "luke_task.json").write_text('{\n "task": "entity_typing",\n "labels": [,]\n}')
    src = _jsonl(tmp_path / "in.jsonl", [{"text": "Sam Wu", "span": [0, 3]}])
    assert cli_main(["predict", "entity_typing", "--model", str(folder), "--input", str(src)]) == 2
    _one_line_error(capsys, "predict", f"{folder / 'luke_task.json'}:3:")


# ------------------------------------------------------------------------------ split-squad


def _squad_articles(path: Path, articles: list) -> Path:
    path.write_text(json.dumps({"version": "1.1", "data": articles}))
    return path


def test_split_squad_validates_every_article_before_writing(tmp_path, capsys):
    good = {"title": "A", "paragraphs": [{"context": "c", "qas": []}]}
    src = _squad_articles(tmp_path / "s.json", [good, good, {"title": "B"}, good])
    out = tmp_path / "out"
    assert cli_main(["split-squad", str(src), str(out)]) == 2
    _one_line_error(capsys, "split-squad", "s.json", "data[2]", "paragraphs")
    assert not (out / "train.json").exists() and not (out / "dev.json").exists()
    src = _squad_articles(tmp_path / "s.json", [good, {"title": "C", "paragraphs": [{"context": "c"}]}])
    assert cli_main(["split-squad", str(src), str(out)]) == 2
    _one_line_error(capsys, "split-squad", "data[1].paragraphs[0]", "qas")


def test_split_squad_bad_second_output_is_refused_before_writing_the_first(tmp_path, capsys):
    good = {"title": "A", "paragraphs": [{"context": "c", "qas": []}]}
    src = _squad_articles(tmp_path / "s.json", [good, good])
    out = tmp_path / "out"
    (out / "dev.json").mkdir(parents=True)
    assert cli_main(["split-squad", str(src), str(out)]) == 2
    _one_line_error(capsys, "split-squad", str(out / "dev.json"), "folder")
    assert sorted(p.name for p in out.iterdir()) == ["dev.json"]  # train.json not written, no temporary


def test_unreadable_training_file_is_a_data_error(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("Ann B-PER\n")
    unreadable_file(data / "train.txt")
    rc = cli_main(["finetune", "ner", "--model", str(tmp_path / "m"), "--data-dir", str(data), "--output-dir",
                   str(tmp_path / "out"), "--no-progress"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", str(data / "train.txt"), "cannot be read")


def test_read_only_outputs_are_refused_before_work(tmp_path, capsys, permissions_as_user):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    out.chmod(0o444)
    src = _jsonl(tmp_path / "in.jsonl", [{"text": "Sam Wu", "span": [0, 3]}])
    rc = cli_main(["predict", "entity_typing", "--model", str(tmp_path / "no-model"), "--input", str(src),
                   "--output", str(out)])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "predict", str(out), "read-only")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    rc = cli_main(["finetune", "entity_typing", "--model", str(tmp_path / "no-model"), "--data-dir",
                   str(FIXTURES / "entity_typing"), "--output-dir", str(folder / "run"), "--no-progress"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", str(folder), "permission denied")


# ------------------------------------------------------------------------------ option values (one check)

_TYPING = FIXTURES / "entity_typing"
_BAD_OPTIONS = [
    (["--train-batch-size", "0"], "--train-batch-size must be at least 1, got 0"),
    (["--gradient-accumulation-steps", "0"], "--gradient-accumulation-steps must be at least 1, got 0"),
    (["--logging-steps", "0"], "--logging-steps must be at least 1, got 0"),
    (["--learning-rate", "inf"], "--learning-rate must be a finite number above 0, got inf"),
    (["--learning-rate", "nan"], "--learning-rate must be a finite number above 0, got nan"),
    (["--learning-rate", "-1"], "--learning-rate must be above 0"),
    (["--num-train-epochs", "0"], "--num-train-epochs must be above 0"),
    (["--num-train-epochs", "-1"], "--num-train-epochs must be above 0"),
    (["--warmup-ratio", "2"], "--warmup-ratio must be between 0 and 1"),
    (["--warmup-ratio", "-0.5"], "--warmup-ratio must be between 0 and 1"),
    (["--weight-decay", "-1"], "--weight-decay must be at least 0"),
    (["--max-grad-norm", "-1"], "--max-grad-norm must be at least 0"),
    (["--dev-ratio", "1.5"], "--dev-ratio must be at least 0 and below 1, got 1.5"),  # not even this task's
    (["--max-steps", "-1"], "--max-steps must be at least 0, got -1"),
    (["--save-steps", "-1"], "--save-steps must be at least 0, got -1"),
    (["--eval-batch-size", "0"], "--eval-batch-size must be at least 1, got 0"),
    (["--seed", "-1"], "--seed must be between 0 and 2147483647, got -1"),
    (["--max-train-examples", "0"], "--max-train-examples must be at least 1"),
    (["--max-train-examples", "-3"], "--max-train-examples must be at least 1"),
    (["--max-dev-examples", "0"], "--max-dev-examples must be at least 1"),
    (["--min-link-prob", "5"], "--min-link-prob must be between 0 and 1, got 5.0"),
    (["--n-best-size", "0"], "--n-best-size must be at least 1, got 0"),
    (["--doc-stride", "0"], "--doc-stride must be at least 1, got 0"),
    (["--max-seq-length", "0"], "--max-seq-length must be at least 3, got 0"),
    (["--max-mention-length", "0"], "--max-mention-length must be at least 1, got 0"),
]


@pytest.mark.parametrize("extra, message", _BAD_OPTIONS, ids=[" ".join(e) for e, _ in _BAD_OPTIONS])
def test_finetune_option_values_are_checked_before_any_work(tmp_path, capsys, extra, message):
    task = "squad" if extra[0] in ("--min-link-prob", "--n-best-size", "--doc-stride") else "entity_typing"
    data = FIXTURES / task
    out = str(tmp_path / "out")
    rc = cli_main(["finetune", task, "--model", str(tmp_path / "no-model"), "--data-dir", str(data),
                   "--output-dir", out, "--no-progress", "--no-tensorboard", "--cpu", *extra])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", message)
    assert not (tmp_path / "out").exists()


def test_training_arguments_are_checked_in_the_api_too(tmp_path):
    from luke.errors import ConfigError
    from luke.finetuning.options import TrainingArguments

    with pytest.raises(ConfigError, match="--train-batch-size must be an integer, got '2'"):
        TrainingArguments(output_dir=tmp_path, train_batch_size="2")
    with pytest.raises(ConfigError, match="--warmup-ratio must be between 0 and 1"):
        finetune("entity_typing", tmp_path / "m", _TYPING, tmp_path / "out", warmup_ratio=1.5)
    with pytest.raises(ConfigError, match="--max-query-length must be at least 1"):
        make_task("squad", max_query_length=0)


def test_evaluate_and_predict_limits_are_checked(typing_model, tmp_path, capsys):
    base = ["evaluate", "entity_typing", "--model", str(typing_model), "--data-dir", str(_TYPING), "--no-progress"]
    assert cli_main([*base, "--max-eval-examples", "0"]) == 2
    _one_line_error(capsys, "evaluate", "--max-eval-examples must be at least 1")
    assert cli_main([*base, "--eval-batch-size", "0"]) == 2
    _one_line_error(capsys, "evaluate", "--eval-batch-size must be at least 1, got 0")
    inp = _jsonl(tmp_path / "in.jsonl", [{"text": "Ann ran", "span": [0, 3]}])
    assert cli_main(["predict", "entity_typing", "--model", str(typing_model), "--input", str(inp),
                     "--eval-batch-size", "0"]) == 2  # fmt: skip
    _one_line_error(capsys, "predict", "--eval-batch-size must be at least 1, got 0")


def test_help_documents_the_zero_values_that_mean_none(capsys):
    with pytest.raises(SystemExit):
        cli_main(["finetune", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(0 = run all epochs)" in help_text and "(0 = at epoch ends only)" in help_text


# ------------------------------------------------------------------------------ inputs are never replaced


@pytest.mark.parametrize("which", ["model", "data"])
def test_finetune_output_dir_may_not_be_the_model_or_data_folder(tmp_path, capsys, which):
    bert = make_tiny_bert(tmp_path / "bert")
    data = tmp_path / "data"
    data.mkdir()
    for f in _TYPING.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    before = {p.name: p.read_bytes() for p in [*bert.iterdir(), *data.iterdir()]}
    capsys.readouterr()
    out = bert if which == "model" else data
    rc = cli_main(["finetune", "entity_typing", "--model", str(bert), "--data-dir", str(data), "--output-dir",
                   str(out), "--max-steps", "1", "--no-progress", "--no-tensorboard", "--cpu"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", "would replace the input", str(out))
    assert {p.name: p.read_bytes() for p in [*bert.iterdir(), *data.iterdir()]} == before


# ------------------------------------------------------------------------------ messages say what is wrong


def test_model_path_that_is_a_file_says_so(tmp_path, capsys):
    model = tmp_path / "model.bin"
    model.write_text("x")
    rc = cli_main(["finetune", "entity_typing", "--model", str(model), "--data-dir", str(_TYPING),
                   "--output-dir", str(tmp_path / "out"), "--no-progress", "--no-tensorboard", "--cpu"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "finetune", f"model folder {model} is a file")


def test_gold_and_input_folders_are_not_called_missing(tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    preds = tmp_path / "p.json"
    preds.write_text('{"q1": "x"}')
    assert cli_main(["score", "squad", "--gold", str(folder), "--predictions", str(preds)]) == 2
    _one_line_error(capsys, "score", f"gold file {folder} is a folder, expected a file")
    assert cli_main(["predict", "ner", "--model", str(tmp_path), "--input", str(folder)]) == 2
    _one_line_error(capsys, "predict", f"input file {folder} is a folder, expected a file")


def test_training_file_that_is_a_folder_says_so(tmp_path):
    (tmp_path / "train.json").mkdir()
    with pytest.raises(DataError, match=r"train.json: is a folder, expected a file"):
        make_task("entity_typing").load_splits(tmp_path, ("train",))


def test_a_huge_unseen_dev_label_is_cut_in_the_message(tmp_path):
    task = make_task("entity_typing", ["person"])
    examples = task.read(_jsonl(tmp_path / "dev.json", [{"sent": "Ann ran", "start": 0, "end": 3,
                                                          "labels": ["x" * 5000]}]))  # fmt: skip
    with pytest.raises(DataError) as info:
        task.check_labels(examples, "dev")
    assert len(str(info.value)) < 400 and "5,000 characters" in str(info.value)


# ------------------------------------------------------------------------------ inputs checked, not guessed


def test_split_squad_train_articles_message_names_the_flag_and_bound(tmp_path, capsys):
    squad = _squad(tmp_path / "s.json", "Ann ran.", [{"answer_start": 0, "text": "Ann"}])
    doc = json.loads(squad.read_text())
    doc["data"] = doc["data"] * 3
    doc["data"][1] = json.loads(json.dumps(doc["data"][1]).replace('"q1"', '"q2"'))
    doc["data"][2] = json.loads(json.dumps(doc["data"][2]).replace('"q1"', '"q3"'))
    squad.write_text(json.dumps(doc))
    assert cli_main(["split-squad", str(squad), str(tmp_path / "out"), "--train-articles", "0"]) == 2
    _one_line_error(capsys, "split-squad", "--train-articles must be between 1 and 2 (the file has 3 articles), got 0")


def test_split_squad_checks_what_it_copies_like_the_reader(tmp_path, capsys):
    squad = _squad(tmp_path / "s.json", "Ann ran.", [{"answer_start": True, "text": "Ann"}])
    doc = json.loads(squad.read_text())
    doc["data"] = [doc["data"][0], {"title": "U", "paragraphs": []}]
    squad.write_text(json.dumps(doc))
    assert cli_main(["split-squad", str(squad), str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "split-squad", "answer_start must be an integer, got true")
    assert not (tmp_path / "out" / "train.json").exists()


def test_squad_answer_start_string_is_shown_as_a_string(tmp_path):
    path = _squad(tmp_path / "s.json", "Ann ran.", [{"answer_start": "3", "text": "Ann"}])
    with pytest.raises(DataError, match=r'answer_start must be an integer, got "3"'):
        read_squad(path)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"tokens": "Acme Corp"}, "field 'tokens' must be a list of strings, got \"Acme Corp\""),
        ({"text": "A b", "tokens": ["x"]}, "fields 'text' and 'tokens' disagree"),
    ],
)
def test_predict_ner_tokens_are_checked(tmp_path, record, message):
    with pytest.raises(DataError, match=message):
        make_task("ner").examples_from_raw([(1, record)], tmp_path / "in.jsonl")
    same = make_task("ner").examples_from_raw([(1, {"text": "A b", "tokens": ["A", "b"]})], tmp_path / "in.jsonl")
    assert same[0].sentences == [["A", "b"]]


def test_predict_squad_id_must_be_a_string(tmp_path):
    record = {"id": 5, "question": "Who?", "context": "Ann ran."}
    with pytest.raises(DataError, match="field 'id' must be a non-empty string, got 5"):
        make_task("squad").examples_from_raw([(1, record)], tmp_path / "in.jsonl")
    del record["id"]
    assert make_task("squad").examples_from_raw([(4, record)], tmp_path / "in.jsonl")[0].qid == "4"


def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    bert = make_tiny_bert(tmp_path / "bert")
    out = tmp_path / "out"
    base = ["finetune", "entity_typing", "--model", str(bert), "--data-dir", str(_TYPING), "--output-dir",
            str(out), "--no-progress", "--no-tensorboard", "--cpu", "--train-batch-size", "1",
            "--num-train-epochs", "1"]  # fmt: skip
    assert cli_main([*base, "--max-steps", "1", "--save-steps", "1", "--keep-checkpoints"]) == 0
    assert (out / "checkpoint" / "trainer_state.json").is_file()
    capsys.readouterr()
    changed = [*base[:-4], "--train-batch-size", "2", "--num-train-epochs", "1", "--learning-rate", "1e-3"]
    assert cli_main([*changed, "--resume"]) == 2
    line = _one_line_error(capsys, "finetune", "--resume:", "--train-batch-size 1 -> 2", "--learning-rate")
    assert "--max-steps" not in line  # a setting that may change
    assert cli_main([*base, "--resume", "--max-steps", "2"]) == 0  # the same settings resume
