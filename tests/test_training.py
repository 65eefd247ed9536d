"""Training: a tiny GRU + Bahdanau model learns `reverse`; resume, repeatability, model directory."""

from __future__ import annotations

import json

import pytest

from seq2attn.config import resolve_config
from seq2attn.errors import CheckpointError
from seq2attn.inference.translate import translate
from seq2attn.modeldir.checkpoint import load
from seq2attn.run.train import train
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
