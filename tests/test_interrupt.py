"""Ctrl-C during training saves the last checkpoint, exits 130 with a one-line hint, and --resume
continues from there."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest


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
