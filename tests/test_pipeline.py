"""``luke.pipeline``: a fine-tuned model (by Hub repo id, from an offline cache built in the test) as a
callable that returns exactly what ``luke predict`` writes, loaded once, batched, without files."""

from __future__ import annotations

import json

import pytest

import luke
from luke.errors import CheckpointError, ConfigError, DataError
from test_released_finetuned import (
    NER_INPUTS,
    RELATION_INPUTS,
    RELEASED,
    TYPING_INPUTS,
    add_released,
    bpe,  # noqa: F401 (fixture)
    run_predict,
    theirs_typing,
)

INPUTS = {"entity_typing": TYPING_INPUTS, "relation_classification": RELATION_INPUTS, "ner": NER_INPUTS}


def _same(a, b) -> bool:
    """Equal records, floats up to the rounding another batch padding gives."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return b == pytest.approx(a, abs=1e-6)
    return a == b


@pytest.mark.parametrize("name", list(RELEASED))
def test_pipeline_returns_what_luke_predict_writes(name, hf_cache, bpe, tmp_path, capsys):  # noqa: F811
    task = RELEASED[name][3]
    repo = add_released(hf_cache, tmp_path, bpe, name)
    pipe = luke.pipeline(task, model=repo)
    assert isinstance(pipe, luke.Pipeline) and pipe.task.name == task and pipe.labels == RELEASED[name][2]
    records = INPUTS[task]
    ours = pipe(records)
    assert ours == run_predict(capsys, task, repo, records, tmp_path)
    json.dumps(ours)  # plain, JSON-ready dicts
    assert _same(pipe(records[1]), ours[1])  # one input -> one dict
    assert _same(pipe(records, batch_size=1), ours)  # batching changes nothing


def test_pipeline_takes_the_task_from_the_model_and_python_values(hf_cache, bpe, tmp_path):  # noqa: F811
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-open-entity")
    pipe = luke.pipeline(model=repo)
    assert pipe.task.name == "entity_typing"
    out = pipe({"text": TYPING_INPUTS[0]["text"], "span": tuple(TYPING_INPUTS[0]["span"])})
    assert out["labels"] == theirs_typing(repo, TYPING_INPUTS[:1])[0][0]
    ner = luke.pipeline("ner", model=add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-conll-2003"))
    text = " ".join(NER_INPUTS[0]["tokens"])
    assert ner(text) == ner({"text": text})  # a plain string is a text
    tacred = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-tacred")
    relations = luke.pipeline("relation-classification", model=tacred, top_k=2)
    assert len(relations(RELATION_INPUTS[0])["top"]) == 2 and len(relations(RELATION_INPUTS[0], top_k=4)["top"]) == 4


def test_pipeline_errors_are_one_line_and_name_the_input(hf_cache, bpe, tmp_path):  # noqa: F811
    repo = add_released(hf_cache, tmp_path, bpe, "luke-large-finetuned-open-entity")
    with pytest.raises(CheckpointError, match=r"holds a model for entity_typing, not for task ner") as err:
        luke.pipeline("ner", model=repo)
    assert "\n" not in str(err.value) and repo in str(err.value)
    with pytest.raises(CheckpointError, match="studio-ousia/missing"):
        luke.pipeline(model="studio-ousia/missing")
    pipe = luke.pipeline("entity_typing", model=repo)
    with pytest.raises(DataError, match=r"^input:2: .*out of range"):
        pipe([TYPING_INPUTS[0], {"text": "Sam", "span": [0, 9]}])
    with pytest.raises(ConfigError, match="batch_size"):
        luke.pipeline("entity_typing", model=repo, batch_size=0)
    assert pipe([]) == []
