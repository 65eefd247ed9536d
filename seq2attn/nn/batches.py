"""Token-budget batches bucketed by length, with padding and masks.

Sentences of similar length go together so that little compute is spent on padding; a batch holds
as many sentences as fit in ``batch_tokens`` padded tokens.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from seq2attn.special import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    src: Tensor  # (B, S) token ids, EOS-terminated, PAD on the right
    src_lengths: Tensor  # (B,) real lengths (EOS included), on CPU for packing
    indices: list[int]  # position of each row in the caller's list
    tgt_in: Tensor | None = None  # (B, T) BOS y_1 .. y_n   (teacher-forcing input)
    tgt_out: Tensor | None = None  # (B, T) y_1 .. y_n EOS  (what the model must predict)

    @property
    def n_tgt_tokens(self) -> int:
        return 0 if self.tgt_out is None else int((self.tgt_out != PAD_ID).sum())

    def __len__(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device | str) -> Batch:
        """The batch on ``device``; host-to-GPU copies go from pinned memory, without waiting."""
        cuda = torch.device(device).type == "cuda"
        move = (lambda t: None if t is None else (t.pin_memory() if cuda else t).to(device, non_blocking=True))
        return Batch(move(self.src), self.src_lengths, self.indices, move(self.tgt_in), move(self.tgt_out))


def pad(seqs: Sequence[Sequence[int]], *, prefix: int | None = None, suffix: int | None = None) -> Tensor:
    """Right-padded (N, L) long tensor of ``[prefix] + seq + [suffix]``."""
    extra = (prefix is not None) + (suffix is not None)
    width = max(len(s) for s in seqs) + extra
    out = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    start = int(prefix is not None)
    for row, s in enumerate(seqs):  # rows are lists, or numpy slices of a memory-mapped store
        if prefix is not None:
            out[row, 0] = prefix
        out[row, start: start + len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
        if suffix is not None:
            out[row, start + len(s)] = suffix
    return out


def collate(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]] | None, indices: list[int]) -> Batch:
    srcs = [src[i] for i in indices]
    src_t = pad(srcs, suffix=EOS_ID)
    lengths = torch.tensor([len(s) + 1 for s in srcs], dtype=torch.long)
    if tgt is None:
        return Batch(src_t, lengths, indices)
    tgts = [tgt[i] for i in indices]
    return Batch(src_t, lengths, indices, pad(tgts, prefix=BOS_ID), pad(tgts, suffix=EOS_ID))


def bucket(lengths: Sequence[int], *, batch_tokens: int, rng: random.Random | None = None) -> list[list[int]]:
    """Group indices into batches of similar length whose padded size fits ``batch_tokens``.

    Every index lands in exactly one batch; a sentence longer than the budget gets a batch alone.
    With ``rng``, ties in length are broken randomly and the batch order is shuffled, so each epoch
    sees different batches; without it the order is deterministic (longest first, for decoding,
    so that a memory problem shows up at once).
    """
    order = list(range(len(lengths)))
    if rng is not None:
        rng.shuffle(order)  # random tie-breaking: sort is stable
        order.sort(key=lambda i: lengths[i])
    else:
        order.sort(key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        width = max(longest, lengths[i] + 1)  # +1: EOS / BOS
        if current and width * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, width = [], lengths[i] + 1
        current.append(i)
        longest = width
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def make_batches(
    src: Sequence[Sequence[int]],
    tgt: Sequence[Sequence[int]] | None,
    *,
    batch_tokens: int,
    indices: Sequence[int] | None = None,
    rng: random.Random | None = None,
) -> list[Batch]:
    """Bucketed batches over ``indices`` (default: all). Training batches are sized by the longer
    of source and target; decoding batches (``tgt is None``) by the source."""
    idx = list(range(len(src))) if indices is None else list(indices)
    if tgt is None:
        lengths = [len(src[i]) for i in idx]
    else:
        lengths = [max(len(src[i]), len(tgt[i])) for i in idx]
    return [collate(src, tgt, [idx[j] for j in group]) for group in bucket(lengths, batch_tokens=batch_tokens, rng=rng)]


@dataclass(frozen=True)
class EpochPlan:
    """The training batches of one epoch, computed from the seed and the epoch number alone, so
    every rank of a distributed run gets the same plan and a resumed run continues it exactly.

    Batch ``k`` holds the positions ``order[bounds[j]:bounds[j + 1]]`` with ``j = visit[k]``
    (positions index the caller's length array)."""

    order: np.ndarray  # (N,) int32 positions sorted by length, ties in random order
    bounds: np.ndarray  # (B + 1,) int64 batch boundaries in ``order``
    visit: np.ndarray  # (B,) the order in which the epoch visits its batches

    def __len__(self) -> int:
        return len(self.visit)

    def batch(self, k: int) -> np.ndarray:
        j = int(self.visit[k])
        return self.order[self.bounds[j]: self.bounds[j + 1]]


def plan_epoch(lengths: np.ndarray, *, batch_tokens: int, seed: int, epoch: int) -> EpochPlan:
    """Bucketed token-budget batches over ``lengths`` (the longer side of each pair), as
    :func:`bucket` makes them, with numpy so that millions of pairs cost a few int32 arrays."""
    rng = np.random.default_rng([seed, epoch])
    # random tie-breaking: length + a fraction in [0, 1) sorts by length first
    key = lengths.astype(np.float32) + rng.random(len(lengths), dtype=np.float32)
    order = np.argsort(key, kind="stable").astype(np.int32)
    del key
    bounds = _cut(lengths[order] + 1, batch_tokens)  # +1: EOS / BOS
    return EpochPlan(order, bounds, rng.permutation(len(bounds) - 1))


def _cut(widths: np.ndarray, batch_tokens: int) -> np.ndarray:
    """Boundaries of greedy batches over ascending ``widths``: a batch grows while its size
    (rows x widest row) fits the budget; a row wider than the budget goes alone."""
    bounds, start, n = [0], 0, len(widths)
    while start < n:
        # a batch starting here holds at most batch_tokens // widths[start] rows
        window = widths[start: start + max(batch_tokens // int(widths[start]), 1)].astype(np.int64)
        fits = window * np.arange(1, len(window) + 1) <= batch_tokens
        size = int(np.argmin(fits)) if not fits.all() else len(window)
        start += max(size, 1)
        bounds.append(start)
    return np.asarray(bounds, dtype=np.int64)
