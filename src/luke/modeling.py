"""The LUKE model: word + entity embeddings, an encoder with entity-aware self-attention, the
pretraining heads (masked words, masked entities) and the entity task heads.

Read top to bottom: outputs -> embeddings -> attention -> layer -> encoder -> LukeModel -> heads.
Module and parameter names follow ``transformers``' LUKE exactly, so state dicts are interchangeable
(``checkpoint.py`` does the file I/O). Shape letters used in comments:

    B batch, L words, E entities, M max mention length, N = L + E, H hidden, h heads, d = H / h,
    V word vocab, Ve entity vocab, De entity embedding size, C labels, T packed real tokens.

Entity-aware attention (Yamada et al. 2020, §3.3) gives each (query type, key type) pair its own query
projection: word->word uses ``query``, word->entity ``w2e_query``, entity->word ``e2w_query`` and
entity->entity ``e2e_query``; keys and values are shared. We never build the four score blocks. Instead,
all N queries are split into "to-word" queries ``q_tw = [query(words); e2w_query(entities)]`` and
"to-entity" queries ``q_te = [w2e_query(words); e2e_query(entities)]``, each meeting its half of the keys
under one softmax: ``attention_reference`` is that definition, written plainly.

Between attention calls the encoder holds only the real (non-padding) tokens, packed as rows
``[all words; all entities]`` (``TokenLayout``). How attention is computed fast on CPU (fused split-key
kernels merged through the log-sum-exp, a chunked materialised path for attention dropout, cheap dropout
masks, oneDNN products, a shared FFN block at inference) lives in ``luke.kernels``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from luke.config import LukeConfig
from luke.kernels import EncoderLinear, FastDropout, TokenLayout, entity_aware_attention, ffn_block, shared_ffn_block

# --------------------------------------------------------------------------------------------- outputs


@dataclass
class _Output:
    """Base of the output dataclasses: attribute access plus ``out["name"]`` like ``transformers``."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass
class BaseLukeModelOutputWithPooling(_Output):
    last_hidden_state: torch.Tensor | None  # (B, L, H); None with entity_states_only=True
    pooler_output: torch.Tensor | None = None  # (B, H)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # num_layers + 1 x (B, L, H)
    attentions: tuple[torch.Tensor, ...] | None = None  # num_layers x (B, h, N, N)
    entity_last_hidden_state: torch.Tensor | None = None  # (B, E, H)
    entity_hidden_states: tuple[torch.Tensor, ...] | None = None  # num_layers + 1 x (B, E, H)


@dataclass
class LukeMaskedLMOutput(_Output):
    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    mep_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, L, V)
    entity_logits: torch.Tensor | None = None  # (B, E, Ve)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    entity_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class EntityClassificationOutput(_Output):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, C) or, for span classification, (B, E, C)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    entity_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class EntityDisambiguationOutput(_Output):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, E, K) candidate scores, or (B, E, Ve) without candidates
    hidden_states: tuple[torch.Tensor, ...] | None = None
    entity_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


EntityPairClassificationOutput = EntityClassificationOutput
EntitySpanClassificationOutput = EntityClassificationOutput


@dataclass
class LukeQuestionAnsweringModelOutput(_Output):
    loss: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None  # (B, L)
    end_logits: torch.Tensor | None = None  # (B, L)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    entity_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# ------------------------------------------------------------------------------------------ embeddings


class LukeEmbeddings(nn.Module):
    """Word embeddings: token + absolute position + token type, then LayerNorm and dropout."""

    def __init__(self, config: LukeConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        # RoBERTa-style positions reserve row `pad_token_id` for padding; BERT-style use row 0 for [CLS].
        pos_pad = config.pad_token_id if config.word_position_style == "roberta" else None
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size, pos_pad)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = FastDropout(config.hidden_dropout_prob)

    def make_position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.config.word_position_style == "bert":
            return torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        pad = self.config.pad_token_id
        not_pad = input_ids.ne(pad).long()
        return torch.cumsum(not_pad, dim=1) * not_pad + pad  # (B, L); padding -> pad row

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if position_ids is None:
            position_ids = self.make_position_ids(input_ids)
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))  # (B, L, H)


