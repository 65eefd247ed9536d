"""The benchmark harness: known answers for its arithmetic and parsers, and a smoke run of the
--quick path (seq2attn only, tiny slice; the JoeyNMT comparison itself never runs in CI)."""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

# `benchmarks` is a directory of the repository, not part of the installed package: make it
# importable under a bare `pytest` too (`python -m pytest` already has the root on sys.path).
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import common, flops, peer_joeynmt, report, seq2attn_side
from benchmarks.common import Child
from benchmarks.sides import decode_figures
from seq2attn.text.corpora import generate

# --- FLOPs: hand-computed known answers --------------------------------------------------------


def test_transformer_macs_known_answer():
    # d=2, ff=4, S=T=3, V=5, one layer each:
    # encoder 4*4 + 2*3*2 + 2*2*4 = 44 and cross K/V 2*4 = 8 (per source token, ratio 1);
    # decoder self 16 + 12, cross Q/O 8 + 12, FFN 16 = 64; output 2*5 = 10.
    macs = flops.transformer_macs(d=2, ff=4, enc_layers=1, dec_layers=1, vocab=5, lengths=flops.Lengths(3, 3))
    assert macs == 44 + 8 + 64 + 10


def test_rnn_macs_known_answer():
    # E=1, H=1 (K=2), D=1, A=1, V=3, S=T=2:
    # encoder 2*3*(1+1)=12, keys 2*1=2 -> 14 per source token; attention 1 + 2 + 4 = 7;
    # GRU 3*((1+2)*1 + 1) = 12; pre-output (1+2+1)*1 = 4; output 3.
    macs = flops.rnn_macs(emb=1, hidden=1, dec_hidden=1, attention=1, vocab=3, lengths=flops.Lengths(2, 2))
    assert macs == 14 + 7 + 12 + 4 + 3


def test_luong_rnn_macs_known_answer():
    # as above, Luong wiring: GRU 3*((1 + 1)*1 + 1) = 9 with input feeding, 3*(1 + 1) = 6 without;
    # attentional layer (2 + 1)*1 = 3; no pre-output layer.
    kw = {"emb": 1, "hidden": 1, "dec_hidden": 1, "attention": 1, "vocab": 3, "lengths": flops.Lengths(2, 2)}
    assert flops.rnn_macs(**kw, wiring="luong") == 14 + 7 + 9 + 3 + 3
    assert flops.rnn_macs(**kw, wiring="luong", input_feeding=False) == 14 + 7 + 6 + 3 + 3


def test_training_flops_are_six_times_forward_macs_and_scale_with_source_ratio():
    cfg = {"backend": "transformer", "emb_size": 2, "ff_size": 4, "enc_layers": 1, "dec_layers": 1}
    assert flops.training_flops_per_token(cfg, vocab=5, lengths=flops.Lengths(3, 3)) == 6 * 126
    rnn = {"backend": "rnn", "emb_size": 8, "hidden_size": 8, "dec_hidden_size": 16, "attention_size": None}
    short = flops.training_flops_per_token(rnn, vocab=50, lengths=flops.Lengths(5, 10))
    long = flops.training_flops_per_token(rnn, vocab=50, lengths=flops.Lengths(20, 10))
    assert long > short  # more source per target token costs more per target token


# --- statistics, ratios, targets ---------------------------------------------------------------


def test_steady_rate_is_the_median_after_warmup():
    assert common.steady_rate([1.0, 100.0, 10.0, 30.0, 20.0], skip=1) == 25.0
    assert common.steady_rate([7.0], skip=3) == 7.0  # too few windows: the last one
    assert common.steady_rate([], skip=0) is None


def test_seq2attn_train_rates_leave_out_the_window_after_a_validation():
    rows = [{"kind": "train", "step": s, "tokens_per_s": float(s)} for s in (10, 20, 30)]
    rows.insert(2, {"kind": "valid", "step": 20, "bleu": 1.0})
    assert seq2attn_side.train_rates(rows, first=0, last=30) == [10.0, 20.0]
    assert seq2attn_side.train_rates(rows, first=10, last=20) == [20.0]
    assert seq2attn_side.dev_bleu_at(rows, 20) == 1.0 and seq2attn_side.dev_bleu_at(rows, 30) is None


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


