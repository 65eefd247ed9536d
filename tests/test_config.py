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
