"""Building the model + tokenizer a task starts from, and loading fine-tuned folders.

Starting points (``--model``):

* a BERT/RoBERTa ``transformers`` folder (e.g. MiniLM): word side loaded, entity side new
  (:func:`luke.checkpoint.init_from_transformers`);
* a LUKE folder (ours or ``transformers``'), with its entity vocabulary (``entity_vocab.json`` or inside
  ``tokenizer_config.json``): entity-table surgery below.

Vocabulary surgery (spec §3.0, ``transformers`` flavour): the word vocabulary gets the markers ``<ent>``
(initialised from ``@``) and ``<ent2>`` (from ``#``); the entity table is replaced by a 4-row table
``[PAD], [UNK], [MASK], [MASK2]`` copied from the pretrained rows (``[MASK2]`` from ``[MASK]`` when the
checkpoint has none).  The legacy code kept ``[PAD], [MASK]`` (+ a second ``[MASK]`` copy for relations)
and used ``[ENTITY]``/``[HEAD]``/``[TAIL]`` markers; we follow ``transformers`` so that fine-tuned folders
work with its LUKE classes and tokenizer conventions, and keep ``[UNK]`` because both tokenizers require it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from luke.checkpoint import (
    check_config_matches,
    init_entities_from_words,
    init_from_transformers,
    load_state_dict,
    read_state_dict,
    title_token_ids,
)
from luke.config import LukeConfig
from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError, ConfigError, TokenizerError, shorten
from luke.files import read_json
from luke.modeling import MODEL_CLASSES, LukePreTrainedModel
from luke.tokenization import LukeTokenizer

__all__ = [
    "build_for_finetuning",
    "finetuned_task",
    "finetuned_tokenizer",
    "load_finetuned",
    "marker_init",
    "model_folder",
    "to_transformers",
]

logger = logging.getLogger(__name__)
TASK_FILE = "luke_task.json"
#: heads that predict answer spans (start/end logits), not classes: their config may have no id2label
_SPAN_HEADS = ("LukeForQuestionAnswering",)
#: head tensors a starting checkpoint may carry; the task model starts its own head fresh
_HEADS = ("classifier.", "qa_outputs.", "lm_head.", "entity_predictions.")


def _model_type(folder: Path) -> str:
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a model folder (no config.json)")
    return str(read_json(path, dict).get("model_type", ""))


def marker_init(tokenizer: LukeTokenizer) -> dict[int, int]:
    """Rows that initialise the entity markers: ``<ent>`` from ``@``, ``<ent2>`` from ``#`` (when in the vocabulary)."""
    init = {}
    for marker_id, source in ((tokenizer.entity_1_token_id, "@"), (tokenizer.entity_2_token_id, "#")):
        src = tokenizer.convert_tokens_to_ids(source)
        if src is not None:
            init[marker_id] = src
    return init


def _luke_config(folder: Path, id2label: dict[int, str], entity_aware_attention: bool, **changes: Any) -> LukeConfig:
    """The folder's config for a new task head (``changes`` are further config fields)."""
    config = LukeConfig.from_pretrained(folder)
    config.use_entity_aware_attention = entity_aware_attention
    for key, value in changes.items():
        setattr(config, key, value)
    config.id2label, config.label2id, config.architectures = id2label, None, None
    config.__post_init__()
    return config


def _luke_state(folder: Path) -> dict[str, torch.Tensor]:
    """The folder's weights under ``LukeModel`` names."""
    return {k.removeprefix("luke."): v for k, v in read_state_dict(folder).items()}


def _load_luke(
    folder: Path, cls: type, config: LukeConfig, state: dict[str, torch.Tensor], seed: int
) -> LukePreTrainedModel:
    """A ``cls`` model with ``state`` loaded and a fresh head (drawn per module from ``seed``),
    except the heads ``cls.pretrained_heads`` names (entity disambiguation's masked-entity head), which are
    loaded and must be there."""
    kept = getattr(cls, "pretrained_heads", ())
    check = getattr(cls, "check_checkpoint", None)
    if check is not None:
        check(folder, config.entity_vocab_size, state, LukeConfig.from_pretrained(folder).architectures)
    state = {k: v for k, v in state.items() if k.startswith(kept) or not k.startswith(_HEADS)}
    if "embeddings.word_embeddings.weight" not in state:
        raise CheckpointError(f"{folder}: the weights hold no word embeddings (embeddings.word_embeddings.weight)")
    check_config_matches(config, {k: tuple(v.shape) for k, v in state.items()}, folder)  # before allocating
    torch.manual_seed(seed)
    model = cls(config)
    report = load_state_dict(model, state, expected_missing=_HEADS)
    model.init_by_name(report.fresh_keys, seed)  # the head from the seed alone (an ablation changes no draw)
    return model


