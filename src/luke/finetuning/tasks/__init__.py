"""Fine-tuning tasks by name: the one registry (the commands, their flags and help derive from it).

A task is one module (reader, featurize, decode, metric and its options class) plus one line here."""

from __future__ import annotations

from luke.errors import ConfigError
from luke.finetuning.tasks.base import Task, TaskDefaults, TaskOptions
from luke.finetuning.tasks.entity_disambiguation import EntityDisambiguationTask
from luke.finetuning.tasks.entity_typing import EntityTypingTask
from luke.finetuning.tasks.ner import NerTask
from luke.finetuning.tasks.record import RecordTask
from luke.finetuning.tasks.relation_classification import RelationClassificationTask
from luke.finetuning.tasks.squad import SquadTask

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (EntityTypingTask, RelationClassificationTask, NerTask, SquadTask, RecordTask, EntityDisambiguationTask)
}

__all__ = [
    "TASKS",
    "Task",
    "TaskDefaults",
    "TaskOptions",
    "EntityTypingTask",
    "RelationClassificationTask",
    "NerTask",
    "SquadTask",
    "RecordTask",
    "EntityDisambiguationTask",
    "get_task",
]


def get_task(name: str) -> type[Task]:
    """The task class called ``name`` (a key of :data:`TASKS`)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None
