"""Choosing the length penalty on dev: ``seq2attn tune-alpha`` and ``train.tune_alpha``."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

import seq2attn
from seq2attn.cli.main import app
from seq2attn.config import resolve_config
from seq2attn.errors import ConfigError
from seq2attn.modeldir.checkpoint import load_config
from seq2attn.run.alpha import parse_alphas, tune_alpha
from seq2attn.run.train import train
from seq2attn.text.corpora import CORPORA

runner = CliRunner()


@pytest.fixture
def model_copy(tiny_model, tmp_path):
    """tune-alpha rewrites config.yaml: work on a copy of the shared tiny model."""
    return shutil.copytree(tiny_model, tmp_path / "m")


def _rows(directory):
    return [json.loads(x) for x in (directory / "metrics.jsonl").read_text().splitlines() if x.strip()]


def test_the_best_dev_alpha_becomes_the_default(model_copy):
    before = load_config(model_copy)
    result = runner.invoke(app, ["tune-alpha", "-m", str(model_copy), "--alphas", "1.4,0,0.6", "--beam", "3",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    row = _rows(model_copy)[-1]
    assert row["kind"] == "alpha" and row["beam"] == 3 and list(row["dev_bleu_by_alpha"]) == ["0", "0.6", "1.4"]
    best = max(row["dev_bleu_by_alpha"].values())
    # the chosen one scores best; on a tie, the smallest such alpha
    assert row["alpha"] == min(float(a) for a, b in row["dev_bleu_by_alpha"].items() if b == best)
    after = load_config(model_copy)
    assert after.decode.alpha == row["alpha"] and row["previous_alpha"] == before.decode.alpha
    assert after.model == before.model and after.train == before.train
    assert f"decode.alpha = {row['alpha']:g} saved" in result.stderr
    # translate and the API now decode with it
    assert seq2attn.load(model_copy, device="cpu").decode_config().alpha == row["alpha"]


def test_scores_match_a_beam_decoding_of_the_dev_set(model_copy, reverse_files):
    import sacrebleu

    row = tune_alpha(model_copy, alphas=[0.6], beam=2)
    dev_src, dev_tgt = (p.read_text().splitlines() for p in reverse_files["dev"])
    hyps = [t.hyp for t in seq2attn.load(model_copy, device="cpu").translate(dev_src, beam=2, alpha=0.6)]
    assert row["dev_bleu_by_alpha"]["0.6"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [dev_tgt]).score, abs=1e-3)


@pytest.mark.parametrize("args, needle", [
    (["--alphas", "0,x"], "'x' is not a number"),
    (["--alphas", "-1"], "each alpha must be >= 0"),
    (["--beam", "1"], "only acts in beam search"),
])
def test_bad_options_are_one_line_and_change_nothing(model_copy, args, needle):
    config = (model_copy / "config.yaml").read_bytes()
    result = runner.invoke(app, ["tune-alpha", "-m", str(model_copy), *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and needle in lines[0]
    assert (model_copy / "config.yaml").read_bytes() == config


def test_parse_alphas_sorts_and_dedupes():
    assert parse_alphas("1, 0,1.0,0.6") == [0.0, 0.6, 1.0]
    with pytest.raises(ConfigError):
        parse_alphas("")


def test_train_tune_alpha_chooses_at_the_end(tmp_path, reverse_files):
    cfg = resolve_config(preset=CORPORA["reverse"].preset, sets=[
        "train.max_steps=20", "train.validate_every=20", "model.emb_size=16", "model.hidden_size=16",
        "model.dec_hidden_size=16", "train.tune_alpha=true", "decode.beam_size=2", "train.attention_image=false"],
        flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                        "dev": [str(p) for p in reverse_files["dev"]]}})
    train(cfg, tmp_path / "m")
    row = _rows(tmp_path / "m")[-1]
    assert row["kind"] == "alpha" and row["beam"] == 2 and set(row["dev_bleu_by_alpha"]) == {"0", "0.6", "1", "1.4", "1.8", "2.2", "2.6", "3"}
    assert load_config(tmp_path / "m").decode.alpha == row["alpha"]