def _from_words_model(
    folder: Path, cls: type, vocab: EntityVocab, id2label: dict[int, str], seed: int, entity_aware_attention: bool
) -> LukePreTrainedModel:
    """``cls`` with a BERT/RoBERTa folder's word side and a new entity table for ``vocab``."""
    src = read_json(folder / "config.json", dict)
    if not isinstance(src.get("hidden_size"), int) or isinstance(src.get("hidden_size"), bool):
        raise CheckpointError(
            f"{folder / 'config.json'}: hidden_size must be an integer, got {src.get('hidden_size')!r}"
        )
    model, _ = init_from_transformers(
        folder, cls, entity_vocab_size=len(vocab), entity_emb_size=src["hidden_size"], seed=seed, id2label=id2label,
        use_entity_aware_attention=entity_aware_attention,
    )  # fmt: skip
    return model


def _keeping_entity_vocab(
    folder: Path, kind: str, cls: type, id2label: dict[int, str], opts: dict[str, Any]
) -> tuple[LukePreTrainedModel, LukeTokenizer]:
    """SQuAD's start: a LUKE folder as it is, or a BERT/RoBERTa folder with a table for ``--entity-vocab``."""
    vocab_path, mention = opts["entity_vocab_path"], opts["max_mention_length"]
    if kind == "luke":
        if vocab_path is not None:
            raise ConfigError(f"{folder} is a LUKE folder with its own entity vocabulary; drop --entity-vocab")
        tokenizer = LukeTokenizer.from_pretrained(folder, max_mention_length=mention)
        config = _luke_config(folder, id2label, opts["entity_aware_attention"])
        model = _load_luke(folder, cls, config, _luke_state(folder), opts["seed"])
        model_vocab = tokenizer.entity_vocab
    else:
        # Without a vocabulary only the special entities exist (words-only QA, e.g. --no-entity).
        model_vocab = EntityVocab.load(vocab_path) if vocab_path is not None else EntityVocab.from_counts([])
        tokenizer = LukeTokenizer.from_pretrained(folder, entity_vocab=model_vocab, max_mention_length=mention)
        model = _from_words_model(folder, cls, model_vocab, id2label, opts["seed"], opts["entity_aware_attention"])
        if opts["entity_init"] == "words":
            backend = tokenizer.backend_tokenizer

            def encode(texts: list[str]) -> list[list[int]]:
                return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]

            n = init_entities_from_words(model, title_token_ids(model_vocab, encode))
            logger.info("initialised %d entity embeddings from their titles' word embeddings", n)
    if len(model_vocab) != model.config.entity_vocab_size:
        raise CheckpointError(
            f"{folder}: entity vocabulary has {len(model_vocab)} entries but the model's entity table has "
            f"{model.config.entity_vocab_size} rows"
        )
    return model, tokenizer


def _luke_with_new_table(
    folder: Path, cls: type, id2label: dict[int, str], opts: dict[str, Any]
) -> tuple[LukePreTrainedModel, LukeTokenizer]:
    """A LUKE folder with the entity-table surgery (module docstring): the 4 special rows are kept."""
    old_vocab = EntityVocab.from_pretrained(folder)  # a file, or inside tokenizer_config.json (transformers 5)
    vocab = EntityVocab.from_counts([])  # [PAD], [UNK], [MASK], [MASK2]
    tokenizer = LukeTokenizer.from_pretrained(folder, entity_vocab=vocab, max_mention_length=opts["max_mention_length"])
    config = _luke_config(folder, id2label, opts["entity_aware_attention"], entity_vocab_size=len(vocab))
    state = _luke_state(folder)
    table = state["entity_embeddings.entity_embeddings.weight"]
    rows = [old_vocab.pad_id, old_vocab.unk_id, old_vocab.mask_id, old_vocab.mask2_id or old_vocab.mask_id]
    state["entity_embeddings.entity_embeddings.weight"] = table[rows].clone()
    return _load_luke(folder, cls, config, state, opts["seed"]), tokenizer


