"""LUKE: Language Understanding with Knowledge-based Embeddings.

Public API (``transformers`` conventions: ``X.from_pretrained(folder)`` / ``x.save_pretrained(folder)``)::

    from luke import LukeConfig, LukeModel, LukeForMaskedLM, LukeTokenizer, EntityVocab
"""

from luke.config import LukeConfig
from luke.entity_vocab import EntityVocab
from luke.modeling import (
    LukeForEntityClassification,
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
    "LukeForEntityPairClassification",
    "LukeForEntitySpanClassification",
    "LukeForEntitySpanQA",
    "LukeForMaskedLM",
    "LukeForQuestionAnswering",
    "LukeModel",
    "LukePreTrainedModel",
    "LukeTokenizer",
]
