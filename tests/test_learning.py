"""Learned quality: each model family learns the built-in reverse task from scratch.

A step budget, not a clock: CPU training repeats exactly on one machine, whatever its load. Across
CPUs floating-point results differ (the Transformer scored 94.6 % on one machine where another gave
98 %), so each threshold sits well under what was measured, not on it. One thread each: these
models' ops are too small to gain from a second, and two OpenMP threads on a busy 2-core machine
ran many times slower."""

from __future__ import annotations

import pytest

from seq2attn.config import resolve_config
from seq2attn.inference.translate import translate
from seq2attn.modeldir.checkpoint import load
from seq2attn.run.train import train
from seq2attn.text.corpora import CORPORA, load_corpus
from seq2attn.text.metrics import exact_match

# name: (--set overrides over the reverse preset, steps, validate every, threshold)
CASES = {
    # 300 steps, about 40 s on 2 CPU cores; 90 % was the old threshold
    "gru-bahdanau": ([], 300, 100, 80.0),
    # lr 0.003 instead of the preset's 0.002: Luong reached 88 % exact match in 100 steps with it,
    # 74 % without (97 % at 150 steps)
    "gru-luong": (["model.decoder=luong", "train.lr=0.003"], 200, 100, 80.0),
    # d_model 64, 2 + 2 layers; no dropout (the task has no noise to overfit); noam warm-up to 3e-3.
    # Dev exact match 98 % at 700 steps on one CPU, 94.6 % on another; it first passes 90 % around
    # step 550 and dips between validations; the checkpoint kept (best dev BLEU) is what is tested
    "transformer": (["model.backend=transformer", "model.emb_size=64", "model.heads=4", "model.ff_size=256",
                     "model.enc_layers=2", "model.dec_layers=2", "model.dropout=0", "model.attention_dropout=0",
                     "train.schedule=noam", "train.warmup_steps=200", "train.lr=0.003", "train.batch_tokens=1024",
                     "data.dev_size=200", "train.attention_image=false"], 700, 50, 85.0),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_learns_reverse(name, tmp_path):
    sets, steps, every, threshold = CASES[name]
    cfg = resolve_config(preset=CORPORA["reverse"].preset, sets=sets, flags={
        "data": {"corpus": "reverse"}, "train": {"max_steps": steps, "validate_every": every, "threads": 1}})
    if name == "gru-luong":
        assert cfg.model.attention == "general" and cfg.model.input_feeding
    train(cfg, tmp_path / "m")
    loaded = load(tmp_path / "m")
    test = load_corpus("reverse").test
    hyps = [t.hyp for t in translate(loaded, test.src, decode=loaded.cfg.decode).translations]
    assert exact_match(hyps, test.tgt) >= threshold
