"""CTranslate2 export: the same translations, scores and attention as PyTorch decoding."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from typer.testing import CliRunner

import seq2attn
from seq2attn.cli.main import app
from seq2attn.config import resolve_config
from seq2attn.inference.export import export_ctranslate2
from seq2attn.modeldir.checkpoint import save_checkpoint, save_setup
from seq2attn.nn.models import build_model
from seq2attn.run.train import train
from seq2attn.text.corpora import CORPORA, generate
from seq2attn.text.tokenizer import TextCodec

pytest.importorskip("ctranslate2")
runner = CliRunner()
SMALL = ["model.backend=transformer", "model.emb_size=32", "model.ff_size=64", "model.enc_layers=1",
         "model.dec_layers=2", "model.heads=4"]


def _files(reverse_files):
    return {"data": {"train": [str(p) for p in reverse_files["train"]], "dev": [str(p) for p in reverse_files["dev"]]}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, reverse_files):
    """A reverse Transformer trained for a few seconds, and its export."""
    d = tmp_path_factory.mktemp("ct2")
    cfg = resolve_config(preset=CORPORA["reverse"].preset, flags=_files(reverse_files), sets=[
        *SMALL, "model.tie_embeddings=true", "train.schedule=noam", "train.warmup_steps=30", "train.lr=0.005",
        "train.max_steps=150", "train.validate_every=150", "data.dev_size=20", "train.attention_image=false"])
    train(cfg, d / "m")
    export_ctranslate2(d / "m", d / "e")
    return d / "m", d / "e"


@pytest.fixture(scope="module")
def dev_sources(reverse_files):
    return reverse_files["dev"][0].read_text().splitlines()


def test_greedy_identical_and_beam_equal(trained, dev_sources):
    ours, theirs = (seq2attn.load(p, device="cpu") for p in trained)
    assert theirs.engine.name == "ctranslate2" and ours.engine.name == "torch"
    a, b = ours.translate(dev_sources, beam=1), theirs.translate(dev_sources, beam=1)
    assert [x.hyp for x in a] == [x.hyp for x in b]
    for x, y in zip(a, b):
        assert x.src_tokens == y.src_tokens and x.hyp_tokens == y.hyp_tokens
        assert x.score - 1e-4 <= y.score <= x.score + 0.3  # CTranslate2 drops PAD/BOS before its softmax
        assert torch.allclose(x.attention, y.attention, atol=1e-4)
    a, b = ours.translate(dev_sources, beam=5, nbest=2), theirs.translate(dev_sources, beam=5, nbest=2)
    assert sum(x.hyp == y.hyp for x, y in zip(a, b)) >= 0.99 * len(a)
    for x, y in zip(a, b):
        if x.hyp == y.hyp:  # the first attention row is the one CTranslate2 gets wrong in batched beams
            assert torch.allclose(x.attention, y.attention, atol=1e-4)
        assert len(y.nbest) == 2 and y.nbest[0] is y


def test_without_attention_and_per_sentence_limits(trained, dev_sources):
    ours, theirs = (seq2attn.load(p, device="cpu") for p in trained)
    with_att = theirs.translate(dev_sources, beam=5)
    without = theirs.translate(dev_sources, beam=5, attention=False)
    assert [x.hyp for x in without] == [x.hyp for x in with_att] and all(x.attention is None for x in without)
    assert without[0].links is None
    with pytest.raises(seq2attn.Seq2AttnError, match="no attention"):
        theirs.word_alignment(without[0])
    # short limits (half the source + 1): one chunk holds sentences of several lengths, so the
    # shorter ones are cut by their own limit, as in PyTorch decoding
    texts = dev_sources[:40]
    a = ours.translate(texts, beam=1, max_len_a=0.5, max_len_b=1, attention=False)
    b = theirs.translate(texts, beam=1, max_len_a=0.5, max_len_b=1, attention=False)
    assert len({len(x.src_tokens) for x in a}) > 3
    assert [x.hyp_tokens for x in a] == [x.hyp_tokens for x in b]
    assert all(len(x.hyp_tokens) <= int(0.5 * (len(x.src_tokens) - 1) + 1) for x in b)
    a = ours.translate(texts, beam=4, max_len_a=0.5, max_len_b=1, attention=False)
    b = theirs.translate(texts, beam=4, max_len_a=0.5, max_len_b=1, attention=False)
    assert sum(x.hyp_tokens == y.hyp_tokens for x, y in zip(a, b)) >= 0.95 * len(a)


def test_an_export_decodes_with_alpha_0(tmp_path, trained):
    """A model trained with a GNMT length penalty still exports: the export's saved alpha is 0."""
    model_dir, _ = trained
    cfg = yaml.safe_load((model_dir / "config.yaml").read_text())
    cfg["decode"]["alpha"] = 1.0
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = export_ctranslate2(copy, tmp_path / "e")
    theirs = seq2attn.load(out, device="cpu")
    assert theirs.cfg.decode.alpha == 0.0 and theirs.translate("a b c", beam=3).hyp
    with pytest.raises(seq2attn.Seq2AttnError, match="length penalty is not GNMT's"):
        theirs.translate("a b c", beam=3, alpha=1.0)


