"""The optimizer (AdamW, decoupled weight decay) and the learning-rate schedules."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from seq2attn.config import TrainConfig

PER_BATCH_SCHEDULES = ("noam", "cosine")  # stepped after every update; plateau is stepped per validation


def build_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    """AdamW: ``train.weight_decay`` shrinks the weights directly (``w -= lr * wd * w``) instead of
    being added to the gradient, where Adam's per-parameter scaling would weaken it (Loshchilov and
    Hutter 2019). With weight_decay 0 it is exactly Adam."""
    return torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=tc.adam_betas, weight_decay=tc.weight_decay)


def noam(step: int, *, warmup: int) -> float:
    """Factor of ``train.lr`` after ``step`` updates: linear warm-up, then 1/sqrt(step)."""
    s = step + 1  # LambdaLR counts from 0 before the first update: s keeps the first lr above zero
    return min(s / warmup, math.sqrt(warmup / s))


def cosine(step: int, *, warmup: int, total: int, floor: float) -> float:
    """Factor of ``train.lr``: linear warm-up to 1, then half a cosine down to ``floor`` at ``total``."""
    s = step + 1
    if s < warmup:
        return s / warmup
    progress = min((s - warmup) / max(total - warmup, 1), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, tc: TrainConfig) -> Any:
    """``plateau``: decay on a dev-BLEU plateau (stepped per validation; none when lr_decay is null);
    ``noam``: peak ``train.lr`` at ``warmup_steps``, then 1/sqrt(step); ``cosine``: peak at
    ``warmup_steps``, then down to ``min_lr`` at ``max_steps`` (both stepped per batch);
    ``constant``: none."""
    if tc.schedule == "noam":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: noam(step, warmup=tc.warmup_steps))
    if tc.schedule == "cosine":
        assert tc.max_steps is not None, "config validation requires train.max_steps for cosine"
        floor = min(tc.min_lr / tc.lr, 1.0)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine(step, warmup=tc.warmup_steps, total=tc.max_steps, floor=floor))
    if tc.schedule == "plateau" and tc.lr_decay is not None:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=tc.lr_decay, patience=tc.lr_patience, min_lr=tc.min_lr)
    return None
