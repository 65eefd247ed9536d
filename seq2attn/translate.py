"""Text in, text out: tokenization, batching, search and detokenization around a loaded model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .checkpoint import Loaded
from .config import DecodeConfig
from .data import make_batches
from .errors import DataError
from .search import Hypothesis, force_decode, greedy
from .tokenizer import EOS


@dataclass
class Translation:
    src: str
    hyp: str
    score: float  # total log-probability
    src_tokens: list[str]  # source pieces, the final "</s>" included
    hyp_tokens: list[str]  # output pieces, no "</s>"
    attention: Tensor  # (len(hyp_tokens), len(src_tokens)) rows sum to 1


@dataclass
class Result:
    translations: list[Translation]
    truncated: int  # sources cut to the model's max length


def _encode_sources(loaded: Loaded, texts: Sequence[str]) -> tuple[list[list[int]], int]:
    limit = loaded.cfg.data.max_length
    ids = loaded.codec.encode(list(texts), side="src")
    truncated = sum(len(x) > limit for x in ids)
    return [x[:limit] for x in ids], truncated


def _wrap(loaded: Loaded, text: str, src_ids: list[int], hyp: Hypothesis) -> Translation:
    codec = loaded.codec
    src_tokens = codec.tokens(src_ids, side="src") + [EOS]
    return Translation(text, codec.decode([hyp.ids], side="tgt")[0], hyp.score, src_tokens,
                       codec.tokens(hyp.ids, side="tgt"), hyp.attention)


def _empty(text: str) -> Translation:
    return Translation(text, "", 0.0, [], [], torch.zeros(0, 0))


def translate(loaded: Loaded, texts: Sequence[str], *, decode: DecodeConfig, device: torch.device | str = "cpu") -> Result:
    """Translate every text (greedy); an empty (or all-space) text gives an empty translation."""
    src_ids, truncated = _encode_sources(loaded, texts)
    todo = [i for i, ids in enumerate(src_ids) if ids]
    out = [_empty(t) for t in texts]
    for batch in make_batches(src_ids, None, batch_tokens=decode.batch_tokens, indices=todo):
        hyps = greedy(loaded.model, batch.to(device), max_len_a=decode.max_len_a, max_len_b=decode.max_len_b)
        for i, hyp in zip(batch.indices, hyps):
            out[i] = _wrap(loaded, texts[i], src_ids[i], hyp)
    return Result(out, truncated)


def force(loaded: Loaded, texts: Sequence[str], targets: Sequence[str], *, decode: DecodeConfig,
          device: torch.device | str = "cpu") -> Result:
    """Attention and score of given translations (teacher-forced decoding)."""
    if len(texts) != len(targets):
        raise DataError(f"{len(texts)} sources but {len(targets)} targets; they must be line-aligned")
    src_ids, truncated = _encode_sources(loaded, texts)
    tgt_ids = [x[: loaded.cfg.data.max_length] for x in loaded.codec.encode(list(targets), side="tgt")]
    todo = [i for i, (s, t) in enumerate(zip(src_ids, tgt_ids)) if s and t]
    out = [_empty(t) for t in texts]
    for batch in make_batches(src_ids, tgt_ids, batch_tokens=decode.batch_tokens, indices=todo):
        for i, hyp in zip(batch.indices, force_decode(loaded.model, batch.to(device))):
            out[i] = _wrap(loaded, texts[i], src_ids[i], hyp)
    return Result(out, truncated)
