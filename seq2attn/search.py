"""Decoding for every backend: greedy and forced (teacher-forced) decoding.

Nothing here knows which backend it drives: it uses ``encode``, ``init_state``, ``step``,
``forward`` and the ``index_select`` of encoder outputs and states (see ``models/base.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .data import Batch
from .tokenizer import BOS_ID, EOS_ID


@dataclass
class Hypothesis:
    ids: list[int]  # output tokens, EOS excluded
    score: float  # total log-probability (EOS included when it was produced)
    attention: Tensor  # (len(ids), S) one row per output token over the source positions
    # (source EOS included), rows sum to 1; on CPU


def max_lengths(src_lengths: Tensor, *, max_len_a: float, max_len_b: int) -> Tensor:
    """Per-sentence output limit ``a * source_length + b`` (source EOS not counted), at least 1."""
    real = (src_lengths - 1).clamp(min=0).float()
    return (real * max_len_a + max_len_b).floor().long().clamp(min=1)


@torch.inference_mode()
def greedy(model: nn.Module, batch: Batch, *, max_len_a: float = 1.5, max_len_b: int = 10) -> list[Hypothesis]:
    """Pick the most likely token at every step, for all sentences of the batch at once.

    Finished rows leave the batch (encoder output and state are index-selected down to the live
    rows), so short sentences stop costing compute as soon as they end.
    """
    device = batch.src.device
    B = len(batch)
    limits = max_lengths(batch.src_lengths, max_len_a=max_len_a, max_len_b=max_len_b).to(device)
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    live = torch.arange(B, device=device)  # original row of each live row
    prev = torch.full((B,), BOS_ID, dtype=torch.long, device=device)
    scores = torch.zeros(B, device=device)
    steps: list[tuple[Tensor, Tensor, Tensor]] = []  # (live rows, chosen tokens, attention) per step
    for t in range(int(limits.max())):
        out = model.step(prev, state, enc)
        logp = torch.log_softmax(out.logits.float(), dim=-1)  # (b, V)
        best_lp, best = logp.max(dim=-1)  # (b,)
        scores.index_add_(0, live, best_lp)
        steps.append((live, best, out.attention))
        done = (best == EOS_ID) | (limits[live] <= t + 1)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            live, best = live[keep], best[keep]
            enc, state = enc.index_select(keep), out.state.index_select(keep)
        else:
            state = out.state
        prev = best
    return _assemble(steps, scores, batch.src_lengths)


def _assemble(steps: list[tuple[Tensor, Tensor, Tensor]], scores: Tensor, src_lengths: Tensor) -> list[Hypothesis]:
    """Per-sentence hypotheses from per-step (rows, tokens, attention) records, EOS dropped."""
    B = len(src_lengths)
    tokens: list[list[int]] = [[] for _ in range(B)]
    rows: list[list[Tensor]] = [[] for _ in range(B)]
    for live, best, attention in steps:
        attention = attention.float().cpu()
        for r, (orig, tok) in enumerate(zip(live.tolist(), best.tolist())):
            if tok != EOS_ID:
                tokens[orig].append(tok)
                rows[orig].append(attention[r])
    out = []
    for i, score in enumerate(scores.tolist()):
        S = int(src_lengths[i])
        att = torch.stack(rows[i])[:, :S] if rows[i] else torch.zeros(0, S)
        out.append(Hypothesis(tokens[i], score, att))
    return out


@torch.inference_mode()
def force_decode(model: nn.Module, batch: Batch) -> list[Hypothesis]:
    """Score given translations (``batch.tgt_in`` / ``tgt_out``) and return their attention."""
    assert batch.tgt_in is not None and batch.tgt_out is not None
    out = model(batch.src, batch.src_lengths, batch.tgt_in)
    logp = torch.log_softmax(out.logits.float(), dim=-1)  # (B, T, V)
    token_lp = logp.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)  # (B, T)
    hyps = []
    for i in range(len(batch)):
        n = int((batch.tgt_out[i] != 0).sum()) - 1  # target tokens without EOS
        S = int(batch.src_lengths[i])
        hyps.append(Hypothesis(batch.tgt_out[i, :n].tolist(), float(token_lp[i, : n + 1].sum()),
                               out.attention[i, :n, :S].float().cpu()))
    return hyps