def _words_with_new_table(
    folder: Path, cls: type, id2label: dict[int, str], opts: dict[str, Any]
) -> tuple[LukePreTrainedModel, LukeTokenizer]:
    """A BERT/RoBERTa folder with a new 4-row entity table (``[MASK]`` from the ``[MASK]`` word with
    ``entity_init="words"``; ``[MASK2]`` a copy of ``[MASK]``)."""
    vocab = EntityVocab.from_counts([])  # [PAD], [UNK], [MASK], [MASK2]
    tokenizer = LukeTokenizer.from_pretrained(folder, entity_vocab=vocab, max_mention_length=opts["max_mention_length"])
    model = _from_words_model(folder, cls, vocab, id2label, opts["seed"], opts["entity_aware_attention"])
    if opts["entity_init"] == "words":
        # The [MASK] entity starts as the [MASK] word: at its mention's (averaged) positions it then gathers
        # its context the way the word encoder's masked words do (positions/types/LayerNorm from words).
        mask_word = tokenizer.convert_tokens_to_ids(tokenizer.mask_token)
        init_entities_from_words(model, {vocab.mask_id: [mask_word]})
    with torch.no_grad():  # [MASK2] starts as a copy of [MASK], as transformers' conversion does
        table = model.luke.entity_embeddings.entity_embeddings.weight
        table[vocab.mask2_id] = table[vocab.mask_id]
    return model, tokenizer


def build_for_finetuning(
    model_path: str | Path,
    model_class_name: str,
    labels: list[str],
    *,
    seed: int = 0,
    max_mention_length: int = 30,
    keep_entity_vocab: bool = False,
    entity_vocab_path: str | Path | None = None,
    entity_init: str = "random",
    entity_aware_attention: bool = True,
    revision: str | None = None,
) -> tuple[LukePreTrainedModel, LukeTokenizer]:
    """The model to fine-tune (``model_class_name`` head with ``len(labels)`` classes) and its tokenizer.

    With ``keep_entity_vocab`` (SQuAD's real entity ids) there is no entity-table surgery: a LUKE folder
    keeps its table and vocabulary; a BERT/RoBERTa folder gets a new table for ``entity_vocab_path``,
    initialised at random or, with ``entity_init="words"``, from the word embeddings of each title (see
    :func:`luke.checkpoint.init_entities_from_words`).  For the other tasks from a BERT/RoBERTa folder,
    ``entity_init="words"`` starts the ``[MASK]`` entity as the ``[MASK]`` word embedding and the entity
    positions, token types and LayerNorm as the word side's (the default draws them at random).
    ``entity_aware_attention=False`` fine-tunes with vanilla self-attention (the ablation; the model then
    has no ``w2e/e2w/e2e`` query weights).  ``revision``: of ``model_path`` when it is a Hub repo id."""
    if entity_init not in ("random", "words"):
        raise ConfigError(f"--entity-init must be 'random' or 'words', got {entity_init!r}")
    folder = model_folder(model_path, revision=revision)
    cls = MODEL_CLASSES[model_class_name]
    id2label = dict(enumerate(labels))
    kind = _model_type(folder)
    if kind == "luke" and entity_init != "random":
        raise ConfigError(f"--entity-init {entity_init} is for BERT/RoBERTa starts; {folder} is a LUKE folder")
    opts = {"seed": seed, "max_mention_length": max_mention_length, "entity_vocab_path": entity_vocab_path,
            "entity_init": entity_init, "entity_aware_attention": entity_aware_attention}  # fmt: skip
    if getattr(cls, "pretrained_heads", ()) and kind != "luke":
        raise CheckpointError(
            f"{folder} is a {kind!r} model: {model_class_name} starts from a pretrained LUKE folder with its "
            f"{', '.join(h.rstrip('.') for h in cls.pretrained_heads)} head (LukeForMaskedLM)"
        )
    if keep_entity_vocab:
        model, tokenizer = _keeping_entity_vocab(folder, kind, cls, id2label, opts)
    elif kind == "luke":
        model, tokenizer = _luke_with_new_table(folder, cls, id2label, opts)
    elif kind in ("bert", "roberta", "xlm-roberta", "camembert"):
        model, tokenizer = _words_with_new_table(folder, cls, id2label, opts)
    else:
        raise CheckpointError(f"{folder}: model_type {kind!r} is neither LUKE nor BERT/RoBERTa-like")
    if len(tokenizer) != model.config.vocab_size:
        model.resize_token_embeddings(len(tokenizer), init_from=marker_init(tokenizer))
    model.train()
    return model, tokenizer


#: ``tokenizer_config.json`` ``task`` of the released fine-tuned checkpoints -> our task
TOKENIZER_TASKS = {
    "entity_classification": "entity_typing",
    "entity_pair_classification": "relation_classification",
    "entity_span_classification": "ner",
}


