"""Masked softmax and the scorer family: each scorer against its formula on hand-made tensors,
gradcheck, masking properties, multihead == torch.nn.MultiheadAttention, size checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seq2attn.config import resolve_config
from seq2attn.errors import ConfigError
from seq2attn.nn.attention import ATTENTIONS, build_attention, masked_softmax
from seq2attn.nn.models import check_config

F64 = torch.float64


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


# --- each scorer against its formula ----------------------------------------------------------
# One query q = [1, 2] against three keys; every parameter is set by hand, so each expected score
# below is the formula worked out on paper.
Q = torch.tensor([[[1.0, 2.0]]], dtype=F64)  # (1, 1, 2)
K = torch.tensor([[[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], dtype=F64)  # (1, 3, 2)
t = math.tanh


def _set(att: nn.Module, **params: list) -> None:
    with torch.no_grad():
        for path, value in params.items():
            module, _, name = path.rpartition(".")
            target = att.get_submodule(module) if module else att
            getattr(target, name).copy_(torch.tensor(value, dtype=F64))


KNOWN_SCORES = {
    # q.k
    "dot": ({}, [3.0, 2.0, 3.0]),
    # q.k / sqrt(2)
    "scaled_dot": ({}, [3 / math.sqrt(2), 2 / math.sqrt(2), 3 / math.sqrt(2)]),
    # q^T W k with W = diag(1, 2): W k = [3, 0], [0, 2], [1, 2]
    "general": ({"W.weight": [[1.0, 0.0], [0.0, 2.0]]}, [3.0, 4.0, 5.0]),
    # v^T tanh(q + k) with W_q = W_k = I, v = [1, -1]: q + k = [4, 2], [1, 3], [2, 3]
    "additive": ({"W_q.weight": [[1.0, 0.0], [0.0, 1.0]], "W_k.weight": [[1.0, 0.0], [0.0, 1.0]],
                  "v.weight": [[1.0, -1.0]]}, [t(4) - t(2), t(1) - t(3), t(2) - t(3)]),
    # v^T tanh(W [q; k] + b) with W = [I I], b = [0.5, -0.5], v = [1, -1]
    "concat": ({"W_q.weight": [[1.0, 0.0], [0.0, 1.0]], "W_k.weight": [[1.0, 0.0], [0.0, 1.0]],
                "W_k.bias": [0.5, -0.5], "v.weight": [[1.0, -1.0]]},
               [t(4.5) - t(1.5), t(1.5) - t(2.5), t(2.5) - t(2.5)]),
    # -1/2 sum ((q - k) w)^2 with w = [1, 0.5]: (q - k) w = [-2, 1], [1, 0.5], [0, 0.5]
    "kernel": ({"w": [1.0, 0.5]}, [-2.5, -0.625, -0.125]),
}


@pytest.mark.parametrize("name", sorted(KNOWN_SCORES))
def test_scorer_matches_its_formula(name):
    params, expected = KNOWN_SCORES[name]
    att = build_attention(name, query_size=2, key_size=2, attention_size=2).double()
    _set(att, **params)
    mem = att.precompute(K, torch.ones(1, 3, dtype=torch.bool))
    expected = torch.tensor(expected, dtype=F64)
    assert torch.allclose(att.score(Q, mem.keys)[0, 0], expected)
    out = att(Q, mem)
    assert torch.allclose(out.weights[0, 0], torch.softmax(expected, 0))
    assert torch.allclose(out.context[0, 0], torch.softmax(expected, 0) @ K[0])


def test_general_with_different_query_and_key_sizes():
    att = build_attention("general", query_size=2, key_size=3, attention_size=2).double()
    _set(att, **{"W.weight": [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]})  # W k for k = [1, 2, 3]: [4, 2]
    keys = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]], dtype=F64)
    mem = att.precompute(keys, torch.ones(1, 2, dtype=torch.bool))
    assert torch.allclose(att.score(Q, mem.keys)[0, 0], torch.tensor([8.0, 0.0], dtype=F64))


def test_multihead_matches_its_formula():
    # two heads of width 1, identity projections: head 1 compares q_1 = 1 with k_{j,1} = [3, 0, 1],
    # head 2 compares q_2 = 2 with k_{j,2} = [0, 1, 1]; sqrt(1) scaling; values are the keys
    att = build_attention("multihead", query_size=2, key_size=2, attention_size=2, heads=2).double()
    eye = [[1.0, 0.0], [0.0, 1.0]]
    _set(att, **{f"{p}.weight": eye for p in ("q_proj", "k_proj", "v_proj", "out_proj")},
         **{f"{p}.bias": [0.0, 0.0] for p in ("q_proj", "k_proj", "v_proj", "out_proj")})
    out = att(Q, att.precompute(K, torch.ones(1, 3, dtype=torch.bool)))
    h1 = torch.softmax(torch.tensor([3.0, 0.0, 1.0], dtype=F64), 0)
    h2 = torch.softmax(torch.tensor([0.0, 2.0, 2.0], dtype=F64), 0)
    assert torch.allclose(out.head_weights[0, :, 0], torch.stack([h1, h2]))
    assert torch.allclose(out.weights[0, 0], (h1 + h2) / 2)
    assert torch.allclose(out.context[0, 0], torch.stack([h1 @ K[0, :, 0], h2 @ K[0, :, 1]]))


# --- properties of every scorer ---------------------------------------------------------------
def _scorer(name: str, *, size: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return build_attention(name, query_size=size, key_size=size, attention_size=size, heads=2).double()


MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)  # last: all padding


@pytest.mark.parametrize("name", sorted(ATTENTIONS))
def test_every_scorer_masks_and_normalizes(name):
    att = _scorer(name)
    keys = torch.randn(3, 5, 4, dtype=F64, requires_grad=True)
    query = torch.randn(3, 2, 4, dtype=F64, requires_grad=True)
    out = att(query, att.precompute(keys, MASK))
    assert out.weights.shape == (3, 2, 5) and out.context.shape == (3, 2, att.context_size)
    assert torch.allclose(out.weights[:2].sum(-1), torch.ones(2, 2, dtype=F64))
    assert torch.all(out.weights[1, :, 2:] == 0)
    assert torch.all(out.weights[2] == 0)  # all padding: zeros, not NaN
    (out.context.sum() + out.weights.sum()).backward()
    assert torch.isfinite(out.context).all() and torch.isfinite(keys.grad).all() and torch.isfinite(query.grad).all()


@pytest.mark.parametrize("name", sorted(ATTENTIONS))
def test_every_scorer_passes_gradcheck(name):
    att = _scorer(name, size=4)
    mask = MASK[:2, :4]

    def f(query, keys):
        out = att(query, att.precompute(keys, mask))
        return out.context, out.weights

    query = torch.randn(2, 2, 4, dtype=F64, requires_grad=True)
    keys = torch.randn(2, 4, 4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (query, keys))


@pytest.mark.parametrize("key_size", [8, 6])
def test_multihead_equals_torch_multihead_attention(key_size):
    torch.manual_seed(0)
    E, heads = 8, 2
    ref = nn.MultiheadAttention(E, heads, kdim=key_size, vdim=key_size, batch_first=True).double()
    att = build_attention("multihead", query_size=E, key_size=key_size, attention_size=E, heads=heads).double()
    with torch.no_grad():
        if ref.in_proj_weight is not None:  # same sizes: one packed in-projection
            q_w, k_w, v_w = ref.in_proj_weight.chunk(3)
        else:
            q_w, k_w, v_w = ref.q_proj_weight, ref.k_proj_weight, ref.v_proj_weight
        for proj, w, b in zip((att.q_proj, att.k_proj, att.v_proj), (q_w, k_w, v_w), ref.in_proj_bias.chunk(3)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        att.out_proj.weight.copy_(ref.out_proj.weight)
        att.out_proj.bias.copy_(ref.out_proj.bias)
    query = torch.randn(2, 3, E, dtype=F64)
    keys = torch.randn(2, 5, key_size, dtype=F64)
    mask = MASK[:2]
    out = att(query, att.precompute(keys, mask))
    expected, avg = ref(query, keys, keys, key_padding_mask=~mask, average_attn_weights=True)
    _, per_head = ref(query, keys, keys, key_padding_mask=~mask, average_attn_weights=False)
    assert torch.allclose(out.context, expected)
    assert torch.allclose(out.weights, avg)
    assert torch.allclose(out.head_weights, per_head)


def test_keys_are_projected_once_and_memory_follows_index_select():
    att = _scorer("multihead")
    mem = att.precompute(torch.randn(3, 5, 4, dtype=F64), MASK)
    assert mem.keys.shape == (3, 2, 5, 2) and mem.values.shape == (3, 2, 5, 2)  # head-split
    picked = mem.index_select(torch.tensor([1, 1, 0]))
    assert torch.equal(picked.keys[0], mem.keys[1]) and torch.equal(picked.mask[2], mem.mask[0])


# --- sizes and names --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dot", "scaled_dot", "kernel"])
def test_unprojected_scorers_refuse_different_sizes_naming_both_fields(name):
    with pytest.raises(ConfigError, match=rf"model.attention={name} .*model.dec_hidden_size=100 .*model.hidden_size"):
        check_config(resolve_config(sets=[f"model.attention={name}", "model.dec_hidden_size=100"]))
    with pytest.raises(ConfigError, match="model.dec_hidden_size"):
        build_attention(name, query_size=3, key_size=4, attention_size=3)


@pytest.mark.parametrize("name", ["general", "additive", "concat", "multihead"])
def test_projecting_scorers_accept_different_sizes(name):
    att = build_attention(name, query_size=3, key_size=6, attention_size=4, heads=2)
    out = att(torch.randn(2, 1, 3), att.precompute(torch.randn(2, 5, 6), MASK[:2]))
    assert out.weights.shape == (2, 1, 5)
    assert resolve_config(sets=[f"model.attention={name}", "model.dec_hidden_size=100",
                                "model.heads=4"]).model.attention == name


def test_multihead_heads_must_divide_attention_size():
    with pytest.raises(ConfigError, match="model.attention_size .*model.heads=3"):
        check_config(resolve_config(sets=["model.attention=multihead", "model.heads=3"]))


def test_unknown_scorer_lists_every_valid_name():
    with pytest.raises(ConfigError) as e:
        resolve_config(sets=["model.attention=luong_dot"])
    assert "model.attention='luong_dot'" in str(e.value)
    assert all(name in str(e.value) for name in ATTENTIONS)


@pytest.mark.parametrize("decoder, explicit, expected", [
    ("bahdanau", None, "additive"), ("luong", None, "general"), ("luong", "concat", "concat"),
    ("bahdanau", "dot", "dot"),
])
def test_default_scorer_follows_the_wiring(decoder, explicit, expected):
    sets = [f"model.decoder={decoder}"] + ([f"model.attention={explicit}"] if explicit else [])
    assert resolve_config(sets=sets).model.attention == expected


@pytest.mark.parametrize("queries", [1, 3])  # one decoder step (Bahdanau), or all at once
def test_additive_score_recomputes_tanh_in_backward_with_exact_gradients(queries):
    from seq2attn.nn.attention import _AdditiveScore

    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, queries, 5, dtype=torch.float64, generator=g, requires_grad=True)
    k = torch.randn(2, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    v = torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(_AdditiveScore.apply, (q, k, v))
    reference = torch.tanh(q.unsqueeze(2) + k.unsqueeze(1)) @ v
    assert torch.allclose(_AdditiveScore.apply(q, k, v), reference)
