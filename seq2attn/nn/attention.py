"""Attention scoring functions sharing one masked-softmax path.

Every scorer follows the same two-phase contract so that decoding stays cheap:

* ``precompute(memory, mask) -> Memory``: key-side work (projections), done ONCE per batch;
  the result travels inside the encoder output, never on ``self``.
* ``forward(query, memory) -> AttentionOutput``: the per-step work. ``query`` is (B, T, Q) so a
  whole teacher-forced target (T > 1) and a single decoding step (T = 1) use the same code.

The context vector is ``context_size`` wide: the key size for every scorer except ``multihead``,
whose output projection makes it ``attention_size`` wide. Decoders size their layers from it.

Shapes: B batch, T queries (target positions), S source positions, Q query size, K key size,
A attention size, h heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seq2attn.config import ATTENTION_NAMES, DEFAULT_ATTENTION, attention_name  # noqa: F401 (re-exported)
from seq2attn.errors import ConfigError


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis where ``mask`` is True; masked positions get exactly 0.

    scores: (B, T, S) or (B, h, T, S); mask: (B, S), or any shape that broadcasts to ``scores``
    with the same number of axes, True = a real position.
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

    keys: Tensor  # (B, S, *) or (B, h, S, *) projected keys, scorer-specific
    values: Tensor  # (B, S, V) or (B, h, S, *) what the context vector averages
    mask: Tensor  # (B, S) bool, True = real token

    def index_select(self, index: Tensor) -> Memory:
        """Rows picked (or repeated) along the batch axis, e.g. for beams."""
        return Memory(self.keys.index_select(0, index), self.values.index_select(0, index),
                      self.mask.index_select(0, index))


@dataclass
class AttentionOutput:
    context: Tensor  # (B, T, C) C = the scorer's context_size
    weights: Tensor  # (B, T, S), rows sum to 1 over real positions (multihead: mean over heads)
    head_weights: Tensor | None = None  # (B, h, T, S) per-head weights, multihead only


class Attention(nn.Module):
    """Base: subclasses define ``project_keys`` (once per batch) and ``score`` (per step)."""

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__()
        self.check_sizes(query_size=query_size, key_size=key_size, attention_size=attention_size, heads=heads)
        self.context_size = key_size  # the context averages the encoder states themselves

    @classmethod
    def check_sizes(cls, *, query_size: int, key_size: int, attention_size: int, heads: int) -> None:
        """Raise ConfigError when this scorer cannot work with these sizes (base: any sizes)."""

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


def _require_same_sizes(name: str, query_size: int, key_size: int) -> None:
    """Scorers that compare q and k without projecting them need them in one space: they refuse
    unequal sizes rather than guess a projection (``general`` is dot with a learned projection)."""
    if query_size != key_size:
        raise ConfigError(
            f"model.attention={name} needs the decoder state as wide as the encoder states: "
            f"model.dec_hidden_size={query_size} but 2 * model.hidden_size={key_size} (the encoder "
            f"is bidirectional); make them equal or choose general, additive, concat or multihead")


class DotAttention(Attention):
    """score = q^T k (Luong 2015 "dot"); needs query and key of the same size."""

    label = "dot"  # for the error message

    @classmethod
    def check_sizes(cls, *, query_size: int, key_size: int, attention_size: int, heads: int) -> None:
        _require_same_sizes(cls.label, query_size, key_size)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2)  # (B, T, S)


class ScaledDotAttention(DotAttention):
    """score = q^T k / sqrt(d) (Vaswani et al. 2017)."""

    label = "scaled_dot"

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2) / math.sqrt(query.size(-1))  # (B, T, S)


class GeneralAttention(Attention):
    """score = q^T W k (Luong 2015 "general", bilinear); query and key sizes may differ."""

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size, heads)
        self.W = nn.Linear(key_size, query_size, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.W(keys)  # (B, S, Q): W k, once per batch

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2)  # (B, T, S)


class AdditiveAttention(Attention):
    """score = v^T tanh(W_q q + W_k k) (Bahdanau et al. 2015, "MLP" attention)."""

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size, heads)
        self.W_q = nn.Linear(query_size, attention_size, bias=False)
        self.W_k = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.W_k(keys)  # (B, S, A)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return _AdditiveScore.apply(self.W_q(query), keys, self.v.weight.squeeze(0))  # (B, T, S)


class _AdditiveScore(torch.autograd.Function):
    """v^T tanh(q + k) for every (query, key) pair, q (B, T, A), k (B, S, A), v (A,) -> (B, T, S).

    Autograd would keep tanh(q + k), a (B, T, S, A) tensor per decoder step, until backward: the
    largest activation of RNN training, growing with the source length (a batch of 4,096 target
    tokens over 60-token sources holds 0.5 GB of it at A = 512). This keeps only q, k and v and
    computes the tanh again in backward, which costs one more elementwise pass.
    With t = tanh(q + k) and g the incoming gradient (B, T, S):
    d/dv = sum g t, d/dq = sum_S g v (1 - t^2), d/dk = sum_T g v (1 - t^2).
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        ctx.save_for_backward(q, k, v)
        return (q.unsqueeze(2) + k.unsqueeze(1)).tanh_() @ v.to(q.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        # Seven passes over the (B, T, S, A) tensor and two of them allocate one (autograd's
        # elementwise chain took eleven and seven): the add, tanh in place, d/dv as one
        # matrix-vector product, the square in place, g (1 - t^2) as one addcmul, the two sums.
        q, k, v = ctx.saved_tensors
        t = (q.unsqueeze(2) + k.unsqueeze(1)).tanh_()  # (B, T, S, A)
        size = t.size(-1)
        grad = grad.to(t.dtype)
        grad_v = grad.reshape(1, -1) @ t.reshape(-1, size)  # (1, A): sum over B, T, S of g t
        g = grad.unsqueeze(-1)  # (B, T, S, 1)
        pre = torch.addcmul(g, g, t.mul_(t), value=-1)  # g (1 - t^2), the gradient of q + k over v
        v = v.to(t.dtype)
        return pre.sum(2) * v, pre.sum(1) * v, grad_v.squeeze(0)


class ConcatAttention(AdditiveAttention):
    """score = v^T tanh(W [q; k]) (Luong 2015 "concat").

    W [q; k] = W_q q + W_k k with W = [W_q W_k], so this shares the additive computation; it differs
    in carrying a bias inside the tanh, as Luong's formulation does.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size, heads)
        self.W_k = nn.Linear(key_size, attention_size, bias=True)


class KernelAttention(Attention):
    """score = -1/2 * sum_d ((q_d - k_d) w_d)^2: parametric Nadaraya-Watson kernel regression with a
    Gaussian kernel and a learned width per dimension; needs query and key of the same size.

    Expanded as -1/2 (|w*q|^2 - 2 (w*q).(w*k) + |w*k|^2) so that no (B, T, S, d) tensor is built;
    the key side (w*k and |w*k|^2) is computed once per batch and stored as keys (B, S, K + 1).
    w starts at d^(-1/4) so that the initial scores have the spread of scaled dot-product scores.
    """

    @classmethod
    def check_sizes(cls, *, query_size: int, key_size: int, attention_size: int, heads: int) -> None:
        _require_same_sizes("kernel", query_size, key_size)

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size, heads)
        self.w = nn.Parameter(torch.full((key_size,), key_size ** -0.25))

    def project_keys(self, keys: Tensor) -> Tensor:
        wk = keys * self.w  # (B, S, K)
        return torch.cat([wk, wk.pow(2).sum(-1, keepdim=True)], dim=-1)  # (B, S, K + 1)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        wq = query * self.w  # (B, T, K)
        wk, k2 = keys[..., :-1], keys[..., -1]  # (B, S, K), (B, S)
        q2 = wq.pow(2).sum(-1, keepdim=True)  # (B, T, 1)
        return -0.5 * (q2 - 2 * wq @ wk.transpose(1, 2) + k2.unsqueeze(1))  # (B, T, S)


class MultiHeadScorer(Attention):
    """h heads of scaled dot-product attention over learned projections of q, k and v, then an
    output projection (Vaswani et al. 2017), as ``torch.nn.MultiheadAttention`` computes it.

    All of q, k and v are projected to A = ``attention_size``, so query and key sizes may differ;
    the context is A wide. Keys and values are projected once per batch and kept head-split in
    Memory as (B, h, S, A/h). ``weights`` is the mean over heads; ``head_weights`` keeps each head.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int, heads: int = 1):
        super().__init__(query_size, key_size, attention_size, heads)
        self.heads = heads
        self.context_size = attention_size
        self.q_proj = nn.Linear(query_size, attention_size)
        self.k_proj = nn.Linear(key_size, attention_size)
        self.v_proj = nn.Linear(key_size, attention_size)
        self.out_proj = nn.Linear(attention_size, attention_size)

    @classmethod
    def check_sizes(cls, *, query_size: int, key_size: int, attention_size: int, heads: int) -> None:
        if attention_size % heads:
            raise ConfigError(f"model.attention=multihead needs model.attention_size (when null: "
                              f"model.dec_hidden_size) = {attention_size} divisible by model.heads={heads}")

    def _split(self, x: Tensor) -> Tensor:
        B, L, A = x.shape
        return x.view(B, L, self.heads, A // self.heads).transpose(1, 2)  # (B, h, L, A/h)

    def precompute(self, memory: Tensor, mask: Tensor) -> Memory:
        return Memory(self._split(self.k_proj(memory)), self._split(self.v_proj(memory)), mask)

    def forward(self, query: Tensor, memory: Memory) -> AttentionOutput:
        q = self._split(self.q_proj(query))  # (B, h, T, A/h)
        scores = q @ memory.keys.transpose(-1, -2) / math.sqrt(q.size(-1))  # (B, h, T, S)
        heads = masked_softmax(scores, memory.mask[:, None, None, :])  # (B, h, T, S)
        B, _, T, _ = heads.shape
        context = (heads @ memory.values).transpose(1, 2).reshape(B, T, -1)  # (B, T, A)
        return AttentionOutput(self.out_proj(context), heads.mean(1), heads)


ATTENTIONS: dict[str, type[Attention]] = {
    "dot": DotAttention,
    "scaled_dot": ScaledDotAttention,
    "general": GeneralAttention,
    "additive": AdditiveAttention,
    "concat": ConcatAttention,
    "multihead": MultiHeadScorer,
    "kernel": KernelAttention,
}

if tuple(ATTENTIONS) != ATTENTION_NAMES:  # the config layer names the scorers without importing torch
    raise AssertionError(f"seq2attn.config.ATTENTION_NAMES {ATTENTION_NAMES} != ATTENTIONS {tuple(ATTENTIONS)}")


def build_attention(name: str, *, query_size: int, key_size: int, attention_size: int, heads: int = 1) -> Attention:
    if name not in ATTENTIONS:
        raise ConfigError(f"model.attention={name!r}; choose one of: {', '.join(ATTENTIONS)}")
    return ATTENTIONS[name](query_size, key_size, attention_size, heads)
