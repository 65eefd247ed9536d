"""Attention scoring functions sharing one masked-softmax path.

Every scorer follows the same two-phase contract so that decoding stays cheap:

* ``precompute(memory, mask) -> Memory``: key-side work (projections), done ONCE per batch;
  the result travels inside the encoder output, never on ``self``.
* ``forward(query, memory) -> AttentionOutput``: the per-step work. ``query`` is (B, T, Q) so a
  whole teacher-forced target (T > 1) and a single decoding step (T = 1) use the same code.

Shapes: B batch, T queries (target positions), S source positions, Q query size, K key size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis where ``mask`` is True; masked positions get exactly 0.

    scores: (B, T, S); mask: (B, S) or (B, T, S), True = a real position.
    A row with no real position gives all zeros (not NaN), also in the backward pass: we fill with
    the dtype's lowest finite value instead of -inf, so softmax never sees an all -inf row.
    """
    if mask.dim() == scores.dim() - 1:
        mask = mask.unsqueeze(-2)  # (B, 1, S)
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1).masked_fill(~mask, 0.0)


@dataclass
class Memory:
    """Encoder states prepared for attention: computed once per batch by ``precompute``."""

    keys: Tensor  # (B, S, *) projected keys, scorer-specific
    values: Tensor  # (B, S, V) what the context vector averages
    mask: Tensor  # (B, S) bool, True = real token

    def index_select(self, index: Tensor) -> Memory:
        """Rows picked (or repeated) along the batch axis, e.g. for beams."""
        return Memory(self.keys.index_select(0, index), self.values.index_select(0, index),
                      self.mask.index_select(0, index))


@dataclass
class AttentionOutput:
    context: Tensor  # (B, T, V)
    weights: Tensor  # (B, T, S), rows sum to 1 over real positions


class Attention(nn.Module):
    """Base: subclasses define ``project_keys`` (once per batch) and ``score`` (per step)."""

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__()
        self.query_size, self.key_size = query_size, key_size

    def project_keys(self, keys: Tensor) -> Tensor:
        return keys  # (B, S, K)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:  # (B, T, Q), (B, S, *) -> (B, T, S)
        raise NotImplementedError

    def precompute(self, memory: Tensor, mask: Tensor) -> Memory:
        # project keys once per batch: the decoder calls score() at every step
        return Memory(self.project_keys(memory), memory, mask)

    def forward(self, query: Tensor, memory: Memory) -> AttentionOutput:
        weights = masked_softmax(self.score(query, memory.keys), memory.mask)  # (B, T, S)
        context = weights @ memory.values  # (B, T, V)
        return AttentionOutput(context, weights)


class DotAttention(Attention):
    """score = q^T k (Luong 2015 "dot"); needs query and key of the same size."""

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size)
        if query_size != key_size:
            raise ValueError(f"dot attention needs query size == key size, got {query_size} and {key_size}")

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2)  # (B, T, S)


class ScaledDotAttention(DotAttention):
    """score = q^T k / sqrt(d) (Vaswani et al. 2017)."""

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2) / math.sqrt(query.size(-1))  # (B, T, S)


class GeneralAttention(Attention):
    """score = q^T W k (Luong 2015 "general", bilinear); query and key sizes may differ."""

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size)
        self.W = nn.Linear(key_size, query_size, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.W(keys)  # (B, S, Q): W k, once per batch

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2)  # (B, T, S)


class AdditiveAttention(Attention):
    """score = v^T tanh(W_q q + W_k k) (Bahdanau et al. 2015, "MLP" attention)."""

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size)
        self.W_q = nn.Linear(query_size, attention_size, bias=False)
        self.W_k = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.W_k(keys)  # (B, S, A)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        hidden = torch.tanh(self.W_q(query).unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
        return self.v(hidden).squeeze(-1)  # (B, T, S)


class ConcatAttention(AdditiveAttention):
    """score = v^T tanh(W [q; k]) (Luong 2015 "concat").

    W [q; k] = W_q q + W_k k with W = [W_q W_k], so this shares the additive computation; it differs
    in carrying a bias inside the tanh, as Luong's formulation does.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size)
        self.W_k = nn.Linear(key_size, attention_size, bias=True)


ATTENTIONS: dict[str, type[Attention]] = {
    "dot": DotAttention,
    "scaled_dot": ScaledDotAttention,
    "general": GeneralAttention,
    "additive": AdditiveAttention,
    "concat": ConcatAttention,
}


def build_attention(name: str, *, query_size: int, key_size: int, attention_size: int, heads: int = 1) -> Attention:
    return ATTENTIONS[name](query_size, key_size, attention_size, heads)
