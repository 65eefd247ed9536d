"""CUDA: training on the GPU in each precision, cuda:N, pinned non-blocking copies. Marked ``cuda``
and skipped without a GPU; benchmarks/gpu_check.sh runs them on a GPU machine."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from seq2attn.cli.main import app
from seq2attn.config import resolve_config
from seq2attn.inference.translate import translate
from seq2attn.modeldir.checkpoint import load
from seq2attn.nn.batches import make_batches
from seq2attn.nn.runtime import resolve_device
from seq2attn.run.train import train

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
pytestmark = pytest.mark.cuda


def _cfg(reverse_files, *sets):
    return resolve_config(
        sets=["tokenizer.kind=wordlevel", "model.emb_size=32", "model.hidden_size=32", "model.dec_hidden_size=32",
              "train.max_steps=30", "train.validate_every=30", "train.log_every=10", "train.attention_image=false",
              "data.dev_size=20", *sets],
        flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                        "dev": [str(p) for p in reverse_files["dev"]]}})


def test_device_names_without_cuda_are_one_line_errors(tmp_path, reverse_files):
    if torch.cuda.is_available():
        pytest.skip("checks the message on machines without CUDA")
    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    done = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "m"), "--train", str(src), str(tgt),
                                    "--dev", str(dsrc), str(dtgt), "--device", "cuda:1"])
    assert done.exit_code == 1 and "no CUDA device" in done.output and "Traceback" not in done.output
    done = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "m"), "--device", "gpu"])
    assert done.exit_code == 1 and "cuda:N" in done.output


@cuda
@pytest.mark.parametrize("backend", ["rnn", "transformer"])
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_trains_on_the_gpu_and_loads_on_the_cpu(tmp_path, reverse_files, backend, precision):
    train(_cfg(reverse_files, f"model.backend={backend}", f"train.precision={precision}", "train.device=cuda"),
          tmp_path / "m")
    rows = [json.loads(line) for line in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["kind"] == "train"]
    assert len(steps) == 3 and all(r["gpu_peak_mib"] > 0 and r["loss"] == r["loss"] for r in steps)
    assert steps[-1]["loss"] < steps[0]["loss"]
    loaded = load(tmp_path / "m", device="cpu")
    assert len(translate(loaded, ["a b c"], decode=loaded.cfg.decode).translations) == 1


@cuda
def test_cuda_n_and_pinned_non_blocking_copies():
    last = torch.cuda.device_count() - 1
    assert resolve_device(f"cuda:{last}") == torch.device("cuda", last)
    assert resolve_device("cuda", local_rank=last) == torch.device("cuda", last)
    (batch,) = make_batches([[5, 6, 7], [8]], [[9], [10, 11]], batch_tokens=100)
    moved = batch.to(torch.device("cuda", last))
    torch.cuda.synchronize()
    assert moved.src.device == torch.device("cuda", last)
    assert torch.equal(moved.src.cpu(), batch.src) and torch.equal(moved.tgt_out.cpu(), batch.tgt_out)


@cuda
def test_resume_on_the_gpu_continues_the_plan(tmp_path, reverse_files):
    out = tmp_path / "m"
    train(_cfg(reverse_files, "train.device=cuda", "train.max_steps=10", "train.validate_every=10"), out)
    state = train(_cfg(reverse_files, "train.device=cuda", "train.max_steps=20"), out, resume=True)
    assert state.step == 20
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["kind"], r["step"]) for r in rows]
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows) and len(keys) == len(set(keys))
