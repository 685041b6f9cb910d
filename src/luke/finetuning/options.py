"""Every fine-tuning setting, declared once: the training loop's (:class:`TrainingArguments`, whose
paper-recipe part is :class:`TaskDefaults`) and the tasks' (:class:`TaskOptions` and each task's subclass).

The ``luke finetune/evaluate/predict`` flags are derived from these declarations
(:mod:`luke.dataclass_args`), and so are their help texts, including the per-task defaults; a task's
options reach it as its typed options object (``task.options.max_seq_length``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from luke.dataclass_args import add_arguments, check_value, check_values, field_meta, flag_fields, option
from luke.errors import ConfigError

if TYPE_CHECKING:
    from luke.finetuning.tasks.base import Task

__all__ = [
    "TaskDefaults",
    "TrainingArguments",
    "TaskOptions",
    "EntityCapOptions",
    "add_training_arguments",
    "add_task_arguments",
    "task_option_fields",
    "applicable_options",
]

logger = logging.getLogger(__name__)


@dataclass
class TaskDefaults:
    """The hyper-parameters a task's paper recipe sets (spec §3.6); :class:`TrainingArguments` extends them.
    A task's ``defaults`` name the values that differ from the ones declared here.

    On the command line they are unset unless given, and then take the task's values (``Task.defaults``)."""

    learning_rate: float = option(1e-5, "peak learning rate", above=0)
    train_batch_size: int = option(2, "training examples per device and step", at_least=1)
    eval_batch_size: int = option(32, "evaluation batch size", at_least=1)
    gradient_accumulation_steps: int = option(1, "steps accumulated per optimiser update", at_least=1)
    num_train_epochs: float = option(3, "training epochs (a fraction trains part of the last one)", above=0)
    seed: int = option(0, "random seed", at_least=0, at_most=2**31 - 1)
    select_best: bool = option(True, "keep the best dev epoch's weights (else the last epoch's)")
    warmup_ratio: float = option(0.06, "share of the optimiser steps with a linear warm-up", at_least=0, at_most=1)
    max_grad_norm: float = option(0.0, "gradient clipping (0 = none, the paper's for the five tasks)", at_least=0)
    entity_query_lr_scale: float = option(
        1.0,
        "learning-rate multiplier of the entity-aware attention's extra query matrices (w2e, e2w, e2e); 0 freezes them",
        at_least=0,
    )

    def __post_init__(self) -> None:
        check_values(self)  # one check of every value, before any model or data is loaded


@dataclass
class TrainingArguments(TaskDefaults):
    """Loop settings (``luke finetune`` flags of the same names)."""

    output_dir: Path = option(help="where to write the fine-tuned model and results", group="main", kw_only=True)
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and LayerNorm weights)", at_least=0)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    mixed_precision: Literal["no", "bf16", "fp16"] = option("no", "autocast precision", group="common")
    cpu: bool = option(False, "run on CPU even when a GPU is present", group="common")
    save_steps: int = option(
        0, "also save resumable state every N steps (0 = at epoch ends only)", group="run", at_least=0
    )
    resume: bool = option(False, "continue from OUTPUT/checkpoint if present", group="run")
    logging_steps: int = option(20, "log the training loss every N optimiser steps", group="run", at_least=1)
    tensorboard: bool = option(True, "no TensorBoard logs", group="run", flag="--no-tensorboard")
    progress: bool = option(True, "no progress bars", group="common", flag="--no-progress")
    #: stop after N optimiser steps (0 = run all epochs); the schedule still spans the epochs
    max_steps: int = option(0, "stop after this many optimiser steps (0 = run all epochs)", group="run", at_least=0)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskOptions:
    """The options every task takes (a task with no others uses this class as it is)."""

    max_seq_length: int = option(
        512, "maximum word tokens per input, NER's document-context window included", at_least=3
    )
    max_mention_length: int | None = option(
        None,
        "longest mention in subwords, for NER candidate spans and ReCoRD candidates; given, it also cuts the "
        "entity mentions of the other tasks, which are never cut otherwise",
        at_least=1,
    )
    no_entity_aware_attention: bool = option(
        False, "fine-tune with vanilla self-attention (ablation; default: entity-aware)"
    )
    entity_init: Literal["random", "words"] = option(
        "random",
        "from a BERT/RoBERTa folder: the new entity side at random (as the original) or from the word side: "
        "[MASK] entity = [MASK] word, entity positions/types/LayerNorm = the words', squad entities = mean word "
        "embedding of their title",
    )

    def __post_init__(self) -> None:
        check_values(self)  # the subclasses' fields too


