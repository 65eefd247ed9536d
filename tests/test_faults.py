"""Faults, in real processes: kill -9 at several points of training, SIGTERM / SIGHUP, two runs on
one directory, a full disk (a file-size limit: RLIMIT_FSIZE). Whatever happens, a later command
either works or says in one line why not, and no finished checkpoint is lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seq2attn.text.corpora import generate

TINY = ["--set", "tokenizer.kind=wordlevel", "--set", "model.emb_size=16", "--set", "model.hidden_size=16",
        "--set", "model.dec_hidden_size=16", "--set", "train.batch_tokens=512", "--set", "train.log_every=1",
        "--set", "train.attention_image=false", "--set", "data.dev_size=20",
        "--set", "train.threads=1", "--device", "cpu"]  # one thread: far faster for a model this small


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("faults")
    data = generate("reverse", 440, seed=5)
    paths = []
    for name, part in (("train", slice(0, 400)), ("dev", slice(400, None))):
        for side in ("src", "tgt"):
            paths.append(d / f"{name}.{side}")
            paths[-1].write_text("".join(line + "\n" for line in getattr(data, side)[part]))
    return ["--train", *map(str, paths[:2]), "--dev", *map(str, paths[2:])]


@pytest.fixture(scope="module")
def model(tmp_path_factory, files) -> Path:
    out = tmp_path_factory.mktemp("faults") / "m"
    assert finish(seq2attn("train", "--out", out, *files, *TINY, "--set", "train.max_steps=2"))[0] == 0
    return out


def seq2attn(*args, kill_at: int | None = None, fsize: int | None = None, **kw) -> subprocess.Popen:
    """Start the CLI; ``kill_at=k``: SIGKILL itself as the checkpoint code starts its k-th file;
    ``fsize``: no file may grow past this many bytes (writes then fail with EFBIG, as on a full disk)."""
    code = "from seq2attn.cli.main import app; app()"
    if kill_at is not None:
        code = ("import os, signal, seq2attn.modeldir.checkpoint as c\n"
                "n, real = [0], c.staged_write\n"
                "def staged(path, write):\n"
                "    n[0] += 1\n"
                f"    if n[0] == {kill_at}:\n"
                "        real(path, lambda tmp: (write(tmp), os.kill(os.getpid(), signal.SIGKILL)))\n"
                "    return real(path, write)\n"
                "c.staged_write = staged\n" + code)
    if fsize is not None:  # SIGXFSZ ignored: writes fail with EFBIG, as they fail with ENOSPC on a full disk
        code = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
                f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))\n" + code)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=kw.pop("stdout", subprocess.PIPE),
                            stderr=subprocess.PIPE, text=True, **kw)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def one_error(err: str, fragment: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("seq2attn: error:")]
    assert len(errors) == 1 and fragment in errors[0], err


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("kill_at, resumes_from", [
    (1, None),  # writing the first checkpoint's first file: no weights yet, a plain rerun starts over
    (6, 4),  # writing a file of the second checkpoint (a checkpoint stages 4-5): the first is kept
    (7, 4),  # a later file of the second checkpoint: still the first
])
def test_kill_9_during_training_loses_at_most_the_checkpoint_in_progress(tmp_path, files, kill_at, resumes_from):
    out = tmp_path / "m"
    args = ["train", "--out", out, *files, *TINY, "--set", "train.validate_every=4", "--set", "train.max_steps=8"]
    code, _, _ = finish(seq2attn(*args, kill_at=kill_at))
    assert code == -signal.SIGKILL
    if resumes_from is None:
        assert manifest(out)["weights"] == {}
        code, _, err = finish(seq2attn("train", "--out", out, "--resume"))
        assert code == 1
        one_error(err, "no checkpoint yet")
        code, _, err = finish(seq2attn(*args))  # starts over in the same directory
    else:
        assert manifest(out)["trainer"]["step"] == resumes_from
        code, _, err = finish(seq2attn("train", "--out", out, "--resume", "--set", "train.max_steps=8"))
        assert f"resuming from step {resumes_from}" in err
    assert code == 0, err
    assert manifest(out)["trainer"]["step"] == 8 and not list(out.glob(".*.tmp"))
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_the_last_checkpoint(tmp_path, files, signum):
    out = tmp_path / "m"
    proc = seq2attn("train", "--out", out, *files, *TINY, "--set", "train.validate_every=100000")
    metrics, deadline = out / "metrics.jsonl", time.monotonic() + 90
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signum)
    code, _, err = finish(proc)
    assert code == 128 + signum, err
    assert signal.Signals(signum).name in err and "--resume" in err
    stopped = manifest(out)["trainer"]["step"]
    assert stopped >= 3 and manifest(out)["weights"]["last"]["step"] == stopped


def test_two_runs_on_one_directory(tmp_path, files):
    out = tmp_path / "m"
    args = ["train", "--out", out, *files, *TINY, "--set", "train.validate_every=5", "--set", "train.max_steps=10"]
    first, second = seq2attn(*args), seq2attn(*args)
    results = sorted([finish(first), finish(second)], key=lambda r: r[0])
    assert [code for code, _, _ in results] == [0, 1], results
    errors = [line for line in results[1][2].splitlines() if line.startswith("seq2attn: error:")]
    assert len(errors) == 1 and ("another seq2attn train" in errors[0] or "already holds a model" in errors[0])
    code, described, _ = finish(seq2attn("info", "-m", out))
    assert code == 0 and "step 10" in described
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, 11))


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, files):
    out = tmp_path / "m"
    args = ["train", "--out", out, *files, *TINY, "--set", "train.validate_every=4"]
    assert finish(seq2attn(*args, "--set", "train.max_steps=4"))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "metrics.jsonl" and p.is_file()}
    size = (out / "last.safetensors").stat().st_size
    code, _, err = finish(seq2attn("train", "--out", out, "--resume", "--set", "train.max_steps=8",
                                   fsize=size // 2))
    assert code == 1
    one_error(err, "cannot write the checkpoint of step 8")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "metrics.jsonl" and p.is_file()} == before
    code, _, err = finish(seq2attn("train", "--out", out, "--resume", "--set", "train.max_steps=8"))
    assert code == 0 and "resuming from step 4" in err


@pytest.mark.parametrize("where", ["-o file", "> file", "> /dev/full"])
def test_a_full_disk_under_translate_is_one_line(tmp_path, model, where):
    src = tmp_path / "big.src"
    src.write_text("a b c d e f g\n" * 3000)
    target = tmp_path / "out.txt"
    if where == "-o file":
        code, _, err = finish(seq2attn("translate", "-m", model, "-i", src, "-o", target, "--threads", "1",
                                       fsize=4096))
        assert not target.exists()
    else:
        with open("/dev/full" if where == "> /dev/full" else target, "w") as sink:
            code, _, err = finish(seq2attn("translate", "-m", model, "-i", src, "--threads", "1", stdout=sink,
                                                   fsize=4096))
    assert code == 1
    one_error(err, "File too large" if where != "> /dev/full" else "No space left")
