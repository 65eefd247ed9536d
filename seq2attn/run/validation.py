"""Scoring a model on the dev set: teacher-forced loss, then BLEU, chrF and exact match of its
translations (greedy, or beam search with ``train.valid_beam``)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from seq2attn.config import Config
from seq2attn.nn.batches import make_batches
from seq2attn.nn.loss import LossModel
from seq2attn.nn.search import search
from seq2attn.text.metrics import corpus_scores
from seq2attn.text.textfiles import Parallel
from seq2attn.text.tokenizer import TextCodec


@dataclass
class DevSet:
    text: Parallel
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]


def translate_ids(model: nn.Module, src_ids: Sequence[list[int]], *, cfg: Config,
                  device: torch.device) -> list[list[int]]:
    """Output ids for every source, in input order: greedy, or beam ``train.valid_beam``."""
    decode = replace(cfg.decode, beam_size=cfg.train.valid_beam or 1, nbest=1, sample=False)
    out: list[list[int]] = [[] for _ in src_ids]
    for batch in make_batches(src_ids, None, batch_tokens=decode.batch_tokens):
        for i, hyps in zip(batch.indices, search(model, batch.to(device), decode=decode)):
            out[i] = hyps[0].ids
    return out


@torch.no_grad()
def score_dev(model: nn.Module, dev: DevSet, *, cfg: Config, codec: TextCodec,
              device: torch.device) -> dict[str, Any]:
    """Dev loss and perplexity, BLEU, chrF, exact match, an example, and the seconds it all took."""
    start = time.monotonic()
    model.eval()
    loss_of = LossModel(model, label_smoothing=cfg.train.label_smoothing, precision=cfg.train.precision,
                        device=device)
    total, tokens = 0.0, 0
    for batch in make_batches(dev.src_ids, dev.tgt_ids, batch_tokens=cfg.train.batch_tokens):
        batch = batch.to(device)
        total += float(loss_of(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out))
        tokens += batch.n_tgt_tokens
    text = codec.decode(translate_ids(model, dev.src_ids, cfg=cfg, device=device), side="tgt")
    scores = {s.name: s.score for s in corpus_scores(text, [dev.text.tgt], metrics=("bleu", "chrf", "exact"))}
    loss = total / max(tokens, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bleu": scores["BLEU"],
            "chrf": scores.get("chrF2", 0.0), "exact": scores["exact"], "example": text[0] if text else "",
            "seconds": time.monotonic() - start}


def dev_info(result: dict[str, Any]) -> dict[str, Any]:
    """The scores of a validation that a checkpoint's manifest entry records."""
    return {"dev_bleu": round(result["bleu"], 4), "dev_chrf": round(result["chrf"], 4),
            "dev_loss": round(result["loss"], 4)}
