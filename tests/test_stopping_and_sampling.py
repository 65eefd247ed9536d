"""Behaviour that had no test: early stopping and plateau decay, the max_epochs and max_minutes
limits, the score of forced decoding, nucleus sampling and temperature, `align --head`."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from typer.testing import CliRunner

from seq2attn.cli.main import app
from seq2attn.config import resolve_config
from seq2attn.modeldir.checkpoint import load
from seq2attn.nn.batches import make_batches
from seq2attn.nn.search import _sampler, force_decode, greedy
from seq2attn.run.reporter import Reporter
from seq2attn.run.train import build_trainer, run
from seq2attn.special import EOS_ID
from seq2attn.text.corpora import CORPORA


def _cfg(reverse_files, sets=(), **train):
    return resolve_config(preset=CORPORA["reverse"].preset,
                          sets=["model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16",
                                "train.attention_image=false", "train.curve=false", *sets],
                          flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                                          "dev": [str(p) for p in reverse_files["dev"]]},
                                 "train": train})


def _scripted(trainer, bleus):
    """Replace dev evaluation by a fixed series of BLEU scores (the loop's bookkeeping is under test)."""
    series = iter(bleus)

    def validate():
        return {"loss": 1.0, "ppl": 2.7, "bleu": next(series), "chrf": 0.0, "exact": 0.0, "example": "",
                "seconds": 0.0}

    trainer.validate = validate
    return trainer


def _valid_rows(out):
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "valid"]


# --- early stopping and plateau decay -------------------------------------------------------------
def test_early_stopping_after_patience_validations_without_gain(tmp_path, reverse_files):
    cfg = _cfg(reverse_files, max_steps=200, validate_every=2, patience=3, lr_decay=None)
    trainer = _scripted(build_trainer(cfg, tmp_path / "m", resume=False, reporter=Reporter()),
                        [5.0, 7.0, 7.0, 6.0, 1.0, 99.0])
    state = run(trainer)
    # gain at validations 1 and 2, then three without: stop at the fifth, step 10, never reaching 99
    assert state.step == 10 and state.best_bleu == 7.0 and state.bad_validations == 3
    assert [r["best"] for r in _valid_rows(tmp_path / "m")] == [True, True, False, False, False]
    assert load(tmp_path / "m").model is not None


def test_plateau_decay_halves_the_learning_rate(tmp_path, reverse_files):
    cfg = _cfg(reverse_files, max_steps=12, validate_every=2, patience=None, lr=1e-3, lr_decay=0.5,
               lr_patience=1, min_lr=1e-5)
    trainer = _scripted(build_trainer(cfg, tmp_path / "m", resume=False, reporter=Reporter()),
                        [5.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    lrs = []
    trainer.after_validation = _recording(trainer.after_validation, trainer, lrs)
    run(trainer)
    # ReduceLROnPlateau(patience=1): the second validation without gain halves, then every second one
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])


def _recording(after_validation, trainer, lrs):
    def wrapped(result):
        stop = after_validation(result)
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        return stop

    return wrapped


# --- limits ------------------------------------------------------------------------------------
def test_max_epochs_stops_at_the_end_of_an_epoch(tmp_path, reverse_files):
    cfg = _cfg(reverse_files, max_epochs=2, validate_every=10**6, batch_tokens=8000)
    trainer = build_trainer(cfg, tmp_path / "m", resume=False, reporter=Reporter())
    per_epoch = [len(trainer.plan(epoch)) for epoch in (0, 1)]  # one step per batch (no accumulation)
    state = run(trainer)
    assert state.epoch == 2 and state.step == sum(per_epoch) and min(per_epoch) > 1
    assert [r["step"] for r in _valid_rows(tmp_path / "m")] == [state.step]  # the final validation


def test_max_minutes_stops_on_the_wall_clock(tmp_path, reverse_files, monkeypatch):
    import seq2attn.run.train as train_module

    cfg = _cfg(reverse_files, max_minutes=0.5, max_steps=10**6, validate_every=10**6)
    trainer = build_trainer(cfg, tmp_path / "m", resume=False, reporter=Reporter())
    clock = iter(range(0, 10**6, 3))  # every reading of the clock moves it 3 seconds on
    monkeypatch.setattr(train_module.time, "monotonic", lambda: float(next(clock)))
    state = run(trainer)
    assert 0 < state.step < 10 and 0.5 <= state.minutes < 1.0


