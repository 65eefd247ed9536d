"""Token-budget batches bucketed by length, with padding and masks.

Sentences of similar length go together so that little compute is spent on padding; a batch holds
as many sentences as fit in ``batch_tokens`` padded tokens.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    src: Tensor  # (B, S) token ids, EOS-terminated, PAD on the right
    src_lengths: Tensor  # (B,) real lengths (EOS included), on CPU for packing
    indices: list[int]  # position of each row in the caller's list
    tgt_in: Tensor | None = None  # (B, T) BOS y_1 .. y_n   (teacher-forcing input)
    tgt_out: Tensor | None = None  # (B, T) y_1 .. y_n EOS  (what the model must predict)

    @property
    def src_mask(self) -> Tensor:
        return self.src != PAD_ID  # (B, S) True = real token

    @property
    def n_tgt_tokens(self) -> int:
        return 0 if self.tgt_out is None else int((self.tgt_out != PAD_ID).sum())

    def __len__(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device | str) -> Batch:
        move = (lambda t: None if t is None else t.to(device, non_blocking=True))
        return Batch(move(self.src), self.src_lengths, self.indices, move(self.tgt_in), move(self.tgt_out))


def pad(seqs: Sequence[Sequence[int]], *, prefix: int | None = None, suffix: int | None = None) -> Tensor:
    """Right-padded (N, L) long tensor of ``[prefix] + seq + [suffix]``."""
    extra = (prefix is not None) + (suffix is not None)
    width = max(len(s) for s in seqs) + extra
    out = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    for row, s in enumerate(seqs):
        full = ([prefix] if prefix is not None else []) + list(s) + ([suffix] if suffix is not None else [])
        out[row, : len(full)] = torch.tensor(full, dtype=torch.long)
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


def length_filter(
    src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], *, max_length: int
) -> tuple[list[int], int]:
    """Indices of pairs whose source and target fit ``max_length`` tokens, and how many did not.

    Empty pairs are dropped too (nothing to learn from them); both are counted in the second value.
    """
    keep = [i for i, (s, t) in enumerate(zip(src, tgt)) if 0 < len(s) <= max_length and 0 < len(t) <= max_length]
    return keep, len(src) - len(keep)


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
