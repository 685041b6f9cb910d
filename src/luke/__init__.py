"""LUKE: Language Understanding with Knowledge-based Embeddings.

Public API (``transformers`` conventions: ``X.from_pretrained(folder)`` / ``x.save_pretrained(folder)``)::

    from luke import LukeConfig, LukeModel, LukeForMaskedLM, LukeTokenizer, EntityVocab

A fine-tuned model (a folder or a Hub repo id) as a callable, returning what ``luke predict`` writes::

    typing = luke.pipeline("entity_typing", model="studio-ousia/luke-large-finetuned-open-entity")
    typing({"text": "Beyoncé lives in Los Angeles.", "span": [0, 7]})  # {"labels": [...], "scores": {...}, ...}
"""

from typing import Any

from luke.config import LukeConfig
from luke.entity_vocab import EntityVocab
from luke.modeling import (
    LukeForEntityClassification,
    LukeForEntityDisambiguation,
    LukeForEntityPairClassification,
    LukeForEntitySpanClassification,
    LukeForEntitySpanQA,
    LukeForMaskedLM,
    LukeForQuestionAnswering,
    LukeModel,
    LukePreTrainedModel,
)
from luke.tokenization import LukeTokenizer

__version__ = "0.1.0"

__all__ = [
    "EntityVocab",
    "LukeConfig",
    "LukeForEntityClassification",
    "LukeForEntityDisambiguation",
    "LukeForEntityPairClassification",
    "LukeForEntitySpanClassification",
    "LukeForEntitySpanQA",
    "LukeForMaskedLM",
    "LukeForQuestionAnswering",
    "LukeModel",
    "LukePreTrainedModel",
    "LukeTokenizer",
    "Pipeline",
    "pipeline",
]


def __getattr__(name: str) -> Any:
    """``luke.pipeline`` / ``luke.Pipeline`` are imported on first use (they bring in the fine-tuning code)."""
    if name in ("pipeline", "Pipeline"):
        from luke.finetuning import pipeline as module

        return getattr(module, name)
    raise AttributeError(f"module 'luke' has no attribute {name!r}")
