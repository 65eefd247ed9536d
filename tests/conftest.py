"""Shared fixtures: small corpora written to disk and one tiny trained model per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seq2attn.config import resolve_config
from seq2attn.run.train import train
from seq2attn.text.corpora import CORPORA, Parallel, generate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core (pytest-xdist): each worker's torch, and the processes
    # its tests start, use one thread, since OpenMP threads of two workers on the same cores wait
    # on each other (a 2-thread torch job slowed 5x here when anything else ran)
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def write_pair(directory: Path, name: str, data: Parallel) -> tuple[Path, Path]:
    src, tgt = directory / f"{name}.src", directory / f"{name}.tgt"
    src.write_text("".join(s + "\n" for s in data.src), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for t in data.tgt), encoding="utf-8")
    return src, tgt


@pytest.fixture(scope="session")
def reverse_files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """A small reverse corpus as files: train 3,000 / dev 200 pairs."""
    d = tmp_path_factory.mktemp("reverse")
    data = generate("reverse", 3200, seed=3)
    train_set = Parallel(data.src[:3000], data.tgt[:3000])
    dev_set = Parallel(data.src[3000:], data.tgt[3000:])
    return {"train": write_pair(d, "train", train_set), "dev": write_pair(d, "dev", dev_set)}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, reverse_files) -> Path:
    """A reverse model trained for a few seconds: enough to exercise every command."""
    out = tmp_path_factory.mktemp("models") / "tiny"
    cfg = resolve_config(
        preset=CORPORA["reverse"].preset,
        sets=["train.max_steps=60", "train.validate_every=30", "model.emb_size=32", "model.hidden_size=32",
              "model.dec_hidden_size=32"],
        flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                        "dev": [str(p) for p in reverse_files["dev"]]}},
    )
    train(cfg, out)
    return out
