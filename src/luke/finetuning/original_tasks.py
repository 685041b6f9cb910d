"""Original task checkpoints (the ``--checkpoint-file`` of the 2020–21 README) as fine-tuned folders.

The paper-era fine-tuning code (``examples/legacy/*``, spec §3 and §4.2) saved each task model as a plain
``pytorch_model.bin`` state dict of a ``LukeEntityAwareAttentionModel`` subclass: the encoder keys without
any prefix (``embeddings.*``, ``entity_embeddings.*``, ``encoder.layer.N.*`` with the ``w2e/e2w/e2e``
queries, ``pooler.*``), the task head under its own name, a word table enlarged by the task's marker
tokens and an entity table shrunk to ``[PAD]`` plus copies of ``[MASK]`` (SQuAD keeps the full table).
The model config is not in the file: it is the archive's (``metadata.json``), so a conversion needs both.

:func:`convert_task_checkpoint` maps such a file onto the layout ``luke finetune`` writes
(``transformers`` keys, ``config.json`` with ``id2label``, tokenizer files, ``luke_task.json``):

=========================  =====================  ====================  ========================================
task (legacy command)      original head          our head              markers -> ``<ent>``, ``<ent2>``
=========================  =====================  ====================  ========================================
entity_typing              ``typing.*``           ``classifier.*``      ``[ENTITY]`` -> ``<ent>``
relation_classification    ``classifier.weight``  ``classifier.weight`` ``[HEAD]`` -> ``<ent>``, ``[TAIL]`` ->
                           (no bias)                                    ``<ent2>``
ner                        ``classifier.*`` (3H)  ``classifier.*``      none
record (entity-span-qa)    ``scorer.*``           ``classifier.*``      ``[ENTITY]`` -> ``<ent>``,
                                                                        ``[PLACEHOLDER]`` -> ``<ent2>``
                                                                        (``[HIGHLIGHT]`` is dropped: our
                                                                        reader writes highlights as ``"; "``)
squad (reading-comp.)      ``qa_outputs.*``       ``qa_outputs.*``      none
=========================  =====================  ====================  ========================================

Entity table: the legacy rows ``[PAD], [MASK] (, [MASK])`` become ours, ``[PAD], [UNK], [MASK], [MASK2]``:
``[PAD]`` and ``[MASK]`` are the task file's rows 0 and 1, ``[MASK2]`` its row 2 (relations: the object
entity, which the legacy code gave id 2) or a copy of row 1, and ``[UNK]`` (which the legacy tasks never
used) the archive's ``[UNK]`` row.  SQuAD keeps the task file's full table with the archive's entity
vocabulary.  A marker the task never used (``<ent2>`` for typing, both for NER and SQuAD) starts as the
``@`` / ``#`` word row, as ``transformers``' conversion does.

Labels are in the order the original task code used (its classifier rows): Open Entity's 9 general types
sorted, TACRED's ``no_relation`` + the 41 relations sorted, CoNLL-2003's ``NIL, MISC, PER, ORG, LOC``
(not sorted).  A checkpoint fine-tuned on other data takes ``labels=`` (one per classifier row).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from luke.checkpoint import (
    convert_to_roberta_positions,
    load_original_archive,
    load_state_dict,
    read_state_dict,
)
from luke.entity_vocab import EntityVocab
from luke.errors import CheckpointError, ConfigError, TokenizerError, shorten
from luke.files import text_lines
from luke.finetuning.tasks import TASKS, Task
from luke.modeling import MODEL_CLASSES, LukePreTrainedModel
from luke.tokenization import LukeTokenizer

__all__ = [
    "ORIGINAL_TASKS",
    "OriginalTaskLayout",
    "OPEN_ENTITY_LABELS",
    "TACRED_LABELS",
    "CONLL_LABELS",
    "convert_task_checkpoint",
    "read_labels_file",
]

logger = logging.getLogger(__name__)

#: Open Entity (ERNIE release): the sorted set of the training labels = the 9 general types
OPEN_ENTITY_LABELS: tuple[str, ...] = (
    "entity", "event", "group", "location", "object", "organization", "person", "place", "time",
)  # fmt: skip
_TACRED_RELATIONS = (
    "org:alternate_names", "org:city_of_headquarters", "org:country_of_headquarters", "org:dissolved",
    "org:founded", "org:founded_by", "org:member_of", "org:members", "org:number_of_employees/members",
    "org:parents", "org:political/religious_affiliation", "org:shareholders",
    "org:stateorprovince_of_headquarters", "org:subsidiaries", "org:top_members/employees", "org:website",
    "per:age", "per:alternate_names", "per:cause_of_death", "per:charges", "per:children",
    "per:cities_of_residence", "per:city_of_birth", "per:city_of_death", "per:countries_of_residence",
    "per:country_of_birth", "per:country_of_death", "per:date_of_birth", "per:date_of_death", "per:employee_of",
    "per:origin", "per:other_family", "per:parents", "per:religion", "per:schools_attended", "per:siblings",
    "per:spouse", "per:stateorprovince_of_birth", "per:stateorprovince_of_death",
    "per:stateorprovinces_of_residence", "per:title",
)  # fmt: skip
#: TACRED: ``no_relation`` first, then the other training labels sorted (42 classes)
TACRED_LABELS: tuple[str, ...] = ("no_relation", *sorted(_TACRED_RELATIONS))
#: CoNLL-2003 as the legacy NER code listed it (``NIL`` = not an entity), not sorted
CONLL_LABELS: tuple[str, ...] = ("NIL", "MISC", "PER", "ORG", "LOC")


@dataclass(frozen=True)
class OriginalTaskLayout:
    """What an original task checkpoint holds beyond the encoder, and where it goes.

    Attributes:
        task: our task name (``luke finetune TASK``).
        command: the legacy ``examples.cli`` command that wrote such files.
        head: original head key -> (our key, shape as a function of hidden size H and label count C).
        markers: the marker tokens the legacy code appended to the word table, in order.
        ent_markers: index into ``markers`` of the rows that become ``<ent>`` and ``<ent2>`` (None: the
            ``@`` / ``#`` word row, the task does not use that marker).
        entity_rows: rows of the legacy entity table that become ``[PAD]``, ``[MASK]``, ``[MASK2]``; None:
            the full table is kept (SQuAD).
        labels: the label list (classifier row order) of the published dataset; None: ask the task.
    """

    task: str
    command: str
    head: dict[str, tuple[str, Any]]
    markers: tuple[str, ...] = ()
    ent_markers: tuple[int | None, int | None] = (None, None)
    entity_rows: tuple[int, int, int] | None = (0, 1, 1)
    labels: tuple[str, ...] | None = None

    @property
    def legacy_entity_rows(self) -> int | None:
        """Rows of the legacy entity table (None: the archive's full table)."""
        return None if self.entity_rows is None else max(self.entity_rows) + 1


ORIGINAL_TASKS: dict[str, OriginalTaskLayout] = {
    layout.task: layout
    for layout in (
        OriginalTaskLayout(
            "entity_typing", "entity-typing run",
            {"typing.weight": ("classifier.weight", lambda h, c: (c, h)),
             "typing.bias": ("classifier.bias", lambda h, c: (c,))},
            markers=("[ENTITY]",), ent_markers=(0, None), labels=OPEN_ENTITY_LABELS,
        ),
        OriginalTaskLayout(
            "relation_classification", "relation-classification run",
            {"classifier.weight": ("classifier.weight", lambda h, c: (c, 2 * h))},
            markers=("[HEAD]", "[TAIL]"), ent_markers=(0, 1), entity_rows=(0, 1, 2), labels=TACRED_LABELS,
        ),
        OriginalTaskLayout(
            "ner", "ner run",
            {"classifier.weight": ("classifier.weight", lambda h, c: (c, 3 * h)),
             "classifier.bias": ("classifier.bias", lambda h, c: (c,))},
            labels=CONLL_LABELS,
        ),
        OriginalTaskLayout(
            "record", "entity-span-qa run",
            {"scorer.weight": ("classifier.weight", lambda h, c: (1, 2 * h)),
             "scorer.bias": ("classifier.bias", lambda h, c: (1,))},
            markers=("[HIGHLIGHT]", "[PLACEHOLDER]", "[ENTITY]"), ent_markers=(2, 1),
        ),
        OriginalTaskLayout(
            "squad", "reading-comprehension run",
            {"qa_outputs.weight": ("qa_outputs.weight", lambda h, c: (2, h)),
             "qa_outputs.bias": ("qa_outputs.bias", lambda h, c: (2,))},
            entity_rows=None,
        ),
    )
}  # fmt: skip

_WORDS = "embeddings.word_embeddings.weight"
_ENTITIES = "entity_embeddings.entity_embeddings.weight"


def layout_for(task_name: str) -> OriginalTaskLayout:
    """The original checkpoint layout of ``task_name``; :class:`ConfigError` naming the choices otherwise."""
    if task_name not in ORIGINAL_TASKS:
        raise ConfigError(f"--task {shorten(task_name)!r}: unknown task; choose from {', '.join(ORIGINAL_TASKS)}")
    return ORIGINAL_TASKS[task_name]


def read_labels_file(path: str | Path) -> list[str]:
    """Labels, one per line (blank lines skipped), in the classifier's row order; duplicates refused."""
    path = Path(path)
    labels: list[str] = []
    for line, text in text_lines(path):
        label = text.strip()
        if not label:
            continue
        if label in labels:
            raise CheckpointError(f"{path}:{line}: label {shorten(label)!r} is listed twice")
        labels.append(label)
    if not labels:
        raise CheckpointError(f"{path}: no labels in the file (one label per line)")
    return labels


def _task_labels(layout: OriginalTaskLayout, labels: Sequence[str] | None) -> list[str]:
    """``labels``, or the published dataset's; the QA tasks' fixed ones (``labels`` refused there)."""
    if layout.labels is None and layout.task in TASKS:
        if labels is not None:
            raise ConfigError(f"--labels: task {layout.task} has no label list (its head scores spans)")
        task = TASKS[layout.task]()
        return list(task.labels if task.labels is not None else task.build_labels([]))
    return list(labels) if labels is not None else list(layout.labels or ())


def read_task_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a task file (or of the ``pytorch_model.bin`` in a folder): ``module.`` of a DDP save
    removed, ``position_ids`` buffers dropped."""
    if not path.exists():
        raise CheckpointError(f"--task-checkpoint {path}: no such file or folder")
    state = read_state_dict(path)
    return {k.removeprefix("module."): v for k, v in state.items() if not k.endswith(".position_ids")}


def _tasks_with_head(state: dict[str, torch.Tensor]) -> list[str]:
    """The tasks whose original head the file holds (relations' is the bias-free ``classifier``)."""
    found = [t for t, lay in ORIGINAL_TASKS.items() if set(lay.head) <= set(state)]
    return [t for t in found if not (t == "relation_classification" and "classifier.bias" in state)]


def _check_head(state: dict[str, torch.Tensor], layout: OriginalTaskLayout, path: Path, hidden: int, n: int) -> None:
    """The head tensors are there, with the shapes of ``n`` labels over hidden size ``hidden``."""
    for key in layout.head:
        if key not in state:
            others = [t for t in _tasks_with_head(state) if t != layout.task]
            hint = f"; it looks like a {others[0]} checkpoint" if others else ""
            raise CheckpointError(f"{path}: no {key} (the head of the original {layout.command} model){hint}")
    for key, (_, shape) in layout.head.items():
        want, got = shape(hidden, n), tuple(state[key].shape)
        if got != want:
            qa = layout.task in ("record", "squad")
            what = f"hidden size {hidden}" if qa else f"{n} labels and hidden size {hidden}"
            note = ""
            if layout.task == "ner" and key == "classifier.weight" and len(got) == 2 and got[1] in (hidden, 2 * hidden):
                note = " (a --no-word-feature/--no-entity-feature ablation, which the span classifier cannot hold)"
            elif got and got[0] != want[0] and not qa:
                note = f" (it has {got[0]} classes: pass --labels FILE with one label per row)"
            raise CheckpointError(
                f"{path}: {key} has shape {got}, but the {layout.task} head for {what} needs {want}{note}"
            )
    if layout.task == "relation_classification" and "classifier.bias" in state:
        raise CheckpointError(
            f"{path}: classifier.bias is not part of the original relation-classification head (bias-free); "
            "the file comes from other code"
        )


def _check_encoder(
    state: dict[str, torch.Tensor],
    ref: dict[str, tuple[int, ...]],
    layout: OriginalTaskLayout,
    path: Path,
    archive: Path,
) -> None:
    """Every encoder tensor of the archive's model is in the task file with the archive's shape (the word
    table enlarged by the task's markers, the entity table shrunk as the legacy code did); nothing else is."""
    vocab_rows = ref[_WORDS][0]
    for key, shape in ref.items():
        if key not in state:
            if key.startswith("pooler.") or _is_entity_aware_query(key):
                continue  # unused by entity heads / copied from `query`, as the legacy loader did
            raise CheckpointError(
                f"{path}: no {key}: not an original {layout.command} checkpoint of the model in {archive}"
            )
        got, want, why = tuple(state[key].shape), tuple(shape), ""
        if key == _WORDS:
            want = (vocab_rows + len(layout.markers), shape[1])
            marks = f" + the marker(s) {', '.join(layout.markers)}" if layout.markers else ""
            why = f" ({vocab_rows:,} words{marks})"
        elif key == _ENTITIES and layout.legacy_entity_rows is not None:
            want = (layout.legacy_entity_rows, shape[1])
            why = " (the legacy task table: [PAD] + copies of [MASK])"
        if got != want:
            raise CheckpointError(
                f"{path}: {key} has shape {got}, but the model in {archive} needs {want}{why}: the task file and "
                "the archive come from different models"
            )
    extra = sorted(k for k in state if k not in ref and k not in layout.head)
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise CheckpointError(
            f"{path}: unexpected tensor {extra[0]}{more}: not part of the original {layout.command} model"
        )


def _is_entity_aware_query(key: str) -> bool:
    return any(f".attention.self.{q}." in key for q in ("w2e_query", "e2w_query", "e2e_query"))


def _load_tokenizer(
    path: Path, vocab: EntityVocab, vocab_rows: int, task: Task, archive: Path, base_name: str
) -> LukeTokenizer:
    """The word tokenizer with ``vocab``; its ``<ent>``/``<ent2>`` must follow the archive's word rows."""
    mention = task.model_settings()["max_mention_length"]
    tokenizer = LukeTokenizer.from_pretrained(path, entity_vocab=vocab, max_mention_length=mention)
    ids = (tokenizer.entity_1_token_id, tokenizer.entity_2_token_id)
    if ids != (vocab_rows, vocab_rows + 1) or len(tokenizer) != vocab_rows + 2:
        raise TokenizerError(
            f"--tokenizer {path}: {len(tokenizer) - 2:,} word tokens besides <ent>/<ent2>, but the model in "
            f"{archive} has {vocab_rows:,} word rows: give the word tokenizer it was trained with "
            f"({base_name or 'bert_model_name in its metadata.json'})"
        )
    return tokenizer


def _word_row(tokenizer: LukeTokenizer, words: torch.Tensor, token: str, fallback: torch.Tensor) -> torch.Tensor:
    """The word row of ``token`` (``@`` / ``#``: how ``<ent>``/``<ent2>`` start), or ``fallback``."""
    index = tokenizer.convert_tokens_to_ids(token)
    if isinstance(index, int) and 0 <= index < words.shape[0]:
        return words[index]
    return fallback


def _mapped_state(
    state: dict[str, torch.Tensor],
    layout: OriginalTaskLayout,
    tokenizer: LukeTokenizer,
    vocab_rows: int,
    archive_unk: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The task file's tensors under our keys, word and entity tables re-laid (module docstring)."""
    out = {layout.head[k][0] if k in layout.head else f"luke.{k}": v for k, v in state.items()}
    words = state[_WORDS]
    markers = [words[vocab_rows + i] if i is not None else None for i in layout.ent_markers]
    for n, token in enumerate(("@", "#")):
        if markers[n] is None:
            markers[n] = _word_row(tokenizer, words, token, markers[0] if markers[0] is not None else words[0])
    out[f"luke.{_WORDS}"] = torch.cat([words[:vocab_rows], torch.stack(markers)])  # type: ignore[arg-type]
    if layout.entity_rows is not None:
        legacy = state[_ENTITIES]
        vocab = tokenizer.entity_vocab
        table = legacy.new_zeros(len(vocab), legacy.shape[1])
        pad, mask, mask2 = layout.entity_rows
        table[vocab.pad_id], table[vocab.unk_id] = legacy[pad], archive_unk
        table[vocab.mask_id], table[vocab.mask2_id] = legacy[mask], legacy[mask2]
        out[f"luke.{_ENTITIES}"] = table
    return out


def convert_task_checkpoint(
    archive_path: str | Path,
    task_name: str,
    checkpoint_file: str | Path,
    tokenizer_path: str | Path,
    *,
    labels: Sequence[str] | None = None,
) -> tuple[LukePreTrainedModel, LukeTokenizer, Task]:
    """An original task checkpoint as our fine-tuned model, its tokenizer and its task (labels set).

    Args:
        archive_path: the original model archive the task model was fine-tuned from (``.tar.gz`` or folder
            with ``pytorch_model.bin``, ``metadata.json``, ``entity_vocab.tsv``): the config and, for SQuAD,
            the entity vocabulary.
        task_name: one of :data:`ORIGINAL_TASKS` (our task names).
        checkpoint_file: the ``--checkpoint-file`` of the original README (a plain state dict).
        tokenizer_path: a local word tokenizer folder (e.g. ``roberta-large``'s files).
        labels: the classifier's labels in row order (default: the published dataset's, see the module
            docstring).

    Save the three with ``save_pretrained`` / ``Task.save`` to get a folder ``luke evaluate`` takes.
    Raises :class:`~luke.errors.CheckpointError` naming the file and tensor when the task file does not
    fit the archive (shapes, a missing head, foreign tensors)."""
    layout = layout_for(task_name)
    path, archive_path = Path(checkpoint_file), Path(archive_path)
    labels = _task_labels(layout, labels)
    state = read_task_state(path)
    archive = load_original_archive(archive_path, use_entity_aware_attention=True)
    base = getattr(archive.model, "luke", archive.model)
    ref = {k: tuple(v.shape) for k, v in base.state_dict().items()}
    config = archive.model.config
    _check_head(state, layout, path, config.hidden_size, len(labels))
    _check_encoder(state, ref, layout, path, archive_path)
    if layout.entity_rows is None and len(archive.entity_vocab) != ref[_ENTITIES][0]:
        raise CheckpointError(f"{archive_path}: the entity vocabulary and the entity table differ in size")
    task = TASKS[layout.task](labels)
    vocab = archive.entity_vocab if layout.entity_rows is None else EntityVocab.from_counts([])
    base_name = str(config.extra.get("bert_model_name", ""))
    tokenizer = _load_tokenizer(Path(tokenizer_path), vocab, config.vocab_size, task, archive_path, base_name)
    archive_unk = base.entity_embeddings.entity_embeddings.weight.detach()[archive.entity_vocab.unk_id]
    mapped = _mapped_state(state, layout, tokenizer, config.vocab_size, archive_unk)
    cls = MODEL_CLASSES[task.model_class_name]
    new_config = dataclasses.replace(
        config, vocab_size=config.vocab_size + 2, entity_vocab_size=len(vocab), use_entity_aware_attention=True,
        id2label=dict(enumerate(labels)), label2id=None, architectures=None, extra=dict(config.extra),
    )  # fmt: skip
    model = cls(new_config)
    own = model.state_dict()
    if not any(k.startswith("luke.pooler.") for k in own):
        mapped = {k: v for k, v in mapped.items() if not k.startswith("luke.pooler.")}
    else:  # the entity heads never read the pooler; a file without one takes the archive's
        mapped = {f"luke.{k}": v for k, v in base.state_dict().items() if k.startswith("pooler.")} | mapped
    report = load_state_dict(model, mapped)
    if report.missing_keys or report.unexpected_keys:  # the checks above make this a bug, not an input error
        raise RuntimeError(f"conversion left {report.missing_keys or report.unexpected_keys}")
    convert_to_roberta_positions(model)  # BERT-based archives: the transformers numbering
    logger.info("converted %s (%s) with %d labels", path, layout.command, len(labels))
    return model.eval(), tokenizer, task
