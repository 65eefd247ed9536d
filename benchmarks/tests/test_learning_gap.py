"""benchmarks/learning_gap.py (issue 27 item 1): the variants are valid changes of the benchmark's
configs, JoeyNMT's validation report is read right, the per-sentence conversion, and a seq2attn-only
smoke run on a generated stand-in for Multi30k (JoeyNMT itself never runs in CI)."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from benchmarks import learning_gap, peer_joeynmt
from benchmarks.seq2attn_side import config_path
from benchmarks.tests.test_run import fake_multi30k


def _plan(tmp_path, model, sets=()):
    data = {s: tmp_path / s for s in ("train", "dev", "test")}
    return peer_joeynmt.JoeyPlan(model, tmp_path / "m", data, "de", "en", tmp_path / "s.model", tmp_path / "v.txt",
                                 validate_every=50, max_steps=200, batch_tokens=9472, log_every=10, sets=tuple(sets))


def test_joeynmt_overrides_apply_last_and_refuse_a_misspelt_section(tmp_path):
    plan = _plan(tmp_path, "rnn", ["training.clip_grad_norm=null", "model.init_weight=0.0442",
                                   "training.normalization=tokens", "model.decoder.hidden_dropout=0"])
    cfg = yaml.safe_load(peer_joeynmt.write_config(plan, tmp_path / "c.yaml").read_text())
    assert cfg["training"]["clip_grad_norm"] is None  # JoeyNMT: no clipping
    assert cfg["model"]["init_weight"] == 0.0442 and cfg["model"]["decoder"]["hidden_dropout"] == 0
    assert cfg["training"]["normalization"] == "tokens"  # after the plan's own normalization
    assert cfg["random_seed"] == 1 and "random_seed" not in cfg["training"]  # where JoeyNMT 2.3.0 reads it
    for bad in ("modle.init_weight=1", "model.encoderr.dropout=0", "training.clip_grad_norm", "=1"):
        with pytest.raises(ValueError, match="JoeyNMT override"):
            peer_joeynmt.write_config(_plan(tmp_path, "rnn", [bad]), tmp_path / "bad.yaml")


@pytest.mark.parametrize("name", list(learning_gap.VARIANTS))
def test_every_variant_is_a_valid_change_of_its_config(tmp_path, name):
    from seq2attn.config import resolve_config

    v = learning_gap.VARIANTS[name]
    if v.side == "joeynmt":
        before = yaml.safe_load(peer_joeynmt.write_config(_plan(tmp_path, v.model), tmp_path / "a.yaml").read_text())
        after = yaml.safe_load(peer_joeynmt.write_config(_plan(tmp_path, v.model, v.sets), tmp_path / "b.yaml").read_text())
        assert (after != before) == bool(v.sets)  # a change is real, in sections JoeyNMT reads
    else:
        base = resolve_config(file=config_path(v.model))
        changed = resolve_config(file=config_path(v.model), sets=list(v.sets))
        assert (changed != base) == bool(v.sets)  # each --set is a key seq2attn knows, and changes it
    assert v.change


def test_joeynmt_validation_report_is_read_per_step(tmp_path):
    (tmp_path / "validations.txt").write_text(
        "Steps: 50\tloss: 98.12345\tppl: 1200.50000\tacc: 0.10000\tbleu: 0.04000\tLR: 0.00100000\t*\n"
        "Steps: 100\tloss: 81.00000\tppl: 350.25000\tacc: 0.20000\tbleu: 1.50000\tLR: 0.00100000\t\n")
    rows = peer_joeynmt.validations(tmp_path)
    assert [r["step"] for r in rows] == [50, 100]
    assert rows[1]["ppl"] == 350.25 and rows[1]["bleu"] == 1.5 and rows[0]["lr"] == 0.001
    assert peer_joeynmt.validations(tmp_path / "none") == []


def test_the_table_compares_nats_per_sentence(tmp_path):
    res = {"variants": {"a": {"change": "x", "curve": [{"step": 50, "nats_per_sentence": 60.25, "bleu": 2.0}]},
                        "b": {"error": "boom"}}}
    table = learning_gap.render([res])
    assert "60.2 (2.0)" in table and "b | FAILED" in table and "step 50" in table


def test_bad_variant_or_interval_is_one_line_and_exit_2(tmp_path, capsys):
    assert learning_gap.main(["--variants", "joey-lstm", "--work", str(tmp_path)]) == 2
    assert "choose from:" in capsys.readouterr().err
    assert learning_gap.main(["--validate-every", "25", "--work", str(tmp_path)]) == 2
    assert "multiple of 10" in capsys.readouterr().err


@pytest.mark.slow
def test_seq2attn_variants_run_and_give_a_curve_per_sentence(tmp_path):
    out = tmp_path / "gap.json"
    tiny = ["model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16"]
    argv = ["--data-dir", str(fake_multi30k(tmp_path / "data")), "--variants", "s2a-rnn,s2a-rnn-seed2",
            "--steps", "20", "--validate-every", "10", "--vocab-size", "40", "--batch-tokens", "300",
            "--work", str(tmp_path / "work"), "--out", str(out), *[x for s in tiny for x in ("--seq2attn-set", s)]]
    assert learning_gap.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["dev_sentences"] == 30
    for name in ("s2a-rnn", "s2a-rnn-seed2"):
        v = res["variants"][name]
        assert [r["step"] for r in v["curve"]] == [10, 20] and v["dev_target_pieces"] > 30
        r = v["curve"][-1]
        assert math.isclose(r["nats_per_sentence"], r["loss_per_piece"] * v["dev_target_pieces"] / 30, abs_tol=1e-3)
    assert res["variants"]["s2a-rnn"]["curve"] != res["variants"]["s2a-rnn-seed2"]["curve"]  # the seed is honoured