def test_forced_alignment_through_ctranslate2(trained):
    ours, theirs = (seq2attn.load(p, device="cpu") for p in trained)
    x, y = ours.align("a b c d", "d c b a"), theirs.align("a b c d", "d c b a")
    assert y.hyp == "d c b a" and x.score == pytest.approx(y.score, abs=1e-3)
    assert torch.allclose(x.attention, y.attention, atol=1e-4)


def _random_model_dir(tmp_path, reverse_files, sets):
    """A model directory with freshly initialized weights: enough to compare two runtimes."""
    cfg = resolve_config(preset=CORPORA["reverse"].preset, flags=_files(reverse_files), sets=[*SMALL, *sets])
    data = generate("reverse", 300, seed=4)
    codec = TextCodec.train(cfg.tokenizer, data.src, data.tgt)
    torch.manual_seed(0)
    model = build_model(cfg.model, src_vocab=codec.vocab_size("src"), tgt_vocab=codec.vocab_size("tgt"),
                        joint=codec.joint).eval()
    out = tmp_path / "m"
    out.mkdir()
    save_setup(out, cfg, codec)
    save_checkpoint(out, model, which=["best"], info={"step": 0, "dev_bleu": 0.0})
    return out


@pytest.mark.parametrize("sets", [
    ["model.norm=post", "model.positional=learned", "model.activation=gelu"],
    ["tokenizer.joint=false", "model.share_embeddings=false", "model.align_layer=0"],
])
def test_architecture_variants_export(tmp_path, reverse_files, sets):
    model_dir = _random_model_dir(tmp_path, reverse_files, sets)
    export_ctranslate2(model_dir, tmp_path / "e")
    ours, theirs = seq2attn.load(model_dir, device="cpu"), seq2attn.load(tmp_path / "e", device="cpu")
    texts = ["a b c", "d e f g h i", "j"]
    for x, y in zip(ours.translate(texts, max_len_b=6), theirs.translate(texts, max_len_b=6)):
        # untrained: PAD and BOS hold real mass, which CTranslate2 drops before its softmax
        assert x.hyp_tokens == y.hyp_tokens and x.score <= y.score
        assert torch.allclose(x.attention, y.attention, atol=1e-4)


def test_cli_export_translate_align_info(trained, tmp_path):
    model_dir, _ = trained
    out = tmp_path / "int8"
    result = runner.invoke(app, ["export", "-m", str(model_dir), "--out", str(out), "--quantization", "int8"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["translate", "-m", str(out), "--format", "jsonl", "--beam", "3"],
                           input="a b c\n\nd e\n")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and len(rows) == 3 and rows[1]["hyp"] == "" and rows[0]["hyp_tokens"]
    result = runner.invoke(app, ["align", "-m", str(out), "a b c", "--target", "c b a", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["tgt_tokens"] == ["c", "b", "a"]
    result = runner.invoke(app, ["info", "-m", str(out)])
    assert result.exit_code == 0 and "int8 weights" in result.stdout.splitlines()[0]
    assert yaml.safe_load(result.stdout)["model"]["backend"] == "transformer"


@pytest.mark.parametrize("args, needle", [
    (["--quantization", "int4"], "'int4' is not one of 'int8', 'int8_float32', 'bfloat16', 'float32'"),
    (["--to", "onnx"], "'onnx' is not one of 'ctranslate2'"),
])
def test_bad_export_options(trained, tmp_path, args, needle):
    # choices are checked by the command line itself: a usage error, exit 2
    result = runner.invoke(app, ["export", "-m", str(trained[0]), "--out", str(tmp_path / "x"), *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("seq2attn: error:")
    assert needle in lines[0] and lines[0].endswith("(see: seq2attn export --help)")
    assert not (tmp_path / "x").exists()


def test_rnn_export_refused_in_one_line(tiny_model, tmp_path):
    result = runner.invoke(app, ["export", "-m", str(tiny_model), "--out", str(tmp_path / "x")])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "CTranslate2 runs Transformers only" in lines[0]
    assert not (tmp_path / "x").exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, needle", [
    (["--alpha", "0.6"], "CTranslate2's length penalty is not GNMT's"),
    (["--precision", "fp16"], "a CTranslate2 model runs fp32, bf16, int8"),
])
def test_ctranslate2_refuses_what_it_cannot_do(trained, args, needle):
    result = runner.invoke(app, ["translate", "-m", str(trained[1]), *args], input="a b\n")
    assert result.exit_code == 1 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_existing_out_is_refused(trained):
    result = runner.invoke(app, ["export", "-m", str(trained[0]), "--out", str(trained[1])])
    assert result.exit_code == 1 and "already exists" in result.stderr