# --- child processes: per-child peak RSS, SIGINT on a condition ---------------------------------


def test_peak_rss_belongs_to_each_child_not_to_the_largest_so_far(tmp_path):
    big = common.run_child([sys.executable, "-c", "b = b'x' * (200 * 2**20)"], log=tmp_path / "big.log")
    small = common.run_child([sys.executable, "-c", "pass"], log=tmp_path / "small.log")
    assert big.returncode == 0 and small.returncode == 0
    assert big.peak_rss_bytes >= 200 * 2**20
    assert small.peak_rss_bytes < 100 * 2**20  # not the largest so far, not the harness's own size
    failing = common.run_child([sys.executable, "-c", "import sys; sys.exit(3)"], log=tmp_path / "f.log")
    assert failing.returncode == 3


def test_stop_after_sends_sigint_and_the_child_can_clean_up(tmp_path):
    code = "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(30)\nexcept KeyboardInterrupt:\n    print('saved')\n"
    log = tmp_path / "c.log"
    ready = lambda: log.is_file() and "ready" in log.read_text()
    child = common.run_child([sys.executable, "-c", code], log=log, stop_after=ready)
    assert child.returncode == 0 and child.wall_s < 10
    assert "saved" in child.log.read_text()


# --- JoeyNMT: log parsing, shims, configs (no JoeyNMT needed) ----------------------------------

JOEY_LOG = """\
2026-11-21 16:17:42,966 - INFO - joeynmt.model - Total params: 6118912
2026-11-21 16:17:48,009 - INFO - joeynmt.training - EPOCH 1
2026-11-21 16:19:22,292 - INFO - joeynmt.training - Epoch   1, Step:        5, Batch Loss:   122.717232, \
Batch Acc: 0.076389, Tokens per Sec:       20, Lr: 0.001000
2026-11-21 16:19:52,292 - INFO - joeynmt.training - Epoch   1, Step:       10, Batch Loss:   100.1, \
Batch Acc: 0.08, Tokens per Sec:      815, Lr: 0.001000
2026-11-21 16:20:02,292 - INFO - joeynmt.training - Interrupt at epoch 1, step 13.
2026-11-21 16:20:52,292 - INFO - joeynmt.prediction - Generation took 12.3456[sec].
"""


def test_joeynmt_log_parsing(tmp_path):
    (tmp_path / "train.log").write_text(JOEY_LOG)
    assert peer_joeynmt.params(tmp_path) == 6118912
    assert peer_joeynmt.train_rates(tmp_path, first=0, last=10) == [20.0, 815.0]
    assert peer_joeynmt.train_rates(tmp_path, first=5, last=10) == [815.0]
    assert peer_joeynmt.last_step(tmp_path) == 13  # interrupted after the last log line
    assert peer_joeynmt.generation_seconds(tmp_path / "train.log") == 12.3456


def test_real_target_tokens_per_step_and_validation_time_on_both_sides(tmp_path):
    stamp = "2026-11-21 16:{}:00,000 - INFO - joeynmt.training - Epoch   1, Step: {:8d}, Batch Loss: 1.0, " \
            "Batch Acc: 0.1, Tokens per Sec: {:8.0f}, Lr: 0.001000\n"
    (tmp_path / "train.log").write_text(
        stamp.format(20, 10, 500) + stamp.format(21, 20, 1000)  # 1,000 tok/s x 60 s / 10 steps = 6,000
        + "2026-11-21 16:21:29,000 - INFO - joeynmt.prediction - Generation took 20.2500[sec].\n"
        + "2026-11-21 16:21:30,000 - INFO - joeynmt.prediction - Evaluation result (greedy): bleu:  12.30, "
          "loss:  40.00, ppl:   5.00, acc:   0.40, 5.2500[sec]\n"
        + stamp.format(23, 30, 1000)  # its window ran through the validation: left out
        + stamp.format(24, 40, 800)  # 800 x 60 / 10 = 4,800
        + stamp.format(25, 50, 900))  # 900 x 60 / 10 = 5,400
    assert peer_joeynmt.target_tokens_per_step(tmp_path) == 5400.0  # median of 6,000, 4,800, 5,400
    assert peer_joeynmt.validation_seconds(tmp_path) == (1, 25.5)  # decoding the dev set + scoring it
    rows = [{"kind": "train", "step": 10, "target_tokens": 30000}, {"kind": "valid", "step": 10, "valid_seconds": 4.3},
            {"kind": "train", "step": 20, "target_tokens": 31000}, {"kind": "train", "step": 25, "target_tokens": 14000},
            {"kind": "valid", "step": 25, "valid_seconds": 5.0}]
    assert seq2attn_side.target_tokens_per_step(rows) == 3000.0  # 3,000, 3,100 and 2,800 per step
    assert seq2attn_side.validation_seconds(rows) == (2, 9.3)
    assert seq2attn_side.target_tokens_per_step([{"kind": "train", "step": 10}]) is None


