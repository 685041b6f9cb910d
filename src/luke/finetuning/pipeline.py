"""``luke.pipeline``: a fine-tuned model as a Python callable, the ``luke predict`` of code.

The model and tokenizer are loaded once; each call featurises its inputs with the task's own reader and
featurisation, runs the model in batches and decodes with the task's own decoding
(:func:`luke.finetuning.commands.predict_records`, which ``luke predict`` runs too), so a call returns
exactly the records ``luke predict`` writes, as plain dicts::

    import luke

    typing = luke.pipeline("entity_typing", model="studio-ousia/luke-large-finetuned-open-entity")
    typing({"text": "Beyoncé lives in Los Angeles.", "span": [0, 7]})
    # {"text": ..., "span": [0, 7], "labels": ["person"], "scores": {"entity": 0.03, ..., "person": 0.98, ...}}

    ner = luke.pipeline(model="studio-ousia/luke-large-finetuned-conll-2003")  # task from the model
    ner(["Beyoncé lives in Los Angeles.", {"tokens": ["Ann", "met", "Bob"]}])
    # [{"text": ..., "entities": [{"start": 0, "end": 7, "text": "Beyoncé", "type": "PER", "score": 0.99}, ...]}, ...]

Inputs per task (character offsets, end exclusive; tuples are accepted where lists are):

* ``entity_typing``: ``{"text", "span": [start, end]}``;
* ``relation_classification``: ``{"text", "head": [s, e], "tail": [s, e]}``;
* ``ner``: ``{"text"}`` (or a plain string) or ``{"tokens": [...]}``;
* ``squad``: ``{"question", "context", optional "id"}``;
* ``record``: ``{"passage", "query" (with "@placeholder"), "entities": [[s, e], ...], optional "id"}``.

A bad input raises :class:`~luke.errors.DataError` naming its position in the list (``input:2: ...``,
counted from 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from luke.errors import CheckpointError, ConfigError, DataError, shorten

__all__ = ["Pipeline", "pipeline"]

_INPUT = "input"  # the "file" name DataError messages give the inputs of a call


def _plain(value: Any) -> Any:
    """A JSON-like copy of an input (tuples become lists, as a JSON round trip would make them)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def check_device(device: str | None) -> None:
    """Refuse a ``device=`` argument other than None (a GPU when there is one), ``"cpu"`` or ``"cuda"``, and
    ``"cuda"`` without a CUDA device (the Python APIs' rule: :func:`pipeline`, ``EntityLinker``)."""
    if device not in (None, "cpu", "cuda"):
        raise ConfigError(f"device must be None (a GPU when there is one), 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' but no CUDA device is available (use device='cpu' or None)")


