"""`seq2attn translate`: pipes and files, JSONL schema, empty and long lines, streaming, terminals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ok, one_line_error
from helpers import run as cli

from seq2attn.inference.translate import translate
from seq2attn.modeldir.checkpoint import load

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"^(\d+-\d+( \d+-\d+)*)?$")


def run(*args, input=None):
    return cli("translate", *args, input=input)


@pytest.fixture(scope="module")
def dev_lines(reverse_files):
    lines = reverse_files["dev"][0].read_text().splitlines()[:30]
    return lines[:10] + [""] + lines[10:]  # an empty line in the middle


def test_pipe_keeps_lines_and_empty_lines(tiny_model):
    result = ok(run("-m", tiny_model, "--beam", "4", input="a b c\n\n   \nd e\n"))
    lines = result.stdout.split("\n")
    assert len(lines) == 5 and lines[1] == lines[2] == lines[4] == "" and lines[0] and lines[3]
    assert result.stderr == ""  # no terminal: no progress bar


def test_file_in_file_out_equals_pipe_and_library(tiny_model, dev_lines, tmp_path):
    src = tmp_path / "dev.src"
    src.write_text("".join(line + "\n" for line in dev_lines))
    ok(run("-m", tiny_model, "--beam", "5", "-i", src, "-o", tmp_path / "out.txt", "--batch-tokens", "64"))
    piped = ok(run("-m", tiny_model, "--beam", "5", input=src.read_text())).stdout
    from_file = (tmp_path / "out.txt").read_text()
    assert from_file == piped and len(from_file.splitlines()) == len(dev_lines)
    loaded = load(tiny_model)
    from dataclasses import replace

    expected = translate(loaded, dev_lines, decode=replace(loaded.cfg.decode, beam_size=5)).translations
    assert from_file.splitlines() == [t.hyp for t in expected]


def test_jsonl_schema_with_nbest(tiny_model, dev_lines):
    result = ok(run("-m", tiny_model, "--format", "jsonl", "--beam", "4", "--nbest", "3", "--alpha", "0.6",
                    input="".join(line + "\n" for line in dev_lines)))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["src"] for r in rows] == dev_lines
    for r in rows:
        assert {"src", "hyp", "score", "norm_score", "alignment", "nbest", "src_tokens", "hyp_tokens"} <= set(r)
        assert len(r["nbest"]) == (3 if r["src"] else 1)
        assert r["nbest"][0]["hyp"] == r["hyp"] and r["nbest"][0]["score"] == r["score"]
        norms = [n["norm_score"] for n in r["nbest"]]
        assert norms == sorted(norms, reverse=True)
        assert LINK.match(r["alignment"])
        for link in filter(None, r["alignment"].split(" ")):
            s, t = map(int, link.split("-"))
            assert 0 <= s < len(r["src_tokens"]) and 0 <= t < len(r["hyp_tokens"])
        if r["src"]:
            assert r["src_tokens"] == [*r["src"].split(), "</s>"] and r["score"] < 0


def test_lines_past_the_training_max_length_are_decoded_whole(tiny_model):
    # 45 tokens; data.max_length is 32, but it filters training pairs: a GRU has no position limit
    long = " ".join("abcdefghij"[i % 10] for i in range(45))
    result = ok(run("-m", tiny_model, "--format", "jsonl", input=f"{long}\na b\n{long}\n"))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 and len(rows[0]["src_tokens"]) == 45 + 1  # every piece, and the EOS
    assert result.stderr == ""


def test_sampling_is_seeded(tiny_model, dev_lines):
    text = "".join(line + "\n" for line in dev_lines)
    a = ok(run("-m", tiny_model, "--sample", "--seed", "3", "--temperature", "1.5", input=text)).stdout
    b = ok(run("-m", tiny_model, "--sample", "--seed", "3", "--temperature", "1.5", input=text)).stdout
    c = ok(run("-m", tiny_model, "--sample", "--seed", "4", "--temperature", "1.5", input=text)).stdout
    assert a == b and a != c and len(a.splitlines()) == len(dev_lines)


@pytest.mark.parametrize("args, needle", [
    (["--nbest", "2", "--beam", "2"], "--format jsonl"),
    (["--nbest", "3", "--beam", "2", "--format", "jsonl"], "decode.nbest=3"),
    (["--top-p", "2"], "decode.top_p"),
    (["--threads", "0"], "--threads"),
    (["--precision", "fp16", "--device", "cpu"], "decode.precision=fp16 needs a CUDA device"),
])
def test_bad_options_give_one_line(tiny_model, args, needle):
    one_line_error(run("-m", tiny_model, *args, input="a b\n"), needle)


def test_bf16_decoding_under_autocast(tiny_model, dev_lines):
    # autocast bf16 on CPU: beam search and its attention (stored in float32) still work end to end
    text = "".join(line + "\n" for line in dev_lines)
    result = ok(run("-m", tiny_model, "--precision", "bf16", "--beam", "3", "--format", "jsonl", input=text))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["src"] for r in rows] == dev_lines
    assert all(LINK.match(r["alignment"]) and (r["hyp"] or not r["src"]) for r in rows)


def test_invalid_utf8_on_stdin_names_the_line(tiny_model):
    one_line_error(run("-m", tiny_model, input=b"a b\n\xff\xfe\n"), "<stdin> line 2")


def test_decode_benchmark_smoke(tiny_model, reverse_files, tmp_path):
    import importlib.util  # by path: the benchmarks folder is not an installed package

    spec = importlib.util.spec_from_file_location("benchmarks_decode", ROOT / "benchmarks" / "decode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main = module.main
    src, ref = reverse_files["dev"]
    main(["--model", str(tiny_model), "--src", str(src), "--ref", str(ref), "--quick", "--beams", "1,3",
          "--device", "cpu", "--out", str(tmp_path / "decode.json")])
    rows = json.loads((tmp_path / "decode.json").read_text())["results"]
    assert [r["beam"] for r in rows] == [1, 3] and all(r["sentences"] == 100 for r in rows)
    assert all(r["sentences_per_s"] > 0 and 0 <= r["bleu"] <= 100 for r in rows)


# --- real processes: streaming from a pipe and line-by-line from a terminal --------------------
def _start(tiny_model, stdin):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "seq2attn", "translate", "-m", str(tiny_model), "--device", "cpu",
                             "--beam", "3"], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env=env)


def _read_line(proc, timeout=120.0) -> bytes:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        assert sel.select(max(deadline - time.monotonic(), 0)), "no output in time"
        chunk = os.read(proc.stdout.fileno(), 1)
        assert chunk, proc.stderr.read().decode()
        line += chunk
    return line


def test_pipe_output_starts_before_input_ends(tiny_model):
    proc = _start(tiny_model, subprocess.PIPE)
    try:
        proc.stdin.write(b"a b c\n\n")
        proc.stdin.flush()
        first, second = _read_line(proc), _read_line(proc)  # while stdin is still open
        assert first.strip() and second == b"\n"
        proc.stdin.write(b"d e\n")
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(60) == 0 and len(rest.splitlines()) == 1
    finally:
        proc.kill()


def test_terminal_input_is_translated_line_by_line(tiny_model):
    import pty

    master, slave = pty.openpty()
    proc = _start(tiny_model, slave)
    os.close(slave)
    try:
        os.write(master, b"a b c\n")
        assert _read_line(proc).strip()
        os.write(master, b"d e\n")
        assert _read_line(proc).strip()
        os.write(master, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(60) == 0
        assert b"Ctrl-D" in proc.stderr.read()  # the hint for people at a terminal
    finally:
        proc.kill()
        os.close(master)
