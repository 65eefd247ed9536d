"""``seq2attn train`` with JoeyNMT 2.3.0's batch composition, for the "equal padding" throughput.

seq2attn buckets training pairs by length; JoeyNMT 2.3.0's ``TokenBatchSampler`` fills each batch
with pairs in random order until (its longest ``max(src, trg) + 1``) x its rows reaches the budget,
so its batches are padded to the longest of random pairs. Run as a script with ``seq2attn train``'s
arguments, this module replaces the training plan of one epoch (``TrainData.plan``) by JoeyNMT's
sampler and runs seq2attn's own CLI otherwise unchanged: at JoeyNMT's padded budget both toolkits
then train on batches of the same composition, and the throughput ratio measures the step itself.

    python benchmarks/unbucketed.py train --out DIR -c CONFIG ... --set train.batch_tokens=9472

``token_batch_bounds`` is the sampler, step for step; ``peer_joeynmt.token_batch_targets`` simulates
JoeyNMT's batches with it too. Nothing here imports torch or seq2attn at import time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def token_batch_bounds(widths: np.ndarray, batch_size: int) -> np.ndarray:
    """Batch boundaries of JoeyNMT 2.3.0's ``TokenBatchSampler`` over pairs of ``widths``
    (``max(src, trg) + 1`` each) in the order given: a batch closes as soon as its longest width
    times its rows reaches ``batch_size``; a last, smaller batch keeps the rest."""
    bounds, longest, rows = [0], 0, 0
    for i, width in enumerate(widths.tolist()):
        longest, rows = max(longest, width), rows + 1
        if longest * rows >= batch_size:
            bounds.append(i + 1)
            longest, rows = 0, 0
    if rows:
        bounds.append(len(widths))
    return np.asarray(bounds, dtype=np.int64)


def epoch_plan(lengths: np.ndarray, *, batch_tokens: int, seed: int, epoch: int):
    """One epoch of JoeyNMT-composed batches over ``lengths`` (the longer side of each kept pair),
    as seq2attn's ``EpochPlan``: the pairs in a random order (from the seed and the epoch, as
    seq2attn's own plan), cut where JoeyNMT's sampler cuts, visited in that order."""
    from seq2attn.nn.batches import EpochPlan

    order = np.random.default_rng([seed, epoch]).permutation(len(lengths)).astype(np.int32)
    bounds = token_batch_bounds(lengths[order].astype(np.int64) + 1, batch_tokens)
    return EpochPlan(order, bounds, np.arange(len(bounds) - 1))


def main(argv: list[str]) -> None:
    from seq2attn.cli.main import app
    from seq2attn.run.traindata import TrainData

    def plan(self, *, batch_tokens: int, seed: int, epoch: int):
        return epoch_plan(self.lengths, batch_tokens=batch_tokens, seed=seed, epoch=epoch)

    TrainData.plan = plan
    app(args=argv, prog_name="seq2attn")


if __name__ == "__main__":
    # run as a script: this folder is sys.path[0]; its modules (run, common, ...) must not shadow others
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    main(sys.argv[1:])
