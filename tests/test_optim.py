"""The optimizer and the learning-rate schedules (seq2attn.run.optim): decoupled weight decay, cosine."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seq2attn.config import TrainConfig
from seq2attn.run.optim import build_optimizer, build_scheduler


# --- optimizer and schedule ---------------------------------------------------------------------
def test_weight_decay_is_decoupled():
    """With a zero gradient, AdamW shrinks each weight by exactly lr * weight_decay of itself
    (L2 added to the gradient would move every weight by about lr instead)."""
    model = nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    opt = build_optimizer(model, TrainConfig(lr=0.1, weight_decay=0.5))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), b * (1 - 0.1 * 0.5))


def test_cosine_schedule_warms_up_then_decays_to_min_lr():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, TrainConfig(schedule="cosine", lr=1.0, warmup_steps=4, max_steps=12, min_lr=0.1))
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # step s (from 1): s / 4 while warming up, then 0.1 + 0.9 * (1 + cos(pi * (s - 4) / 8)) / 2
    expected = [0.25, 0.5, 0.75] + [0.1 + 0.45 * (1 + math.cos(math.pi * (s - 4) / 8)) for s in range(4, 13)] + [0.1, 0.1]
    assert lrs == pytest.approx(expected)
    assert lrs[3] == pytest.approx(1.0) and lrs[7] == pytest.approx(0.55) and lrs[11] == pytest.approx(0.1)
