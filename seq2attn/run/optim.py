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


def budget(step: int, progress: float, *, warmup: int, warm_end: float | None, floor: float,
           shape: str = "linear") -> float:
    """Factor of ``train.lr`` for update ``step + 1`` of a budgeted run, ``progress`` (0-1) of the
    budget spent before it: a linear warm-up over ``warmup`` updates, then a linear (or half-cosine)
    decay from 1 at ``warm_end``, the progress where warm-up ended, to ``floor`` at progress 1.

    While warming up, ``warm_end`` is None and is projected from the progress per update so far (at
    most 0.5): the factor is the lower of the ramp and that decay, so a warm-up too long for the
    budget still ends at the floor when the budget does."""
    s = step + 1
    ramp = min(s / warmup, 1.0)
    end = warm_end if warm_end is not None else min(progress * warmup / max(step, 1), 0.5)
    q = min(max((progress - end) / max(1.0 - end, 1e-9), 0.0), 1.0)
    left = 1.0 - q if shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * q))
    return min(ramp, floor + (1.0 - floor) * left)


class BudgetSchedule:
    """``train.schedule: budget`` (Li et al. 2020, "Budgeted Training": decay to the floor exactly
    when the budget ends). The training loop calls :meth:`update` before every update with the
    fraction of the budget spent: measured training time over ``train.max_minutes`` (validations
    and checkpoints excluded, so the step time is re-measured at every update) or updates over
    ``train.max_steps``, whichever is further along. With ``max_steps`` alone it is a function of the
    step, exactly repeatable. Its state (the progress where warm-up ended) is saved in the checkpoint
    with the training time (``TrainState.train_seconds``), so an interrupted run resumes on the same
    curve."""

    def __init__(self, optimizer: torch.optim.Optimizer, tc: TrainConfig):
        self.optimizer, self.tc = optimizer, tc
        self.warm_end: float | None = None
        self.update(0, 0.0)

    def progress(self, step: int, train_seconds: float) -> float:
        tc, done = self.tc, 0.0
        if tc.max_steps is not None:
            done = step / tc.max_steps
        if tc.max_minutes is not None:
            done = max(done, train_seconds / (60.0 * tc.max_minutes))
        return min(done, 1.0)

    def update(self, step: int, progress: float) -> float:
        """Set the learning rate of update ``step + 1``; returns it."""
        tc = self.tc
        if self.warm_end is None and step + 1 >= tc.warmup_steps:
            self.warm_end = progress
        lr = tc.lr * budget(step, progress, warmup=tc.warmup_steps, warm_end=self.warm_end,
                            floor=min(tc.min_lr / tc.lr, 1.0), shape=tc.budget_decay)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {"warm_end": self.warm_end}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        warm_end = state["warm_end"]
        if warm_end is not None and not isinstance(warm_end, float):
            raise TypeError(f"scheduler warm_end = {warm_end!r} is not a number")
        self.warm_end = warm_end


def build_scheduler(optimizer: torch.optim.Optimizer, tc: TrainConfig) -> Any:
    """``plateau``: decay on a dev-BLEU plateau (stepped per validation; none when lr_decay is null);
    ``noam``: peak ``train.lr`` at ``warmup_steps``, then 1/sqrt(step); ``cosine``: peak at
    ``warmup_steps``, then down to ``min_lr`` at ``max_steps`` (both stepped per batch);
    ``budget``: :class:`BudgetSchedule`, set by the loop before each update; ``constant``: none."""
    if tc.schedule == "budget":
        return BudgetSchedule(optimizer, tc)
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