def model_folder(model_path: str | Path, **hub_kwargs: Any) -> Path:
    """``model_path`` as a folder: an existing local folder as it is, else a Hub repo id (``org/name``, a string)
    through :func:`luke.hub.resolve_pretrained` (the Hugging Face cache first; ``hub_kwargs``: ``revision``,
    ``cache_dir``, ``local_files_only``, ``token``); :class:`CheckpointError` saying what it is otherwise."""
    folder = Path(model_path)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"model folder {folder} is a file; give the folder that holds config.json")
    if folder.is_dir():
        return folder
    from luke.hub import is_repo_id, resolve_pretrained

    if is_repo_id(model_path):
        return resolve_pretrained(model_path, files="model", **hub_kwargs)
    raise CheckpointError(f"model folder {folder} does not exist")


def _task_of(model_class_name: str) -> str | None:
    from luke.finetuning.tasks import TASKS

    return next((name for name, cls in TASKS.items() if cls.model_class_name == model_class_name), None)


def finetuned_task(folder: Path, config: LukeConfig | None = None) -> tuple[str | None, str]:
    """The task a fine-tuned folder was trained for (``luke_task.json``, else its head class in
    ``architectures``, checked against ``tokenizer_config.json``'s ``task``), or None; and a few words
    saying what the folder holds, for messages."""
    config = config or LukeConfig.from_pretrained(folder)
    archs = [a for a in config.architectures or [] if isinstance(a, str)]
    if (folder / TASK_FILE).is_file():
        task = read_json(folder / TASK_FILE, expected=dict).get("task")
        if isinstance(task, str):
            return task, f"a model for {task} ({', '.join(archs) or 'no head'})"
    by_head = next((t for t in map(_task_of, archs) if t is not None), None)
    tok_task = None
    if (folder / "tokenizer_config.json").is_file():
        tok_task = read_json(folder / "tokenizer_config.json", expected=dict).get("task")
    by_tokenizer = TOKENIZER_TASKS.get(tok_task) if isinstance(tok_task, str) else None
    if by_head and by_tokenizer and by_head != by_tokenizer:
        raise CheckpointError(
            f"{folder}: config.json architectures {archs} are for {by_head} but tokenizer_config.json task "
            f"{tok_task!r} is for {by_tokenizer}: the files come from different models"
        )
    if by_head is None:
        return None, f"a LUKE model without a task head (architectures: {', '.join(archs) or 'none'})"
    return by_head, f"a model for {by_head} ({next(a for a in archs if _task_of(a))})"


def _transformers_task_state(folder: Path, config: LukeConfig) -> dict[str, Any]:
    """What ``luke_task.json`` would say for a ``transformers`` fine-tuned folder (the released ones): its
    labels are ``config.id2label`` (the caller's fallback) and its options the task's defaults (the paper
    recipe the checkpoints were trained with, spec §3.1-3.3) except ``max_seq_length``, capped at the
    model's word positions (``max_position_embeddings - pad_token_id - 1``: 512 for LUKE's 514)."""
    from luke.finetuning.options import TaskOptions

    capacity = int(config.max_position_embeddings)
    if getattr(config, "word_position_style", "roberta") == "roberta":  # words at pad_token_id + 1 onwards
        capacity -= int(config.pad_token_id or 0) + 1
    options = {"max_seq_length": capacity} if 3 <= capacity < TaskOptions.max_seq_length else {}
    return {"options": options, "source": "transformers"}


def finetuned_tokenizer(
    name: str, folder: Path, config: LukeConfig, tokenizer_path: str | Path | None, hub_kwargs: dict[str, Any]
) -> LukeTokenizer:
    """The tokenizer of a fine-tuned model (its own, or ``tokenizer_path``), checked against the model's word
    table: a tokenizer with more words than ``config.vocab_size`` would index past it, and another tokenizer
    of a different size has another vocabulary (silently wrong ids).  The model's own tokenizer may have
    fewer words than the table (tables padded to a round size, as the released checkpoints are)."""
    from luke.hub import resolve_pretrained

    shown = tokenizer_path if tokenizer_path is not None else folder
    try:
        tok_folder = (
            folder if tokenizer_path is None else resolve_pretrained(tokenizer_path, files="tokenizer", **hub_kwargs)
        )
        tokenizer = LukeTokenizer.from_pretrained(tok_folder)
    except ValueError as err:
        raise TokenizerError(f"cannot load the tokenizer from {shown} ({err}); pass --tokenizer FOLDER") from None
    own = Path(tok_folder).resolve() == folder.resolve()
    size, rows = len(tokenizer), config.vocab_size
    if size > rows or (not own and size != rows):
        whose = "its own tokenizer" if own else f"the tokenizer {tokenizer_path}"
        raise TokenizerError(
            f"{whose} has {size} word tokens but the model {name} has {rows} word embeddings (config.json "
            "vocab_size): not the tokenizer the model was trained with"
        )
    return tokenizer


