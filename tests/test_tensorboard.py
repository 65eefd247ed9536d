"""train.tensorboard: the training and validation scalars and the attention image in
MODEL/tensorboard/, read back with TensorBoard's own reader; a one-line error without the package."""

from __future__ import annotations

import sys

import pytest

from seq2attn.config import resolve_config
from seq2attn.errors import ConfigError
from seq2attn.run.metricslog import read_metrics
from seq2attn.run.train import train
from seq2attn.text.corpora import CORPORA

SETS = ["train.max_steps=40", "train.validate_every=20", "train.log_every=10", "model.emb_size=16",
        "model.hidden_size=16", "model.dec_hidden_size=16", "data.dev_size=20", "train.curve=false"]


def _cfg(reverse_files, *sets: str):
    flags = {"data": {"train": [str(p) for p in reverse_files["train"]], "dev": [str(p) for p in reverse_files["dev"]]}}
    return resolve_config(preset=CORPORA["reverse"].preset, sets=[*SETS, *sets], flags=flags)


def test_scalars_and_attention_image(tmp_path, reverse_files):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "m"
    train(_cfg(reverse_files, "train.tensorboard=true"), out)
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "train/tokens_per_s", "dev/loss", "dev/ppl", "dev/bleu", "dev/chrf",
            "dev/exact"} <= set(tags["scalars"])
    rows = read_metrics(out / "metrics.jsonl")
    train_rows = [r for r in rows if r["kind"] == "train"]
    valid_rows = [r for r in rows if r["kind"] == "valid"]
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [r["step"] for r in train_rows] == [10, 20, 30, 40]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in train_rows])  # the metrics.jsonl numbers
    assert [e.value for e in events.Scalars("dev/bleu")] == pytest.approx([r["bleu"] for r in valid_rows])
    images = events.Images("dev/attention")
    assert [e.step for e in images] == [20, 40] and images[0].width > 50 and images[0].height > 50


def test_off_by_default_and_resumed_runs_drop_the_lost_steps(tmp_path, reverse_files):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "m"
    train(_cfg(reverse_files, "train.max_steps=20"), out)
    assert not (out / "tensorboard").exists()
    train(_cfg(reverse_files, "train.max_steps=40", "train.tensorboard=true"), out, resume=True)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [30, 40]


def test_a_one_line_error_without_the_package(tmp_path, reverse_files, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'seq2attn\[tensorboard\]'"):
        train(_cfg(reverse_files, "train.tensorboard=true"), tmp_path / "m")
    assert not (tmp_path / "m").exists()  # refused before anything was written
