"""Fine-tuning tasks by name."""

from __future__ import annotations

from luke.finetuning.tasks.base import Task, TaskDefaults
from luke.finetuning.tasks.entity_typing import EntityTypingTask
from luke.finetuning.tasks.ner import NerTask
from luke.finetuning.tasks.record import RecordTask
from luke.finetuning.tasks.relation_classification import RelationClassificationTask
from luke.finetuning.tasks.squad import SquadTask

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (EntityTypingTask, RelationClassificationTask, NerTask, SquadTask, RecordTask)
}

__all__ = [
    "TASKS",
    "Task",
    "TaskDefaults",
    "EntityTypingTask",
    "RelationClassificationTask",
    "NerTask",
    "SquadTask",
    "RecordTask",
    "get_task",
]


def get_task(name: str) -> type[Task]:
    """The task class called ``name`` (``entity_typing``, ``relation_classification``, ``ner``)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None
