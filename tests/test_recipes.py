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


# recipes v2 (issue 23): each of these is what `--corpus multi30k` gives for its pair and backend,
# with the budget of its target row (decode.alpha too: each run chooses it on dev, train.tune_alpha)
PRESET_RECIPES = [("multi30k-en-de-transformer", "transformer", 30),
                  ("multi30k-de-en-transformer", "transformer", 120),
                  ("multi30k-en-fr-transformer", "transformer", 120),
                  ("multi30k-fr-en-transformer", "transformer", 120),
                  ("multi30k-cs-en-transformer", "transformer", 120),
                  ("multi30k-de-en-gru-bahdanau", "rnn", 120)]


@pytest.mark.parametrize(("stem", "backend", "minutes"), PRESET_RECIPES, ids=[s for s, _, _ in PRESET_RECIPES])
def test_the_v2_recipes_are_the_multi30k_preset_with_their_budget(stem, backend, minutes):
    from seq2attn.text.corpora import CORPORA

    _, src, tgt, _ = stem.split("-", 3)
    recipe = resolve_config(file=ROOT / "recipes" / f"{stem}.yaml")
    preset = resolve_config(preset=CORPORA["multi30k"].preset_for(backend), sets=[
        "data.corpus=multi30k", f"data.src_lang={src}", f"data.tgt_lang={tgt}", f"model.backend={backend}",
        f"train.max_minutes={minutes}"])
    assert recipe == preset
