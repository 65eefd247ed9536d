"""The training loop (seq2attn.run.train): the model directory it writes, exact repeats and resume,
gradient accumulation, the epoch plan, early stopping and plateau decay, the step / epoch / minute
limits, Ctrl-C."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seq2attn.config import resolve_config
from seq2attn.errors import CheckpointError
from seq2attn.inference.translate import translate
from seq2attn.modeldir.checkpoint import load
from seq2attn.nn.batches import plan_epoch
from seq2attn.run.reporter import Reporter
from seq2attn.run.train import Trainer, build_trainer, run, train
from seq2attn.text.corpora import CORPORA


def test_model_directory_contents(tiny_model):
    names = {p.name for p in tiny_model.iterdir()}
    assert {"manifest.json", "config.yaml", "tokenizer.json", "model.safetensors", "last.safetensors",
            "trainer.pt", "metrics.jsonl"} <= names
    rows = [json.loads(line) for line in (tiny_model / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in rows if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [30, 60]
    assert {"loss", "ppl", "bleu", "chrf", "exact"} <= set(valid[0])
    assert not list(tiny_model.glob("*.tmp"))


def _tiny_cfg(reverse_files, **train):
    return resolve_config(preset=CORPORA["reverse"].preset, sets=["model.emb_size=16", "model.hidden_size=16",
                                                                   "model.dec_hidden_size=16"],
                          flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                                          "dev": [str(p) for p in reverse_files["dev"]]},
                                 "train": {"validate_every": 10, **train}})


def test_cpu_runs_repeat_exactly(tmp_path, reverse_files):
    cfg = _tiny_cfg(reverse_files, max_steps=20, log_every=5)
    for name in ("a", "b"):
        train(cfg, tmp_path / name)
    losses = [[r["loss"] for r in map(json.loads, (tmp_path / n / "metrics.jsonl").read_text().splitlines())
               if r["kind"] == "train"] for n in ("a", "b")]
    assert losses[0] == losses[1] and len(losses[0]) == 4


def test_resume_continues_from_last_checkpoint(tmp_path, reverse_files):
    out = tmp_path / "m"
    train(_tiny_cfg(reverse_files, max_steps=10), out)
    state = train(_tiny_cfg(reverse_files, max_steps=20), out, resume=True)
    assert state.step == 20
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "valid"]
    assert steps == [10, 20]


def test_a_directory_from_an_earlier_version_translates_but_is_not_resumed(tmp_path, reverse_files):
    out = tmp_path / "m"
    train(_tiny_cfg(reverse_files, max_steps=2), out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["trainer"]  # what seq2attn wrote before checkpoints became one unit
    (out / "manifest.json").write_text(json.dumps(manifest))
    loaded = load(out)
    assert len(translate(loaded, ["a b"], decode=loaded.cfg.decode).translations) == 1
    with pytest.raises(CheckpointError, match="earlier seq2attn"):
        train(_tiny_cfg(reverse_files, max_steps=4), out, resume=True)


def test_refuses_to_overwrite_a_model(tmp_path, reverse_files):
    train(_tiny_cfg(reverse_files, max_steps=2), tmp_path / "m")
    with pytest.raises(CheckpointError, match="already holds a model"):
        train(_tiny_cfg(reverse_files, max_steps=2), tmp_path / "m")


def test_resume_of_nothing_is_an_error(tmp_path, reverse_files):
    with pytest.raises(CheckpointError, match="no model to resume"):
        train(_tiny_cfg(reverse_files, max_steps=2), tmp_path / "none", resume=True)


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
    def wrapped(result, **options):
        stop = after_validation(result, **options)
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


def _exact_cfg(reverse_files, sets=(), **train_opts):
    return resolve_config(
        preset=CORPORA["reverse"].preset,
        sets=["model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16", *sets],
        flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                        "dev": [str(p) for p in reverse_files["dev"]], "dev_size": 20},
               "train": {"threads": 1, "attention_image": False, **train_opts}})


def test_epoch_plan_depends_on_seed_and_epoch_only():
    lengths = np.random.default_rng(0).integers(1, 60, size=5000).astype(np.int32)
    plan = plan_epoch(lengths, batch_tokens=600, seed=3, epoch=2)
    again = plan_epoch(lengths, batch_tokens=600, seed=3, epoch=2)
    other = plan_epoch(lengths, batch_tokens=600, seed=3, epoch=3)
    batches = [plan.batch(k) for k in range(len(plan))]
    assert all(np.array_equal(b, c) for b, c in zip(batches, (again.batch(k) for k in range(len(again)))))
    assert not all(np.array_equal(b, c) for b, c in zip(batches, (other.batch(k) for k in range(len(other)))))
    flat = np.sort(np.concatenate(batches))
    assert np.array_equal(flat, np.arange(len(lengths)))  # every pair once
    for b in batches:  # within budget, or a single sentence
        assert len(b) == 1 or len(b) * (lengths[b].max() + 1) <= 600


def test_accumulating_two_batches_equals_one_step_on_their_union(reverse_files, tmp_path):
    cfg = _exact_cfg(reverse_files, ["model.dropout=0", "train.clip_norm=null"], max_steps=1)
    trainer: Trainer = build_trainer(cfg, tmp_path / "m", resume=False, reporter=Reporter())
    trainer.model.double()
    plan = trainer.plan(0)
    first, second = plan.batch(0), plan.batch(1)
    both = np.concatenate([first, second])
    tokens = int(trainer.data.tgt_tokens[both].sum())
    start = copy.deepcopy(trainer.model.state_dict()), copy.deepcopy(trainer.optimizer.state_dict())

    trainer.train_step([trainer.data.batch(first), trainer.data.batch(second)], tokens)
    accumulated = copy.deepcopy(trainer.model.state_dict())
    trainer.model.load_state_dict(start[0])
    trainer.optimizer.load_state_dict(start[1])
    trainer.train_step([trainer.data.batch(both)], tokens)
    for name, value in trainer.model.state_dict().items():
        assert value.dtype == torch.float64
        torch.testing.assert_close(accumulated[name], value, rtol=0, atol=1e-9, msg=name)
    assert any(not torch.equal(accumulated[n], start[0][n]) for n in accumulated)  # it did learn


def _train_rows(path):
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return [(r["kind"], r["step"], r["epoch"], r["loss"]) for r in rows]


def test_interrupted_and_resumed_equals_straight(reverse_files, tmp_path):
    # ~8 optimizer steps per epoch: the interruption falls mid-epoch and the runs cross epochs
    opts = {"batch_tokens": 1500, "accum_steps": 2, "validate_every": 7, "log_every": 3, "max_epochs": 50}
    train(_exact_cfg(reverse_files, max_steps=21, **opts), tmp_path / "straight")
    train(_exact_cfg(reverse_files, max_steps=14, **opts), tmp_path / "resumed")
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as f:  # as a kill after step 14 leaves it
        f.write(json.dumps({"kind": "train", "step": 15, "epoch": 1, "loss": 9.9}) + "\n")
        f.write('{"kind": "train", "st')
    state = train(_exact_cfg(reverse_files, max_steps=21, **opts), tmp_path / "resumed", resume=True)
    assert state.step == 21 and state.epoch >= 2
    a, b = (load_file(tmp_path / d / "last.safetensors") for d in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _train_rows(tmp_path / "straight") == _train_rows(tmp_path / "resumed")


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_continues(tmp_path, reverse_files):
    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    out = tmp_path / "m"
    args = [sys.executable, "-m", "seq2attn", "train", "--out", str(out), "--train", str(src), str(tgt),
            "--dev", str(dsrc), str(dtgt), "--set", "tokenizer.kind=wordlevel", "--set", "model.emb_size=16",
            "--set", "model.hidden_size=16", "--set", "model.dec_hidden_size=16", "--set", "train.log_every=5",
            "--set", "train.validate_every=100000"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while not (metrics.exists() and metrics.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    assert (out / "last.safetensors").is_file() and (out / "trainer.pt").is_file()
    assert not list(out.glob(".*.tmp"))
    stopped = json.loads((out / "manifest.json").read_text())["weights"]["last"]["step"]
    assert stopped >= 5
    done = subprocess.run(args[:6] + ["--resume", "--set", f"train.max_steps={stopped + 5}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"resuming from step {stopped}" in done.stderr
    assert json.loads((out / "manifest.json").read_text())["weights"]["last"]["step"] == stopped + 5


@pytest.mark.parametrize(("amx", "expected"), [(True, "bf16"), (False, "fp32")])
def test_precision_auto_runs_bf16_only_on_a_cpu_with_amx_and_records_it(tmp_path, reverse_files, monkeypatch,
                                                                        amx, expected):
    import yaml

    from seq2attn.nn import runtime

    monkeypatch.setattr(runtime, "_cpu_has_amx", lambda: amx)
    messages = []
    reporter = Reporter()
    reporter.message = messages.append
    out = tmp_path / "m"
    train(_cfg(reverse_files, max_steps=4, validate_every=4, device="cpu", precision="auto"), out, reporter=reporter)
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["precision"] == expected
    assert f"train.precision=auto: {expected}" in "\n".join(messages)
    # a resume runs what the run recorded, on any machine
    monkeypatch.setattr(runtime, "_cpu_has_amx", lambda: not amx)
    trainer = build_trainer(_cfg(reverse_files, max_steps=8, validate_every=4, device="cpu"), out, resume=True,
                            reporter=Reporter())
    assert trainer.cfg.train.precision == trainer.loss_model.precision == expected
    assert run(trainer).step == 8


def test_resolve_precision_keeps_explicit_choices():
    from seq2attn.nn.runtime import resolve_precision

    for p in ("fp32", "bf16", "fp16"):
        assert resolve_precision(p, torch.device("cpu")) == (p, "")
