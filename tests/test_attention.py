"""Masked softmax and the scorers: properties and known answers (issue 3 extends the family)."""

from __future__ import annotations

import math

import pytest
import torch

from seq2attn.attention import ATTENTIONS, build_attention, masked_softmax


def test_masked_softmax_zero_on_padding_rows_sum_to_one():
    scores = torch.randn(3, 4, 6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    w = masked_softmax(scores, mask)
    assert torch.all(w[~mask.unsqueeze(1).expand_as(w)] == 0)
    assert torch.allclose(w.sum(-1), torch.ones(3, 4))
    assert torch.allclose(w[2, :, 0], torch.ones(4))


def test_masked_softmax_known_answer():
    scores = torch.tensor([[[0.0, math.log(3.0), 5.0]]])
    w = masked_softmax(scores, torch.tensor([[True, True, False]]))
    assert torch.allclose(w, torch.tensor([[[0.25, 0.75, 0.0]]]))


def test_fully_masked_row_gives_zeros_and_finite_gradient():
    scores = torch.randn(1, 2, 3, requires_grad=True)
    w = masked_softmax(scores, torch.zeros(1, 3, dtype=torch.bool))
    assert torch.all(w == 0)
    w.sum().backward()
    assert torch.isfinite(scores.grad).all()


@pytest.mark.parametrize("name", sorted(ATTENTIONS))
def test_every_scorer_masks_and_normalizes(name):
    torch.manual_seed(0)
    att = build_attention(name, query_size=8, key_size=8, attention_size=5)
    keys = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    mem = att.precompute(keys, mask)
    out = att(torch.randn(2, 3, 8), mem)
    assert out.weights.shape == (2, 3, 5) and out.context.shape == (2, 3, 8)
    assert torch.allclose(out.weights.sum(-1), torch.ones(2, 3), atol=1e-6)
    assert torch.all(out.weights[1, :, 2:] == 0)


def test_additive_matches_formula():
    torch.manual_seed(0)
    att = build_attention("additive", query_size=3, key_size=4, attention_size=2).double()
    q, k = torch.randn(1, 1, 3, dtype=torch.float64), torch.randn(1, 2, 4, dtype=torch.float64)
    mem = att.precompute(k, torch.ones(1, 2, dtype=torch.bool))
    expected = torch.stack([att.v.weight[0] @ torch.tanh(att.W_q.weight @ q[0, 0] + att.W_k.weight @ k[0, j])
                            for j in range(2)])
    assert torch.allclose(att(q, mem).weights[0, 0], torch.softmax(expected, 0))
