"""What a Unix user expects of the command line: plain flags and metavars in --help, choices from
the registries, --version, `-` for stdin/stdout, one spelling per meaning, log-friendly progress."""

from __future__ import annotations

import io
import json
import re
from typing import get_args, get_type_hints

import pytest
from helpers import run
from rich.console import Console

from seq2attn import __version__
from seq2attn.cli import common as cli_common
from seq2attn.cli import evaluate as cli_eval

COMMANDS = ("train", "preprocess", "translate", "score", "evaluate", "align", "export", "average", "info",
            "config", "tune-alpha", "corpora list",
            "corpora prepare")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_python_types(command):
    text = run(*command.split(), "--help").stdout
    for leak in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<Path", "list[", "tuple["):
        assert leak not in text, (command, leak)


def flat(text: str) -> str:
    """Help text without the panels' borders and line breaks (a narrow terminal wraps columns)."""
    return re.sub(r"[\s│]+", " ", text)


def test_help_shows_choices_and_metavars():
    translate = flat(run("translate", "--help").stdout)
    assert "[text|jsonl]" in translate and "[fp32|bf16|fp16|int8]" in translate and "[auto|cpu|cuda|cuda:N]" in translate
    train = flat(run("train", "--help").stdout)
    assert re.search(r"--train\s+SRC TGT", train) and "KEY=VALUE" in train and "--src-lang" in train
    assert re.search(r"--src(?![-\w])", train) is None  # the old spelling works but is not advertised
    assert re.search(r"\[heatmap\|pharaoh\|json ?\]", flat(run("align", "--help").stdout))
    score = flat(run("score", "--help").stdout)
    assert "seq2attn score [OPTIONS] {FILE}..." in score and re.search(r"-i\s+HYP", score)


def test_cli_choices_equal_the_registries():
    from seq2attn.config import DecodeConfig
    from seq2attn.inference.alignment import LEVELS
    from seq2attn.inference.translate import FORMATS

    assert "[" + "|".join(get_args(get_type_hints(DecodeConfig)["precision"])) + "]" in flat(
        run("translate", "--help").stdout)
    assert set(get_args(cli_eval.Level)) == set(LEVELS)
    from seq2attn.inference.export import QUANTIZATIONS, TARGETS

    assert "[" + "|".join(FORMATS) + "]" in flat(run("translate", "--help").stdout)
    export = flat(run("export", "--help").stdout)
    assert "[" + "|".join(QUANTIZATIONS) + "]" in export and "[" + "|".join(TARGETS) + "]" in export


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    result = run(flag)
    assert result.exit_code == 0 and result.stdout.strip() == f"seq2attn {__version__}"


def test_usage_error_inside_a_group_names_the_subcommand():
    result = run("corpora", "prepare")
    assert result.exit_code == 2 and "(see: seq2attn corpora prepare --help)" in result.stderr


# --- `-` is stdin or stdout ----------------------------------------------------------------------
@pytest.fixture()
def text_files(tmp_path):
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("the cat sat on the mat\na dog\n")
    ref.write_text("the cat sat on a mat\na dog\n")
    return hyp, ref


def test_score_reads_stdin_and_takes_sacrebleu_order(text_files):
    hyp, ref = text_files
    plain = json.loads(run("score", hyp, ref, "--json").stdout)
    assert 0 < plain["BLEU"]["score"] < 100
    assert json.loads(run("score", ref, "-i", hyp, "--json").stdout) == plain
    assert json.loads(run("score", "-", ref, "--json", input=hyp.read_text()).stdout) == plain
    assert json.loads(run("score", "-", "-i", hyp, "--json", input=ref.read_text()).stdout) == plain
    twice = run("score", "-", "-", input="a\n")
    assert twice.exit_code == 2 and "one file only" in twice.stderr


def test_translate_dash_means_stdin_and_stdout(tiny_model):
    plain = run("translate", "-m", tiny_model, input="a b c\nd e\n")
    dashed = run("translate", "-m", tiny_model, "-i", "-", "-o", "-", input="a b c\nd e\n")
    assert plain.exit_code == dashed.exit_code == 0 and dashed.stdout == plain.stdout
    assert len(plain.stdout.splitlines()) == 2


def test_align_reads_sentences_from_stdin(tiny_model):
    piped = run("align", "-m", tiny_model, "--format", "pharaoh", input="a b c\nd e\n")
    assert piped.exit_code == 0, piped.output
    assert len(piped.stdout.splitlines()) == 2
    one = run("align", "-m", tiny_model, "a b c", "--format", "pharaoh")
    assert piped.stdout.splitlines()[0] == one.stdout.strip()


def test_evaluate_reads_the_source_from_stdin(tiny_model, reverse_files):
    src, ref = reverse_files["dev"]
    from_file = run("evaluate", "-m", tiny_model, "--src", src, "--ref", ref, "--json")
    from_stdin = run("evaluate", "-m", tiny_model, "--src", "-", "--ref", ref, "--json", input=src.read_text())
    assert from_file.exit_code == 0 and json.loads(from_stdin.stdout) == json.loads(from_file.stdout)


# --- one meaning per option name ---------------------------------------------------------------
def test_languages_take_the_new_spelling_and_the_old_one_with_a_note(capsys):
    assert cli_common.languages("de", "en", None, None) == ("de", "en")
    assert capsys.readouterr().err == ""
    assert cli_common.languages(None, None, "de", "en") == ("de", "en")
    err = capsys.readouterr().err
    assert "--src is deprecated here, use --src-lang" in err and "--tgt-lang" in err


def test_disagreeing_language_spellings_are_a_usage_error(tmp_path):
    result = run("corpora", "prepare", "multi30k", "--out", tmp_path, "--src-lang", "de", "--src", "fr")
    assert result.exit_code == 2 and "disagree" in result.stderr


# --- progress in a log file ----------------------------------------------------------------------
def test_training_progress_in_a_log_is_plain_lines():
    from seq2attn.cli.progress import RichReporter

    log = io.StringIO()
    reporter = RichReporter(Console(file=log, force_terminal=False, width=200))
    reporter.start(total_steps=100, start_step=0)
    for step in (10, 20):
        reporter.step({"step": step, "loss": 2.5, "tokens_per_s": 1234.0, "lr": 1e-3, "minutes": 0.1})
    reporter.validating(20)
    reporter.validation({"step": 20, "loss": 2.0, "ppl": 7.39, "bleu": 12.0, "chrf": 30.0, "exact": 5.0,
                         "valid_seconds": 1.5, "best": True})
    reporter.stop()
    lines = log.getvalue().splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["step", "10/100"], ["step", "20/100"]]
    assert "loss 2.500" in lines[0] and "\x1b" not in log.getvalue() and "*best*" in lines[2]
    assert len(lines) == 3


def test_training_bar_shows_step_of_total_and_validating():
    from seq2attn.cli.progress import RichReporter

    term = io.StringIO()
    reporter = RichReporter(Console(file=term, force_terminal=True, width=200))
    reporter.start(total_steps=100, start_step=0)
    reporter.step({"step": 10, "loss": 2.5, "tokens_per_s": 1234.0, "lr": 1e-3, "minutes": 0.1})
    reporter.validating(10)
    reporter.progress.refresh()
    text = term.getvalue()
    reporter.stop()
    assert "step 10/100" in text and "validating..." in text


