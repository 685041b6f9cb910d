"""LUKE pretraining: configuration, dynamic masking, the two-stage training loop, evaluation and plots.

Entry points: ``luke pretrain CONFIG [KEY=VALUE ...]``, ``luke evaluate-pretraining``, ``luke plot-training``
and ``luke split-pretraining-dataset`` (see docs/pretraining.md). Python: :class:`PretrainingConfig` and
:class:`Trainer`.
"""

from luke.pretraining.config import ConfigError, MaskingConfig, OptimizerConfig, PretrainingConfig, StageConfig

__all__ = ["ConfigError", "MaskingConfig", "OptimizerConfig", "PretrainingConfig", "StageConfig", "Trainer"]


def __getattr__(name: str):
    if name == "Trainer":
        from luke.pretraining.trainer import Trainer

        return Trainer
    raise AttributeError(name)
