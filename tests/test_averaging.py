"""Checkpoint averaging, the weights a model directory loads by default, validation with beam
search, the learning curve, AdamW's decoupled weight decay and the cosine schedule."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from seq2attn.cli.main import app
from seq2attn.config import resolve_config
from seq2attn.errors import CheckpointError
from seq2attn.inference.translate import translate
from seq2attn.modeldir.checkpoint import choose_weights, load, read_manifest
from seq2attn.run.averaging import average_state
from seq2attn.run.curve import draw_curve
from seq2attn.run.train import train
from seq2attn.text.corpora import CORPORA
from seq2attn.text.metrics import corpus_scores
from seq2attn.text.textfiles import read_parallel

runner = CliRunner()


# --- averaging: known answers --------------------------------------------------------------------
def test_average_of_identical_checkpoints_is_that_checkpoint():
    torch.manual_seed(0)
    state = {"w": torch.randn(5, 7), "b": torch.randn(7).to(torch.bfloat16), "count": torch.tensor([3])}
    avg = average_state([state, state, state])
    for k, v in state.items():
        assert avg[k].dtype == v.dtype and torch.equal(avg[k], v)


def test_average_of_two_checkpoints_is_their_midpoint():
    a = {"w": torch.tensor([1.0, -2.0, 3.0]), "n": torch.tensor([1])}
    b = {"w": torch.tensor([2.0, 4.0, 0.0]), "n": torch.tensor([2])}
    avg = average_state([a, b])
    assert torch.equal(avg["w"], torch.tensor([1.5, 1.0, 1.5]))
    assert torch.equal(avg["n"], b["n"])  # not a float: taken from the newest


def test_average_refuses_different_tensors_and_nothing():
    with pytest.raises(CheckpointError, match="different tensors"):
        average_state([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}])
    with pytest.raises(CheckpointError, match="no checkpoints"):
        average_state([])


@pytest.mark.parametrize("best,averaged,expected", [
    (30.0, 31.0, "averaged"), (30.0, 30.0, "best"), (30.0, 29.0, "best"), (30.0, None, "best"),
])
def test_default_weights_are_the_better_of_best_and_averaged(best, averaged, expected):
    weights = {"best": {"dev_bleu": best}, "last": {"dev_bleu": 99.0}}
    if averaged is not None:
        weights["averaged"] = {"dev_bleu": averaged}
    assert choose_weights({"weights": weights}) == expected


# --- through training ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def averaged_model(tmp_path_factory, reverse_files):
    """Trained 30 steps, validated every 10 with beam 2 (alpha 1), keeping the last 2 checkpoints."""
    out = tmp_path_factory.mktemp("averaging") / "m"
    cfg = resolve_config(
        preset=CORPORA["reverse"].preset,
        sets=["model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16", "train.threads=1",
              "train.max_steps=30", "train.validate_every=10", "train.log_every=5", "train.average_last=2",
              "train.valid_beam=2", "decode.alpha=1.0", "train.attention_image=false"],
        flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                        "dev": [str(p) for p in reverse_files["dev"]]}})
    train(cfg, out)
    return out


def test_training_keeps_the_last_n_checkpoints_and_their_average(averaged_model):
    manifest = read_manifest(averaged_model)
    kept = manifest["snapshots"]
    assert [e["step"] for e in kept] == [20, 30]
    assert sorted(p.name for p in (averaged_model / "checkpoints").iterdir()) == [
        "step-00000020.safetensors", "step-00000030.safetensors"]
    averaged = manifest["weights"]["averaged"]
    assert averaged["steps"] == [20, 30] and averaged["file"] == "averaged.safetensors"
    tensors = [load_file(averaged_model / e["file"]) for e in kept]
    result = load_file(averaged_model / "averaged.safetensors")
    assert result.keys() == tensors[0].keys()
    for k, v in result.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, (tensors[0][k].double() + tensors[1][k].double()).div(2).to(v.dtype))
    rows = [json.loads(line) for line in (averaged_model / "metrics.jsonl").read_text().splitlines()]
    assert [r["steps"] for r in rows if r["kind"] == "averaged"] == [[20, 30]]
    assert all(r["valid_seconds"] > 0 and r["minutes"] > 0 for r in rows if r["kind"] == "valid")


def test_validation_with_beam_scores_what_beam_search_translates(averaged_model, reverse_files):
    """The dev BLEU a checkpoint records is the BLEU of translating the dev set with the model's
    decode settings at beam train.valid_beam."""
    best = load(averaged_model, which="best")
    dev = read_parallel(*reverse_files["dev"])
    decode = replace(best.cfg.decode, beam_size=2)
    hyps = [t.hyp for t in translate(best, dev.src, decode=decode).translations]
    bleu = next(s.score for s in corpus_scores(hyps, [dev.tgt], metrics=("bleu",)))
    assert round(bleu, 4) == best.info["dev_bleu"]


def test_curve_is_drawn_from_the_metrics(averaged_model, tmp_path):
    png = (averaged_model / "curve.png").read_bytes()
    assert png.startswith(b"\x89PNG") and not list(averaged_model.glob(".*.tmp"))
    # a line cut short by a crash does not stop the redraw
    (tmp_path / "metrics.jsonl").write_text((averaged_model / "metrics.jsonl").read_text() + '{"kind": "va')
    assert draw_curve(tmp_path).read_bytes().startswith(b"\x89PNG")


def test_average_command_and_weights_option(averaged_model, reverse_files, tmp_path):
    result = runner.invoke(app, ["average", "-m", str(averaged_model), "--last", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert read_manifest(averaged_model)["weights"]["averaged"]["steps"] == [30]
    # the average of one checkpoint is that checkpoint
    assert load_file(averaged_model / "averaged.safetensors").keys() == load_file(
        averaged_model / "last.safetensors").keys()
    for k, v in load_file(averaged_model / "averaged.safetensors").items():
        assert torch.equal(v, load_file(averaged_model / "last.safetensors")[k])
    result = runner.invoke(app, ["average", "-m", str(averaged_model), "--last", "3"])
    assert result.exit_code == 1 and "fewer than --last 3" in result.output
    assert load(averaged_model, which="averaged").which == "averaged"
    src = reverse_files["dev"][0]
    for weights, code, message in [("last", 0, ""), ("avg", 2, "'avg' is not one of 'best', 'last', 'averaged'")]:
        result = runner.invoke(app, ["translate", "-m", str(averaged_model), "-i", str(src), "-q", "--device", "cpu",
                                     "--weights", weights])
        assert result.exit_code == code and message in result.output
    info = runner.invoke(app, ["info", "-m", str(averaged_model)])
    assert all(f"  {w}: " in info.output for w in ("best", "last", "averaged"))


def test_weights_averaged_without_an_average_is_one_line(tiny_model, reverse_files):
    result = runner.invoke(app, ["evaluate", "-m", str(tiny_model), "--src", str(reverse_files["dev"][0]),
                                 "--ref", str(reverse_files["dev"][1]), "--weights", "averaged"])
    assert result.exit_code == 1
    assert "holds no averaged.safetensors; write it with: seq2attn average" in result.output
    result = runner.invoke(app, ["average", "-m", str(tiny_model), "--last", "2"])
    assert result.exit_code == 1 and "holds 0 validation checkpoint(s)" in result.output
