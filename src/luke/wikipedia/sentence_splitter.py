"""Sentence splitters returning character (code point) spans, without a JVM.

``pysbd`` (pure Python, the default) or ICU's sentence ``BreakIterator`` through ``PyICU`` (optional; needs
the ICU C++ library). Both return ``[(start, end), ...]`` with ``text[start:end]`` the sentence without
surrounding whitespace, in order and non-overlapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from luke.errors import ConfigError

SentenceSplitter = Callable[[str], list[tuple[int, int]]]
SPLITTERS = ("pysbd", "icu")
_TERMINATORS = re.compile(r"[.!?;:…。！？\n]")


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class PySBDSentenceSplitter:
    """Rule-based splitting with ``pysbd``; sentences are located in the text in order (robust to pysbd's
    own ``char_span`` mode, which can mis-locate repeated sentences)."""

    def __init__(self, language: str = "en") -> None:
        import pysbd

        self.segmenter = pysbd.Segmenter(language=language, clean=False, char_span=False)

    def __call__(self, text: str) -> list[tuple[int, int]]:
        whole = _strip_span(text, 0, len(text))
        if not _TERMINATORS.search(text, 0, max(0, whole[1] - 1)):
            # no sentence terminator before the last character: one sentence (pysbd is slow; skip it)
            return [whole] if whole[0] < whole[1] else []
        spans: list[tuple[int, int]] = []
        cursor = 0
        for sentence in self.segmenter.segment(text):
            piece = sentence.strip()
            if not piece:
                continue
            index = text.find(piece, cursor)
            if index < 0:  # pysbd changed the text: the rest becomes one sentence
                break
            spans.append((index, index + len(piece)))
            cursor = index + len(piece)
        rest = _strip_span(text, cursor, len(text))
        if rest[0] < rest[1]:
            spans.append(rest)
        return spans


def utf16_to_codepoint_offsets(text: str) -> list[int]:
    """``table[u]`` = code point offset of UTF-16 offset ``u`` (ICU counts UTF-16 code units)."""
    table = []
    for i, char in enumerate(text):
        table.append(i)
        if ord(char) > 0xFFFF:
            table.append(i)
    table.append(len(text))
    return table


class ICUSentenceSplitter:
    """ICU ``BreakIterator`` sentence splitting (``PyICU``); for en/de/es/it/pt the locale gets
    ``@ss=standard`` (abbreviation suppression), as in the original LUKE."""

    def __init__(self, locale: str = "en") -> None:
        try:
            import icu  # type: ignore[import-not-found]
        except ImportError as err:
            raise ConfigError(
                "the 'icu' sentence splitter needs PyICU (pip install pyicu; it compiles against the ICU "
                "library, e.g. apt-get install libicu-dev pkg-config); or use --sentence-splitter pysbd"
            ) from err
        if locale in ("en", "de", "es", "it", "pt"):
            locale += "@ss=standard"
        self._icu: Any = icu
        self.iterator = icu.BreakIterator.createSentenceInstance(icu.Locale(locale))

    def __call__(self, text: str) -> list[tuple[int, int]]:
        self.iterator.setText(text)
        table = utf16_to_codepoint_offsets(text) if any(ord(c) > 0xFFFF for c in text) else None
        spans = []
        start = 0
        for end in self.iterator:
            a, b = (table[start], table[end]) if table else (start, end)
            a, b = _strip_span(text, a, b)
            if a < b:
                spans.append((a, b))
            start = end
        return spans


def get_sentence_splitter(name: str, language: str = "en") -> SentenceSplitter:
    """``"pysbd"`` or ``"icu"`` (ICU locale = ``language``)."""
    if name == "pysbd":
        return PySBDSentenceSplitter(language)
    if name == "icu":
        return ICUSentenceSplitter(language)
    raise ConfigError(f"unknown sentence splitter {name!r} (choose from {', '.join(SPLITTERS)})")
