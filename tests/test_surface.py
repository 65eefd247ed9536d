"""The surface that follows from one declaration (issue 25, item 7): -h, a sentence argument for
translate, info and config on stdout as YAML, the defaults of average and tune-alpha, and the
Translation as a notebook shows it and as JSONL writes it."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import re
import shutil
import typing
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ok, one_line_error, run

import seq2attn
from seq2attn.cli.configdoc import field_docs
from seq2attn.cli.main import app
from seq2attn.config import Config, config_from_dict, load_yaml, resolve_config, to_dict
from seq2attn.inference.translate import Translation, pharaoh
from seq2attn.modeldir.checkpoint import load_config, save_config
from seq2attn.text.corpora import CORPORA


# --- -h ------------------------------------------------------------------------------------------
def _commands(group, path=()):
    """Every command path of the app, groups included: (), ("train",), ("corpora", "list"), ..."""
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_dash_h_is_help_everywhere():
    import typer

    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) > 12 and ("config",) in [p for p, _ in commands]
    for path, command in commands:
        taken = [p.name for p in command.params if "-h" in getattr(p, "opts", [])]
        assert not taken, f"{' '.join(path)}: -h is taken by {taken}, so it would not be help"
        short, long = run(*path, "-h"), run(*path, "--help")
        assert short.exit_code == long.exit_code == 0, path
        assert short.stdout == long.stdout and "-h, --help" in short.stdout, path


# --- translate "a sentence" -------------------------------------------------------------------------
def test_translate_takes_one_sentence_as_align_does(tiny_model):
    expected = seq2attn.load(tiny_model, device="cpu").translate("a b c d").hyp
    # stdin is not read when a sentence is given
    result = ok(run("translate", "-m", tiny_model, "a b c d", "-q", input="e f\ng h\n"))
    assert result.stdout == expected + "\n"
    rows = [json.loads(x) for x in ok(run("translate", "-m", tiny_model, "a b c d", "--format", "jsonl",
                                          "--beam", "2")).stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["src"] == "a b c d"
    assert "[SENTENCE]" in run("translate", "--help").stdout


def test_translate_refuses_a_sentence_and_an_input_file(tiny_model, tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("a b\n")
    for given in (src, "-"):
        one_line_error(run("translate", "-m", tiny_model, "a b c", "-i", given), "SENTENCE", "--input")


# --- info --------------------------------------------------------------------------------------
def test_info_prints_the_versions_on_stdout(monkeypatch):
    result = ok(run("info"))
    assert result.stderr == ""
    names = ("python", "seq2attn", "torch", "tokenizers", "sacrebleu", "ctranslate2", "cpu threads", "cuda")
    rows = {name: line[len(name):].strip() for line in result.stdout.splitlines() for name in names
            if re.match(rf"{name} ", line)}
    assert list(rows) == list(names)
    assert rows["python"] == platform.python_version()
    assert rows["seq2attn"] == seq2attn.__version__ and rows["cpu threads"] == str(torch.get_num_threads())
    for name in ("torch", "tokenizers", "sacrebleu"):
        assert rows[name] == importlib.metadata.version(name)
    assert "cuda" in rows and "ctranslate2" in rows

    real = importlib.metadata.version

    def without_ct2(name):
        if name == "ctranslate2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", without_ct2)
    assert re.search(r"^ctranslate2 +not installed$", ok(run("info")).stdout, re.MULTILINE)


def test_info_of_a_model_is_yaml_on_stdout(tiny_model):
    result = ok(run("info", "-m", tiny_model))
    assert result.stderr == ""
    assert yaml.safe_load(result.stdout) == to_dict(load_config(tiny_model))
    comments = [line for line in result.stdout.splitlines() if line.startswith("#")]
    assert "parameters" in comments[0] and any(line.startswith("#   best: ") for line in comments)
    assert len(result.stdout.splitlines()) > 40  # one key per line, not one JSON line


# --- config --defaults / -m --------------------------------------------------------------------
def test_config_defaults_is_every_option_with_its_help_and_reads_back(tmp_path):
    result = ok(run("config", "--defaults"))
    path = tmp_path / "defaults.yaml"
    path.write_text(result.stdout)
    assert config_from_dict(load_yaml(path), str(path)) == Config()
    assert resolve_config(file=path) == resolve_config()
    lines = result.stdout.splitlines()
    for section in dataclasses.fields(Config):
        keys = [f.name for f in dataclasses.fields(typing.get_type_hints(Config)[section.name])]
        start = lines.index(f"{section.name}:")
        body = []
        for line in lines[start + 1:]:
            if not line.startswith("  "):
                break
            body.append(line)
        assert [re.match(r"  (\w+):", x).group(1) for x in body if not x.startswith("  #")] == keys
        for key in keys:  # each with its help: on its line, or the comment lines just above it
            at = next(i for i, x in enumerate(body) if x.startswith(f"  {key}:"))
            assert "  # " in body[at] or body[at - 1].startswith("  # "), f"{section.name}.{key} has no help"
    # the help comes from where it is written: the comments in config.py, option()'s help and flags
    assert re.search(r"^  max_length: 100  # training pairs longer than this \(in tokens\) are dropped",
                     result.stdout, re.MULTILINE)
    assert re.search(r"^  kind: bpe  # .*; one of: bpe, unigram, wordlevel, char$", result.stdout, re.MULTILINE)
    assert re.search(r"^  beam_size: 1  # Beam size; 1 is greedy search; >= 1; CLI: --beam/-b$", result.stdout,
                     re.MULTILINE)
    assert re.search(r"^  dropout: 0.2  # dropout probability; in \[0, 1\)$", result.stdout, re.MULTILINE)  # bound()
    assert "  # budget with average_last N:" in result.stdout  # a comment block above a key


def test_field_docs_read_the_comments_of_the_source():
    source = '''
@dataclass(frozen=True)
class DataConfig:
    # two lines
    # above
    corpus: str | None = None  # trailing
    src_lang: str | None = None
'''
    docs = field_docs(source)["data"]
    assert docs["corpus"].above == ("two lines", "above") and docs["corpus"].help == "trailing"
    assert docs["src_lang"].above == () and docs["src_lang"].help == ""
    every = field_docs()
    assert set(every) == {f.name for f in dataclasses.fields(Config)}
    assert every["decode"]["beam_size"].flags == ("--beam", "-b")


def test_config_of_a_model_reads_back(tiny_model, tmp_path):
    result = ok(run("config", "-m", tiny_model))
    path = tmp_path / "model.yaml"
    path.write_text(result.stdout)
    assert config_from_dict(load_yaml(path), str(path)) == load_config(tiny_model)
    assert result.stdout.startswith(f"# The config of {tiny_model}")
    for args in ([], ["--defaults", "-m", tiny_model]):
        refused = run("config", *args)
        assert refused.exit_code == 2 and "give --defaults or --model DIR" in refused.stderr


# --- average --last, tune-alpha with beam 1 ----------------------------------------------------------
@pytest.fixture(scope="module")
def kept_two(tmp_path_factory, reverse_files):
    """20 steps validated every 10, keeping the last 2 checkpoints (train.average_last=2); beam 1."""
    from seq2attn.run.train import train

    out = tmp_path_factory.mktemp("surface") / "m"
    cfg = resolve_config(
        preset=CORPORA["reverse"].preset,
        sets=["model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16", "train.threads=1",
              "train.max_steps=20", "train.validate_every=10", "train.average_last=2", "data.dev_size=40",
              "train.attention_image=false", "train.curve=false", "decode.beam_size=1"],
        flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                        "dev": [str(p) for p in reverse_files["dev"]]}})
    train(cfg, out)
    return out


@pytest.fixture()
def model_copy(kept_two, tmp_path):
    shutil.copytree(kept_two, tmp_path / "m")
    return tmp_path / "m"


def test_average_last_defaults_to_the_models_average_last(model_copy, tiny_model):
    assert "default: the model's train.average_last" in " ".join(run("average", "--help").stdout.split())
    result = ok(run("average", "-m", model_copy, "--device", "cpu"))
    assert "average of steps 10, 20" in result.stderr
    one_line_error(run("average", "-m", tiny_model, "--device", "cpu"), "train.average_last", "--last N")


def test_tune_alpha_says_when_the_models_beam_is_1(model_copy):
    note = "decodes with greedy search (decode.beam_size 1), where alpha has no effect"
    result = ok(run("tune-alpha", "-m", model_copy, "--alphas", "0,1", "--device", "cpu"))
    assert [line for line in result.stderr.splitlines() if note in line] == [
        f"note: {model_copy} {note}; it acts when you translate with --beam 5 (or any beam of 2 or more)"]
    cfg = load_config(model_copy)
    save_config(model_copy, dataclasses.replace(cfg, decode=dataclasses.replace(cfg.decode, beam_size=3)))
    result = ok(run("tune-alpha", "-m", model_copy, "--alphas", "0,1", "--device", "cpu"))
    assert "beam 3" in result.stderr and note not in result.stderr


# --- Translation: repr, notebook, links, JSONL -------------------------------------------------------
def _translation(hyp="c b a", attention=True):
    weights = torch.tensor([[0.0, 0.1, 0.8, 0.1], [0.1, 0.7, 0.1, 0.1], [0.9, 0.0, 0.0, 0.1]])
    return Translation("a b <c>", hyp, -1.23456, ["a", "b", "<c>", "</s>"], ["c", "b", "a"],
                       weights if attention else None)


def test_repr_is_one_short_line():
    assert repr(_translation()) == "Translation('c b a', score=-1.235, attention=3x4)"
    long = _translation(hyp="word " * 50, attention=False)
    assert "\n" not in repr(long) and len(repr(long)) < 100 and repr(long).endswith("attention=None)")
    with_list = _translation()
    with_list.nbest = [with_list, _translation()]
    assert repr(with_list).endswith("attention=3x4, nbest=2)")


def test_repr_html_is_the_heatmap():
    page = _translation()._repr_html_()
    assert page.startswith("<table") and page.count("<tr>") == 1 + 3 and page.count("<td") == 3 * 4
    assert "&lt;c&gt;" in page and "<c>" not in page  # tokens are escaped
    shades = [float(x) for x in re.findall(r"background:rgba\(31,119,180,([\d.]+)\)", page)]
    assert shades == pytest.approx(_translation().attention.flatten().tolist(), abs=1e-3)
    assert "no attention" in _translation(attention=False)._repr_html_()


def test_links_without_attention_are_none_as_the_docs_say():
    assert sorted(_translation().links) == [(0, 2), (1, 1), (2, 0)]
    assert _translation(attention=False).links is None
    api = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    assert re.search(r"\| `links` \|[^\n]*`None`", api)
    with pytest.raises(seq2attn.Seq2AttnError, match="no attention"):
        pharaoh(_translation(attention=False))  # JSONL needs the attention; it never writes no links


def test_jsonl_rows_and_the_api_agree_field_by_field(tiny_model):
    lines = ["a b c d", "", "e f g h i j"]
    model = seq2attn.load(tiny_model, device="cpu")
    translations = model.translate(lines, beam=2, nbest=2)
    result = ok(run("translate", "-m", tiny_model, "--format", "jsonl", "--beam", "2", "--nbest", "2", "-q",
                    input="".join(x + "\n" for x in lines)))
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(rows) == len(translations)
    for row, t in zip(rows, translations):
        assert set(row) == {"src", "hyp", "score", "norm_score", "alignment", "src_tokens", "hyp_tokens", "nbest"}
        assert (row["src"], row["hyp"], row["src_tokens"], row["hyp_tokens"]) == (
            t.src, t.hyp, t.src_tokens, t.hyp_tokens)
        assert row["score"] == pytest.approx(t.score, abs=1e-5)
        assert row["norm_score"] == pytest.approx(t.norm_score, abs=1e-5)
        assert row["alignment"] == " ".join(f"{i}-{j}" for i, j in t.links)
        assert [x["hyp"] for x in row["nbest"]] == [x.hyp for x in t.nbest or [t]]
    assert rows[0]["src_tokens"][-1] == "</s>" and rows[1]["src_tokens"] == []
