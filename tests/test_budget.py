"""The time-budgeted schedule (train.schedule: budget): warm-up, then decay to train.min_lr exactly
when the budget ends, measured in training time (validations excluded); the checkpoints it keeps
for averaging are spread over the budget's final part; an interrupted and resumed budgeted run is
the same run, bit for bit on CPU, whether the budget is in steps or in (injected) seconds."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from seq2attn.config import TrainConfig, resolve_config
from seq2attn.errors import ConfigError
from seq2attn.modeldir.checkpoint import read_manifest
from seq2attn.run.optim import BudgetSchedule, budget, build_scheduler
from seq2attn.run.reporter import Reporter
from seq2attn.run.train import Interrupted, build_trainer, run
from seq2attn.text.corpora import CORPORA


def test_linear_and_cosine_decay_reach_the_floor_at_the_end():
    # warm-up over 4 updates, ended at progress 0.2; then 1 -> 0.1 over progress 0.2 -> 1
    assert budget(0, 0.0, warmup=4, warm_end=None, floor=0.1) == pytest.approx(0.25)
    assert budget(3, 0.2, warmup=4, warm_end=0.2, floor=0.1) == pytest.approx(1.0)
    assert budget(9, 0.6, warmup=4, warm_end=0.2, floor=0.1) == pytest.approx(0.55)
    assert budget(19, 1.0, warmup=4, warm_end=0.2, floor=0.1) == pytest.approx(0.1)
    assert budget(9, 0.6, warmup=4, warm_end=0.2, floor=0.1, shape="cosine") == pytest.approx(0.55)
    assert budget(7, 0.4, warmup=4, warm_end=0.2, floor=0.0, shape="cosine") == pytest.approx(0.5 + 0.5 ** 1.5)
    # a warm-up longer than the budget: the decay (projected from progress 0.5) still ends at the floor
    assert budget(99, 1.0, warmup=1000, warm_end=None, floor=0.1) == pytest.approx(0.1)
    assert budget(79, 0.8, warmup=1000, warm_end=None, floor=0.0) == pytest.approx(0.08)


def test_step_budget_is_a_function_of_the_step():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    tc = TrainConfig(schedule="budget", lr=1.0, warmup_steps=4, max_steps=12, min_lr=0.1)
    sched = build_scheduler(opt, tc)
    assert isinstance(sched, BudgetSchedule)
    lrs = [sched.update(s, sched.progress(s, 0.0)) for s in range(12)]
    # warm-up ends at update 4 (progress 3/12), then linear to 0.1 at progress 1
    expected = [0.25, 0.5, 0.75] + [0.1 + 0.9 * (1 - (s / 12 - 0.25) / 0.75) for s in range(3, 12)]
    assert lrs == pytest.approx(expected)
    assert opt.param_groups[0]["lr"] == pytest.approx(lrs[-1])
    assert sched.update(12, sched.progress(12, 0.0)) == pytest.approx(0.1)
    assert sched.state_dict() == {"warm_end": 0.25}


def test_budget_needs_a_budget_and_a_span():
    with pytest.raises(ConfigError, match="budget needs train.max_minutes or train.max_steps"):
        resolve_config(sets=["train.schedule=budget"])
    with pytest.raises(ConfigError, match=r"train.average_span=0.0; must be in \(0, 1\]"):
        resolve_config(sets=["train.average_span=0"])


# --- the training loop under a budget ------------------------------------------------------------
BUDGET = ["train.schedule=budget", "train.lr=0.01", "train.warmup_steps=5", "train.min_lr=0.0001",
          "train.average_last=3", "train.average_span=0.5", "train.validate_every=7", "train.log_every=3",
          "train.batch_tokens=1500", "train.max_epochs=50", "train.curve=false", "model.emb_size=16",
          "model.hidden_size=16", "model.dec_hidden_size=16"]


def _cfg(reverse_files, *sets):
    return resolve_config(preset=CORPORA["reverse"].preset, sets=[*BUDGET, *sets], flags={
        "data": {"train": [str(p) for p in reverse_files["train"]], "dev": [str(p) for p in reverse_files["dev"]],
                 "dev_size": 20},
        "train": {"threads": 1, "attention_image": False}})


def seconds_until(step: int) -> float:
    """The injected clock: update k takes (63 + 2 k) / 128 seconds (a step time that changes; every
    sum of these is exact in binary, so the clock adds no rounding of its own)."""
    return 0.5 * step + step * step / 128


class _StopAt(Reporter):
    """Ctrl-C right after the log line of ``step``."""

    def __init__(self, step: int | None):
        self.at = step

    def step(self, row):
        if row["step"] == self.at:
            raise KeyboardInterrupt


def _run(cfg, out, *, resume=False, stop_at=None):
    """Train with the injected clock; every validation (and the averaging's scoring) takes 128 s
    of it, which a budget that counted validations would spend at once."""
    trainer = build_trainer(cfg, out, resume=resume, reporter=_StopAt(stop_at))
    validations = [0]
    validate = trainer.validate

    def counted(model=None):
        validations[0] += 1
        return validate(model)

    trainer.validate = counted
    trainer.clock = lambda: seconds_until(trainer.state.step) + 128.0 * validations[0]
    try:
        return run(trainer)
    finally:
        trainer.release()


def _rows(path, kind):
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "minutes", "valid_seconds", "seconds")}
            for r in rows if r["kind"] == kind]


@pytest.mark.parametrize("limit", ["train.max_steps=22", "train.max_minutes=0.24"])
def test_interrupted_and_resumed_budget_run_equals_straight(reverse_files, tmp_path, limit):
    # 0.24 minutes = 14.4 s of training: seconds_until(21) = 13.95, seconds_until(22) = 14.78, so both
    # limits end after update 22, and 4 validations (512 s of the clock) do not count
    cfg = _cfg(reverse_files, limit)
    state = _run(cfg, tmp_path / "straight")
    assert state.step == 22
    with pytest.raises(Interrupted):
        _run(cfg, tmp_path / "resumed", stop_at=12)
    assert read_manifest(tmp_path / "resumed")["weights"]["last"]["step"] == 12
    assert _run(cfg, tmp_path / "resumed", resume=True).step == 22
    for name in ("last.safetensors", "averaged.safetensors"):
        a, b = (load_file(tmp_path / d / name) for d in ("straight", "resumed"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    for kind in ("train", "snapshot", "valid", "averaged"):
        assert _rows(tmp_path / "straight", kind) == _rows(tmp_path / "resumed", kind), kind

    train_rows = _rows(tmp_path / "straight", "train")
    by_steps = limit.startswith("train.max_steps")
    progress = (lambda s: s / 22) if by_steps else (lambda s: seconds_until(s) / 14.4)
    warm_end = progress(4)  # update 5 ends the warm-up
    for r in train_rows:  # the learning rate of update k was set from the progress before it
        assert r["lr"] == pytest.approx(0.01 * budget(r["step"] - 1, progress(r["step"] - 1), warmup=5,
                                                      warm_end=warm_end, floor=0.01)), r["step"]
        assert r["budget_progress"] == pytest.approx(progress(r["step"]), abs=1e-4)
    assert train_rows[-1]["step"] == 21 and train_rows[-1]["lr"] < 0.002  # near the floor at the end
    # the 3 checkpoints averaged: 2 snapshots at the marks 2/3 and 5/6 of the budget (the first
    # update whose progress reaches each), and the final checkpoint; validations keep none
    marks = [15, 19] if by_steps else [16, 19]
    assert [r["step"] for r in _rows(tmp_path / "straight", "snapshot")] == marks
    assert [progress(s) >= m > progress(s - 1) for s, m in zip(marks, (2 / 3, 5 / 6))] == [True, True]
    assert _rows(tmp_path / "straight", "averaged")[0]["steps"] == [*marks, 22]


# --- the Multi30k presets ------------------------------------------------------------------------
def _multi30k(*sets, backend=None):
    from seq2attn.cli.main import _data_config

    return _data_config(corpus="multi30k", src="en", tgt="de", data_dir=None, train_files=None, dev_files=None,
                        config=None, sets=list(sets), seed=None, extra={"model": {"backend": backend}})


def test_multi30k_preset_follows_the_backend():
    t = _multi30k(backend="transformer")
    assert (t.model.backend, t.model.emb_size, t.model.enc_layers, t.model.dec_layers, t.model.ff_size,
            t.model.heads, t.model.dropout, t.model.tie_embeddings) == ("transformer", 128, 4, 4, 256, 4, 0.3, True)
    assert (t.train.schedule, t.train.lr, t.train.adam_betas, t.train.label_smoothing, t.train.average_last,
            t.train.tune_alpha) == ("budget", 0.005, (0.9, 0.98), 0.1, 10, True)
    assert (t.tokenizer.kind, t.tokenizer.vocab_size, t.tokenizer.joint, t.decode.beam_size) == ("bpe", 8000, True, 5)
    assert _multi30k("model.backend=transformer") == t  # --set chooses the backend as --backend does
    r = _multi30k()  # the default backend: the GRU + Bahdanau preset
    assert (r.model.backend, r.model.decoder, r.model.emb_size, r.model.dropout, r.train.schedule,
            r.train.label_smoothing) == ("rnn", "bahdanau", 256, 0.4, "budget", 0.1)
    # the user's own values win over the preset, and the budget is the user's
    mine = _multi30k("train.max_minutes=30", "model.dropout=0.2", backend="transformer")
    assert (mine.train.max_minutes, mine.model.dropout, mine.model.emb_size) == (30, 0.2, 128)


def test_preset_for_merges_key_by_key():
    info = CORPORA["multi30k"]
    merged = info.preset_for("transformer")
    assert merged["tokenizer"] == info.preset["tokenizer"] and merged["train"]["warmup_steps"] == 400
    assert info.preset_for(None) == info.preset and "model" not in info.preset


def test_train_backend_option_sets_the_backend(reverse_files, tmp_path):
    from typer.testing import CliRunner

    from seq2attn.cli.main import app
    from seq2attn.modeldir.checkpoint import load_config

    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    out = tmp_path / "m"
    result = CliRunner().invoke(app, [
        "train", "--out", str(out), "--train", str(src), str(tgt), "--dev", str(dsrc), str(dtgt),
        "--backend", "transformer", "--set", "model.emb_size=16", "--set", "model.ff_size=32",
        "--set", "model.enc_layers=1", "--set", "model.dec_layers=1", "--set", "train.max_steps=3",
        "--set", "train.schedule=budget", "--set", "train.warmup_steps=2", "--set", "train.attention_image=false",
        "--set", "train.curve=false", "--set", "data.dev_size=10"])
    assert result.exit_code == 0, result.output
    cfg = load_config(out)
    assert (cfg.model.backend, cfg.train.schedule) == ("transformer", "budget")
    bad = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "x"), "--backend", "lstm"])
    assert bad.exit_code == 2
