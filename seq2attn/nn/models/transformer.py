"""Encoder-decoder Transformer (Vaswani et al. 2017) behind the common backend protocol.

Embeddings scaled by sqrt(D) plus sinusoidal (or learned) positions; encoder layers of
self-attention + position-wise feed-forward, decoder layers of causal self-attention +
cross-attention + feed-forward; each sub-layer wrapped in a residual connection with layer norm
before it (``pre``, default: stable without warm-up tricks) or after it (``post``, the paper's).

Decoding goes through ``step`` with a KV cache: the state carries every decoder layer's
self-attention keys/values (one position appended per step) and the encoder output carries the
cross-attention keys/values, projected once per batch; both reorder with ``index_select``.
``use_cache = False`` makes ``step`` recompute the whole prefix instead (for benchmarks).

Alignment: the cross-attention weights of one decoder layer (``align_layer``, default the last),
averaged over heads or of one head (``align_head``); only that layer takes the explicit attention
path, every other attention uses the fused ``scaled_dot_product_attention``.

Shapes: B batch, S source length, T target length, D model size (``emb_size``), h heads,
F feed-forward size, V vocabulary, L decoder layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seq2attn.config import Config, ModelConfig
from seq2attn.errors import ConfigError
from seq2attn.nn.models.base import Features, ForwardOutput, StepOutput
from seq2attn.nn.models.mha import KV, MultiHeadAttention, causal_mask
from seq2attn.special import PAD_ID

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class TransformerEncoderOutput:
    mask: Tensor  # (B, S) bool, True = real source token
    cross: list[KV]  # per decoder layer: cross-attention keys/values (B, h, S, d), once per batch

    def index_select(self, index: Tensor) -> TransformerEncoderOutput:
        return TransformerEncoderOutput(self.mask.index_select(0, index),
                                        [kv.index_select(index) for kv in self.cross])


@dataclass
class TransformerState:
    tokens: Tensor  # (B, t) the target tokens fed so far (BOS first); t is the next position
    cache: list[KV]  # per decoder layer: self-attention keys/values of those t positions ([] without cache)

    def index_select(self, index: Tensor) -> TransformerState:
        return TransformerState(self.tokens.index_select(0, index),
                                [kv.index_select(index) for kv in self.cache])


@dataclass
class DecoderLayerOutput:
    x: Tensor  # (B, T, D)
    kv: KV  # self-attention keys/values of every position so far (past + new)
    weights: Tensor | None  # (B, h, T, S) cross-attention weights, when asked for


@dataclass
class DecoderOutput:
    hidden: Tensor  # (B, T, D) before the vocabulary projection
    cache: list[KV]  # per layer, past + new self-attention keys/values
    attention: Tensor  # (B, T, S) the alignment layer's cross-attention (heads averaged or one head)


def sinusoids(n: int, d: int) -> Tensor:
    """(n, d): PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)  # (n, 1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))  # (d/2,)
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return table


