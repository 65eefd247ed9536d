"""Every recipe under recipes/ is a valid config for the pair and model its name gives, and its
header names the committed results file its figures come from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seq2attn.config import resolve_config

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


def test_the_issue_s_recipes_exist():
    assert {p.stem for p in RECIPES} >= {
        "multi30k-de-en-transformer", "multi30k-de-en-gru-bahdanau", "multi30k-en-de-transformer",
        "multi30k-fr-en-transformer", "multi30k-en-fr-transformer", "multi30k-cs-en-transformer"}


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_resolves_for_its_pair_and_model(path):
    corpus, src, tgt, model = path.stem.split("-", 3)
    cfg = resolve_config(file=path)
    assert (cfg.data.corpus, cfg.data.src_lang, cfg.data.tgt_lang) == (corpus, src, tgt)
    assert cfg.model.backend == ("transformer" if model == "transformer" else "rnn")
    assert cfg.train.max_minutes is not None and cfg.train.average_last is not None
    assert cfg.train.tune_alpha  # the length penalty is chosen on each run's own dev set
    # a recipe's header says whether it was measured, and a measured one names its result file
    text = path.read_text(encoding="utf-8")
    assert re.search(r"MEASURED 2026-\d\d-\d\d", text) and f"benchmarks/results/recipes/{src}-{tgt}-" in text
    assert "NOT YET MEASURED" not in text
    named = re.findall(r"benchmarks/results/recipes/[\w.-]+\.json", text)
    assert named and all((ROOT / n).is_file() for n in named)  # the figures it quotes are committed


def test_the_en_de_recipe_is_the_multi30k_transformer_preset():
    # recipes v2 (issue 23): what `--corpus multi30k --backend transformer` gives, with a 30-minute budget
    from seq2attn.text.corpora import CORPORA

    recipe = resolve_config(file=ROOT / "recipes" / "multi30k-en-de-transformer.yaml")
    preset = resolve_config(preset=CORPORA["multi30k"].preset_for("transformer"), sets=[
        "data.corpus=multi30k", "data.src_lang=en", "data.tgt_lang=de", "model.backend=transformer",
        "train.max_minutes=30"])
    assert recipe == preset  # decode.alpha too: each run chooses it on dev (train.tune_alpha)


def test_the_de_en_transformer_recipe_is_the_preset_with_120_minutes():
    # recipes v2 (issue 23): the de->en target row is the preset given the issue's 120 minutes
    from seq2attn.text.corpora import CORPORA

    recipe = resolve_config(file=ROOT / "recipes" / "multi30k-de-en-transformer.yaml")
    preset = resolve_config(preset=CORPORA["multi30k"].preset_for("transformer"), sets=[
        "data.corpus=multi30k", "data.src_lang=de", "data.tgt_lang=en", "model.backend=transformer",
        "train.max_minutes=120"])
    assert recipe == preset


def test_the_de_en_gru_recipe_is_the_rnn_preset_with_120_minutes():
    # recipes v2 (issue 23): the GRU + Bahdanau target row is `--corpus multi30k` (backend rnn) with 120 minutes
    from seq2attn.text.corpora import CORPORA

    recipe = resolve_config(file=ROOT / "recipes" / "multi30k-de-en-gru-bahdanau.yaml")
    preset = resolve_config(preset=CORPORA["multi30k"].preset_for("rnn"), sets=[
        "data.corpus=multi30k", "data.src_lang=de", "data.tgt_lang=en", "model.backend=rnn",
        "train.max_minutes=120"])
    assert recipe == preset
    assert recipe.model.decoder == "bahdanau"
