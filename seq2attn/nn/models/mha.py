"""Multi-head scaled dot-product attention with a key/value cache, for the Transformer backend.

softmax(Q K^T / sqrt(d_k)) V per head, heads concatenated and projected (Vaswani et al. 2017).
Two paths give the same output: ``torch.nn.functional.scaled_dot_product_attention`` (fused, no
weights) and an explicit one through :func:`seq2attn.nn.attention.masked_softmax` that also returns
the weights; a caller asks for weights only where it needs them (the alignment layer).

Shapes: B batch, h heads, T queries, S keys, D model size, d = D / h per-head size.
Masks are bool, True = may attend, broadcastable to (B, h, T, S).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seq2attn.nn.attention import masked_softmax


@dataclass
class KV:
    """Projected keys and values, split into heads: cross-attention computes them once per batch,
    self-attention appends one position per decoding step."""

    k: Tensor  # (B, h, S, d)
    v: Tensor  # (B, h, S, d)

    @property
    def length(self) -> int:
        return self.k.size(2)

    def index_select(self, index: Tensor) -> KV:
        """Rows picked, repeated or reordered along the batch axis (beams, finished rows)."""
        return KV(self.k.index_select(0, index), self.v.index_select(0, index))

    def append(self, new: KV) -> KV:
        return KV(torch.cat([self.k, new.k], dim=2), torch.cat([self.v, new.v], dim=2))


@dataclass
class MHAOutput:
    out: Tensor  # (B, T, D)
    weights: Tensor | None  # (B, h, T, S) before attention dropout; only when asked for


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, *, dropout: float):
        super().__init__()
        assert d_model % heads == 0, "config validation checks emb_size % heads"
        self.heads, self.d_head, self.dropout = heads, d_model // heads, dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _split(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.d_head).transpose(1, 2)  # (B, h, T, d)

    def project_kv(self, x: Tensor) -> KV:
        """(B, S, D) -> keys and values (B, h, S, d)."""
        return KV(self._split(self.k_proj(x)), self._split(self.v_proj(x)))

    def forward(self, x: Tensor, kv: KV, *, mask: Tensor | None, need_weights: bool) -> MHAOutput:
        """Queries from ``x`` (B, T, D) attend over ``kv``; ``mask`` None = everything visible."""
        q = self._split(self.q_proj(x))  # (B, h, T, d)
        p = self.dropout if self.training else 0.0
        if need_weights:
            scores = q @ kv.k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, h, T, S)
            weights = masked_softmax(scores, mask) if mask is not None else torch.softmax(scores, dim=-1)
            ctx = F.dropout(weights, p) @ kv.v  # (B, h, T, d)
        else:
            weights = None
            ctx = F.scaled_dot_product_attention(q, kv.k, kv.v, attn_mask=mask, dropout_p=p)
        B, _, T, _ = ctx.shape
        out = self.out_proj(ctx.transpose(1, 2).reshape(B, T, -1))  # (B, T, D) heads concatenated
        return MHAOutput(out, weights)


def causal_mask(T: int, past: int, device: torch.device) -> Tensor | None:
    """(1, 1, T, past + T): query i (absolute position past + i) sees keys 0 .. past + i.

    None when T == 1: a single new query may see every cached key and itself.
    """
    if T == 1:
        return None
    q = torch.arange(past, past + T, device=device).unsqueeze(1)  # (T, 1)
    k = torch.arange(past + T, device=device).unsqueeze(0)  # (1, past + T)
    return (k <= q).view(1, 1, T, past + T)