class Embedding(nn.Module):
    """Token embedding * sqrt(D) + position encoding, then dropout."""

    def __init__(self, cfg: ModelConfig, tokens: nn.Embedding):
        super().__init__()
        self.tokens, self.scale = tokens, math.sqrt(cfg.emb_size)
        self.learned = nn.Embedding(cfg.max_positions, cfg.emb_size) if cfg.positional == "learned" else None
        # not saved with the weights: the table is a function of the config
        self.register_buffer("table", sinusoids(cfg.max_positions, cfg.emb_size), persistent=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def positions(self, start: int, T: int) -> Tensor:  # (T, D)
        if self.learned is not None:
            # past the table (only in long decodes) the last learned position is reused
            idx = torch.arange(start, start + T, device=self.learned.weight.device)
            return self.learned(idx.clamp(max=self.learned.num_embeddings - 1))
        if start + T <= self.table.size(0):
            return self.table[start : start + T]
        return sinusoids(start + T, self.table.size(1)).to(self.table.device)[start:]

    def forward(self, ids: Tensor, start: int = 0) -> Tensor:  # (B, T) -> (B, T, D)
        x = self.tokens(ids) * self.scale + self.positions(start, ids.size(1))
        return self.dropout(x)


class FeedForward(nn.Module):
    """Position-wise FFN(x) = W2 dropout(act(W1 x + b1)) + b2; the dropout is ``activation_dropout``
    (fairseq's name; 0 there by default), else ``dropout``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        p = cfg.dropout if cfg.activation_dropout is None else cfg.activation_dropout
        self.net = nn.Sequential(nn.Linear(cfg.emb_size, cfg.ff_size), ACTIVATIONS[cfg.activation](),
                                 nn.Dropout(p), nn.Linear(cfg.ff_size, cfg.emb_size))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Residual(nn.Module):
    """Layer norm and dropout around one sub-layer: x + f(norm(x)) (pre) or norm(x + f(x)) (post).

    ``enter`` gives the sub-layer's input and ``leave`` adds its output back, because the decoder's
    self-attention needs the normalized input twice (queries, and keys/values for the cache).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre = cfg.norm == "pre"
        self.norm = nn.LayerNorm(cfg.emb_size)
        self.dropout = nn.Dropout(cfg.dropout)

    def enter(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.pre else x

    def leave(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.dropout(y)
        return x if self.pre else self.norm(x)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(cfg.emb_size, cfg.heads, dropout=cfg.attention_dropout)
        self.ff = FeedForward(cfg)
        self.r_attn, self.r_ff = Residual(cfg), Residual(cfg)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, S, D), mask (B, 1, 1, S) -> (B, S, D)."""
        h = self.r_attn.enter(x)
        att = self.self_attn(h, self.self_attn.project_kv(h), mask=mask, need_weights=False)
        x = self.r_attn.leave(x, att.out)
        return self.r_ff.leave(x, self.ff(self.r_ff.enter(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(cfg.emb_size, cfg.heads, dropout=cfg.attention_dropout)
        self.cross_attn = MultiHeadAttention(cfg.emb_size, cfg.heads, dropout=cfg.attention_dropout)
        self.ff = FeedForward(cfg)
        self.r_self, self.r_cross, self.r_ff = Residual(cfg), Residual(cfg), Residual(cfg)

    def forward(self, x: Tensor, *, past: KV | None, cross: KV, src_mask: Tensor,
                need_weights: bool) -> DecoderLayerOutput:
        """x (B, T, D) at positions past.length .. past.length + T - 1; cross-attention over ``cross``
        masked by ``src_mask`` (B, 1, 1, S)."""
        h = self.r_self.enter(x)
        kv = self.self_attn.project_kv(h)
        if past is not None:
            kv = past.append(kv)
        mask = causal_mask(x.size(1), kv.length - x.size(1), x.device)
        x = self.r_self.leave(x, self.self_attn(h, kv, mask=mask, need_weights=False).out)
        att = self.cross_attn(self.r_cross.enter(x), cross, mask=src_mask, need_weights=need_weights)
        x = self.r_cross.leave(x, att.out)
        return DecoderLayerOutput(self.r_ff.leave(x, self.ff(self.r_ff.enter(x))), kv, att.weights)


def _init(module: nn.Module, d_model: int) -> None:
    """Xavier-uniform matrices (as in the annotated Transformer), N(0, D^-0.5) embeddings, so that
    embeddings scaled by sqrt(D) have unit variance like the positions they are added to."""
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif p.dim() > 1 and "embed" not in name and "learned" not in name:
            nn.init.xavier_uniform_(p)
    for m in module.modules():
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=d_model**-0.5)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()


def check_config(cfg: Config) -> None:
    """This backend's checks (sizes that must fit together), run by ``seq2attn.nn.models.check_config``
    where a model is built or a config is checked, before any data is read."""
    m = cfg.model
    if m.emb_size % m.heads:
        raise ConfigError(f"model.emb_size={m.emb_size} must be divisible by model.heads={m.heads} "
                          "(each head gets emb_size / heads dimensions)")
    if m.align_layer is not None and not 0 <= m.align_layer < m.dec_layers:
        raise ConfigError(f"model.align_layer={m.align_layer}; choose 0..{m.dec_layers - 1} "
                          f"(model.dec_layers={m.dec_layers}) or null for the last")
    if m.align_head is not None and not 0 <= m.align_head < m.heads:
        raise ConfigError(f"model.align_head={m.align_head}; choose 0..{m.heads - 1} "
                          f"(model.heads={m.heads}) or null for the average")
    if m.share_embeddings is True and not cfg.tokenizer.joint:
        raise ConfigError("model.share_embeddings=true needs tokenizer.joint=true (one vocabulary); "
                          "or set model.share_embeddings=auto")
    if m.positional == "learned" and m.max_positions <= cfg.data.max_length:
        raise ConfigError(f"model.max_positions={m.max_positions}; must exceed data.max_length="
                          f"{cfg.data.max_length} with learned positions")


class TransformerSeq2Seq(nn.Module):
    """The whole model, wired where you can see it: embeddings, N encoder layers, N decoder layers,
    final layer norms (pre-norm only), the vocabulary projection."""

    check_config = staticmethod(check_config)

    @staticmethod
    def position_limit(cfg: ModelConfig) -> int:
        return cfg.max_positions  # the position table (learned positions reuse its last row past it)

    @classmethod
    def build(cls, cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int, joint: bool) -> TransformerSeq2Seq:
        # share_embeddings auto: one embedding when source and target share one tokenizer
        share = joint if cfg.share_embeddings == "auto" else bool(cfg.share_embeddings)
        return cls(cfg, src_vocab=src_vocab, tgt_vocab=tgt_vocab, share_embeddings=share)

    def __init__(self, cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int, share_embeddings: bool):
        super().__init__()
        D = cfg.emb_size
        tgt_tokens = nn.Embedding(tgt_vocab, D, padding_idx=PAD_ID)
        if share_embeddings and src_vocab != tgt_vocab:
            raise ConfigError("model.share_embeddings=true needs one vocabulary: set tokenizer.joint=true")
        src_tokens = tgt_tokens if share_embeddings else nn.Embedding(src_vocab, D, padding_idx=PAD_ID)
        self.src_embed, self.tgt_embed = Embedding(cfg, src_tokens), Embedding(cfg, tgt_tokens)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.dec_layers))
        pre = cfg.norm == "pre"  # post-norm layers already end in a layer norm
        self.enc_norm = nn.LayerNorm(D) if pre else nn.Identity()
        self.dec_norm = nn.LayerNorm(D) if pre else nn.Identity()
        self.output = nn.Linear(D, tgt_vocab, bias=False)
        _init(self, D)
        if cfg.tie_embeddings:
            self.output.weight = tgt_tokens.weight
        self.align_layer, self.align_head = cfg.dec_layers - 1, None
        self.set_alignment(layer=cfg.align_layer, head=cfg.align_head)
        self.use_cache = True  # False: every step recomputes the whole prefix (benchmarks, tests)

    def set_alignment(self, *, layer: int | None, head: int | None) -> None:
        """Which cross-attention the model returns as its attention: decoder ``layer`` 0 .. L-1
        (None: the last) and ``head`` 0 .. h-1 (None: the average over heads)."""
        L, h = len(self.decoder), self.decoder[0].cross_attn.heads
        if layer is not None and not 0 <= layer < L:
            raise ConfigError(f"alignment layer {layer} (--layer / model.align_layer): this model has "
                              f"{L} decoder layers; choose 0..{L - 1}")
        if head is not None and not 0 <= head < h:
            raise ConfigError(f"alignment head {head} (--head / model.align_head): this model has "
                              f"{h} heads; choose 0..{h - 1}")
        self.align_layer, self.align_head = (L - 1 if layer is None else layer), head

    def encode(self, src: Tensor, src_lengths: Tensor) -> TransformerEncoderOutput:
        """(B, S) ids -> source mask and every decoder layer's cross-attention keys/values."""
        mask = src != PAD_ID  # (B, S)
        att_mask = mask.view(mask.size(0), 1, 1, -1)  # (B, 1, 1, S)
        x = self.src_embed(src)  # (B, S, D)
        for layer in self.encoder:
            x = layer(x, att_mask)
        memory = self.enc_norm(x)
        # project cross-attention keys once per batch: the decoder reads them at every step
        return TransformerEncoderOutput(mask, [layer.cross_attn.project_kv(memory) for layer in self.decoder])

    def decode(self, ids: Tensor, *, past: list[KV] | None, enc: TransformerEncoderOutput) -> DecoderOutput:
        """Target ids (B, T) following ``past`` (per layer, None: nothing before) -> hidden states."""
        start = past[0].length if past else 0
        x = self.tgt_embed(ids, start)  # (B, T, D)
        src_mask = enc.mask.view(enc.mask.size(0), 1, 1, -1)  # (B, 1, 1, S)
        cache, weights = [], None
        for i, layer in enumerate(self.decoder):
            out = layer(x, past=past[i] if past else None, cross=enc.cross[i], src_mask=src_mask,
                        need_weights=i == self.align_layer)
            x = out.x
            cache.append(out.kv)
            if i == self.align_layer:
                weights = out.weights  # (B, h, T, S)
        assert weights is not None
        attention = weights.mean(dim=1) if self.align_head is None else weights[:, self.align_head]
        return DecoderOutput(self.dec_norm(x), cache, attention)  # attention (B, T, S)

    def init_state(self, enc: TransformerEncoderOutput) -> TransformerState:
        B = enc.mask.size(0)
        empty = enc.cross[0].k[:, :, :0]  # (B, h, 0, d): right dtype and device
        cache = [KV(empty, empty) for _ in self.decoder] if self.use_cache else []
        return TransformerState(torch.zeros(B, 0, dtype=torch.long, device=enc.mask.device), cache)

    def step(self, prev: Tensor, state: TransformerState, enc: TransformerEncoderOutput) -> StepOutput:
        """prev (B,) -> logits (B, V) and attention (B, S) for the next position."""
        tokens = torch.cat([state.tokens, prev.unsqueeze(1)], dim=1)  # (B, t + 1)
        if state.cache:  # cached: only the new position runs through the decoder
            out = self.decode(prev.unsqueeze(1), past=state.cache, enc=enc)
            cache = out.cache
        else:  # uncached: the whole prefix again, keep the last position
            out = self.decode(tokens, past=None, enc=enc)
            cache = []
        logits = self.output(out.hidden[:, -1])  # (B, V)
        return StepOutput(logits, out.attention[:, -1], TransformerState(tokens, cache))

    @property
    def output_layer(self) -> nn.Linear:
        return self.output

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> ForwardOutput:
        out = self.features(src, src_lengths, tgt_in)
        return ForwardOutput(self.output(out.hidden), out.attention)  # (B, T, V), (B, T, S)

    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Features:
        """Teacher-forced pass: all T positions at once under the causal mask."""
        enc = self.encode(src, src_lengths)
        out = self.decode(tgt_in, past=None, enc=enc)
        return Features(out.hidden, out.attention)  # (B, T, D), (B, T, S)
