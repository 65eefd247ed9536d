"""Bidirectional GRU encoder and attention GRU decoders.

Shapes: B batch, S source length, T target length, E embedding size, H encoder units per
direction (keys are 2H wide), D decoder units, L decoder layers, V target vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2attn.config import Config, ModelConfig
from seq2attn.errors import ConfigError
from seq2attn.nn.attention import ATTENTIONS, Memory, attention_name, build_attention
from seq2attn.nn.models.base import Features, ForwardOutput, StepOutput
from seq2attn.special import PAD_ID


@dataclass
class RNNState:
    hidden: Tensor  # (L, B, D)
    feed: Tensor | None = None  # (B, D) Luong input feeding: the previous attentional state

    def index_select(self, index: Tensor) -> RNNState:
        feed = None if self.feed is None else self.feed.index_select(0, index)
        return RNNState(self.hidden.index_select(1, index), feed)


@dataclass
class RNNEncoderOutput:
    memory: Memory  # attention-ready encoder states, keys projected once per batch
    init_state: RNNState  # the decoder's first state, from the bridge

    def index_select(self, index: Tensor) -> RNNEncoderOutput:
        return RNNEncoderOutput(self.memory.index_select(index), self.init_state.index_select(index))


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, cfg.emb_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(cfg.dropout)
        inner = cfg.dropout if cfg.enc_layers > 1 else 0.0
        self.rnn = nn.GRU(cfg.emb_size, cfg.hidden_size, cfg.enc_layers, batch_first=True,
                          bidirectional=True, dropout=inner)

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) ids -> states (B, S, 2H) and the final summary (B, 2H)."""
        x = self.dropout(self.embed(src))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)  # h: (layers * 2, B, H)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        final = torch.cat([h[-2], h[-1]], dim=-1)  # (B, 2H) last layer, forward and backward
        return self.dropout(states), final


def _scorer_sizes(cfg: ModelConfig) -> dict[str, int]:
    """Sizes the decoder's scorer is built with: queries are decoder states, keys encoder states."""
    D = cfg.dec_hidden_size
    return {"query_size": D, "key_size": 2 * cfg.hidden_size, "attention_size": cfg.attention_size or D,
            "heads": cfg.heads}


def check_config(cfg: Config) -> None:
    """This backend's checks (sizes that must fit together), run by ``seq2attn.nn.models.check_config``
    where a model is built or a config is checked, before any data is read."""
    check_sizes(cfg.model)


def check_sizes(cfg: ModelConfig) -> None:
    """Size constraints of the chosen scorer (an unknown scorer name is reported by
    ``ModelConfig`` itself, before this runs)."""
    ATTENTIONS[attention_name(cfg)].check_sizes(**_scorer_sizes(cfg))
    if cfg.tie_embeddings and cfg.emb_size != cfg.dec_hidden_size:
        raise ConfigError(f"model.tie_embeddings needs model.emb_size={cfg.emb_size} == "
                          f"model.dec_hidden_size={cfg.dec_hidden_size}")


class _Decoder(nn.Module):
    """What both wirings share: embeddings, the scorer, the bridge from the encoder's final state,
    the output layer. A wiring adds ``rnn``, ``recur`` (one step, or all T when ``parallel``) and
    ``pre_output`` (recurrent features -> the input of the vocabulary projection, batched over time)."""

    parallel = False  # True: the teacher-forced pass may run ``recur`` over the whole target at once

    def __init__(self, cfg: ModelConfig, vocab: int):
        super().__init__()
        D, E = cfg.dec_hidden_size, cfg.emb_size
        self.layers = cfg.dec_layers
        self.embed = nn.Embedding(vocab, E, padding_idx=PAD_ID)
        sizes = _scorer_sizes(cfg)
        self.attention = build_attention(attention_name(cfg), **sizes)
        self.bridge = nn.Linear(sizes["key_size"], cfg.dec_layers * D)
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(D, vocab)

    def init_state(self, final: Tensor) -> RNNState:
        """The encoder's final summary (B, 2H) -> the first decoder state, through the bridge."""
        B = final.size(0)
        h = torch.tanh(self.bridge(final))  # (B, L * D)
        return RNNState(h.view(B, self.layers, -1).transpose(0, 1).contiguous())  # (L, B, D)

    def embed_tokens(self, ids: Tensor) -> Tensor:
        return self.dropout(self.embed(ids))  # (B, T) -> (B, T, E)

    def pre_logits(self, features: Tensor) -> Tensor:
        raise NotImplementedError

    def project(self, features: Tensor) -> Tensor:
        """(B, T, F) -> (B, T, V)."""
        return self.output(self.pre_logits(features))


class BahdanauDecoder(_Decoder):
    """Bahdanau et al. (2015) wiring: attend with s_{t-1}, feed c_t into the GRU with y_{t-1},
    predict from [s_t; c_t; emb(y_{t-1})]."""

    def __init__(self, cfg: ModelConfig, vocab: int):
        super().__init__(cfg, vocab)
        D, E, C = cfg.dec_hidden_size, cfg.emb_size, self.attention.context_size
        inner = cfg.dropout if cfg.dec_layers > 1 else 0.0
        self.rnn = nn.GRU(E + C, D, cfg.dec_layers, batch_first=True, dropout=inner)
        self.pre_output = nn.Linear(D + C + E, D)

    def recur(self, emb: Tensor, state: RNNState, memory: Memory) -> tuple[Tensor, Tensor, RNNState]:
        """One step before the vocabulary projection: emb (B, 1, E) -> features (B, 1, F),
        weights (B, 1, S). Shared by ``step`` and the teacher-forced ``forward``."""
        query = state.hidden[-1].unsqueeze(1)  # (B, 1, D) = s_{t-1}, top layer
        att = self.attention(query, memory)  # context (B, 1, C)
        out, hidden = self.rnn(torch.cat([emb, att.context], dim=-1), state.hidden)  # (B, 1, D)
        return torch.cat([out, att.context, emb], dim=-1), att.weights, RNNState(hidden)

    def pre_logits(self, features: Tensor) -> Tensor:
        """(B, T, F) -> (B, T, D), what the output layer reads; batched over time in training."""
        return self.dropout(torch.tanh(self.pre_output(features)))


