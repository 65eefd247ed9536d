"""The training loss: token cross-entropy of the vocabulary projection, fused and chunked.

A 4,096-token batch over an 8,000-type vocabulary has 33M logits; materialising them (and their
log-softmax, its gradient, the logits' gradient) in float32 costs about 0.5 GB and, on a CPU,
more time in memory traffic than in the projection's matmuls. torch's ``linear_cross_entropy``
(torch >= 2.10) computes the projection, the loss and its gradients chunk by chunk instead, so the
logits never exist whole. Older torch takes the plain path (same result, more memory).

The chunked path has no label smoothing, so we add it in closed form. With z = W h + b the logits
of one token, lse their log-sum-exp, y the target and V the vocabulary size, label smoothing eps
mixes the one-hot target with the uniform distribution:

    loss = (1 - eps) (lse - z_y) + eps (lse - mean_j z_j) = (lse - z_y) + eps (z_y - mean_j z_j)

The first term is the plain cross-entropy; the second needs only the target row of W and the mean
row of W, no logits at all.

Under ``train.precision`` bf16 or fp16 a small chunked function of ours runs instead, with its
matmuls in the low precision (torch's op keeps them in float32 on CPU, where bf16 matmuls are
several times faster); softmax and loss stay float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seq2attn.nn.runtime import autocast
from seq2attn.special import PAD_ID

CHUNK_ROWS = 1024  # tokens per chunk: 1024 x 8,000 float32 logits = 32 MB (fastest on the 2-core CPU)
LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


def token_loss(hidden: Tensor, output: nn.Linear, target: Tensor, *, label_smoothing: float = 0.0,
               precision: str = "fp32", fused: bool = True) -> Tensor:
    """Summed cross-entropy of ``output(hidden)`` against ``target``, padding ignored.

    hidden (..., D) features before the vocabulary projection; target (...) token ids.
    ``precision`` (train.precision): the projection's matmuls run in float32, or in bfloat16 /
    float16 as autocast would run them; softmax and loss are float32 either way.
    ``fused=False`` materialises the logits in float32 (the reference path, for tests).
    """
    h = _wide(hidden.reshape(-1, hidden.size(-1)))
    y = target.reshape(-1)
    W, b = _wide(output.weight), None if output.bias is None else _wide(output.bias)
    with torch.autocast(h.device.type, enabled=False):
        if fused and precision in LOW_PRECISION:
            return _LowPrecisionLinearCE.apply(h, W, b, y, label_smoothing, LOW_PRECISION[precision])
        if fused and hasattr(F, "linear_cross_entropy"):
            return _torch_fused(h, W, b, y, label_smoothing)
        return F.cross_entropy(F.linear(h, W, b), y, ignore_index=PAD_ID, reduction="sum",
                               label_smoothing=label_smoothing)


def _wide(t: Tensor) -> Tensor:
    """float32, or float64 when the model runs in float64 (exactness tests)."""
    return t if t.dtype == torch.float64 else t.float()


def _torch_fused(h: Tensor, W: Tensor, b: Tensor | None, y: Tensor, label_smoothing: float) -> Tensor:
    """float32: torch's chunked ``linear_cross_entropy``, label smoothing added in closed form."""
    options = nn.LinearCrossEntropyOptions(batch_chunk_size=CHUNK_ROWS, chunking_method=None)
    loss = F.linear_cross_entropy(h, W, y, linear_bias=b, ignore_index=PAD_ID, reduction="sum", options=options)
    if label_smoothing:
        keep = y != PAD_ID
        h_k, y_k = h[keep], y[keep]
        gap = (h_k * W[y_k]).sum(-1) - h_k @ W.mean(0)  # z_y - mean_j z_j, without bias
        if b is not None:
            gap = gap + b[y_k] - b.mean()
        loss = loss + label_smoothing * gap.sum()
    return loss


class _LowPrecisionLinearCE(torch.autograd.Function):
    """bfloat16 / float16: the same chunked computation with the three matmuls (logits, their
    gradient times W, and times h) in the low precision, as autocast runs every other linear
    layer; torch's op keeps them in float32 on CPU, which forgoes the CPU's bf16 matmul speed.
    Forward computes the gradients too (the logits are gone by backward); backward scales them.

    Per token, with p = softmax(z): loss = lse - z_y + eps (z_y - mean_j z_j) and
    d loss / d z = p - (1 - eps) onehot(y) - eps / V.
    """

    @staticmethod
    def forward(ctx, h: Tensor, W: Tensor, b: Tensor | None, y: Tensor, eps: float, dtype: torch.dtype) -> Tensor:
        want_h, want_W, want_b = ctx.needs_input_grad[:3]
        V = W.size(0)
        h_lo, W_lo = h.to(dtype), W.to(dtype)
        keep = (y != PAD_ID).unsqueeze(1)
        grad_h = torch.zeros_like(h) if want_h else None
        grad_W = torch.zeros_like(W) if want_W else None
        grad_b = torch.zeros_like(b) if want_b and b is not None else None
        total = h.new_zeros(())
        for start in range(0, h.size(0), CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            h_c, y_c, keep_c = h_lo[rows], y[rows].unsqueeze(1), keep[rows]
            z = (h_c @ W_lo.t()).float()  # (C, V)
            if b is not None:
                z += b
            lse = torch.logsumexp(z, dim=1, keepdim=True)
            z_y = z.gather(1, y_c)
            loss = lse - z_y
            if eps:
                loss += eps * (z_y - z.mean(dim=1, keepdim=True))
            total += loss.masked_fill(~keep_c, 0.0).sum()
            if not (want_h or want_W or want_b):
                continue
            g = z.sub_(lse).exp_()  # softmax, in place of the logits
            g.scatter_add_(1, y_c, torch.full_like(z_y, eps - 1.0))
            if eps:
                g -= eps / V
            g.masked_fill_(~keep_c, 0.0)  # padding: no gradient
            g_lo = g.to(dtype)
            if grad_h is not None:
                grad_h[rows] = g_lo @ W_lo
            if grad_W is not None:
                grad_W += g_lo.t() @ h_c
            if grad_b is not None:
                grad_b += g.sum(0)
        ctx.grads = (grad_h, grad_W, grad_b)
        return total

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        grad_h, grad_W, grad_b = ctx.grads
        ctx.grads = None  # one backward only: free the buffers with the graph
        scale = lambda g: None if g is None else g * grad_out
        return scale(grad_h), scale(grad_W), scale(grad_b), None, None, None


class LossModel(nn.Module):
    """Summed token cross-entropy of a teacher-forced pass (padding ignored): the module that
    DistributedDataParallel wraps, so the output layer inside the loss is synchronised too."""

    def __init__(self, model: nn.Module, *, label_smoothing: float, precision: str, device: torch.device):
        super().__init__()
        self.model, self.label_smoothing, self.precision, self.device = model, label_smoothing, precision, device

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                tgt_out: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.precision):
            out = self.model.features(src, src_lengths, tgt_in)
        # the vocabulary projection runs inside the loss, chunked, in float32 (seq2attn/loss.py)
        return token_loss(out.hidden, self.model.output_layer, tgt_out,
                          label_smoothing=self.label_smoothing, precision=self.precision)
