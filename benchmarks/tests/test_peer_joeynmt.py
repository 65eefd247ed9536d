"""benchmarks/peer_joeynmt.py: JoeyNMT's log parsing, shims, configs, checkpoints and batch sampler
(no JoeyNMT needed)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import peer_joeynmt, seq2attn_side

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


def test_joeynmt_decodes_the_weights_the_rule_names(tmp_path):
    """--decode-weights: last (the default) decodes the weights saved on SIGINT at the end of the
    budget, as seq2attn decodes its last checkpoint; best its best by dev BLEU, if it validated."""
    (tmp_path / "400.ckpt").write_bytes(b"x")
    (tmp_path / "latest.ckpt").symlink_to("400.ckpt")
    assert peer_joeynmt.decoding_checkpoint(tmp_path, weights="best") == tmp_path / "latest.ckpt"  # no validation yet
    (tmp_path / "200.ckpt").write_bytes(b"x")
    (tmp_path / "best.ckpt").symlink_to("200.ckpt")
    assert peer_joeynmt.decoding_checkpoint(tmp_path, weights="best") == tmp_path / "best.ckpt"
    assert peer_joeynmt.decoding_checkpoint(tmp_path, weights="last").resolve().name == "400.ckpt"
    with pytest.raises(ValueError, match="choose last or best"):
        peer_joeynmt.decoding_checkpoint(tmp_path, weights="averaged")


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
