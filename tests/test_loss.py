"""The fused, chunked training loss equals the plain one: value and every gradient."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seq2attn.nn import loss as loss_mod
from seq2attn.nn.loss import token_loss
from seq2attn.special import PAD_ID


def _grads(hidden, layer, target, **kw):
    for t in (hidden, *layer.parameters()):
        t.grad = None
    value = token_loss(hidden, layer, target, **kw)
    value.backward()
    return value.detach(), [t.grad.clone() for t in (hidden, *layer.parameters())]


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_loss_matches_plain_cross_entropy(monkeypatch, smoothing, bias):
    # a chunk smaller than the batch, so that several chunks and a ragged last one run
    monkeypatch.setattr(loss_mod, "CHUNK_ROWS", 7)
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(12, 50, bias=bias)
    hidden = torch.randn(4, 6, 12, generator=g, requires_grad=True)
    target = torch.randint(4, 50, (4, 6), generator=g)
    target[1, 3:] = PAD_ID  # padding contributes nothing
    target[3, :] = PAD_ID
    fused, fused_grads = _grads(hidden, layer, target, label_smoothing=smoothing)
    plain, plain_grads = _grads(hidden, layer, target, label_smoothing=smoothing, fused=False)
    reference = F.cross_entropy(layer(hidden).reshape(-1, 50), target.reshape(-1), ignore_index=PAD_ID,
                                reduction="sum", label_smoothing=smoothing)
    assert torch.allclose(plain, reference.detach(), atol=1e-5)
    assert torch.allclose(fused, plain, rtol=1e-5, atol=1e-4)
    for a, b in zip(fused_grads, plain_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert fused_grads[0][3].abs().sum() == 0  # an all-padding row gets no gradient


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_low_precision_path_in_float32_matches_plain_cross_entropy(monkeypatch, smoothing):
    # the bf16/fp16 function's math, checked exactly by running it with float32 matmuls
    monkeypatch.setattr(loss_mod, "CHUNK_ROWS", 5)
    g = torch.Generator().manual_seed(1)
    layer = nn.Linear(10, 40)
    hidden = torch.randn(3, 7, 10, generator=g, requires_grad=True)
    target = torch.randint(4, 40, (3, 7), generator=g)
    target[0, 4:] = PAD_ID
    monkeypatch.setitem(loss_mod.LOW_PRECISION, "fp32-test", torch.float32)
    ours, our_grads = _grads(hidden, layer, target, label_smoothing=smoothing, precision="fp32-test")
    plain, plain_grads = _grads(hidden, layer, target, label_smoothing=smoothing, fused=False)
    assert torch.allclose(ours, plain, rtol=1e-5, atol=1e-4)
    for a, b in zip(our_grads, plain_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_bf16_loss_is_close_to_float32():
    g = torch.Generator().manual_seed(2)
    layer = nn.Linear(32, 300)
    hidden = torch.randn(64, 32, generator=g, requires_grad=True)
    target = torch.randint(4, 300, (64,), generator=g)
    low, low_grads = _grads(hidden, layer, target, label_smoothing=0.1, precision="bf16")
    plain, plain_grads = _grads(hidden, layer, target, label_smoothing=0.1, fused=False)
    assert low.dtype == torch.float32 and abs(float(low - plain)) < 0.01 * float(plain)
    for a, b in zip(low_grads, plain_grads):
        assert (a - b).norm() < 0.02 * b.norm()


def test_loss_is_float32_under_bfloat16_autocast():
    layer = nn.Linear(8, 30)
    hidden = torch.randn(5, 8)
    target = torch.randint(4, 30, (5,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = token_loss(hidden.bfloat16(), layer, target)
    assert value.dtype == torch.float32
    assert torch.allclose(value, token_loss(hidden.bfloat16().float(), layer, target), atol=1e-4)


def test_loss_without_gradients_for_validation():
    layer = nn.Linear(8, 30)
    with torch.no_grad():
        value = token_loss(torch.randn(3, 4, 8), layer, torch.randint(4, 30, (3, 4)), label_smoothing=0.1)
    assert torch.isfinite(value) and not value.requires_grad
