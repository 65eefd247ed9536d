"""int8 decoding: dynamically quantized GRU and Linear weights, on CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import seq2attn
from seq2attn.cli.main import app
from seq2attn.errors import ConfigError
from seq2attn.nn.runtime import check_precision, for_precision


@pytest.fixture(scope="module")
def model(tiny_model):
    return seq2attn.load(tiny_model, device="cpu")


def test_int8_copy_quantizes_gru_and_linear_and_leaves_the_model(model):
    fp32 = model.engine.loaded.model
    q = for_precision(fp32, "int8")
    assert q is not fp32 and for_precision(fp32, "int8") is q and for_precision(fp32, "fp32") is fp32
    dynamic = torch.ao.nn.quantized.dynamic
    assert isinstance(q.encoder.rnn, dynamic.GRU) and isinstance(q.decoder.rnn, dynamic.GRU)
    assert isinstance(q.decoder.output, dynamic.Linear)
    assert isinstance(fp32.decoder.rnn, nn.GRU) and isinstance(fp32.decoder.output, nn.Linear)


def test_int8_translations_agree_with_fp32(model, reverse_files):
    lines = reverse_files["dev"][0].read_text().splitlines()[:100]
    before = [t.hyp for t in model.translate(lines, beam=3)]
    q = model.translate(lines, beam=3, precision="int8")
    assert sum(a == t.hyp for a, t in zip(before, q)) >= 70  # a 60-step model: near-ties flip
    for t in q:
        if t.hyp_tokens:
            assert torch.allclose(t.attention.sum(-1), torch.ones(len(t.hyp_tokens)), atol=1e-4)
    assert [t.hyp for t in model.translate(lines, beam=3)] == before  # fp32 untouched
    forced = model.align("a b c", "c b a", precision="int8")
    assert forced.attention.shape == (3, 4)


def test_cli_precision_int8(tiny_model):
    result = CliRunner().invoke(app, ["translate", "-m", str(tiny_model), "--precision", "int8", "--device", "cpu"],
                                input="a b c\nd e\n")
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2 and result.stderr == ""


def test_int8_is_cpu_only():
    with pytest.raises(ConfigError, match="int8 .* runs on CPU"):
        check_precision("int8", torch.device("cuda"), option="decode.precision")
