"""Checkpoint averaging: the element-wise mean of the last N validation checkpoints, scored on dev
like any checkpoint and saved as ``averaged.safetensors`` (Vaswani et al. 2017 average the last 5
or 20 checkpoints; on small data it smooths the noise of the last steps)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import load_entry, save_weights, snapshots
from .errors import CheckpointError
from .validation import dev_info

Scorer = Callable[[nn.Module], dict[str, Any]]  # model -> dev scores (bleu, loss, chrf, ...)


def average_state(states: Iterable[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts with the same keys. Floating tensors are summed in float64
    so that the mean of identical tensors is exactly that tensor; other tensors (counters, ids)
    are taken from the last state."""
    total: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    n = 0
    for state in states:
        if n and state.keys() != last.keys():
            raise CheckpointError("the checkpoints to average hold different tensors")
        for k, v in state.items():
            if v.is_floating_point():
                total[k] = total[k] + v.double() if n else v.double()
        last, n = state, n + 1
    if n == 0:
        raise CheckpointError("no checkpoints to average")
    return {k: (total[k] / n).to(v.dtype) if k in total else v.clone() for k, v in last.items()}


def average_last(directory: Path, model: nn.Module, *, last: int, score: Scorer,
                 device: torch.device | str = "cpu") -> dict[str, Any]:
    """Average the newest ``last`` kept checkpoints of ``directory`` (``model`` gives the shapes and is
    left untouched), score the average with ``score`` and save it; returns its manifest entry."""
    kept = snapshots(directory)
    if last < 1:
        raise CheckpointError(f"--last {last}; must be >= 1")
    if len(kept) < last:
        raise CheckpointError(f"{directory}: holds {len(kept)} validation checkpoint(s), fewer than --last "
                              f"{last}; train with train.average_last={last} to keep them")
    chosen = kept[-last:]
    work = copy.deepcopy(model)

    def states():
        for entry in chosen:
            load_entry(directory, entry, work, device=device)
            yield {k: v.detach().clone() for k, v in work.state_dict().items()}

    work.load_state_dict(average_state(states()))
    result = score(work)
    info = {"step": chosen[-1]["step"], "epoch": chosen[-1].get("epoch"), "steps": [e["step"] for e in chosen],
            **dev_info(result)}
    save_weights(directory, work, which="averaged", info=info)
    return {**info, "result": result}
