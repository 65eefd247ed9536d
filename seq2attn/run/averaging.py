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

from seq2attn.errors import CheckpointError
from seq2attn.modeldir.checkpoint import (
    WEIGHTS,
    build_empty,
    check_contained,
    load_entry,
    save_weights,
    snapshots,
)
from seq2attn.run.metricslog import append_metrics
from seq2attn.run.rundir import RunLock
from seq2attn.run.validation import DevSet, dev_info, score_dev

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


def _newest(directory: Path, last: int) -> list[dict[str, Any]]:
    """Manifest entries of the newest ``last`` kept checkpoints, oldest first."""
    kept = snapshots(directory)
    if last < 1:
        raise CheckpointError(f"--last {last}; must be >= 1")
    if len(kept) < last:
        raise CheckpointError(f"{directory}: holds {len(kept)} validation checkpoint(s), fewer than --last "
                              f"{last}; train with train.average_last={last} to keep them")
    return kept[-last:]


def average_last(directory: Path, model: nn.Module, *, last: int, score: Scorer,
                 device: torch.device | str = "cpu") -> dict[str, Any]:
    """Average the newest ``last`` kept checkpoints of ``directory`` (``model`` gives the shapes and is
    left untouched), score the average with ``score``, save it and log it to metrics.jsonl; returns
    the logged row (its manifest entry and the seconds the scoring took)."""
    chosen = _newest(directory, last)
    work = copy.deepcopy(model)

    def states():
        for entry in chosen:
            load_entry(directory, entry, work, device=device)
            yield {k: v.detach().clone() for k, v in work.state_dict().items()}

    work.load_state_dict(average_state(states()))
    result = score(work)
    newest = chosen[-1]
    info = {"step": newest["step"], "epoch": newest.get("epoch"), "minutes": newest.get("minutes"),
            "steps": [e["step"] for e in chosen], **dev_info(result)}
    save_weights(directory, work, which="averaged", info=info)
    row = {"kind": "averaged", "file": WEIGHTS["averaged"], **info, "valid_seconds": round(result["seconds"], 3)}
    append_metrics(directory, row)
    return row


def average_directory(directory: Path, *, last: int, device: torch.device | str = "cpu") -> dict[str, Any]:
    """``seq2attn average``: average a trained directory's last checkpoints, scored on its dev set."""
    from seq2attn.run.traindata import model_dev_data

    check_contained(directory)
    with RunLock(directory, reentrant=True):  # as train does: one writer at a time
        cfg, codec, model = build_empty(directory)
        model.to(device)
        _newest(directory, last)  # fail before reading any data
        text, (src_ids, tgt_ids) = model_dev_data(directory, cfg)
        dev = DevSet(text, src_ids, tgt_ids)
        return average_last(directory, model, last=last, device=device,
                            score=lambda m: score_dev(m, dev, cfg=cfg, codec=codec, device=torch.device(device)))
