"""What every backend provides, so that search and alignment never branch on the backend.

A backend is an ``nn.Module`` with:

* ``encode(src, src_lengths) -> enc``: an encoder output object with ``index_select(index)``;
  key-side attention work happens here, once per batch.
* ``init_state(enc) -> state``: the decoder state before the first step, with ``index_select(index)``.
* ``step(prev_tokens, state, enc) -> StepOutput``: one decoding step for every row.
* ``forward(src, src_lengths, tgt_in) -> ForwardOutput``: teacher-forced pass over a whole target,
  through the same attention code as ``step``.
* ``features(src, src_lengths, tgt_in) -> Features`` and ``output_layer`` (the vocabulary
  projection, an ``nn.Linear``): ``forward`` split in two, so that training can fuse the
  projection with the loss (``seq2attn.nn.loss``) and never hold the whole (B, T, V) logits.

``index_select(index)`` returns a new object whose row ``i`` is row ``index[i]`` of this one, for
every tensor it holds (hidden states, KV caches, masks). The search uses it three ways: to fan a
sentence out to its K beam rows (indices repeat), to reorder rows after every beam step (a row may
be dropped or copied), and to drop rows whose sentence has finished (fewer rows). It must not
modify ``self``: the search may select from the same state twice. A row must never read another
row (padding masked), so that a sentence decodes the same in a batch of 1 or of 64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor


class Reorderable(Protocol):
    def index_select(self, index: Tensor) -> Any: ...


@dataclass
class StepOutput:
    logits: Tensor  # (B, V) unnormalized scores for the next token
    attention: Tensor  # (B, S) attention over source positions, rows sum to 1
    state: Reorderable  # the decoder state after this step


@dataclass
class Features:
    hidden: Tensor  # (B, T, D) what the output layer reads
    attention: Tensor  # (B, T, S)


@dataclass
class ForwardOutput:
    logits: Tensor  # (B, T, V)
    attention: Tensor  # (B, T, S)