class Pipeline:
    """A fine-tuned LUKE model for one task, loaded once, called on raw inputs (see the module docstring).

    Build it with :func:`pipeline`.  Attributes: ``task`` (the :class:`~luke.finetuning.tasks.base.Task`,
    with its labels and options), ``model``, ``tokenizer``, ``batch_size``, ``top_k``.

    Example::

        >>> relations = luke.pipeline("relation_classification", model="studio-ousia/luke-large-finetuned-tacred")
        >>> relations({"text": "Ann works for Acme.", "head": (0, 3), "tail": (14, 18)}, top_k=3)
        {'text': ..., 'head': [0, 3], 'tail': [14, 18], 'relation': 'per:employee_of', 'score': 0.91,
         'top': [{'relation': 'per:employee_of', 'score': 0.91}, ...]}
    """

    def __init__(
        self, task: Any, model: Any, tokenizer: Any, *, batch_size: int = 32, top_k: int = 5, device: str | None = None
    ) -> None:
        from luke.finetuning.trainer import make_accelerator

        for name, value in (("batch_size", batch_size), ("top_k", top_k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer of at least 1, got {value!r}")
        check_device(device)
        self.task, self.tokenizer = task, tokenizer
        self.batch_size, self.top_k = batch_size, top_k
        self._accelerator = make_accelerator(cpu=device == "cpu")
        self.model = self._accelerator.prepare_model(model, evaluation_mode=True)
        self.model.eval()

    def __call__(
        self,
        inputs: Mapping[str, Any] | str | Sequence[Mapping[str, Any] | str],
        *,
        batch_size: int | None = None,
        top_k: int | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Predictions for one input (a dict, or a string for NER) or a list of them: the same records
        ``luke predict`` writes (the decision and its scores), one per input, in order."""
        single = isinstance(inputs, Mapping | str)
        if not single and not isinstance(inputs, Iterable):
            what = "None" if inputs is None else f"a {type(inputs).__name__}"
            raise DataError(_INPUT, f"expected an input (a dict, or a string for NER) or a list of them, got {what}", 1)
        items = [inputs] if single else list(inputs)  # type: ignore[list-item]
        records = [(i, {"text": x} if isinstance(x, str) else _plain(x)) for i, x in enumerate(items, start=1)]
        if not records:
            return []
        from luke.finetuning.commands import predict_records

        self.task.top_k = self.top_k if top_k is None else top_k
        outputs = predict_records(
            self.task, self.model, self.tokenizer, records, _INPUT,
            batch_size=batch_size or self.batch_size, accelerator=self._accelerator,
        )  # fmt: skip
        return outputs[0] if single else outputs

    @property
    def labels(self) -> list[str]:
        """The model's labels (index = class id)."""
        return list(self.task.labels or [])

    def __repr__(self) -> str:
        return f"Pipeline(task={self.task.name!r}, labels={len(self.labels)}, batch_size={self.batch_size})"


def pipeline(
    task: str | None = None,
    model: str | Path | None = None,
    *,
    tokenizer: str | Path | None = None,
    batch_size: int = 32,
    top_k: int = 5,
    device: str | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
) -> Pipeline:
    """A :class:`Pipeline` for ``task`` with the fine-tuned ``model``: a folder written by ``luke finetune``
    or by ``transformers``, or a Hugging Face Hub repo id such as
    ``studio-ousia/luke-large-finetuned-open-entity`` (the cache first; ``revision``, ``cache_dir``,
    ``local_files_only``, ``token`` as in ``transformers``).

    Args:
        task: ``entity_typing``, ``relation_classification``, ``ner``, ``squad`` or ``record`` (``-`` may
            stand for ``_``); None takes the model's own task (``luke_task.json``, else its head class).
        model: the fine-tuned model (required).
        tokenizer: another tokenizer folder or repo id (default: the model's).
        batch_size: inputs per forward pass.
        top_k: alternatives each prediction lists (relations: ``top``; SQuAD/ReCoRD: ``n_best``); a call
            may override it.
        device: None (a GPU when there is one), ``"cpu"`` or ``"cuda"`` (a :class:`ConfigError` when
            there is no CUDA device).

    Returns:
        The callable :class:`Pipeline`.

    Raises:
        CheckpointError: the model is missing, not a fine-tuned LUKE model, or for another task (one line
            saying what it holds).
        ConfigError: a bad ``batch_size``, ``top_k`` or ``device`` (``"cuda"`` without a CUDA device).
        TokenizerError: ``tokenizer`` does not fit the model's word table (another vocabulary).

    Example::

        >>> import luke
        >>> typing = luke.pipeline("entity_typing", model="studio-ousia/luke-large-finetuned-open-entity")
        >>> typing([{"text": "Beyoncé lives in Los Angeles.", "span": [0, 7]}])
        [{'text': 'Beyoncé lives in Los Angeles.', 'span': [0, 7], 'labels': ['person'], 'scores': {...}}]
    """
    from luke.finetuning.commands import load_task_model
    from luke.finetuning.model_io import _model_type, finetuned_task, model_folder

    if model is None:
        raise ConfigError("luke.pipeline needs model= (a fine-tuned folder or Hub repo id)")
    check_device(device)  # before loading the model
    hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
    hub = {k: v for k, v in hub.items() if v is not None}
    if task is None:
        folder = model_folder(model, **hub)
        kind = _model_type(folder)
        if kind != "luke":
            raise CheckpointError(
                f"{model} is a {shorten(kind)!r} model, not LUKE: luke.pipeline needs a fine-tuned LUKE model"
            )
        task, what = finetuned_task(folder)
        if task is None:
            raise CheckpointError(f"{model} holds {what}: no task to run; fine-tune it first (luke finetune)")
    task_model, model_obj, tok = load_task_model(task.replace("-", "_"), model, tokenizer, **hub)
    return Pipeline(task_model, model_obj, tok, batch_size=batch_size, top_k=top_k, device=device)
