"""benchmarks/unbucketed.py: JoeyNMT 2.3.0's batch composition as seq2attn's epoch plan, for the
"equal padding" throughput (the run itself: the --quick smoke test in test_run.py)."""

from __future__ import annotations

import numpy as np

from benchmarks.unbucketed import epoch_plan, token_batch_bounds


def test_batches_close_once_the_longest_times_the_rows_reaches_the_budget():
    # widths 10, 4, 4 at 16: 10 x 2 >= 16 closes the first batch at 2 rows, the rest is the last batch
    assert token_batch_bounds(np.array([10, 4, 4]), 16).tolist() == [0, 2, 3]
    assert token_batch_bounds(np.array([4, 4, 10]), 16).tolist() == [0, 3]  # 4, 8, then 10 x 3 = 30
    assert token_batch_bounds(np.array([4, 4, 4, 4, 3]), 16).tolist() == [0, 4, 5]
    assert token_batch_bounds(np.array([20, 3]), 16).tolist() == [0, 1, 2]  # wider than the budget: alone


def test_epoch_plan_is_joeynmts_sampler_over_every_pair_once():
    from seq2attn.nn.batches import plan_epoch

    lengths = np.random.default_rng(0).integers(2, 40, 2000).astype(np.uint16)
    plan = epoch_plan(lengths, batch_tokens=1024, seed=1, epoch=0)
    batches = [plan.batch(k) for k in range(len(plan))]
    assert sorted(np.concatenate(batches).tolist()) == list(range(2000))
    for rows in batches[:-1]:
        widths = lengths[rows].astype(int) + 1
        assert widths.max() * len(rows) >= 1024 > widths[:-1].max() * (len(rows) - 1)
    again = epoch_plan(lengths, batch_tokens=1024, seed=1, epoch=0)
    assert np.array_equal(again.order, plan.order) and not np.array_equal(
        epoch_plan(lengths, batch_tokens=1024, seed=1, epoch=1).order, plan.order)

    def padded_share(p) -> float:  # padded slots over all slots of the epoch's batches
        slots = sum(int(lengths[p.batch(k)].max() + 1) * len(p.batch(k)) for k in range(len(p)))
        return 1 - float((lengths.astype(int) + 1).sum()) / slots

    bucketed = plan_epoch(lengths, batch_tokens=1024, seed=1, epoch=0)
    assert padded_share(plan) > 0.25 and padded_share(bucketed) < 0.05  # random order pads; buckets hardly do
