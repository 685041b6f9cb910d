"""Fine-tuning: one training loop (:mod:`luke.finetuning.trainer`) and small tasks
(:mod:`luke.finetuning.tasks`: entity typing, relation classification, NER, SQuAD, ReCoRD), their settings
declared once (:mod:`luke.finetuning.options`), in-repo metrics (:mod:`luke.finetuning.metrics`) and the
``luke finetune/evaluate/predict/score`` commands."""

from luke.finetuning.options import TaskDefaults, TaskOptions, TrainingArguments
from luke.finetuning.tasks import TASKS, get_task
from luke.finetuning.trainer import Trainer

__all__ = ["TASKS", "TaskDefaults", "TaskOptions", "Trainer", "TrainingArguments", "get_task"]
