"""torchrun + DDP on CPU (gloo): two processes taking one batch each per step train the same weights
as one process accumulating the same two batches; the checkpoint rank 0 wrote loads and translates."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seq2attn.config import resolve_config
from seq2attn.inference.translate import translate
from seq2attn.modeldir.checkpoint import load
from seq2attn.run.train import train

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


@pytest.mark.slow
def test_ctrl_c_under_torchrun_saves_once_and_resumes(tmp_path, reverse_files):
    """Ctrl-C in a terminal reaches torchrun's whole process group: every rank stops at the same step,
    rank 0 alone saves and says so in one line, and --resume continues from that step."""
    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    out = tmp_path / "ddp"
    args = ["train", "--out", str(out), "--train", str(src), str(tgt), "--dev", str(dsrc), str(dtgt),
            *[a for s in [*SETS, "train.max_steps=100000", "train.validate_every=20"] for a in ("--set", s)]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                                 "2", "-m", "seq2attn", *args], stdout=subprocess.DEVNULL, stderr=err, env=env,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while "*best*" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            assert proc.poll() is None, log.read_text()[-3000:]
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    saved = re.findall(r"interrupted at step (\d+); saved the last checkpoint", text)
    assert len(saved) == 1, text[-3000:]  # rank 0 alone saves and reports
    step = int(saved[0])
    assert load(out, which="last").info["step"] == step

    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "seq2attn", *args[:3], "--resume", "--set", f"train.max_steps={step + 4}"],
                          capture_output=True, text=True, timeout=240, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert load(out, which="last").info["step"] == step + 4


@pytest.mark.slow
def test_ranks_with_different_configs_stop_together_in_one_line(tmp_path, reverse_files):
    """Issue 24, 7: rank 1 given another train.lr than rank 0 (a wrapper adds it by RANK): every rank
    stops before training with the same one line, not with DDP tracebacks."""
    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    wrapper = tmp_path / "ranked.py"
    wrapper.write_text("import os, sys\nfrom seq2attn.cli.main import app\n"
                       "sys.argv = ['seq2attn', *sys.argv[1:], '--set', "
                       "'train.lr=' + ('0.001' if os.environ['RANK'] == '0' else '0.002')]\napp()\n")
    sets = [a for s in SETS for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(wrapper), "train", "--out", str(tmp_path / "ddp"), "--train", str(src), str(tgt),
                           "--dev", str(dsrc), str(dtgt), *sets],
                          capture_output=True, text=True, timeout=240, env=env, check=False)
    assert done.returncode != 0
    assert done.stderr.count("seq2attn: error: rank 1's configuration differs from rank 0's") == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr.split("seq2attn: error:")[0], done.stderr[-3000:]


@pytest.mark.parametrize("joined", [True, False])
def test_a_torchrun_worker_exits_with_its_status_and_without_interpreter_finalization(joined):
    """A process that joined a process group leaves through os._exit once the command's status is
    known (gloo's teardown at finalization can abort a clean run); any other process exits normally.
    Either way the status and the one-line error are the command's."""
    script = "\n".join([
        "import atexit",
        "from seq2attn.run import distributed",
        f"distributed._joined = {joined}",
        "atexit.register(lambda: print('finalized', flush=True))",
        "from seq2attn.cli.main import app",
        "app(['train', '--no-such-option'], prog_name='seq2attn')",
    ])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.startswith("seq2attn: error:") and "--no-such-option" in done.stderr
    assert ("finalized" in done.stdout) is not joined
