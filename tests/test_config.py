"""Config precedence and validation messages that name the field and the valid values."""

from __future__ import annotations

import dataclasses
import typing

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


def _bounded_fields():
    from seq2attn.config import _SECTION_TYPES

    for section, cls in _SECTION_TYPES.items():
        for f in dataclasses.fields(cls):
            for side in ("ge", "gt", "lt", "le"):
                if f.metadata.get(side) is not None:
                    yield pytest.param(section, cls, f.name, side, f.metadata[side], id=f"{section}.{f.name}.{side}")


@pytest.mark.parametrize("section, cls, name, side, limit", list(_bounded_fields()))
def test_every_range_is_checked_where_its_section_is_built(section, cls, name, side, limit):
    """Each declared bound, crossed by one step (or at the limit where it is strict), is refused with
    the section.key and the rule, by the section itself and through --set; the limit itself passes
    where the bound admits it."""
    is_int = int in (typing.get_args(typing.get_type_hints(cls)[name]) or (typing.get_type_hints(cls)[name],))
    step = 1 if is_int else 0.5
    bad = {"ge": limit - step, "gt": limit, "lt": limit, "le": limit + step}[side]
    with pytest.raises(ConfigError, match=rf"^{section}\.{name}=.*; must be"):
        cls(**{name: bad})
    with pytest.raises(ConfigError, match=rf"^{section}\.{name}=.*; must be"):
        resolve_config(sets=[f"{section}.{name}={bad}"])
    if side in ("ge", "le"):
        assert getattr(cls(**{name: limit}), name) == limit


def test_range_messages():
    from seq2attn.config import ModelConfig, TrainConfig

    for make, message in [
        (lambda: ModelConfig(dropout=1.0), "model.dropout=1.0; must be in [0, 1)"),
        (lambda: TrainConfig(lr_decay=1.0), "train.lr_decay=1.0; must be in (0, 1) or null"),
        (lambda: TrainConfig(average_span=0.0), "train.average_span=0.0; must be in (0, 1]"),
        (lambda: TrainConfig(max_steps=0), "train.max_steps=0; must be > 0 or null"),
        (lambda: TrainConfig(device="gpu"), "train.device='gpu'; choose one of: auto, cpu, cuda, cuda:N"),
        (lambda: TrainConfig(adam_betas=(0.9, 1.0)), "train.adam_betas=[0.9, 1.0]; both must be in [0, 1)"),
        (lambda: ModelConfig(attention="nope"), "model.attention='nope'; choose one of: dot,"),
    ]:
        with pytest.raises(ConfigError) as e:
            make()
        assert str(e.value).startswith(message), str(e.value)


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
