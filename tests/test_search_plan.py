"""benchmarks/search.py's step plan: which candidates share the pooled probe rate (issue 23)."""

import pytest

from benchmarks.search import cost_neutral, step_plan


def test_cost_neutral_settings_and_dropout_zero():
    assert cost_neutral(["train.seed=2", "model.dropout=0.5", "train.lr=0.001"])
    assert not cost_neutral(["model.emb_size=128"])  # a smaller model steps faster
    assert not cost_neutral(["model.dropout=0"])  # no dropout masks: faster steps


def test_step_plan_pools_cost_neutral_candidates_and_needs_a_probe_for_the_rest():
    speed = {"preset": {"steps_per_minute": 30.0, "sets": []},
             "dropout-0.5": {"steps_per_minute": 34.0, "sets": ["model.dropout=0.5"]},
             "emb-128": {"steps_per_minute": 40.0, "sets": ["model.emb_size=128"]}}
    cands = {"preset": [], "dropout-0.5": ["model.dropout=0.5"], "seed-2": ["train.seed=2"],
             "emb-128": ["model.emb_size=128"]}
    plan = step_plan(cands, speed, minutes=10)
    # the pool is the preset and dropout-0.5 (median 32/min); seed-2 was never probed and takes it
    assert plan["seed-2"] == {"steps": 320, "rate": 32.0, "pooled": True}
    assert plan["preset"]["steps"] == plan["dropout-0.5"]["steps"] == 320
    assert plan["emb-128"] == {"steps": 400, "rate": 40.0, "pooled": False}
    with pytest.raises(ValueError, match="bpe-6k"):
        step_plan({**cands, "bpe-6k": ["tokenizer.vocab_size=6000"]}, speed, minutes=10)