class LuongDecoder(_Decoder):
    """Luong et al. (2015) wiring: the GRU steps first, attend with s_t, attentional state
    h~_t = tanh(W_c [c_t; s_t]) feeds the output layer; with input feeding h~_{t-1} joins the
    next input. Without input feeding no step depends on an attention result, so the
    teacher-forced pass runs the GRU and attention over all T at once (``parallel``)."""

    def __init__(self, cfg: ModelConfig, vocab: int):
        super().__init__(cfg, vocab)
        D, E, C = cfg.dec_hidden_size, cfg.emb_size, self.attention.context_size
        self.input_feeding = cfg.input_feeding
        self.parallel = not cfg.input_feeding
        inner = cfg.dropout if cfg.dec_layers > 1 else 0.0
        self.rnn = nn.GRU(E + (D if cfg.input_feeding else 0), D, cfg.dec_layers, batch_first=True,
                          dropout=inner)
        self.combine = nn.Linear(C + D, D, bias=False)  # W_c, no bias as in the paper

    def init_state(self, final: Tensor) -> RNNState:
        state = super().init_state(final)
        if self.input_feeding:  # h~_0 = 0
            state.feed = state.hidden.new_zeros(state.hidden.shape[1:])  # (B, D)
        return state

    def recur(self, emb: Tensor, state: RNNState, memory: Memory) -> tuple[Tensor, Tensor, RNNState]:
        """emb (B, T, E) -> attentional states (B, T, D), weights (B, T, S); T = 1 with input
        feeding, any T without. Shared by ``step`` and the teacher-forced ``forward``."""
        x = emb if state.feed is None else torch.cat([emb, state.feed.unsqueeze(1)], dim=-1)
        out, hidden = self.rnn(x, state.hidden)  # (B, T, D) = s_t, top layer
        att = self.attention(out, memory)  # context (B, T, C)
        attentional = torch.tanh(self.combine(torch.cat([att.context, out], dim=-1)))  # (B, T, D)
        feed = attentional[:, -1] if self.input_feeding else None
        return attentional, att.weights, RNNState(hidden, feed)

    def pre_logits(self, features: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D), what the output layer reads; batched over time in training."""
        return self.dropout(features)


DECODERS: dict[str, type[_Decoder]] = {"bahdanau": BahdanauDecoder, "luong": LuongDecoder}


class RNNSeq2Seq(nn.Module):
    check_config = staticmethod(check_config)

    @classmethod
    def build(cls, cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int, joint: bool) -> RNNSeq2Seq:
        return cls(cfg, src_vocab=src_vocab, tgt_vocab=tgt_vocab)

    @staticmethod
    def position_limit(cfg: ModelConfig) -> None:
        return None  # a GRU has no positions: any length goes

    def __init__(self, cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int):
        super().__init__()
        check_sizes(cfg)
        self.encoder = Encoder(cfg, src_vocab)
        self.decoder = DECODERS[cfg.decoder](cfg, tgt_vocab)
        if cfg.tie_embeddings:
            self.decoder.output.weight = self.decoder.embed.weight

    def encode(self, src: Tensor, src_lengths: Tensor) -> RNNEncoderOutput:
        states, final = self.encoder(src, src_lengths)
        memory = self.decoder.attention.precompute(states, src != PAD_ID)
        return RNNEncoderOutput(memory, self.decoder.init_state(final))

    def init_state(self, enc: RNNEncoderOutput) -> RNNState:
        return enc.init_state

    def step(self, prev: Tensor, state: RNNState, enc: RNNEncoderOutput) -> StepOutput:
        emb = self.decoder.embed_tokens(prev.unsqueeze(1))  # (B, 1, E)
        feats, weights, state = self.decoder.recur(emb, state, enc.memory)
        return StepOutput(self.decoder.project(feats).squeeze(1), weights.squeeze(1), state)

    @property
    def output_layer(self) -> nn.Linear:
        return self.decoder.output

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> ForwardOutput:
        out = self.features(src, src_lengths, tgt_in)
        return ForwardOutput(self.output_layer(out.hidden), out.attention)  # (B, T, V), (B, T, S)

    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Features:
        enc = self.encode(src, src_lengths)
        state = self.init_state(enc)
        embs = self.decoder.embed_tokens(tgt_in)  # (B, T, E)
        if self.decoder.parallel:
            feats, weights, _ = self.decoder.recur(embs, state, enc.memory)
        else:  # the recurrence is sequential; the projection is not
            steps = []
            for t in range(tgt_in.size(1)):
                f, w, state = self.decoder.recur(embs[:, t : t + 1], state, enc.memory)
                steps.append((f, w))
            feats, weights = (torch.cat(parts, dim=1) for parts in zip(*steps))
        return Features(self.decoder.pre_logits(feats), weights)  # (B, T, D), (B, T, S)
