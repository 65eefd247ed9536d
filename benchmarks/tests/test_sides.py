"""benchmarks/sides.py: decoding figures net of start-up, repeats combined, JoeyNMT's batch budget
matched to seq2attn's, throughput repeats without a validation inside."""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks import common, peer_joeynmt, report
from benchmarks.common import Child
from benchmarks.sides import decode_figures


def test_decode_figures_subtract_startup(tmp_path):
    hyp, ref = tmp_path / "hyp", tmp_path / "ref"
    text = "a man is riding a bike\ntwo dogs play in the snow\na woman sings on a stage\n"
    hyp.write_text(text)
    ref.write_text(text)
    child, start = Child(0, 5.0, 2 * common.GIB, hyp), Child(0, 3.0, common.GIB, hyp)
    fig = decode_figures(child, start, hyp, ref)
    assert fig["sent_per_s"] == 1.0  # (3 - 1) sentences in 5 - 3 seconds
    assert fig["output_words"] == 18 and fig["words_per_s"] == 6.0  # 18 words * 2/3 net, in 2 s
    assert fig["bleu"] == 100.0 and fig["peak_rss_gib"] == 2.0


def test_repeats_are_combined_as_medians_and_shown_with_their_range():
    from benchmarks.sides import add_throughput_repeat, combine_repeats

    runs = [{"sent_per_s": v, "words_per_s": 10 * v, "peak_rss_gib": rss, "bleu": 30.0}
            for v, rss in ((100.0, 0.5), (90.0, 0.6), (120.0, 0.4))]
    fig = combine_repeats(runs)
    assert fig["sent_per_s"] == 100.0 and fig["sent_per_s_runs"] == [100.0, 90.0, 120.0]
    assert fig["words_per_s"] == 1000.0 and fig["peak_rss_gib"] == 0.6 and fig["repeats"] == 3
    assert combine_repeats([{"error": "x"}]) == {"error": "x"}
    one_failed = combine_repeats([{"error": "x"}, *runs[1:]])
    assert one_failed["sent_per_s_runs"] == [None, 90.0, 120.0] and one_failed["failed_repeats"] == 1  # r pairs with r
    assert one_failed["sent_per_s"] == 105.0
    side = {"train": {"tokens_per_s": 2000.0, "tokens_per_s_runs": [2000.0], "flops_per_token": 5e7}}
    add_throughput_repeat(side, 2400.0, peak=100.0)
    add_throughput_repeat(side, 2100.0, peak=100.0)
    add_throughput_repeat(side, None, peak=100.0)  # a failed repeat keeps its place, out of the median
    assert side["train"]["tokens_per_s"] == 2100.0
    assert side["train"]["tokens_per_s_runs"] == [2000.0, 2400.0, 2100.0, None]
    assert report._cell({"decode": {"greedy": fig}}, ("decode", "greedy", "sent_per_s")) == "100.0 (90.0-120.0)"


def test_joeynmt_batch_budget_matches_seq2attn_real_target_tokens(monkeypatch, tmp_path):
    """--joey-batch-tokens match: the smallest budget (in steps of 64) at which JoeyNMT's unbucketed
    batches hold as many real target tokens as seq2attn's bucketed ones at --batch-tokens."""
    from benchmarks import sides

    rng = np.random.default_rng(0)
    src, tgt = rng.integers(2, 40, 3000), rng.integers(2, 40, 3000)
    monkeypatch.setattr(sides, "_spm", lambda st, py: (tmp_path / "s.model", tmp_path / "v.txt"))
    monkeypatch.setattr(peer_joeynmt, "token_lengths", lambda py, model, files: [src, tgt])
    setup = lambda rule: sides.Setup(run_dir=tmp_path, data={"train": tmp_path / "train"}, one=tmp_path, mode=None,
                                     peak={}, args=argparse.Namespace(joey_batch_tokens=rule, batch_tokens=1024))
    got = sides.joey_batch(setup("match"), tmp_path / "python")
    want = sides.seq2attn_batch_targets(src, tgt, 1024)
    b = got["batch_tokens"]
    assert b % 64 == 0 and b > 1024  # unbucketed batches waste more on padding
    assert peer_joeynmt.token_batch_targets(src, tgt, b) >= want > peer_joeynmt.token_batch_targets(src, tgt, b - 64)
    assert got["simulated_target_tokens_per_step"]["joeynmt_at_same_budget"] < 0.8 * want
    assert sides.joey_batch(setup("same"), tmp_path)["batch_tokens"] == 1024
    assert sides.joey_batch(setup("2048"), tmp_path)["batch_tokens"] == 2048


def test_joeynmt_throughput_repeat_validates_after_the_window_at_a_logging_multiple():
    """JoeyNMT refuses a validation_freq that logging_freq does not divide (found by a --quick run)."""
    from benchmarks.sides import no_validation_within

    for steps, log_every in ((170, 10), (25, 5), (8, 2), (7, 1), (20, 10)):
        every = no_validation_within(steps, log_every)
        assert every > steps and every % log_every == 0 and every - log_every <= steps