def test_joeynmt_decodes_its_best_checkpoint(tmp_path):
    (tmp_path / "400.ckpt").write_bytes(b"x")
    (tmp_path / "latest.ckpt").symlink_to("400.ckpt")
    assert peer_joeynmt.decoding_checkpoint(tmp_path) == tmp_path / "latest.ckpt"  # no validation yet
    (tmp_path / "200.ckpt").write_bytes(b"x")
    (tmp_path / "best.ckpt").symlink_to("200.ckpt")
    assert peer_joeynmt.decoding_checkpoint(tmp_path) == tmp_path / "best.ckpt"


def test_shims_patch_once_and_refuse_unknown_code(tmp_path):
    (tmp_path / "builders.py").write_text('        kwargs = {\n            "verbose": False,\n        }\n')
    (tmp_path / "tokenizers.py").write_text("    def set_vocab(self, vocab):\n        self.spm.SetVocabulary(vocab._itos)\n")
    peer_joeynmt.apply_shims(tmp_path)
    peer_joeynmt.apply_shims(tmp_path)  # idempotent
    assert "verbose" not in (tmp_path / "builders.py").read_text()
    assert (tmp_path / "tokenizers.py").read_text().count("hasattr(self.spm, 'SetVocabulary')") == 1
    (tmp_path / "tokenizers.py").write_text("something else\n")
    with pytest.raises(RuntimeError, match="SetVocabulary"):
        peer_joeynmt.apply_shims(tmp_path)


@pytest.mark.parametrize("model", ["rnn", "transformer"])
def test_joeynmt_config_names_only_the_asked_splits(tmp_path, model):
    import yaml

    data = {s: tmp_path / s for s in ("train", "dev", "test")}
    plan = peer_joeynmt.JoeyPlan(model, tmp_path / "m", data, "de", "en", tmp_path / "s.model", tmp_path / "v.txt",
                                 validate_every=300, max_steps=None, batch_tokens=4096, log_every=10,
                                 normalization="tokens")
    cfg = yaml.safe_load(peer_joeynmt.write_config(plan, tmp_path / "c.yaml", splits=("test",), beam=5,
                                                   ckpt=tmp_path / "x.ckpt").read_text())
    assert "train" not in cfg["data"] and "dev" not in cfg["data"] and cfg["data"]["test"] == str(data["test"])
    assert cfg["data"]["src"]["voc_file"] == cfg["data"]["trg"]["voc_file"] == str(tmp_path / "v.txt")
    assert cfg["testing"]["beam_size"] == 5 and cfg["testing"]["load_model"] == str(tmp_path / "x.ckpt")
    assert cfg["training"]["learning_rate_min"] < 1e-4  # JoeyNMT's default would stop warm-up runs
    assert cfg["training"]["batch_size"] == 4096 and cfg["training"]["validation_freq"] == 300
    assert cfg["training"]["normalization"] == "tokens" and cfg["testing"]["max_output_length"] == -1
    plan.max_output_length = 100
    cfg = yaml.safe_load(peer_joeynmt.write_config(plan, tmp_path / "c.yaml", splits=("test",)).read_text())
    assert cfg["testing"]["max_output_length"] == 100
    # a training config keeps JoeyNMT's own rule for its validations, as seq2attn keeps its own
    cfg = yaml.safe_load(peer_joeynmt.write_config(plan, tmp_path / "t.yaml").read_text())
    assert cfg["testing"]["max_output_length"] == -1
    assert "updates" not in cfg["training"]  # no step limit: a budget run is stopped by SIGINT
    plan.max_steps = 170  # JoeyNMT 2.3.0 reads `updates` and ignores `max_updates` (a repeat ran on past its window)
    cfg = yaml.safe_load(peer_joeynmt.write_config(plan, tmp_path / "t.yaml").read_text())
    assert cfg["training"]["updates"] == 170 and "max_updates" not in cfg["training"]