@dataclass(frozen=True)
class EntityCapOptions:
    """Options of the tasks that cap the entities of one input (a mixin: NER, SQuAD)."""

    max_entity_length: int = option(128, "entities per input: NER candidate spans, squad detected mentions", at_least=1)


# ---------------------------------------------------------------------------------------------- flags


def _show(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def per_task_note(values: Mapping[str, Any], everyone: bool = True) -> str:
    """The help's note on the defaults of the tasks in ``values`` (``everyone``: all tasks take the option):
    `` (default X)``, `` (default X; ner Y)`` when most agree, `` (squad 64, record 90)``; for an option of
    some tasks only, `` (squad, record: 128)`` or `` (squad)``.  None values, and a flag that is off for
    every task, show no default."""
    shown = {task: v for task, v in values.items() if v is not None}
    if all(v is False for v in shown.values()):
        shown = {}
    counts = Counter(_show(v) for v in shown.values()).most_common()
    if not everyone and len(counts) <= 1:
        return f" ({', '.join(values)}{': ' + counts[0][0] if counts else ''})"
    if not counts:
        return ""
    if len(counts) == 1 and len(shown) == len(values):
        return f" (default {counts[0][0]})"
    if len(shown) == len(values) and counts[0][1] > counts[1][1] > 0 and counts[0][1] > 1:
        others = ", ".join(f"{task} {_show(v)}" for task, v in shown.items() if _show(v) != counts[0][0])
        return f" (default {counts[0][0]}; {others})"
    return " (" + ", ".join(f"{task} {_show(v)}" for task, v in shown.items()) + ")"


def add_training_arguments(container: Any, group: str, tasks: Iterable[type[Task]] = ()) -> None:
    """The :class:`TrainingArguments` flags of ``group`` (``""`` = the hyper-parameters); with ``tasks``,
    the :class:`TaskDefaults` ones are unset unless given and their help lists each task's default."""
    tasks = list(tasks)
    paper = {f.name for f in dataclasses.fields(TaskDefaults)}
    fields = flag_fields(TrainingArguments, group)
    if tasks:

        def note(name: str) -> str:
            return per_task_note({t.name: getattr(t.defaults, name) for t in tasks})

        own = [f for f in fields if f.name in paper]
        add_arguments(container, TrainingArguments, own, unset=True, help_suffix=note)
        fields = [f for f in fields if f.name not in paper]
    add_arguments(container, TrainingArguments, fields)


def task_option_fields(tasks: Iterable[type[Task]]) -> dict[str, tuple[type, dataclasses.Field]]:
    """``{name: (a class declaring it, field)}`` over the option classes of ``tasks``, in first-seen order."""
    out: dict[str, tuple[type, dataclasses.Field]] = {}
    for task in tasks:
        for f in flag_fields(task.options_class):
            out.setdefault(f.name, (task.options_class, f))
    return out


def add_task_arguments(groups: Mapping[str, Any], tasks: Iterable[type[Task]]) -> None:
    """One flag per task option over all ``tasks`` (into ``groups[field's group]``), unset unless given;
    the help lists the default of each task that takes the option."""
    tasks = list(tasks)
    for name, (cls, f) in task_option_fields(tasks).items():
        takers = {t.name: getattr(t.options_class(), name) for t in tasks if _takes(t, name)}
        note = per_task_note(takers, everyone=len(takers) == len(tasks))
        add_arguments(groups[field_meta(cls, name)["group"]], cls, [f], unset=True, help_suffix=lambda _, n=note: n)


def _takes(task: type[Task], name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(task.options_class))


def applicable_options(
    task: type[Task], values: Mapping[str, Any], tasks: Iterable[type[Task]], where: str
) -> dict[str, Any]:
    """``values`` without the None ones and those of other tasks (dropped with a warning: the command line
    and old ``luke_task.json`` files carry every task's options); a key no task takes raises
    :class:`ConfigError` naming ``where``. For a command (``where`` is "luke CMD") every value is also checked
    against its declared range, even one that does not apply (``--dev-ratio 1.5`` is an error for any task)."""
    known = task_option_fields(tasks)
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if key in known and where.startswith("luke "):  # a bad flag value is an error even where it does not apply
            check_value(known[key][0], key, value)
        if _takes(task, key):
            out[key] = value
        elif key in known:
            logger.warning("%s: option %s does not apply to task %s (ignored)", where, key, task.name)
        else:
            names = ", ".join(f.name for f in dataclasses.fields(task.options_class))
            raise ConfigError(f"{where}: unknown option {key!r} (task {task.name} takes: {names})")
    return out
