"""LUKE: Language Understanding with Knowledge-based Embeddings."""

__version__ = "0.1.0"