class LukeEntityEmbeddings(nn.Module):
    """Entity embeddings: a De-wide table (projected to H when De != H), plus the mean of the
    position embeddings of the mention's word tokens, plus token type; LayerNorm and dropout.

    Entity positions have their own table, indexed by 0-based word indices (0 = [CLS]/<s>), padded
    with -1; an all -1 row (a padding entity) gets no position term.
    """

    def __init__(self, config: LukeConfig):
        super().__init__()
        self.config = config
        self.entity_embeddings = nn.Embedding(config.entity_vocab_size, config.entity_emb_size, padding_idx=0)
        if config.entity_emb_size != config.hidden_size:
            self.entity_embedding_dense = nn.Linear(config.entity_emb_size, config.hidden_size, bias=False)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = FastDropout(config.hidden_dropout_prob)

    def forward(
        self, entity_ids: torch.Tensor, position_ids: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        x = self.entity_embeddings(entity_ids)  # (B, E, De)
        if self.config.entity_emb_size != self.config.hidden_size:
            x = self.entity_embedding_dense(x)  # (B, E, H)
        valid = (position_ids != -1).unsqueeze(-1)  # (B, E, M, 1)
        pos = self.position_embeddings(position_ids.clamp(min=0)).mul_(valid)  # (B, E, M, H), in place: peak memory
        # Mean over valid mention positions; the clamp turns an all-padding row into a zero vector.
        pos = pos.sum(dim=2) / valid.sum(dim=2).clamp(min=1e-7)  # (B, E, H)
        x = x + pos + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


# ------------------------------------------------------------------------------------------- attention


def attention_reference(
    q_tw: torch.Tensor,
    q_te: torch.Tensor | None,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    num_words: int,
    scale: float,
    dropout: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Entity-aware attention, defined plainly: the (B, h, Nq, N) probabilities materialised.

    ``q_tw`` (B, h, Nq, d) meets the first ``num_words`` keys, ``q_te`` the entity keys after them, under
    one softmax; ``q_te is None`` means vanilla attention (one query for all keys). ``mask``: additive,
    broadcast to the scores; ``dropout``: applied to the probabilities. This is what every kernel of
    ``luke.kernels.entity_aware_attention`` computes (and is tested against); that function also runs it
    when the probabilities are requested or no fast path applies. Returns (output (B, h, Nq, d), probs).
    """
    # Scale the (N, d) queries rather than the (N, N) scores, and add the mask in place: fewer N x N
    # temporaries (on CPU, fresh large allocations cost page faults).
    if q_te is None:
        scores = (q_tw * scale) @ k.transpose(-1, -2)
    else:
        kw, ke = k[:, :, :num_words], k[:, :, num_words:]
        scores = torch.cat([(q_tw * scale) @ kw.transpose(-1, -2), (q_te * scale) @ ke.transpose(-1, -2)], dim=-1)
    probs = torch.softmax(scores.add_(mask), dim=-1)  # (B, h, N, N)
    dropped = dropout(probs) if dropout is not None else probs
    return dropped @ v, probs


class LukeSelfAttention(nn.Module):
    """Entity-aware self-attention over packed tokens (see the module docstring); with
    ``use_entity_aware_attention=False``, ordinary self-attention with one query projection."""

    def __init__(self, config: LukeConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.entity_aware = config.use_entity_aware_attention
        H = config.hidden_size
        self.query = EncoderLinear(H, H)
        self.key = EncoderLinear(H, H)
        self.value = EncoderLinear(H, H)
        if self.entity_aware:
            self.w2e_query = EncoderLinear(H, H)
            self.e2w_query = EncoderLinear(H, H)
            self.e2e_query = EncoderLinear(H, H)
        self.dropout = FastDropout(config.attention_probs_dropout_prob)

    def forward(
        self, x: torch.Tensor, layout: TokenLayout, output_attentions: bool = False, entity_rows_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (T, H) packed real tokens (see TokenLayout).

        Returns the attention output (T, H) and, if requested, the probabilities (B, h, N, N). With
        ``entity_rows_only`` (the batch must have entity rows) only the entities query (all keys): the
        output is (Te, H), for the entity rows of ``x``.
        """
        Tw, h = layout.num_word_rows, self.num_heads
        use_ea = self.entity_aware and x.shape[0] > Tw  # a batch without entities attends as vanilla
        queries = layout.entity_rows if entity_rows_only else layout  # where the query rows sit
        if entity_rows_only:
            xe = x[Tw:]
            q_tw = queries.heads(self.e2w_query(xe) if use_ea else self.query(xe), num_heads=h)  # (B, h, E, d)
            q_te = queries.heads(self.e2e_query(xe), num_heads=h) if use_ea else None
        elif use_ea:
            xw, xe = x[:Tw], x[Tw:]  # (Tw, H) words, (Te, H) entities
            q_tw = layout.heads(self.query(xw), self.e2w_query(xe), num_heads=h)  # (B, h, N, d) meet word keys
            q_te = layout.heads(self.w2e_query(xw), self.e2e_query(xe), num_heads=h)  # ... meet entity keys
        else:  # vanilla attention, or no entities in the batch: one query over all keys
            q_tw, q_te = layout.heads(self.query(x), num_heads=h), None
        k, v = layout.heads(self.key(x), num_heads=h), layout.heads(self.value(x), num_heads=h)  # (B, h, N, d)
        p = self.dropout.p  # attention-probability dropout (trainers may change it between steps)
        out, probs = entity_aware_attention(  # (B, h, Nq, d), by the fast path that applies
            q_tw, q_te, k, v, layout, dropout_p=p, training=self.training, output_attentions=output_attentions
        )
        return queries.from_heads(out), probs


# ------------------------------------------------------------------------------------- encoder layers


class LukeSelfOutput(nn.Module):
    """dense -> dropout -> LayerNorm(+ residual); ``LukeOutput`` is the same after the FFN."""

    def __init__(self, config: LukeConfig, in_features: int | None = None):
        super().__init__()
        self.dense = EncoderLinear(in_features or config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = FastDropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.dense(x))  # a fresh tensor: without autograd the residual can go in place
        return self.LayerNorm(h + residual if torch.is_grad_enabled() else h.add_(residual))


class LukeAttention(nn.Module):
    def __init__(self, config: LukeConfig):
        super().__init__()
        self.self = LukeSelfAttention(config)
        self.output = LukeSelfOutput(config)

    def forward(self, x, layout, output_attentions=False, entity_rows_only=False):
        out, probs = self.self(x, layout, output_attentions, entity_rows_only)
        return self.output(out, x[layout.num_word_rows :] if entity_rows_only else x), probs


class LukeIntermediate(nn.Module):
    def __init__(self, config: LukeConfig):
        super().__init__()
        self.dense = EncoderLinear(config.hidden_size, config.intermediate_size)
        self.act = _activation(config.hidden_act)
        self.act_ = _activation(config.hidden_act, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, H) -> (T, intermediate). Without autograd the product goes into the encoder's shared FFN
        block (``shared_ffn_block``) and the activation runs in place."""
        if torch.is_grad_enabled():
            return self.act(self.dense(x))
        return self.act_(self.dense(x, out=ffn_block(x.shape[0])))


class LukeOutput(LukeSelfOutput):
    def __init__(self, config: LukeConfig):
        super().__init__(config, config.intermediate_size)


class LukeLayer(nn.Module):
    """Post-LN transformer block; words and entities share every weight except the extra queries."""

    def __init__(self, config: LukeConfig):
        super().__init__()
        self.attention = LukeAttention(config)
        self.intermediate = LukeIntermediate(config)
        self.output = LukeOutput(config)

    def forward(self, x, layout, output_attentions=False, entity_rows_only=False):
        """x: (T, H) packed tokens -> (T, H), or (Te, H) for the entity rows alone with ``entity_rows_only``."""
        x, probs = self.attention(x, layout, output_attentions, entity_rows_only)
        return self.output(self.intermediate(x), x), probs


class LukeEncoder(nn.Module):
    def __init__(self, config: LukeConfig):
        super().__init__()
        self.layer = nn.ModuleList(LukeLayer(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(self, x, layout, output_hidden_states=False, output_attentions=False, entity_rows_only=False):
        """x: (T, H) packed real tokens; returns them after every layer (+ per-layer states/probs).

        ``entity_rows_only``: the last layer computes the entity rows only (words serve as keys and values
        but get no output), and the result is (Te, H)."""
        states = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        checkpointed = self.gradient_checkpointing and self.training
        ffn = self.layer[0].intermediate.dense if len(self.layer) and not checkpointed else None
        with shared_ffn_block(x, ffn):  # inference: all layers reuse one FFN activation block
            for i, layer in enumerate(self.layer):
                rows_only = entity_rows_only and i == len(self.layer) - 1
                if checkpointed:
                    x, probs = torch.utils.checkpoint.checkpoint(
                        layer, x, layout, output_attentions, rows_only, use_reentrant=False
                    )
                else:
                    x, probs = layer(x, layout, output_attentions, rows_only)
                if states is not None:
                    states.append(x)
                if attentions is not None:
                    attentions.append(probs)
        return x, states, attentions


class LukePooler(nn.Module):
    def __init__(self, config: LukeConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, word_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(word_states[:, 0]))  # (B, H)


_ACTIVATIONS = {  # name: (function, its in-place version, used without autograd)
    "gelu": (F.gelu, torch.ops.aten.gelu_),
    "relu": (F.relu, torch.relu_),
    "gelu_new": (lambda x: F.gelu(x, approximate="tanh"), lambda x: torch.ops.aten.gelu_(x, approximate="tanh")),
    "silu": (F.silu, lambda x: F.silu(x, inplace=True)),
}


def _activation(name: str, inplace: bool = False):
    if name not in _ACTIVATIONS:
        raise ValueError(f"unsupported hidden_act {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name][inplace]


# --------------------------------------------------------------------------------------- base classes


class LukePreTrainedModel(nn.Module):
    """Common base: weight initialisation and ``from_pretrained``/``save_pretrained``.

    ``base_model_prefix`` is ``"luke"`` as in ``transformers``: headed models keep the encoder under
    ``self.luke`` so their state-dict keys start with ``luke.``.
    """

    base_model_prefix = "luke"

    def __init__(self, config: LukeConfig):
        super().__init__()
        self.config = config

    def init_weights(self) -> None:
        """Initialise every parameter as the original code does (normal(0, initializer_range), zero biases
        and padding rows, LayerNorm = identity), then re-tie shared weights."""
        for module in self.modules():
            self.init_module(module)
        self.tie_weights()

    def init_module(self, module: nn.Module) -> None:
        """Initialise ``module``'s own parameters (not its children's) the way :meth:`init_weights` does."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            if module.embedding_dim == 1:
                nn.init.zeros_(module.weight)
            else:
                nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, (LukeLMHead, EntityPredictionHead)):
            nn.init.zeros_(module.bias)

    def init_by_name(self, names: Iterable[str], seed: int) -> None:
        """Re-initialise the modules holding the parameters ``names`` (e.g. a fresh task head), each from a
        random stream of its own, seeded by ``seed`` and the module's name: what a fresh module starts as
        then depends on the seed alone, not on how many random numbers the rest of the model drew first
        (with entity-aware attention or without, a larger entity table or a smaller one). So two runs that
        differ in one option start from the same head, and an ablation measures the option, not a new draw."""
        names = set(names)
        modules = dict(self.named_modules())
        for owner in sorted({name.rsplit(".", 1)[0] for name in names}):
            module = modules.get(owner)
            own = [f"{owner}.{p}" for p, _ in module.named_parameters(recurse=False)] if module is not None else []
            if not own or not names.issuperset(own):  # a module with loaded parameters is left as it is
                continue
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(zlib.crc32(f"{seed}:{owner}".encode()))
                self.init_module(module)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Re-establish tied parameters (no-op for models without output embeddings)."""

    def resize_token_embeddings(self, new_size: int, init_from: dict[int, int] | None = None) -> None:
        """Grow (or shrink) the word vocabulary to ``new_size`` rows, e.g. after a tokenizer added the
        ``<ent>``/``<ent2>`` markers. New rows are initialised normally, or copied from the rows given in
        ``init_from`` (new id -> existing id; the original code starts ``<ent>`` from "@", ``<ent2>`` from
        "#"). An MLM head's decoder and bias follow."""
        base: LukeModel = self.luke if hasattr(self, "luke") else self  # type: ignore[assignment]
        emb, std = base.embeddings, self.config.initializer_range
        old = emb.word_embeddings
        if new_size == old.num_embeddings:
            return
        weight = _copy_rows(old.weight.new_empty(new_size, old.embedding_dim).normal_(std=std), old.weight, init_from)
        emb.word_embeddings = nn.Embedding.from_pretrained(weight, freeze=False, padding_idx=old.padding_idx)
        head = getattr(self, "lm_head", None)
        if head is not None:
            bias = _copy_rows(head.decoder.bias.new_zeros(new_size), head.decoder.bias, init_from)
            decoder = nn.Linear(old.embedding_dim, new_size)
            decoder.bias = nn.Parameter(bias)
            if not self.config.tie_word_embeddings:  # an untied decoder keeps its rows, new ones are random
                w = head.decoder.weight.new_empty(new_size, old.embedding_dim).normal_(std=std)
                decoder.weight = nn.Parameter(_copy_rows(w, head.decoder.weight, None))
            head.decoder, head.bias = decoder, decoder.bias
        self.config.vocab_size = new_size
        self.tie_weights()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool | None = None,
        token: str | bool | None = None,
        **kwargs: Any,
    ):
        """Load a model folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``, written here
        or by ``transformers``), or a Hugging Face Hub repo id such as ``"studio-ousia/luke-base"``: read
        from the Hugging Face cache, downloaded when online (an existing local folder always wins).

        ``revision`` (branch, tag or commit), ``cache_dir``, ``local_files_only`` and ``token`` are as in
        ``transformers``; ``HF_HUB_OFFLINE=1`` reads the cache only. Other keyword arguments
        (``config=``, ``output_loading_info=``, config fields to override) are those of
        :func:`luke.checkpoint.load_pretrained`. A repo that is not LUKE, or that cannot be had, is a
        one-line :class:`~luke.errors.CheckpointError` naming it."""
        from luke.checkpoint import load_pretrained

        hub = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only, "token": token}
        return load_pretrained(cls, pretrained_model_name_or_path, **hub, **kwargs)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` + ``model.safetensors`` with ``transformers``' LUKE key names."""
        from luke.checkpoint import save_pretrained

        save_pretrained(self, folder)


def _copy_rows(new: torch.Tensor, old: torch.Tensor, init_from: dict[int, int] | None) -> torch.Tensor:
    """``new`` with its leading rows copied from ``old`` and rows ``init_from`` (new id -> old id) set."""
    keep = min(new.shape[0], old.shape[0])
    with torch.no_grad():
        new[:keep] = old[:keep]
        for new_id, src_id in (init_from or {}).items():
            new[new_id] = old[src_id]
    return new


def _validate_inputs(config: LukeConfig, input_ids, attention_mask, token_type_ids, entity_ids, entity_pos):
    """Shape and range checks with messages that name the argument (cheap next to the forward pass)."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
    B, L = input_ids.shape
    for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if t is not None and t.shape != input_ids.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but input_ids has {tuple(input_ids.shape)}")
    if input_ids.numel() and (input_ids.max() >= config.vocab_size or input_ids.min() < 0):
        raise ValueError(f"input_ids must lie in [0, {config.vocab_size}) (vocab_size); got max {input_ids.max()}")
    n_pos = L + (config.pad_token_id + 1 if config.word_position_style == "roberta" else 0)
    if n_pos > config.max_position_embeddings:
        raise ValueError(
            f"sequence of {L} words needs {n_pos} word positions but max_position_embeddings is "
            f"{config.max_position_embeddings}"
        )
    if entity_ids is None:
        return
    if entity_ids.dim() != 2 or entity_ids.shape[0] != B:
        raise ValueError(f"entity_ids must be (batch={B}, entities), got shape {tuple(entity_ids.shape)}")
    if entity_pos is None:
        raise ValueError("entity_position_ids is required when entity_ids is given")
    if entity_pos.dim() != 3 or entity_pos.shape[:2] != entity_ids.shape:
        raise ValueError(
            f"entity_position_ids must be (batch, entities, max_mention_length) = {tuple(entity_ids.shape)} + (M,),"
            f" got {tuple(entity_pos.shape)}"
        )
    if entity_ids.numel():
        if entity_ids.max() >= config.entity_vocab_size or entity_ids.min() < 0:
            raise ValueError(
                f"entity_ids must lie in [0, {config.entity_vocab_size}) (entity_vocab_size); "
                f"got max {int(entity_ids.max())}"
            )
        if entity_pos.max() >= min(L, config.max_position_embeddings) or entity_pos.min() < -1:
            raise ValueError(
                f"entity_position_ids must be -1 (padding) or word indices in [0, {L}); got max "
                f"{int(entity_pos.max())}, min {int(entity_pos.min())}"
            )


# ---------------------------------------------------------------------------------------- LukeModel


class LukeModel(LukePreTrainedModel):
    """The bare LUKE encoder: word and entity hidden states (+ pooled [CLS] output)."""

    def __init__(self, config: LukeConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = LukeEmbeddings(config)
        self.entity_embeddings = LukeEntityEmbeddings(config)
        self.encoder = LukeEncoder(config)
        self.pooler = LukePooler(config) if add_pooling_layer else None
        self.init_weights()

    def gradient_checkpointing_enable(self) -> None:
        self.encoder.gradient_checkpointing = True

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        entity_ids: torch.Tensor | None = None,
        entity_attention_mask: torch.Tensor | None = None,
        entity_token_type_ids: torch.Tensor | None = None,
        entity_position_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        entity_states_only: bool = False,
        **unused: Any,
    ) -> BaseLukeModelOutputWithPooling:
        """Encode words and (optionally) entities.

        Args:
            input_ids: (B, L) word ids.
            attention_mask: (B, L) 1 for real tokens, 0 for padding (default all ones).
            token_type_ids: (B, L) segment ids (default zeros).
            position_ids: (B, L) word position ids (default derived per ``config.word_position_style``).
            entity_ids: (B, E) entity ids, or None for a words-only forward.
            entity_attention_mask: (B, E) 1 for real entities (default all ones).
            entity_token_type_ids: (B, E) (default zeros).
            entity_position_ids: (B, E, M) 0-based word indices of each mention, -1 padded.
            output_attentions: also return per-layer attention probabilities (B, h, N, N).
            output_hidden_states: also return the embeddings and every layer's word/entity states.
            entity_states_only: only ``entity_last_hidden_state`` is wanted (the entity task heads): the
                last layer then computes the entity rows alone (words still act as keys and values), which
                saves most of that layer; ``last_hidden_state`` and ``pooler_output`` are None. Ignored
                (everything computed) without entities or with ``output_hidden_states``/``output_attentions``.
        """
        unknown = sorted(k for k, v in unused.items() if v is not None and k != "return_dict")
        if unknown:
            raise TypeError(f"unexpected inputs: {unknown}")
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            _validate_inputs(self.config, input_ids, attention_mask, token_type_ids, entity_ids, entity_position_ids)
        L = input_ids.shape[1]
        device = input_ids.device
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, L, H)
        if entity_ids is not None:
            if entity_attention_mask is None:
                entity_attention_mask = torch.ones_like(entity_ids)
            if entity_token_type_ids is None:
                entity_token_type_ids = torch.zeros_like(entity_ids)
            e = self.entity_embeddings(entity_ids, entity_position_ids, entity_token_type_ids)  # (B, E, H)
            x = torch.cat([x, e], dim=1)  # (B, N, H)
        layout = TokenLayout.build(attention_mask.to(device), None if entity_ids is None else entity_attention_mask)
        rows_only = (
            entity_states_only
            and entity_ids is not None
            and not (output_hidden_states or output_attentions)
            and layout.rows.numel() > layout.num_word_rows  # at least one real entity
            and len(self.encoder.layer) > 0
        )
        x, states, attentions = self.encoder(layout.pack(x), layout, output_hidden_states, output_attentions, rows_only)
        if rows_only:  # x: (Te, H) entity rows of the last layer
            return BaseLukeModelOutputWithPooling(None, entity_last_hidden_state=layout.entity_rows.unpack(x))

        # Back to the padded grid; hidden states at padding positions are zeros.
        x = layout.unpack(x)  # (B, N, H)
        states = [layout.unpack(s) for s in states] if states is not None else None
        word, ent = x[:, :L], (x[:, L:] if entity_ids is not None else None)
        return BaseLukeModelOutputWithPooling(
            last_hidden_state=word,
            pooler_output=self.pooler(word) if self.pooler is not None else None,
            hidden_states=tuple(s[:, :L] for s in states) if states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
            entity_last_hidden_state=ent,
            entity_hidden_states=(
                tuple(s[:, L:] for s in states) if states is not None and entity_ids is not None else None
            ),
        )


# -------------------------------------------------------------------------------- pretraining heads


def _states(out: BaseLukeModelOutputWithPooling) -> dict[str, Any]:
    """The per-layer outputs a head model passes on from the encoder."""
    return dict(
        hidden_states=out.hidden_states, entity_hidden_states=out.entity_hidden_states, attentions=out.attentions
    )


class LukeLMHead(nn.Module):
    """Masked-word head: dense -> GELU -> LayerNorm -> decoder (tied to the word embeddings)."""

    def __init__(self, config: LukeConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = self.decoder.bias  # one parameter under both names, as in transformers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(F.gelu(self.dense(x))))  # (..., V)


class EntityPredictionHeadTransform(nn.Module):
    def __init__(self, config: LukeConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.entity_emb_size)
        self.transform_act_fn = _activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.entity_emb_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(x)))  # (..., De)


class EntityPredictionHead(nn.Module):
    """Masked-entity head: transform to De, decoder tied to the De-wide entity table, own bias."""

    def __init__(self, config: LukeConfig):
        super().__init__()
        self.transform = EntityPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.entity_emb_size, config.entity_vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.entity_vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x)) + self.bias  # (..., Ve)


class LukeForMaskedLM(LukePreTrainedModel):
    """LUKE with the pretraining heads: masked language modelling + masked entity prediction.

    ``loss = mlm_loss + mep_loss`` (cross-entropy, label -100 ignored), as in ``transformers``.
    """

    def __init__(self, config: LukeConfig):
        super().__init__(config)
        self.luke = LukeModel(config)
        self.lm_head = LukeLMHead(config)
        self.entity_predictions = EntityPredictionHead(config)
        self.init_weights()

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.lm_head.decoder.weight = self.luke.embeddings.word_embeddings.weight
        self.entity_predictions.decoder.weight = self.luke.entity_embeddings.entity_embeddings.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        entity_labels: torch.Tensor | None = None,
        **inputs: Any,
    ) -> LukeMaskedLMOutput:
        """``labels`` (B, L) and ``entity_labels`` (B, E): target ids, -100 where not predicted."""
        out = self.luke(input_ids, **inputs)
        logits = self.lm_head(out.last_hidden_state)
        mlm_loss = mep_loss = entity_logits = None
        if labels is not None:
            mlm_loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
        if out.entity_last_hidden_state is not None:
            entity_logits = self.entity_predictions(out.entity_last_hidden_state)
            if entity_labels is not None:
                mep_loss = F.cross_entropy(entity_logits.view(-1, entity_logits.shape[-1]), entity_labels.view(-1))
        losses = [x for x in (mlm_loss, mep_loss) if x is not None]
        return LukeMaskedLMOutput(
            loss=sum(losses[1:], losses[0]) if losses else None,
            mlm_loss=mlm_loss,
            mep_loss=mep_loss,
            logits=logits,
            entity_logits=entity_logits,
            **_states(out),
        )


# ---------------------------------------------------------------------------------------- task heads


def _classification_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    """Cross-entropy for integer labels (one per row), BCE-with-logits for multi-hot label vectors."""
    if labels is None:
        return None
    if labels.dim() == logits.dim() - 1:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
    return F.binary_cross_entropy_with_logits(logits.reshape(-1), labels.reshape(-1).type_as(logits))


class _EntityHeadModel(LukePreTrainedModel):
    """Shared plumbing of the entity task heads: encoder, dropout, classifier over entity features."""

    feature_width = 1  # classifier input = feature_width * H
    classifier_bias = True
    uses_word_states = False  # False: the last layer computes the entity rows only (see LukeModel.forward)

    def __init__(self, config: LukeConfig):
        super().__init__(config)
        self.luke = LukeModel(config)
        self.dropout = FastDropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size * self.feature_width, config.num_labels, self.classifier_bias)
        self.init_weights()

    def features(self, out: BaseLukeModelOutputWithPooling, **kw: Any) -> torch.Tensor:
        raise NotImplementedError

    def unused_parameter_names(self) -> list[str]:
        """Parameters that never influence this model's logits: the [CLS] pooler (part of the checkpoint
        format, used by no entity head) and, for heads reading entity states only with entity-aware
        attention, the last layer's word queries (``query``, ``w2e_query``: that layer computes no word
        outputs). The fine-tuning trainer freezes them, so DDP does not wait for gradients that never come."""
        names = [n for n, _ in self.named_parameters() if n.startswith("luke.pooler.")]
        if not self.uses_word_states and self.config.use_entity_aware_attention and self.config.num_hidden_layers:
            last = f"luke.encoder.layer.{self.config.num_hidden_layers - 1}.attention.self."
            names += [n for n, _ in self.named_parameters() if n.startswith((last + "query.", last + "w2e_query."))]
        return names

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, **inputs: Any):
        head_kw = {k: inputs.pop(k) for k in ("entity_start_positions", "entity_end_positions") if k in inputs}
        if inputs.get("entity_ids") is None:
            raise ValueError(f"{type(self).__name__} needs entity_ids and entity_position_ids")
        out = self.luke(input_ids, entity_states_only=not self.uses_word_states, **inputs)
        logits = self.classifier(self.dropout(self.features(out, **head_kw)))
        return EntityClassificationOutput(
            loss=_classification_loss(logits, labels),
            logits=logits,
            **_states(out),
        )


class LukeForEntityClassification(_EntityHeadModel):
    """Entity typing: classifier on the first entity's state. logits (B, C)."""

    def features(self, out, **kw):
        return out.entity_last_hidden_state[:, 0]  # (B, H)


class LukeForEntityPairClassification(_EntityHeadModel):
    """Relation classification: bias-free classifier on [head entity; tail entity]. logits (B, C)."""

    feature_width = 2
    classifier_bias = False

    def features(self, out, **kw):
        e = out.entity_last_hidden_state
        return torch.cat([e[:, 0], e[:, 1]], dim=-1)  # (B, 2H)


class LukeForEntitySpanClassification(_EntityHeadModel):
    """Span classification (NER): classifier on [start word; end word; entity] per span. logits (B, E, C).

    Needs ``entity_start_positions`` and ``entity_end_positions`` (B, E): inclusive word indices.
    """

    feature_width = 3
    uses_word_states = True

    def features(self, out, entity_start_positions=None, entity_end_positions=None, **kw):
        if entity_start_positions is None or entity_end_positions is None:
            raise ValueError("LukeForEntitySpanClassification needs entity_start_positions and entity_end_positions")
        words = out.last_hidden_state  # (B, L, H)
        H = words.shape[-1]
        start = torch.gather(words, 1, entity_start_positions.unsqueeze(-1).expand(-1, -1, H))  # (B, E, H)
        end = torch.gather(words, 1, entity_end_positions.unsqueeze(-1).expand(-1, -1, H))
        return torch.cat([start, end, out.entity_last_hidden_state], dim=-1)  # (B, E, 3H)


class LukeForQuestionAnswering(LukePreTrainedModel):
    """Extractive QA (SQuAD): ``Linear(H, 2)`` on every word state -> start/end logits (B, L).

    Same keys as ``transformers.LukeForQuestionAnswering`` (no pooler, ``qa_outputs``). Entities are
    optional (SQuAD's Wikipedia-link features). Logits at padding positions are -10000 (``transformers``
    leaves arbitrary values there). Loss: mean of the start and end cross-entropies; positions outside the
    sequence are ignored, as in ``transformers``.
    """

    def __init__(self, config: LukeConfig):
        super().__init__(config)
        self.luke = LukeModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        **inputs: Any,
    ) -> LukeQuestionAnsweringModelOutput:
        out = self.luke(input_ids, **inputs)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, L, 2)
        mask = inputs.get("attention_mask")
        if mask is not None:  # padding never wins, and the loss does not depend on how much there is
            logits = logits.masked_fill(~mask.bool().unsqueeze(-1), -10000.0)
        start_logits, end_logits = logits[..., 0], logits[..., 1]  # (B, L) each
        loss = None
        if start_positions is not None and end_positions is not None:
            L = start_logits.shape[1]
            s, e = start_positions.reshape(-1).clamp(0, L), end_positions.reshape(-1).clamp(0, L)
            loss = (
                F.cross_entropy(start_logits, s, ignore_index=L) + F.cross_entropy(end_logits, e, ignore_index=L)
            ) / 2
        return LukeQuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            **_states(out),
        )


class LukeForEntitySpanQA(LukePreTrainedModel):
    """Cloze QA over entities (ReCoRD): entity 0 is the query's placeholder, entities 1.. the candidates.

    Each candidate gets one logit from ``Linear(2H, 1)`` on [placeholder state; candidate state]: logits
    (B, E - 1), padded candidates pushed to -10000. Loss: binary cross-entropy over the real candidates
    (``labels`` (B, E - 1) in {0, 1}, -100 for padding), averaged over them. Not a ``transformers`` class
    (it has none for ReCoRD); the encoder part loads in ``transformers.LukeModel``.
    """

    def __init__(self, config: LukeConfig):
        super().__init__(config)
        self.luke = LukeModel(config, add_pooling_layer=False)
        self.dropout = FastDropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size * 2, 1)
        self.init_weights()

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, **inputs: Any):
        if inputs.get("entity_ids") is None or inputs["entity_ids"].shape[1] < 2:
            raise ValueError("LukeForEntitySpanQA needs entity_ids with a placeholder and at least one candidate")
        out = self.luke(input_ids, **inputs)
        e = self.dropout(out.entity_last_hidden_state)  # (B, E, H)
        query = e[:, :1].expand(-1, e.shape[1] - 1, -1)  # (B, E-1, H)
        logits = self.classifier(torch.cat([query, e[:, 1:]], dim=-1)).squeeze(-1)  # (B, E-1)
        mask = inputs.get("entity_attention_mask")
        real = mask[:, 1:].bool() if mask is not None else torch.ones_like(logits, dtype=torch.bool)
        logits = logits.masked_fill(~real, -10000.0)
        loss = None
        if labels is not None:
            keep = real & (labels != -100)
            loss = F.binary_cross_entropy_with_logits(logits[keep], labels[keep].type_as(logits))
        return EntityClassificationOutput(
            loss=loss,
            logits=logits,
            **_states(out),
        )


class LukeForEntityDisambiguation(LukePreTrainedModel):
    """Entity disambiguation (Yamada et al., NAACL 2022): the masked-entity head of :class:`LukeForMaskedLM`
    scores each ``[MASK]`` entity's candidates.

    Same ``luke.*`` and ``entity_predictions.*`` keys as ``LukeForMaskedLM`` (decoder tied to the entity
    table), so a pretrained folder (ours or ``transformers``') loads with its entity knowledge; its
    ``lm_head.*`` tensors are not used and are ignored on loading. A folder without that head, or whose
    entity table holds only the special entities (a ``-lite`` model), is refused by :meth:`from_pretrained`.

    With ``entity_candidate_ids`` (B, E, K) the logits are the head's scores of those entities only
    (decoder rows and bias gathered; the (B, E, Ve) product is never formed), padded candidates
    (``entity_candidate_mask`` False) at -10000; ``entity_labels`` (B, E) index into K (-100: no loss) and
    the loss is the cross-entropy over the candidates. Without candidates: logits over the whole entity
    vocabulary (B, E, Ve), ``entity_labels`` then being entity ids.
    """

    #: head tensors a fine-tuning start keeps from its pretrained checkpoint (see ``finetuning.model_io``)
    pretrained_heads = ("entity_predictions.",)
    #: checkpoint tensors that are not this model's and are dropped silently on loading
    ignored_checkpoint_prefixes = ("lm_head.",)
    #: entity rows every vocabulary has ([PAD], [UNK], [MASK], [MASK2]): a table of no more cannot disambiguate
    num_special_entities = 4

    def __init__(self, config: LukeConfig):
        super().__init__(config)
        self.luke = LukeModel(config)
        self.entity_predictions = EntityPredictionHead(config)
        self.init_weights()

    def tie_weights(self) -> None:
        self.entity_predictions.decoder.weight = self.luke.entity_embeddings.entity_embeddings.weight

    def unused_parameter_names(self) -> list[str]:
        """The pooler and the last layer's word queries never reach the logits (entity states only)."""
        names = [n for n, _ in self.named_parameters() if n.startswith("luke.pooler.")]
        if self.config.use_entity_aware_attention and self.config.num_hidden_layers:
            last = f"luke.encoder.layer.{self.config.num_hidden_layers - 1}.attention.self."
            names += [n for n, _ in self.named_parameters() if n.startswith((last + "query.", last + "w2e_query."))]
        return names

    @classmethod
    def check_checkpoint(
        cls, name: str | Path, entity_vocab_size: int, keys: Any, architectures: list[str] | None = None
    ) -> None:
        """:class:`~luke.errors.CheckpointError` when the weights ``keys`` of ``name`` (whose config.json names
        ``architectures``) have no masked-entity head, or its entity table has only the special entities."""
        from luke.errors import CheckpointError

        what = ", ".join(map(str, architectures or [])) or "no head named in config.json"
        if not any(str(k).startswith(("entity_predictions.", "luke.entity_predictions.")) for k in keys):
            raise CheckpointError(
                f"{name} has no masked-entity head (entity_predictions.*; it holds {what}): entity disambiguation "
                "needs a pretrained LUKE model (LukeForMaskedLM) or one fine-tuned for entity_disambiguation"
            )
        if entity_vocab_size <= cls.num_special_entities:
            raise CheckpointError(
                f"{name} has only the {entity_vocab_size} special entities in its entity table (a -lite model?): "
                "entity disambiguation needs the pretrained entity vocabulary"
            )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any):
        """As :meth:`LukePreTrainedModel.from_pretrained`, refusing a folder without a usable entity head
        (:meth:`check_checkpoint`) before the weights are loaded."""
        from luke.checkpoint import check_is_luke, weight_shapes
        from luke.hub import resolve_pretrained

        hub = {k: kwargs.get(k) for k in ("revision", "cache_dir", "local_files_only", "token")}
        folder = resolve_pretrained(pretrained_model_name_or_path, files="model", **hub)
        if (folder / "config.json").is_file() and kwargs.get("config") is None:
            check_is_luke(folder, pretrained_model_name_or_path)
            config = LukeConfig.from_pretrained(folder)
            cls.check_checkpoint(
                pretrained_model_name_or_path, config.entity_vocab_size, weight_shapes(folder), config.architectures
            )
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def candidate_logits(self, states: torch.Tensor, candidate_ids: torch.Tensor) -> torch.Tensor:
        """The head's scores of ``candidate_ids`` (B, E, K) from entity states (B, E, H) -> (B, E, K)."""
        h = self.entity_predictions.transform(states)  # (B, E, De)
        rows = self.entity_predictions.decoder.weight[candidate_ids]  # (B, E, K, De)
        bias = self.entity_predictions.bias[candidate_ids]  # (B, E, K)
        return torch.einsum("bed,bekd->bek", h, rows) + bias

    def forward(
        self,
        input_ids: torch.Tensor,
        entity_candidate_ids: torch.Tensor | None = None,
        entity_candidate_mask: torch.Tensor | None = None,
        entity_labels: torch.Tensor | None = None,
        **inputs: Any,
    ) -> EntityDisambiguationOutput:
        """``entity_candidate_ids`` (B, E, K) entity ids, ``entity_candidate_mask`` (B, E, K) True for real
        candidates (default: all), ``entity_labels`` (B, E) candidate indices (entity ids without
        candidates), -100 where there is no loss; other inputs as :class:`LukeModel`."""
        if inputs.get("entity_ids") is None:
            raise ValueError("LukeForEntityDisambiguation needs entity_ids and entity_position_ids")
        want_states = inputs.get("output_hidden_states") or inputs.get("output_attentions")
        out = self.luke(input_ids, entity_states_only=not want_states, **inputs)
        states = out.entity_last_hidden_state  # (B, E, H)
        if entity_candidate_ids is None:
            logits = self.entity_predictions(states)  # (B, E, Ve)
        else:
            if entity_candidate_ids.dim() != 3 or entity_candidate_ids.shape[:2] != states.shape[:2]:
                raise ValueError(
                    f"entity_candidate_ids must be (batch, entities, candidates) = {tuple(states.shape[:2])} + (K,), "
                    f"got {tuple(entity_candidate_ids.shape)}"
                )
            logits = self.candidate_logits(states, entity_candidate_ids)  # (B, E, K)
            if entity_candidate_mask is not None:
                logits = logits.masked_fill(~entity_candidate_mask.bool(), -10000.0)
        loss = None
        if entity_labels is not None:
            flat, labels = logits.reshape(-1, logits.shape[-1]), entity_labels.reshape(-1)
            # no target in the batch (every mention unmasked or without its gold candidate): a zero loss
            # that still reaches every parameter of the graph
            loss = F.cross_entropy(flat, labels) if bool((labels != -100).any()) else flat.sum() * 0.0
        return EntityDisambiguationOutput(loss=loss, logits=logits, **_states(out))


MODEL_CLASSES: dict[str, type[LukePreTrainedModel]] = {
    cls.__name__: cls
    for cls in (
        LukeModel,
        LukeForMaskedLM,
        LukeForEntityClassification,
        LukeForEntityPairClassification,
        LukeForEntitySpanClassification,
        LukeForQuestionAnswering,
        LukeForEntitySpanQA,
        LukeForEntityDisambiguation,
    )
}