def load_finetuned(
    model_path: str | Path,
    model_class_name: str,
    task_name: str,
    tokenizer_path: str | Path | None = None,
    **hub_kwargs: Any,
) -> tuple[LukePreTrainedModel, LukeTokenizer, dict[str, Any]]:
    """A fine-tuned folder or Hub repo id (written here or by ``transformers``, e.g. the released
    ``studio-ousia/luke-large-finetuned-*``) for ``task_name``: model, tokenizer and the task state
    (``luke_task.json``; without it, labels from ``config.id2label`` and the task's default options).
    A folder for another task (or with no task head) raises :class:`CheckpointError` saying what it holds."""
    folder = model_folder(model_path, **hub_kwargs)
    name = str(model_path)
    kind = _model_type(folder)
    if kind != "luke":
        raise CheckpointError(f"{name} is not a fine-tuned LUKE model (model_type {kind!r}, not 'luke')")
    config = LukeConfig.from_pretrained(folder)
    archs = config.architectures or []
    found, what = finetuned_task(folder, config)
    if model_class_name not in archs or found not in (None, task_name):
        holds = f"holds a model for {found}" if found else f"holds {what}"
        raise CheckpointError(f"{name} {holds}, not for task {task_name} ({model_class_name})")
    state: dict[str, Any] = (
        read_json(folder / TASK_FILE, expected=dict)  # bad UTF-8 / JSON: DataError with file and line
        if (folder / TASK_FILE).is_file()
        else _transformers_task_state(folder, config)
    )
    id2label = config.id2label or ({0: "start", 1: "end"} if model_class_name in _SPAN_HEADS else None)
    if not id2label:
        raise CheckpointError(f"{folder}/config.json has no id2label: not a fine-tuned classification model")
    model = MODEL_CLASSES[model_class_name].from_pretrained(folder)
    tokenizer = finetuned_tokenizer(name, folder, config, tokenizer_path, hub_kwargs)
    labels = state.get("labels") or [id2label[i] for i in range(len(id2label))]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise CheckpointError(f"{folder / TASK_FILE}: 'labels' must be a list of strings, got {shorten(labels)}")
    if len(labels) != len(id2label):
        raise CheckpointError(
            f"{folder / TASK_FILE} lists {len(labels)} labels but the model in {folder} has {len(id2label)} "
            "(config.json id2label): the files come from different models"
        )
    state["labels"] = labels
    state["folder"] = str(folder)
    return model, tokenizer, state


class WordsOnlyQA(nn.Module):
    """``transformers.BertForQuestionAnswering`` (or RoBERTa's) behind the task batch: entity inputs are
    dropped, so the SQuAD loop can train the plain word model beside LUKE (the issue's baseline)."""

    _WORD_KEYS = ("input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions")

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, **batch: Any) -> Any:
        return self.inner(**{k: v for k, v in batch.items() if k in self._WORD_KEYS})

    def save_pretrained(self, folder: str | Path) -> None:
        self.inner.save_pretrained(str(folder))


def to_transformers(model: nn.Module, tmp_dir: str | Path, source: str | Path | None = None) -> nn.Module:
    """The same weights in the matching ``transformers`` LUKE class (saved to and loaded from ``tmp_dir``).

    For question answering from a BERT/RoBERTa ``source`` folder the baseline is that architecture's own
    ``*ForQuestionAnswering`` class loaded from ``source`` (the same word weights, no entities)."""
    import transformers

    if type(model).__name__ == "LukeForQuestionAnswering" and source is not None:
        folder = model_folder(source)
        if _model_type(folder) != "luke":
            inner = transformers.AutoModelForQuestionAnswering.from_pretrained(str(folder))
            inner.train(model.training)
            return WordsOnlyQA(inner)
    cls = getattr(transformers, type(model).__name__, None)
    if cls is None:
        raise ConfigError(f"transformers has no {type(model).__name__} class: --backend transformers is not available")
    model.save_pretrained(tmp_dir)
    out = cls.from_pretrained(str(tmp_dir))
    out.train(model.training)
    return out
