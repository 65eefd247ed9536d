"""The command line end to end: train -> translate -> score -> align, and every bad input gives one
line on stderr and exit 1 (usage errors 2), never a traceback."""

from __future__ import annotations

import gzip
import json
import pickle
import shutil

import pytest
import yaml
from helpers import one_line_error, run


def test_help_lists_every_command_with_examples():
    result = run("--help")
    assert result.exit_code == 0
    for cmd in ("train", "translate", "score", "align", "corpora", "info"):
        assert cmd in result.stdout
    for cmd in ("train", "translate", "score", "align", "info", "corpora list", "corpora prepare"):
        sub = run(*cmd.split(), "--help")
        assert sub.exit_code == 0 and "Example" in sub.stdout, cmd


@pytest.mark.slow
def test_train_translate_score_align(tmp_path, reverse_files):
    model = tmp_path / "model"
    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    result = run("train", "--out", model, "--train", src, tgt, "--dev", dsrc, dtgt, "--config", _tiny_yaml(tmp_path))
    assert result.exit_code == 0, result.output
    assert "done at step 40" in result.stderr
    result = run("translate", "-m", model, "-i", dsrc, "-o", tmp_path / "hyp")
    assert result.exit_code == 0, result.output
    hyps = (tmp_path / "hyp").read_text().splitlines()
    assert len(hyps) == len(dsrc.read_text().splitlines())
    result = run("score", tmp_path / "hyp", dtgt, "--json")
    scores = json.loads(result.stdout)
    assert set(scores) == {"BLEU", "chrF2"} and 0 <= scores["BLEU"]["score"] <= 100
    result = run("align", "-m", model, "a b c d")
    assert result.exit_code == 0 and result.stdout.strip()
    assert "</s>" in result.stderr  # the heatmap's last column


def _tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("tokenizer: {kind: wordlevel}\nmodel: {emb_size: 24, hidden_size: 24, dec_hidden_size: 24}\n"
                    "train: {max_steps: 40, validate_every: 20, batch_tokens: 1024}\n")
    return path


