"""Token packing (``TokenLayout``): the encoder computes real tokens only.

Why: with padded batches, projections, FFN and LayerNorms on packed rows spend no FLOPs on padding; part
(2) of "where the speed comes from" in ``docs/benchmarks.md``. There is no separate measurement of it:
``benchmarks/bench_model.py`` times the whole model on batches where every other example has its last
10 % of words and a quarter of its entities padded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch


@dataclass
class TokenLayout:
    """Where the real (non-padding) tokens sit in the padded (B, N) grid.

    Between attention calls the encoder keeps only real tokens, packed as rows ``[all words; all
    entities]`` of a (T, H) matrix: projections, FFN and LayerNorms then spend no FLOPs on padding, and
    the word and entity rows are contiguous slices for the entity-aware queries. Attention scatters its
    inputs back into the padded (B, h, N, d) layout that the fused kernels need.
    """

    batch: int  # B
    length: int  # N = L + E
    num_words: int  # L
    num_word_rows: int  # number of real words in the batch (packed rows [0, num_word_rows) are words)
    rows: torch.Tensor  # (T,) batch index of each packed row
    cols: torch.Tensor  # (T,) position in [0, N) of each packed row
    pad_rows: torch.Tensor  # (P,) batch index of each padding position
    pad_cols: torch.Tensor  # (P,) its position in [0, N)
    keep: torch.Tensor  # (B, 1, 1, N) bool, False at padded keys

    @classmethod
    def build(cls, word_mask: torch.Tensor, entity_mask: torch.Tensor | None) -> TokenLayout:
        """From the (B, L) word and (B, E) entity attention masks (1 real, 0 padding)."""
        B, L = word_mask.shape
        keep = word_mask.bool() if entity_mask is None else torch.cat([word_mask.bool(), entity_mask.bool()], 1)
        rows, cols = keep[:, :L].nonzero(as_tuple=True)
        num_word_rows = rows.numel()
        if entity_mask is not None:
            e_rows, e_cols = keep[:, L:].nonzero(as_tuple=True)
            rows, cols = torch.cat([rows, e_rows]), torch.cat([cols, e_cols + L])
        pad_rows, pad_cols = (~keep).nonzero(as_tuple=True)
        return cls(B, keep.shape[1], L, num_word_rows, rows, cols, pad_rows, pad_cols, keep[:, None, None, :])

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """The real tokens of a padded (B, N, H) tensor as packed rows (T, H)."""
        return x[self.rows, self.cols]  # (B, N, H) -> (T, H)

    def unpack(self, *parts: torch.Tensor) -> torch.Tensor:
        """Packed rows (T, ...), possibly given as consecutive parts, -> (B, N, ...) with zeros at padding.

        Padding rows must be finite, not merely ignored: the fused attention backward multiplies them."""
        x0 = parts[0]
        out = x0.new_empty(self.batch, self.length, *x0.shape[1:])
        out[self.pad_rows, self.pad_cols] = 0
        start = 0
        for part in parts:
            stop = start + part.shape[0]
            out[self.rows[start:stop], self.cols[start:stop]] = part
            start = stop
        return out

    @functools.cached_property
    def entity_rows(self) -> TokenLayout:
        """The layout of the entity rows alone in a (B, E) grid: where the last layer puts its outputs when
        only the entity states are needed (``LukeModel(..., entity_states_only=True)``). Built once per
        forward: the last layer and the final unpack share it."""
        L, Tw = self.num_words, self.num_word_rows
        pad = self.pad_cols >= L
        return TokenLayout(
            self.batch,
            self.length - L,
            0,
            0,
            self.rows[Tw:],
            self.cols[Tw:] - L,
            self.pad_rows[pad],
            self.pad_cols[pad] - L,
            self.keep[..., L:],
        )

    def heads(self, *parts: torch.Tensor, num_heads: int) -> torch.Tensor:
        """Packed (T, h*d) rows (possibly as consecutive parts) -> the padded per-head grid (B, h, N, d)."""
        parts = tuple(p.view(p.shape[0], num_heads, -1) for p in parts)
        return self.unpack(*parts).transpose(1, 2)  # (B, h, N, d)

    def from_heads(self, x: torch.Tensor) -> torch.Tensor:
        """The padded per-head grid (B, h, N, d) -> packed rows (T, h*d): the inverse of ``heads``."""
        out = x.transpose(1, 2)[self.rows, self.cols]  # (B, h, N, d) -> (T, h, d), one gather
        return out.reshape(out.shape[0], -1)
