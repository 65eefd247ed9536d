"""What the server's tests share: a tiny Transformer trained once per session, and a server
process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from seq2attn.config import resolve_config
from seq2attn.run.train import train
from seq2attn.text.corpora import CORPORA

ROOT = Path(__file__).resolve().parents[1]


def tiny_transformer(tmp_path_factory, reverse_files) -> Path:
    """A reverse Transformer (2 decoder layers, 4 heads) trained for a few seconds, once per session
    (the API and the browser tests share it through the session's base directory)."""
    out = tmp_path_factory.getbasetemp() / "serve-transformer"
    if (out / "manifest.json").exists():
        return out
    flags = {"data": {"train": [str(p) for p in reverse_files["train"]],
                      "dev": [str(p) for p in reverse_files["dev"]]}}
    cfg = resolve_config(preset=CORPORA["reverse"].preset, flags=flags, sets=[
        "model.backend=transformer", "model.emb_size=32", "model.ff_size=64", "model.enc_layers=1",
        "model.dec_layers=2", "model.heads=4", "train.schedule=noam", "train.warmup_steps=30", "train.lr=0.005",
        "train.max_steps=60", "train.validate_every=60", "data.dev_size=20", "train.attention_image=false",
        "train.curve=false"])
    train(cfg, out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``seq2attn serve`` on a free loopback port, once it answers /v1/health."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "seq2attn", "serve", "-m", str(model), "--port", str(port),
                             "--device", "cpu", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start within 60 s")
