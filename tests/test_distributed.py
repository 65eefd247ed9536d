"""torchrun + DDP on CPU (gloo): two processes taking one batch each per step train the same weights
as one process accumulating the same two batches; the checkpoint rank 0 wrote loads and translates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seq2attn.checkpoint import load
from seq2attn.config import resolve_config
from seq2attn.train import train
from seq2attn.translate import translate

ROOT = Path(__file__).resolve().parents[1]
SETS = ["tokenizer.kind=wordlevel", "model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16",
        "model.dropout=0", "train.batch_tokens=300", "train.max_steps=6", "train.validate_every=6",
        "train.log_every=2", "train.threads=1", "train.device=cpu", "train.attention_image=false",
        "data.dev_size=10", "data.max_length=32"]


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process_accumulating_two_batches(tmp_path, reverse_files):
    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    files = ["--train", str(src), str(tgt), "--dev", str(dsrc), str(dtgt)]
    sets = [a for s in SETS for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "seq2attn", "train", "--out", str(tmp_path / "ddp"), *files, *sets],
                          capture_output=True, text=True, timeout=240, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("done at step 6") == 1  # rank 0 alone reports

    cfg = resolve_config(sets=[*SETS, "train.accum_steps=2"],
                         flags={"data": {"train": [str(src), str(tgt)], "dev": [str(dsrc), str(dtgt)]}})
    train(cfg, tmp_path / "one")
    two, one = (load_file(tmp_path / d / "last.safetensors") for d in ("ddp", "one"))
    assert two.keys() == one.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-5, msg=name)

    loaded = load(tmp_path / "ddp")
    assert loaded.info["step"] == 6
    result = translate(loaded, ["a b c", "d e"], decode=loaded.cfg.decode)
    assert len(result.translations) == 2
