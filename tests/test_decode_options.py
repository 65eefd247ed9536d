"""Each decoding option is declared once, in DecodeConfig: the CLI flags of translate, evaluate and
align, Model.translate's keywords and the CTranslate2 mapping all follow from that declaration."""

from __future__ import annotations

import dataclasses
import re

import pytest
import typer
from typer.testing import CliRunner

from seq2attn.cli.common import decode_options
from seq2attn.cli.main import app
from seq2attn.config import DecodeConfig
from seq2attn.errors import ConfigError

FIELDS = dataclasses.fields(DecodeConfig)


def public(f) -> str:
    return f.metadata.get("name") or f.name


def flat_help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", re.sub(r"\x1b\[[0-9;]*m", "", result.output))


@pytest.mark.parametrize("command", ["translate", "evaluate", "align"])
def test_every_decoding_option_is_a_flag_of_every_decoding_command(command):
    text = flat_help(command)
    for f in FIELDS:
        if f.name == "nbest" and command != "translate":
            continue  # evaluate and align show one translation per sentence
        flag = "--" + public(f).replace("_", "-")
        assert re.search(re.escape(flag) + r"(?![-\w])", text), f"{command} --help lacks {flag}"
        assert f"decode.{f.name}" in text  # the help names the config key it overrides
    for shared in ("-b, --beam", "-q, --quiet", "--threads", "--device", "--weights"):
        assert shared in text, f"{command} --help lacks {shared}"


def test_every_field_declares_help_and_an_example():
    for f in FIELDS:
        assert f.metadata["help"] and f.metadata["example"].startswith("--"), f.name


def test_flags_are_derived_from_the_fields():
    """A command decorated with decode_options receives what was given under the public names, and
    nothing for flags left out (so the model's saved decode.* applies)."""
    seen = {}
    cli = typer.Typer()

    @cli.command()
    @decode_options()
    def probe(decode_options: dict | None = None) -> None:
        seen.update(decode_options)

    @cli.command()
    def other() -> None: ...

    result = CliRunner().invoke(cli, ["probe", "-b", "3", "--top-p", "0.5", "--sample", "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    assert seen == {"beam": 3, "top_p": 0.5, "sample": True, "precision": "bf16"}
    seen.clear()
    assert CliRunner().invoke(cli, ["probe"]).exit_code == 0 and seen == {}
    bad = CliRunner().invoke(cli, ["probe", "--precision", "fp8"])
    assert bad.exit_code == 2 and "fp8" in bad.output


def test_ranges_live_on_the_dataclass():
    with pytest.raises(ConfigError, match=r"decode\.beam_size=0; must be >= 1"):
        DecodeConfig(beam_size=0)
    with pytest.raises(ConfigError, match=r"decode\.top_p=1\.5; must be in \(0, 1\] or null"):
        DecodeConfig(top_p=1.5)
    with pytest.raises(ConfigError, match=r"decode\.temperature=0; must be > 0"):
        DecodeConfig(temperature=0)
    assert DecodeConfig(top_k=None, top_p=1.0).top_p == 1.0


def test_model_translate_names_an_unknown_option(tiny_model):
    import seq2attn

    m = seq2attn.load(tiny_model)
    with pytest.raises(ConfigError, match=r"unknown decoding option 'beam_width'; choose from: beam, alpha"):
        m.translate("21 November 2026", beam_width=3)
    with pytest.raises(ConfigError, match="decode.beam_size=0"):
        m.translate("21 November 2026", beam=0)
    assert m.decode_config(beam=3, top_p=0.5).beam_size == 3
    with pytest.raises(ConfigError, match="not both"):
        m.translate("x", decode=m.decode_config(), beam=2)


@pytest.mark.parametrize("bad", [b"21 November 2026", None, 7, ["ok", None]])
def test_model_translate_refuses_what_is_not_text(tiny_model, bad):
    import seq2attn

    with pytest.raises(seq2attn.Seq2AttnError, match="give a string or a list of strings"):
        seq2attn.load(tiny_model).translate(bad)


def test_ctranslate2_arguments_follow_the_declaration():
    pytest.importorskip("ctranslate2")
    from seq2attn.inference.ct2 import CT2Engine

    searching = CT2Engine._options(None, DecodeConfig(beam_size=4, nbest=2, no_repeat_ngram=3, top_k=5),
                                   attention=False)
    assert searching["beam_size"] == 4 and searching["num_hypotheses"] == 2
    assert searching["no_repeat_ngram_size"] == 3 and searching["max_batch_size"] == 4096
    assert not any(k.startswith("sampling_") for k in searching)  # top_k applies to sampling only
    sampling = CT2Engine._options(None, DecodeConfig(sample=True, top_p=0.9, temperature=0.7), attention=True)
    assert sampling["beam_size"] == 1 and sampling["sampling_topp"] == 0.9
    assert sampling["sampling_topk"] == 0 and sampling["sampling_temperature"] == 0.7
    mapped = {f.metadata["ct2"][0] for f in FIELDS if f.metadata.get("ct2")}
    assert mapped <= set(sampling)
