"""benchmarks/train_step.py and benchmarks/engines.py: a training-step row and its table, the
engines' figures, and one engine child decoding a tiny model."""

from __future__ import annotations

import json

from benchmarks import common


def test_train_step_benchmark_row_and_table():
    from benchmarks import train_step

    row = train_step.one_row("rnn", "fp32", "fused", "system", threads=1, steps=1)
    assert row["tokens_per_s"] > 0 and row["peak_rss_mib"] > 0
    row["fp32_peak_fraction"] = 0.5
    text = train_step.table([row])
    assert text.count("\n") == 2 and "| rnn | fp32 | fused | system |" in text and "50%" in text


def test_engine_figures_and_table_known_answer():
    from benchmarks.engines import figures, table

    fig = figures({"seconds": 4.0, "sentences": 1000, "tokens": 12000}, bleu=31.234, peak_rss_bytes=common.GIB // 2)
    assert fig == {"seconds": 4.0, "sent_per_s": 250.0, "tokens_per_s": 3000.0, "bleu": 31.23, "peak_rss_gib": 0.5}
    lines = table([{"model": "rnn", "engine": "seq2attn", "precision": "int8", "beam": 5, **fig}]).splitlines()
    assert lines[-1] == "| rnn | seq2attn | int8 | 5 | 250.0 | 3,000 | 31.23 | 0.500 |"


def test_engine_child_decodes_and_times(tiny_model, reverse_files, tmp_path):
    from benchmarks.engines import child

    src = tmp_path / "src"
    src.write_text("".join(x + "\n" for x in reverse_files["dev"][0].read_text().splitlines()[:60]))
    import torch

    threads = torch.get_num_threads()
    try:  # the child sets its thread count: give this process its own back
        child([str(tiny_model), str(src), str(tmp_path / "hyp"), str(tmp_path / "t.json"), "int8", "2", "1"])
    finally:
        torch.set_num_threads(threads)
    timing = json.loads((tmp_path / "t.json").read_text())
    assert timing["sentences"] == 60 and timing["seconds"] > 0 and timing["tokens"] > 0
    assert len((tmp_path / "hyp").read_text().splitlines()) == 60
