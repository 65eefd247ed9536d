"""benchmarks/report.py: ratios, targets marked pass / miss / n/a, the tables, and the results files
it reads again."""

from __future__ import annotations

import json

from benchmarks import report


def test_ratios_and_targets_pass_miss_and_missing():
    ours = {"train": {"tokens_per_s": 3000.0, "peak_rss_gib": 1.0, "peak_fraction": 0.6},
            "bf16": {"tokens_per_s": 3000.0, "dev_bleu": 10.0, "fp32_dev_bleu": 11.0},
            "decode": {"greedy": {"sent_per_s": 200.0, "bleu": 12.0, "peak_rss_gib": 0.5}}}
    peer = {"train": {"tokens_per_s": 1000.0, "peak_rss_gib": 2.5},
            "decode": {"greedy": {"sent_per_s": 50.0, "bleu": 9.0, "peak_rss_gib": 0.6}}}
    r = report.ratios(ours, peer)
    assert r["train_tokens_per_s_fp32"] == 3.0 and r["train_peak_rss"] == 0.4
    assert r["decode_sent_per_s_greedy"] == 4.0 and r["decode_sent_per_s_beam5"] is None
    marks = {t.name: t.passed for t in report.targets("rnn", ours, peer, r)}
    assert marks["train tok/s fp32 vs JoeyNMT"] is True
    assert marks["train tok/s bf16 vs seq2attn fp32"] is False  # 1x < 2x
    assert marks["dev BLEU drop bf16 vs fp32 (same steps)"] is False  # dropped 1.0 > 0.5
    assert marks["decode sent/s beam 5 vs JoeyNMT"] is None  # no beam figures
    assert marks["test BLEU greedy minus JoeyNMT (same budget)"] is True  # +3
    assert "train tok/s fp32" in report.render({"machine": {"cpu": "x", "threads": 2, "torch": "t", "date": "d"},
                                                "matmul_peak_gflops": {"fp32": 1.0},
                                                "models": {"rnn": {"seq2attn": ours, "joeynmt": peer}}})


def test_report_merges_parts_and_rederives_targets(tmp_path, capsys):
    """python -m benchmarks.report: parts of one full run side by side, targets at today's thresholds."""
    ours = {"train": {"tokens_per_s": 2500.0, "peak_rss_gib": 1.0, "peak_fraction": 0.6},
            "budget": {"steps": 700, "batch": {"batch_tokens": 4096}}}
    peer = {"train": {"tokens_per_s": 1000.0, "peak_rss_gib": 2.5}, "budget": {"steps": 300}}
    stale = [{"name": "train tok/s fp32 vs JoeyNMT", "value": 2.5, "goal": ">= 2.5", "passed": True}]
    part1 = {"machine": {"cpu": "x", "threads": 2, "torch": "t", "date": "d"}, "matmul_peak_gflops": {"fp32": 1.0},
             "models": {"rnn": {"seq2attn": ours, "joeynmt": peer, "targets": stale},
                        "rnn-luong": {"seq2attn": ours, "joeynmt": {**peer, "same_run_as": "rnn"}}}}
    part2 = {**part1, "models": {"transformer": {"seq2attn": ours, "joeynmt": {"error": "boom"}}}}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, part in zip(paths, (part1, part2)):
        path.write_text(json.dumps(part))
    assert report.main([str(p) for p in paths]) == 0
    out = capsys.readouterr().out
    assert "[miss] train tok/s fp32 vs JoeyNMT: 2.5 (goal >= 3)" in out  # not the stale pass
    header = next(line for line in out.splitlines() if line.startswith("| figure"))
    assert header == ("| figure | rnn: seq2attn | JoeyNMT | ratio | rnn-luong: seq2attn | ratio "
                      "| transformer: seq2attn | JoeyNMT | ratio |")
    assert "| train tok/s fp32 | 2,500 | 1,000 | 2.50x | 2,500 | 2.50x | 2,500 | failed | - |" in out
    bad = tmp_path / "bad.json"
    for text in ("{}", "[1]", '{"models": []}', "not json"):
        bad.write_text(text)
        assert report.main([str(bad)]) == 2
        assert "bad.json: not a benchmarks.run results file" in capsys.readouterr().err


def test_bf16_run_is_skipped_where_the_cpu_emulates_bf16():
    """auto: the bf16 run only where the measured bf16 matmul peak is fast; the table says why not."""
    from benchmarks.run import bf16_skip_reason

    emulated, native = {"fp32": 200.0, "bf16": 60.0}, {"fp32": 280.0, "bf16": 1050.0}
    assert bf16_skip_reason("auto", native) is None and bf16_skip_reason("on", emulated) is None
    assert bf16_skip_reason("off", native) == "--bf16 off"
    why = bf16_skip_reason("auto", emulated)
    assert "no fast bf16" in why and "(60 GFLOP/s) is 0.30x the fp32 one (200)" in why
    ours = {"bf16": {"skipped": why}, "train": {"tokens_per_s": 1000.0}}
    assert report._cell(ours, ("bf16", "tokens_per_s")) == "skipped"
    assert report._cell(ours, ("bf16", "dev_bleu_pair")) == "skipped"
    marks = {t.name: t.passed for t in report.targets("rnn", ours, {}, report.ratios(ours, {}))}
    assert marks["train tok/s bf16 vs seq2attn fp32"] is None  # not measured, so neither pass nor miss
    results = {"machine": {"cpu": "x", "threads": 2, "torch": "t", "date": "d"}, "matmul_peak_gflops": emulated,
               "bf16_skipped": why, "models": {"rnn": {"seq2attn": ours, "targets": []}}}
    assert f"bf16 training run skipped: {why}" in report.render(results)