# --- forced decoding ---------------------------------------------------------------------------------
def test_forced_score_is_the_log_probability_of_the_target(tiny_model, reverse_files):
    loaded = load(tiny_model)
    src = loaded.codec.encode(reverse_files["dev"][0].read_text().splitlines()[:16], side="src")
    (batch,) = make_batches(src, None, batch_tokens=10**6)
    found = greedy(loaded.model, batch, max_len_a=1.5, max_len_b=5)
    forced = make_batches([src[i] for i in batch.indices], [h.ids for h in found], batch_tokens=10**6)
    (fbatch,) = forced
    scored = force_decode(loaded.model, fbatch)
    by_row = {batch.indices[i]: h for i, h in enumerate(found)}
    for j, hyp in zip(fbatch.indices, scored):
        expected = by_row[batch.indices[j]]
        assert hyp.ids == expected.ids
        if expected.ids and len(expected.ids) < 1.5 * len(src[batch.indices[j]]) + 5:  # greedy scored EOS too
            assert hyp.score == pytest.approx(expected.score, abs=1e-4)
        assert hyp.score < 0 and torch.allclose(hyp.attention.sum(-1), torch.ones(len(hyp.ids)), atol=1e-5)


def test_forced_score_of_a_step_by_step_walk(tiny_model):
    loaded = load(tiny_model)
    model = loaded.model
    src, tgt = loaded.codec.encode(["a b c d"], side="src")[0], loaded.codec.encode(["d c b a"], side="tgt")[0]
    (batch,) = make_batches([src], [tgt], batch_tokens=10**6)
    (hyp,) = force_decode(model, batch)
    with torch.no_grad():
        enc = model.encode(batch.src, batch.src_lengths)
        state, prev, total = model.init_state(enc), batch.tgt_in[:, 0], 0.0
        for tok in [*tgt, EOS_ID]:
            step = model.step(prev, state, enc)
            total += float(torch.log_softmax(step.logits.float(), -1)[0, tok])
            state, prev = step.state, torch.tensor([tok])
    assert hyp.ids == tgt and hyp.score == pytest.approx(total, abs=1e-4)


# --- sampling: nucleus and temperature, known answers ------------------------------------------------
PROBS = torch.tensor([0.6, 0.3, 0.1])


def _draws(n=20000, **kw):
    pick = _sampler(generator=torch.Generator().manual_seed(0), **{"top_k": None, "top_p": None,
                                                                   "temperature": 1.0, **kw})
    drawn = pick(PROBS.log().expand(n, 3))
    counts = Counter(drawn.tolist())
    return [counts[i] / n for i in range(3)]


@pytest.mark.parametrize("top_p, allowed", [(0.5, {0}), (0.6, {0}), (0.8, {0, 1}), (0.95, {0, 1, 2})])
def test_top_p_keeps_the_smallest_set_holding_the_mass(top_p, allowed):
    freq = _draws(top_p=top_p)
    assert {i for i, f in enumerate(freq) if f > 0} == allowed
    kept = PROBS[sorted(allowed)]
    assert freq[: len(allowed)] == pytest.approx((kept / kept.sum()).tolist(), abs=0.015)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_rescales_the_distribution(temperature):
    expected = torch.softmax(PROBS.log() / temperature, -1).tolist()
    assert _draws(temperature=temperature) == pytest.approx(expected, abs=0.015)


# --- align --head ------------------------------------------------------------------------------------
def test_align_head_picks_one_head_of_a_transformer(tmp_path, reverse_files):
    out = tmp_path / "t"
    cfg = _cfg(reverse_files, ["model.backend=transformer", "model.heads=2", "model.ff_size=32",
                               "model.enc_layers=1", "model.dec_layers=2"], max_steps=4, validate_every=4)
    run(build_trainer(cfg, out, resume=False, reporter=Reporter()))
    runner = CliRunner()

    def attention(*args):
        result = runner.invoke(app, ["align", "-m", str(out), "a b c", "--target", "c b a", "--format", "json",
                                     "--level", "subword", *args])
        assert result.exit_code == 0, result.output
        return torch.tensor(json.loads(result.stdout)["attention"])

    heads = [attention("--head", "0"), attention("--head", "1")]
    average = attention()
    assert not torch.allclose(heads[0], heads[1], atol=1e-3)  # two different heads
    assert torch.allclose((heads[0] + heads[1]) / 2, average, atol=2e-4)  # the default averages them
    assert not torch.allclose(attention("--layer", "0"), average, atol=1e-3)
    bad = runner.invoke(app, ["align", "-m", str(out), "a b", "--head", "2"])
    assert bad.exit_code == 1 and "head" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