def test_translate_stdin_stdout_and_empty_lines(tiny_model):
    result = run("translate", "-m", tiny_model, input="a b c\n\nd e\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert result.stderr == ""


def test_score_of_a_file_against_itself_is_100(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("the cat sat on the mat\na second line here\n")
    result = run("score", f, f, "--metrics", "bleu,chrf,exact", "--json")
    scores = json.loads(result.stdout)
    assert scores["BLEU"]["score"] == 100.0 and scores["chrF2"]["score"] == 100.0 and scores["exact"]["score"] == 100.0
    assert scores["BLEU"]["signature"].startswith("nrefs:1")


def test_align_forced_uses_the_given_target(tiny_model):
    result = run("align", "-m", tiny_model, "a b c", "--target", "c b a")
    assert result.exit_code == 0 and result.stdout.strip() == "c b a"
    assert "forced" in result.stderr


def test_info(tiny_model):
    result = run("info", "-m", tiny_model)
    assert result.exit_code == 0 and yaml.safe_load(result.stdout)["model"]["decoder"] == "bahdanau"


def test_corpora_prepare_and_list(tmp_path):
    result = run("corpora", "prepare", "copy", "--out", tmp_path / "c")
    assert result.exit_code == 0
    assert (tmp_path / "c" / "test.src").read_text() == (tmp_path / "c" / "test.tgt").read_text()
    listed = run("corpora", "list")
    assert "multi30k" in listed.stdout and listed.stderr == ""
    rows = [json.loads(line) for line in run("corpora", "list", "--json").stdout.splitlines()]
    assert {r["name"] for r in rows} >= {"multi30k", "dates", "copy"}
    assert all(r["sizes"]["train"] > 0 and r["languages"] for r in rows)


# --- bad input ---------------------------------------------------------------------------------
def test_missing_input_file(tiny_model, tmp_path):
    one_line_error(run("translate", "-m", tiny_model, "-i", tmp_path / "nope.txt"), "nope.txt")


def test_non_utf8_input(tiny_model, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe broken\n")
    one_line_error(run("translate", "-m", tiny_model, "-i", bad), "bad.txt", "line 2")
    one_line_error(run("translate", "-m", tiny_model, input=b"ok\n\xff\n"), "stdin", "line 2")


def test_empty_and_misaligned_training_files(tmp_path, reverse_files):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    src, tgt = reverse_files["train"]
    one_line_error(run("train", "--out", tmp_path / "m", "--train", empty, tgt, "--dev", src, tgt), "empty.txt")
    short = tmp_path / "short.txt"
    short.write_text("a b\n")
    one_line_error(run("train", "--out", tmp_path / "m", "--train", src, short, "--dev", src, tgt),
                   "short.txt", "3000", "1 line")


def test_misaligned_score_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x\ny\n")
    b.write_text("x\n")
    one_line_error(run("score", a, b), "2 lines", "1 lines")


def test_gzip_input_is_read(tiny_model, tmp_path):
    gz = tmp_path / "in.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("a b\nc d e\n")
    result = run("translate", "-m", tiny_model, "-i", gz)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2


@pytest.mark.parametrize("args, needle", [
    (["--set", "model.attention=nope"], "choose one of"),
    (["--set", "train.lr=fast"], "train.lr"),
    (["--set", "nosection"], "section.key=value"),
    (["--set", "model.nope=1"], "model.nope"),
    (["--corpus", "nope"], "nope"),
    (["--device", "tpu"], "tpu"),
    (["--device", "cpu", "--set", "train.precision=fp16"], "train.precision=fp16 needs a CUDA device"),
])
def test_bad_options(tmp_path, args, needle):
    one_line_error(run("train", "--out", tmp_path / "m", "--corpus", "copy", *args), needle)


@pytest.mark.parametrize("args, needle", [
    (["translate"], "Missing option '--model'"),
    (["translate", "-m", "x", "--bogus"], "No such option: --bogus"),
    (["translate", "-m", "x", "--quiet", "true", "false"], "unexpected extra argument"),  # true: SENTENCE
    (["translate", "-m", "x", "--format", "xml"], "'xml' is not one of 'text', 'jsonl'"),
    (["align", "-m", "x", "a", "--level", "char"], "'char' is not one of"),
    (["score"], "Missing argument 'FILE'"),
    (["score", "only-hyp.txt"], "give the reference file(s)"),
    (["nosuchcommand"], "No such command"),
])
def test_usage_errors_are_one_line_with_a_hint_and_exit_2(args, needle):
    result = run(*args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seq2attn: error:") and needle in lines[0], result.stderr
    assert lines[0].endswith("--help)") and result.stdout == ""


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: [unclosed\n")
    one_line_error(run("train", "--out", tmp_path / "m", "--corpus", "copy", "--config", cfg), "c.yaml", "line")


def _copy_model(tiny_model, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    return copy


def test_tampered_weights_are_refused(tiny_model, tmp_path):
    model = _copy_model(tiny_model, tmp_path)
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF  # flip bits inside a tensor
    (model / "model.safetensors").write_bytes(bytes(data))
    one_line_error(run("translate", "-m", model, input="a b\n"), "model.safetensors", "sha256")


def test_pickle_in_place_of_weights_is_refused(tiny_model, tmp_path):
    model = _copy_model(tiny_model, tmp_path)
    (model / "model.safetensors").write_bytes(pickle.dumps({"evil": print}))
    one_line_error(run("translate", "-m", model, input="a b\n"), "model.safetensors")


def test_foreign_and_missing_model_dirs(tmp_path):
    one_line_error(run("translate", "-m", tmp_path / "none", input="a\n"), "no such model directory")
    foreign = tmp_path / "joey"
    foreign.mkdir()
    (foreign / "best.ckpt").write_bytes(b"\x80\x04junk")
    one_line_error(run("translate", "-m", foreign, input="a\n"), "not a seq2attn model directory")


def test_corrupt_manifest(tiny_model, tmp_path):
    model = _copy_model(tiny_model, tmp_path)
    (model / "manifest.json").write_text("{not json")
    one_line_error(run("translate", "-m", model, input="a\n"), "manifest")


def test_unwritable_output(tiny_model, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me\n")
    one_line_error(run("translate", "-m", tiny_model, "-o", blocker / "out.txt", input="a\n"), "out.txt")
    assert blocker.read_text() == "keep me\n"
