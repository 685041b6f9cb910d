"""Fine-tuning: one training loop (:mod:`luke.finetuning.trainer`) and small tasks
(:mod:`luke.finetuning.tasks`: entity typing, relation classification, NER), with in-repo metrics
(:mod:`luke.finetuning.metrics`) and the ``luke finetune/evaluate/predict/score`` commands."""

from luke.finetuning.tasks import TASKS, get_task
from luke.finetuning.trainer import Trainer, TrainingArguments

__all__ = ["TASKS", "Trainer", "TrainingArguments", "get_task"]
