"""Gradient accumulation sums gradients exactly; the epoch plan is a function of the seed; a run
interrupted and resumed is the same run, bit for bit on CPU."""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
from safetensors.torch import load_file

from seq2attn.config import resolve_config
from seq2attn.nn.batches import plan_epoch
from seq2attn.run.reporter import Reporter
from seq2attn.run.train import Trainer, build_trainer, train
from seq2attn.text.corpora import CORPORA


def _cfg(reverse_files, sets=(), **train_opts):
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
    cfg = _cfg(reverse_files, ["model.dropout=0", "train.clip_norm=null"], max_steps=1)
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
    train(_cfg(reverse_files, max_steps=21, **opts), tmp_path / "straight")
    train(_cfg(reverse_files, max_steps=14, **opts), tmp_path / "resumed")
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as f:  # as a kill after step 14 leaves it
        f.write(json.dumps({"kind": "train", "step": 15, "epoch": 1, "loss": 9.9}) + "\n")
        f.write('{"kind": "train", "st')
    state = train(_cfg(reverse_files, max_steps=21, **opts), tmp_path / "resumed", resume=True)
    assert state.step == 21 and state.epoch >= 2
    a, b = (load_file(tmp_path / d / "last.safetensors") for d in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _train_rows(tmp_path / "straight") == _train_rows(tmp_path / "resumed")