def test_both_toolkits_get_the_same_allocator_setting():
    assert common.malloc_env("kept", side="seq2attn") == {}  # seq2attn calls mallopt itself
    assert common.malloc_env("kept", side="joeynmt") == {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
    assert common.malloc_env("system", side="seq2attn") == {"SEQ2ATTN_MALLOC": "system"}
    assert common.malloc_env("system", side="joeynmt") == {}
    # the threshold seq2attn gives mallopt is the one JoeyNMT gets
    import inspect

    from seq2attn.nn import runtime
    assert "mallopt(_M_TRIM_THRESHOLD, 1 << 30)" in inspect.getsource(runtime.keep_freed_memory)


# --- the --quick path, seq2attn only, on a tiny generated stand-in for Multi30k ----------------


def fake_multi30k(root: Path) -> Path:
    d = root / "multi30k"
    d.mkdir(parents=True)
    data = generate("reverse", 260, seed=5)
    parts = {"train": slice(0, 200), "val": slice(200, 230), "test_2016_flickr": slice(230, 260)}
    for name, part in parts.items():
        for lang, lines in (("de", data.src[part]), ("en", data.tgt[part])):
            with gzip.open(d / f"{name}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("".join(x + "\n" for x in lines))
    return root


def test_missing_data_or_unknown_model_is_one_line_and_exit_2(tmp_path, capsys):
    from benchmarks.run import main

    assert main(["--data-dir", str(tmp_path), "--no-peer", "--work", str(tmp_path / "w")]) == 2
    assert "no multi30k/train.de.gz" in capsys.readouterr().err
    assert main(["--models", "lstm", "--no-peer"]) == 2
    assert "choose from: rnn, rnn-luong, transformer" in capsys.readouterr().err
    assert main(["--no-peer", "--peer-only"]) == 2
    assert "leave nothing to run" in capsys.readouterr().err
    assert main(["--quick", "--bf16-steps", "30", "--validate-every", "20", "--no-peer"]) == 2
    assert "--validate-every 20; must be >= 1 and divide --bf16-steps 30" in capsys.readouterr().err


def test_decode_only_peer_only_needs_no_seq2attn_model(tmp_path):
    """--decode-only --peer-only asks an earlier run for JoeyNMT's models only."""
    from benchmarks.run import earlier_inputs

    (tmp_path / "data").mkdir()
    for name in ("test.de", "one.de"):
        (tmp_path / "data" / name).write_text("x\n")
    (tmp_path / "joeynmt-rnn").mkdir()
    data, one = earlier_inputs(tmp_path, ["rnn", "rnn-luong"], ours=False, peer=True)
    assert one == tmp_path / "data" / "one" and data["test"] == tmp_path / "data" / "test"
    with pytest.raises(FileNotFoundError, match="seq2attn-rnn"):
        earlier_inputs(tmp_path, ["rnn"], ours=True, peer=True)


def test_joeynmt_throughput_repeat_validates_after_the_window_at_a_logging_multiple():
    """JoeyNMT refuses a validation_freq that logging_freq does not divide (found by a --quick run)."""
    from benchmarks.sides import no_validation_within

    for steps, log_every in ((170, 10), (25, 5), (8, 2), (7, 1), (20, 10)):
        every = no_validation_within(steps, log_every)
        assert every > steps and every % log_every == 0 and every - log_every <= steps


def test_joeynmt_token_batches_pad_to_the_longest_random_pair():
    """JoeyNMT 2.3.0's TokenBatchSampler: a batch closes once longest(max(src, trg) + 1) x rows reaches the budget."""
    # widths (max + 1) 10, 4, 4 at a budget of 16: the wide pair closes a batch at 2 rows (10 x 2 >= 16),
    # so the batches are [2 rows, 1 row] (mean 8 + 4 / 2 = 6 target tokens) unless it comes last and
    # closes one batch of all three (12). Counting real tokens instead (10 + 4 + 4) would give 12 always.
    src, trg = np.array([9, 3, 3]), np.array([3, 3, 3])
    for seed in range(6):
        wide_last = np.random.default_rng(seed).permutation(3)[-1] == 0
        assert peer_joeynmt.token_batch_targets(src, trg, 16, seed=seed) == (12.0 if wide_last else 6.0)
    assert peer_joeynmt.token_batch_targets(src, trg, 1) == 4.0  # every pair alone
    assert peer_joeynmt.token_batch_targets(np.array([3, 0, 200]), np.array([3, 5, 3]), 1) == 4.0  # filtered out


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


def test_both_rnn_rows_share_one_joeynmt_run():
    """JoeyNMT's RNN is Luong-wired: the Bahdanau and the matched Luong seq2attn rows both face it,
    and it is trained and decoded once per harness run."""
    from types import SimpleNamespace

    from benchmarks.run import PEER, _peer_once

    setup, calls = SimpleNamespace(cache={}), []

    def measure():
        calls.append(1)
        return {"train": {"tokens_per_s": 800.0}}

    first = _peer_once("rnn", setup, measure)
    second = _peer_once("rnn-luong", setup, measure)
    assert PEER["rnn-luong"] == "rnn" and len(calls) == 1
    assert first == {"train": {"tokens_per_s": 800.0}} and second == {**first, "same_run_as": "rnn"}
    _peer_once("transformer", setup, measure)
    assert len(calls) == 2


def test_luong_row_config_matches_joeynmt_size():
    from benchmarks import seq2attn_side as s2a
    from seq2attn.config import resolve_config
    from seq2attn.nn.models import build_model, count_parameters

    assert s2a.unavailable("rnn-luong") is None
    cfg = resolve_config(file=s2a.config_path("rnn-luong"))
    assert (cfg.model.decoder, cfg.model.input_feeding, cfg.model.attention) == ("luong", True, "additive")
    params = count_parameters(build_model(cfg.model, src_vocab=8000, tgt_vocab=8000, joint=True))
    # JoeyNMT 2.3.0's RNN with joeynmt-rnn.yaml has 12,262,912 (the 2026-11-21 run's JSON); the
    # difference is our output bias (8,000) less its attentional-layer bias (512)
    assert params - 12_262_912 == 8000 - 512


def test_repeats_are_combined_as_medians_and_shown_with_their_range():
    from benchmarks.sides import add_throughput_repeat, combine_repeats

    runs = [{"sent_per_s": v, "words_per_s": 10 * v, "peak_rss_gib": rss, "bleu": 30.0}
            for v, rss in ((100.0, 0.5), (90.0, 0.6), (120.0, 0.4))]
    fig = combine_repeats(runs)
    assert fig["sent_per_s"] == 100.0 and fig["sent_per_s_runs"] == [100.0, 90.0, 120.0]
    assert fig["words_per_s"] == 1000.0 and fig["peak_rss_gib"] == 0.6 and fig["repeats"] == 3
    assert combine_repeats([{"error": "x"}]) == {"error": "x"}
    one_failed = combine_repeats([{"error": "x"}, *runs[1:]])
    assert one_failed["sent_per_s_runs"] == [90.0, 120.0] and one_failed["failed_repeats"] == 1
    side = {"train": {"tokens_per_s": 2000.0, "tokens_per_s_runs": [2000.0], "flops_per_token": 5e7}}
    add_throughput_repeat(side, 2400.0, peak=100.0)
    add_throughput_repeat(side, 2100.0, peak=100.0)
    add_throughput_repeat(side, None, peak=100.0)  # a failed repeat is left out
    assert side["train"]["tokens_per_s"] == 2100.0 and side["train"]["tokens_per_s_runs"] == [2000.0, 2400.0, 2100.0]
    assert side["train"]["peak_fraction"] == round(2100 * 5e7 / 100e9, 3)
    assert report._cell({"decode": {"greedy": fig}}, ("decode", "greedy", "sent_per_s")) == "100.0 (90.0-120.0)"


def test_bench_model_interleaves_the_sides_and_shares_the_peer(monkeypatch):
    """The order of the measured runs, with both toolkits replaced by stand-ins."""
    from types import SimpleNamespace

    from benchmarks import run

    calls = []

    def train(side):
        def f(model, *rest):
            calls.append((side, "train", model))
            rate = 1000.0 if side == "s" else 400.0
            return {"train": {"tokens_per_s": rate, "tokens_per_s_runs": [rate]}}
        return f

    def throughput(side):
        def f(model, *rest):
            calls.append((side, "throughput", model, rest[-1]))
            return 1100.0 if side == "s" else 380.0
        return f

    def once(side):
        def f(model, *rest):
            name, repeat = rest[-4], rest[-1]
            calls.append((side, name, model, repeat))
            return {"sent_per_s": 10.0 * repeat, "words_per_s": 100.0, "peak_rss_gib": 0.5, "bleu": 1.0}
        return f

    monkeypatch.setattr(run.s2a, "unavailable", lambda model: None)
    monkeypatch.setattr(run, "train_seq2attn", train("s"))
    monkeypatch.setattr(run, "train_joey", train("j"))
    monkeypatch.setattr(run, "throughput_seq2attn", throughput("s"))
    monkeypatch.setattr(run, "throughput_joey", throughput("j"))
    monkeypatch.setattr(run, "startup_seq2attn", lambda *a: "start")
    monkeypatch.setattr(run, "startup_joey", lambda *a: "start")
    monkeypatch.setattr(run, "decode_once_seq2attn", once("s"))
    monkeypatch.setattr(run, "decode_once_joey", once("j"))
    setup = SimpleNamespace(cache={}, args=SimpleNamespace(repeats=3, beam=5, peer_only=False), peak={"fp32": None})
    entry = run.bench_model("rnn", setup, py=Path("python"))
    assert calls[:6] == [("s", "train", "rnn"), ("j", "train", "rnn"), ("s", "throughput", "rnn", 2),
                         ("j", "throughput", "rnn", 2), ("s", "throughput", "rnn", 3), ("j", "throughput", "rnn", 3)]
    assert calls[6:12] == [(side, "greedy", "rnn", r) for r in (1, 2, 3) for side in ("s", "j")]
    assert calls[12:] == [(side, "beam5", "rnn", r) for r in (1, 2, 3) for side in ("s", "j")]
    ours, peer = entry["seq2attn"], entry["joeynmt"]
    assert ours["train"]["tokens_per_s_runs"] == [1000.0, 1100.0, 1100.0] and ours["train"]["tokens_per_s"] == 1100.0
    assert peer["train"]["tokens_per_s"] == 380.0 and peer["decode"]["beam5"]["sent_per_s"] == 20.0
    assert entry["ratios"]["train_tokens_per_s_fp32"] == round(1100 / 380, 2)
    # the Luong row faces the same JoeyNMT run: nothing of JoeyNMT runs again
    calls.clear()
    luong = run.bench_model("rnn-luong", setup, py=Path("python"))
    assert all(c[0] == "s" for c in calls) and luong["joeynmt"]["same_run_as"] == "rnn"
    assert luong["joeynmt"]["decode"] == peer["decode"]
    # --peer-only: JoeyNMT alone, seq2attn's side says why it is empty
    calls.clear()
    setup = SimpleNamespace(cache={}, args=SimpleNamespace(repeats=2, beam=5, peer_only=True), peak={"fp32": None})
    entry = run.bench_model("transformer", setup, py=Path("python"))
    assert entry["seq2attn"] == {"unavailable": "not run (--peer-only)"} and all(c[0] == "j" for c in calls)
    assert entry["joeynmt"]["decode"]["beam5"]["sent_per_s"] == 15.0


@pytest.mark.slow
def test_quick_run_without_peer_writes_every_figure(tmp_path):
    from benchmarks.run import main

    out = tmp_path / "results.json"
    tiny = ["model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16"]
    argv = ["--data-dir", str(fake_multi30k(tmp_path / "data")), "--quick", "--no-peer", "--models", "rnn",
            "--threads", "1", "--budget-min", "5", "--max-steps", "8", "--bf16-steps", "8", "--validate-every", "8",
            "--bf16", "on", "--warmup-steps", "2",
            "--measure-steps", "6", "--vocab-size", "40", "--batch-tokens", "300", "--work", str(tmp_path / "work"),
            "--out", str(out), "--repeats", "2", *[x for s in tiny for x in ("--seq2attn-set", s)]]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "date"} <= set(res["machine"])
    assert res["matmul_peak_gflops"]["fp32"] > 0 and res["matmul_peak_gflops"]["bf16"] > 0
    ours = res["models"]["rnn"]["seq2attn"]
    assert ours["params"] > 0 and ours["flops_per_target_token"] > 0
    assert ours["train"]["tokens_per_s"] > 0 and 0 < ours["train"]["peak_fraction"]
    assert ours["train"]["peak_rss_gib"] > 0 and ours["budget"]["steps"] == 8
    assert ours["budget"]["target_tokens_per_step"] > 0 and ours["budget"]["validations"] == 1
    assert ours["bf16"]["tokens_per_s"] > 0 and 0 <= ours["bf16"]["dev_bleu"] <= 100
    assert 0 <= ours["bf16"]["fp32_dev_bleu"] <= 100  # the fp32 run validated at the same step
    assert len(ours["train"]["tokens_per_s_runs"]) == 2  # the budget run's window, then the window alone
    greedy = ours["decode"]["greedy"]
    assert greedy["sentences"] == 30 and greedy["sent_per_s"] > 0 and greedy["peak_rss_gib"] > 0
    assert greedy["repeats"] == 2 and len(greedy["sent_per_s_runs"]) == 2 and res["settings"]["repeats"] == 2
    assert 0 <= greedy["bleu"] <= 100
    assert "joeynmt" not in res["models"]["rnn"]
    names = [t["name"] for t in res["models"]["rnn"]["targets"]]
    assert "train fp32 fraction of matmul peak" in names and len(names) == 10

    # --decode-only: the same models decode again, decoding figures only
    (run_dir,) = (tmp_path / "work" / "runs").iterdir()
    again = tmp_path / "again.json"
    assert main(["--decode-only", str(run_dir), "--no-peer", "--models", "rnn", "--threads", "1",
                 "--out", str(again), "--work", str(tmp_path / "work")]) == 0
    redo = json.loads(again.read_text())["models"]["rnn"]["seq2attn"]
    assert set(redo) == {"decode"} and redo["decode"]["greedy"]["sentences"] == 30
    assert main(["--decode-only", str(tmp_path), "--no-peer", "--models", "rnn", "--out", str(again)]) == 2


def test_train_step_benchmark_row_and_table():
    from benchmarks import train_step

    row = train_step.one_row("rnn", "fp32", "fused", "system", threads=1, steps=1)
    assert row["tokens_per_s"] > 0 and row["peak_rss_mib"] > 0
    row["fp32_peak_fraction"] = 0.5
    text = train_step.table([row])
    assert text.count("\n") == 2 and "| rnn | fp32 | fused | system |" in text and "50%" in text


# --- decoding engines --------------------------------------------------------------------------
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


@pytest.mark.parametrize("models, minutes", [
    ("rnn,rnn-luong", 124),  # the full run's part 1 took 124 minutes (2026-12-01)
    ("transformer", 115),  # part 2: 115
    ("rnn,rnn-luong,transformer", 239),
])
def test_start_up_estimate_matches_the_measured_full_run(models, minutes):
    from benchmarks import run

    args = run.parse_args(["--models", models])
    assert run.expected_minutes(args, run.resolve_mode(args), models.split(",")) == minutes
    quick = run.parse_args(["--quick", "--models", models, "--no-peer"])
    assert run.expected_minutes(quick, run.resolve_mode(quick), models.split(",")) \
        == len(models.split(",")) * (1 + 2 + 2 * 1)  # 1-minute budgets, 2 extra repeats
