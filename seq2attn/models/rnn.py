"""Bidirectional GRU encoder and attention GRU decoders.

Shapes: B batch, S source length, T target length, E embedding size, H encoder units per
direction (keys are 2H wide), D decoder units, L decoder layers, V target vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..attention import Memory, build_attention
from ..config import ModelConfig
from ..tokenizer import PAD_ID
from .base import ForwardOutput, StepOutput


@dataclass
class RNNEncoderOutput:
    memory: Memory  # attention-ready encoder states, keys projected once per batch
    init_hidden: Tensor  # (L, B, D) the decoder's first state, from the bridge

    def index_select(self, index: Tensor) -> RNNEncoderOutput:
        return RNNEncoderOutput(self.memory.index_select(index), self.init_hidden.index_select(1, index))


@dataclass
class RNNState:
    hidden: Tensor  # (L, B, D)
    feed: Tensor | None = None  # (B, D) Luong input feeding: the previous attentional state

    def index_select(self, index: Tensor) -> RNNState:
        feed = None if self.feed is None else self.feed.index_select(0, index)
        return RNNState(self.hidden.index_select(1, index), feed)


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


class BahdanauDecoder(nn.Module):
    """Bahdanau et al. (2015) wiring: attend with s_{t-1}, feed c_t into the GRU with y_{t-1},
    predict from [s_t; c_t; emb(y_{t-1})]."""

    def __init__(self, cfg: ModelConfig, vocab: int, key_size: int):
        super().__init__()
        D, E = cfg.dec_hidden_size, cfg.emb_size
        self.layers = cfg.dec_layers
        self.embed = nn.Embedding(vocab, E, padding_idx=PAD_ID)
        self.attention = build_attention(cfg.attention, query_size=D, key_size=key_size,
                                         attention_size=cfg.attention_size or D, heads=cfg.heads)
        inner = cfg.dropout if cfg.dec_layers > 1 else 0.0
        self.rnn = nn.GRU(E + key_size, D, cfg.dec_layers, batch_first=True, dropout=inner)
        self.bridge = nn.Linear(key_size, cfg.dec_layers * D)
        self.pre_output = nn.Linear(D + key_size + E, D)
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(D, vocab)

    def init_state(self, final: Tensor) -> Tensor:
        B = final.size(0)
        h = torch.tanh(self.bridge(final))  # (B, L * D)
        return h.view(B, self.layers, -1).transpose(0, 1).contiguous()  # (L, B, D)

    def recur(self, emb: Tensor, state: RNNState, memory: Memory) -> tuple[Tensor, Tensor, RNNState]:
        """One step before the vocabulary projection: emb (B, 1, E) -> features (B, 1, F),
        weights (B, 1, S). Shared by ``step`` and the teacher-forced ``forward``."""
        query = state.hidden[-1].unsqueeze(1)  # (B, 1, D) = s_{t-1}
        att = self.attention(query, memory)  # context (B, 1, 2H)
        out, hidden = self.rnn(torch.cat([emb, att.context], dim=-1), state.hidden)  # (B, 1, D)
        return torch.cat([out, att.context, emb], dim=-1), att.weights, RNNState(hidden)

    def project(self, features: Tensor) -> Tensor:
        """(B, T, F) -> (B, T, V); batched over time in training."""
        return self.output(self.dropout(torch.tanh(self.pre_output(features))))


DECODERS = {"bahdanau": BahdanauDecoder}


class RNNSeq2Seq(nn.Module):
    def __init__(self, cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int):
        super().__init__()
        self.encoder = Encoder(cfg, src_vocab)
        key_size = 2 * cfg.hidden_size
        self.decoder = DECODERS[cfg.decoder](cfg, tgt_vocab, key_size)
        if cfg.tie_embeddings:
            if cfg.emb_size != cfg.dec_hidden_size:
                from ..errors import ConfigError

                raise ConfigError("model.tie_embeddings needs model.emb_size == model.dec_hidden_size")
            self.decoder.output.weight = self.decoder.embed.weight

    def encode(self, src: Tensor, src_lengths: Tensor) -> RNNEncoderOutput:
        states, final = self.encoder(src, src_lengths)
        memory = self.decoder.attention.precompute(states, src != PAD_ID)
        return RNNEncoderOutput(memory, self.decoder.init_state(final))

    def init_state(self, enc: RNNEncoderOutput) -> RNNState:
        return RNNState(enc.init_hidden)

    def step(self, prev: Tensor, state: RNNState, enc: RNNEncoderOutput) -> StepOutput:
        emb = self.decoder.embed(prev).unsqueeze(1)  # (B, 1, E)
        feats, weights, state = self.decoder.recur(emb, state, enc.memory)
        return StepOutput(self.decoder.project(feats).squeeze(1), weights.squeeze(1), state)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> ForwardOutput:
        enc = self.encode(src, src_lengths)
        state = self.init_state(enc)
        embs = self.decoder.dropout(self.decoder.embed(tgt_in))  # (B, T, E)
        feats, weights = [], []
        for t in range(tgt_in.size(1)):  # the recurrence is sequential; the projection is not
            f, w, state = self.decoder.recur(embs[:, t : t + 1], state, enc.memory)
            feats.append(f)
            weights.append(w)
        logits = self.decoder.project(torch.cat(feats, dim=1))  # (B, T, V)
        return ForwardOutput(logits, torch.cat(weights, dim=1))
