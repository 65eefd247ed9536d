"""Config precedence and validation messages that name the field and the valid values."""

from __future__ import annotations

import pytest

from seq2attn.config import Config, config_from_dict, parse_set, resolve_config, to_dict
from seq2attn.errors import ConfigError


def test_precedence_defaults_preset_file_set_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train: {lr: 0.01, seed: 5}\nmodel: {emb_size: 32}\n")
    cfg = resolve_config(preset={"train": {"lr": 0.5}, "model": {"hidden_size": 64}}, file=f,
                         sets=["train.seed=6"], flags={"train": {"seed": 7, "device": None}})
    assert cfg.train.lr == 0.01  # file over preset
    assert cfg.model.hidden_size == 64  # preset over default
    assert cfg.model.emb_size == 32
    assert cfg.train.seed == 7  # flag over --set over file
    assert cfg.train.device == "auto"  # a None flag changes nothing


@pytest.mark.parametrize("item, section, key, value", [
    ("train.lr=0.5", "train", "lr", 0.5),
    ("train.max_steps=null", "train", "max_steps", None),
    ("model.decoder=luong", "model", "decoder", "luong"),
    ("tokenizer.joint=false", "tokenizer", "joint", False),
])
def test_parse_set(item, section, key, value):
    assert parse_set(item) == (section, key, value)


def test_exponent_notation_is_a_number():
    assert resolve_config(sets=["train.lr=3e-4"]).train.lr == 3e-4  # YAML 1.1 reads "3e-4" as a string


@pytest.mark.parametrize("sets, needle", [
    (["model.attention=nope"], "model.attention='nope'; choose one of: "),
    (["tokenizer.kind=sentencepiece"], "choose one of: bpe, unigram, wordlevel, char"),
    (["train.lr=-1"], "train.lr=-1.0; must be > 0"),
    (["model.dropout=1.5"], "model.dropout"),
    (["train.max_steps=2.5"], "train.max_steps: expected an integer"),
    (["tokenizer.joint=maybe"], "tokenizer.joint: expected true or false"),
    (["bogus.x=1"], "unknown section 'bogus'"),
    (["train.lrr=1"], "unknown option train.lrr; choose one of: lr,"),
])
def test_validation_names_field_and_choices(sets, needle):
    with pytest.raises(ConfigError) as e:
        resolve_config(sets=sets)
    assert needle in str(e.value)


def test_round_trip_through_dict():
    cfg = resolve_config(sets=["data.train=[a.de, a.en]", "train.max_minutes=2"])
    assert config_from_dict(to_dict(cfg), "x") == cfg
    assert cfg.data.train == ("a.de", "a.en")
    assert to_dict(Config())["train"]["max_steps"] is None


def test_config_is_a_leaf_module():
    # importing the config pulls in neither torch nor the models: they import it, not the other way
    import subprocess
    import sys

    code = ("import sys, seq2attn.config; bad = [m for m in sys.modules if m == 'torch' or "
            "m.startswith(('seq2attn.nn.models', 'seq2attn.text.tokenizer', 'seq2attn.nn.attention'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_backend_choice_has_a_registered_model():
    from typing import get_args, get_type_hints

    from seq2attn.config import ModelConfig
    from seq2attn.nn.models import BACKENDS, build_model, position_limit

    assert set(get_args(get_type_hints(ModelConfig)["backend"])) == set(BACKENDS)
    for name in BACKENDS:
        cfg = ModelConfig(backend=name, emb_size=16, hidden_size=8, dec_hidden_size=16, ff_size=32, heads=2,
                          max_positions=50)
        assert isinstance(build_model(cfg, src_vocab=20, tgt_vocab=20), BACKENDS[name])
    assert position_limit(ModelConfig(backend="transformer", max_positions=50)) == 50
    assert position_limit(ModelConfig(backend="rnn")) is None
