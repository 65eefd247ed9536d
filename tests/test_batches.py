"""Token-budget batching: every example in exactly one batch, budgets respected, masks right."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2attn.nn.batches import bucket, make_batches
from seq2attn.special import BOS_ID, EOS_ID, PAD_ID


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=200), st.integers(8, 300), st.booleans())
def test_every_index_in_exactly_one_batch(lengths, budget, shuffled):
    batches = bucket(lengths, batch_tokens=budget, rng=random.Random(0) if shuffled else None)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:  # a batch over budget only when it is a single long sentence
        assert len(b) == 1 or len(b) * (max(lengths[i] for i in b) + 1) <= budget


def test_batch_tensors_and_masks():
    src = [[5, 6, 7], [8], [9, 10]]
    tgt = [[11, 12], [13, 14, 15], [16]]
    (batch,) = make_batches(src, tgt, batch_tokens=1000)
    order = batch.indices
    for row, i in enumerate(order):
        s = batch.src[row].tolist()
        assert s[: len(src[i]) + 1] == src[i] + [EOS_ID] and set(s[len(src[i]) + 1:]) <= {PAD_ID}
        assert batch.tgt_in[row].tolist()[: len(tgt[i]) + 1] == [BOS_ID] + tgt[i]
        assert batch.tgt_out[row].tolist()[: len(tgt[i]) + 1] == tgt[i] + [EOS_ID]
        assert int((batch.src[row] != PAD_ID).sum()) == len(src[i]) + 1 == int(batch.src_lengths[row])
    assert batch.n_tgt_tokens == sum(len(t) + 1 for t in tgt)


def test_bucketing_keeps_padding_low():
    rng = random.Random(1)
    lengths = [rng.randint(1, 50) for _ in range(2000)]
    src = [[4] * n for n in lengths]
    batches = make_batches(src, src, batch_tokens=1000, rng=random.Random(2))
    real = sum(n + 1 for n in lengths)
    padded = sum(b.tgt_out.numel() for b in batches)
    assert real / padded > 0.9


def test_length_filter_counts_what_it_drops():
    """Training keeps the pairs whose both sides fit data.max_length and are not empty (the store's
    lengths, filtered in TrainData.from_store), and counts the rest."""
    from types import SimpleNamespace

    from seq2attn.run.traindata import TrainData

    def side(lengths):
        return SimpleNamespace(lengths=lambda: np.asarray(lengths, dtype=np.int32))

    corpus = SimpleNamespace(split=lambda name: (side([3, 9, 0, 1]), side([1, 1, 1, 12])))
    data = TrainData.from_store(corpus, max_length=8)
    assert data.index.tolist() == [0] and data.dropped == 3
