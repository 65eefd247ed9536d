"""Choosing the length penalty on the dev set: ``seq2attn tune-alpha`` (and ``train.tune_alpha``).

Beam search scores a hypothesis by its log-probability over GNMT's ``((5 + length) / 6) ** alpha``.
With alpha 0 the shortest hypotheses win too often; how much to correct depends on the model, so
the value is chosen where the issue tracker and every NMT paper choose it: on the dev set, never
on test. Each candidate alpha decodes the model's dev set (the one training validated on, from its
corpus store) with beam search through the weights ``translate`` loads by default; the alpha with
the highest dev BLEU (the smaller one on a tie) becomes the model's ``decode.alpha`` in
``config.yaml``, so ``translate``, ``evaluate`` and the Python API use it from then on. A row
``{"kind": "alpha", ...}`` in ``metrics.jsonl`` records every candidate's score.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from seq2attn.errors import ConfigError
from seq2attn.modeldir.checkpoint import check_contained, load, load_config, save_config
from seq2attn.run.metricslog import append_metrics
from seq2attn.run.rundir import RunLock
from seq2attn.run.validation import translate_ids
from seq2attn.text.metrics import corpus_scores

# the Multi30k Transformer recipe chose 1.8, the GRU 0; a small Transformer probe (issue 23) chose 2.2,
# the old grid's edge, so the grid goes on to 3.0
ALPHAS = (0.0, 0.6, 1.0, 1.4, 1.8, 2.2, 2.6, 3.0)


def parse_alphas(text: str) -> list[float]:
    """``"0,0.6,1"`` -> [0.0, 0.6, 1.0]; each a finite number >= 0."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"--alphas {text!r}: {part.strip()!r} is not a number") from None
        if not 0 <= value < 100:
            raise ConfigError(f"--alphas {text!r}: each alpha must be >= 0 (and below 100)")
        values.append(value)
    if not values:
        raise ConfigError("--alphas: give at least one value")
    return sorted(set(values))


def tune_alpha(directory: Path, *, alphas: Sequence[float] = ALPHAS, beam: int | None = None,
               device: torch.device | str = "cpu") -> dict[str, Any]:
    """Score each alpha on ``directory``'s dev set, write the best into its config.yaml and log it;
    returns the logged row. The directory's lock is held meanwhile (a training run that tunes at its
    end holds it already)."""
    if beam is not None and beam < 2:
        raise ConfigError(f"--beam {beam}: the length penalty only acts in beam search (beam >= 2)")
    check_contained(directory)
    with RunLock(directory, reentrant=True):
        return _tune(directory, alphas=alphas, beam=beam, device=device)


def _tune(directory: Path, *, alphas: Sequence[float], beam: int | None,
          device: torch.device | str) -> dict[str, Any]:
    from seq2attn.run.traindata import model_dev_data

    cfg = load_config(directory)
    beam = beam or (cfg.decode.beam_size if cfg.decode.beam_size > 1 else 5)
    loaded = load(directory, which="auto", device=device)
    text, (src_ids, _) = model_dev_data(directory, cfg)
    if not src_ids:
        raise ConfigError(f"{directory}: its dev set is empty; no alpha can be chosen")
    start = time.monotonic()
    loaded.model.eval()
    scores = {}
    with torch.no_grad():
        for alpha in alphas:
            trial = dataclasses.replace(cfg, decode=dataclasses.replace(cfg.decode, alpha=alpha),
                                        train=dataclasses.replace(cfg.train, valid_beam=beam))
            hyps = loaded.codec.decode(translate_ids(loaded.model, src_ids, cfg=trial, device=torch.device(device)),
                                       side="tgt")
            (bleu,) = corpus_scores(hyps, [text.tgt], metrics=("bleu",))
            scores[alpha] = round(bleu.score, 4)
    chosen = max(scores, key=lambda a: (scores[a], -a))
    tuned = dataclasses.replace(cfg, decode=dataclasses.replace(cfg.decode, alpha=chosen))
    save_config(directory, tuned)
    row = {"kind": "alpha", "alpha": chosen, "previous_alpha": cfg.decode.alpha, "beam": beam,
           "weights": loaded.which, "dev_bleu_by_alpha": {f"{a:g}": s for a, s in scores.items()},
           "dev_sentences": len(src_ids), "seconds": round(time.monotonic() - start, 1)}
    append_metrics(directory, row)
    return row
