"""LUKE: Language Understanding with Knowledge-based Embeddings.

Public API (``transformers`` conventions: ``X.from_pretrained(folder)`` / ``x.save_pretrained(folder)``)::

    from luke import LukeConfig, LukeModel, LukeForMaskedLM, LukeTokenizer, EntityVocab

A fine-tuned model (a folder or a Hub repo id) as a callable, returning what ``luke predict`` writes::

    typing = luke.pipeline("entity_typing", model="studio-ousia/luke-large-finetuned-open-entity")
    typing({"text": "Beyoncé lives in Los Angeles.", "span": [0, 7]})  # {"labels": [...], "scores": {...}, ...}

Entities in raw text (mention database + entity disambiguation; ``luke link`` on the command line)::

    luke.link(["Paris is the capital of France."], model="MODEL", mention_db="mentions.jsonl")
    # [{"text": ..., "entities": [{"start": 0, "end": 5, "mention": "Paris", "title": "Paris", "score": ...}, ...]}]
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
    "EntityLinker",
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
    "link",
    "pipeline",
]


def __getattr__(name: str) -> Any:
    """``luke.pipeline`` / ``luke.Pipeline`` and ``luke.link`` / ``luke.EntityLinker`` are imported on first use
    (they bring in the fine-tuning code)."""
    if name in ("pipeline", "Pipeline"):
        from luke.finetuning import pipeline as module

        return getattr(module, name)
    if name in ("link", "EntityLinker"):
        from luke.finetuning import linking

        return getattr(linking, name)
    raise AttributeError(f"module 'luke' has no attribute {name!r}")
