"""Decoding for every backend: greedy, sampling, batched beam search (n-best) and forced decoding.

Nothing here knows which backend it drives: it uses ``encode``, ``init_state``, ``step``,
``forward`` and the ``index_select`` of encoder outputs and states (see ``models/base.py``).

Shapes: B sentences, K beam size, N = rows fed to ``step`` (B, B * K, or fewer once sentences
finish), S padded source length, V target vocabulary, T output steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seq2attn.config import DecodeConfig
from seq2attn.errors import ConfigError
from seq2attn.nn.batches import Batch
from seq2attn.special import BOS_ID, EOS_ID, PAD_ID

NEVER_OUTPUT = (PAD_ID, BOS_ID)  # ids a model may score but a translation never contains


@dataclass
class Hypothesis:
    ids: list[int]  # output tokens, EOS excluded
    score: float  # total log-probability (EOS included when it was produced)
    attention: Tensor  # (len(ids), S) one row per output token over the source positions
    # (source EOS included), rows sum to 1; on CPU
    norm_score: float | None = None  # score / GNMT length penalty, what beam search ranks by;
    # None on construction means "same as score" (no length penalty)

    def __post_init__(self) -> None:
        if self.norm_score is None:
            self.norm_score = self.score


def max_lengths(src_lengths: Tensor, *, max_len_a: float, max_len_b: int, cap: int | None = None) -> Tensor:
    """Per-sentence output limit ``a * source_length + b`` (source EOS not counted), at least 1 and
    at most ``cap`` (decode.max_output_tokens: the work and the attention kept per sentence)."""
    real = (src_lengths - 1).clamp(min=0).float()
    return (real * max_len_a + max_len_b).clamp(max=cap or float("inf")).floor().long().clamp(min=1)


def length_penalty(length: Tensor | int, alpha: float) -> Tensor | float:
    """GNMT length penalty (Wu et al., 2016): ``((5 + |Y|) / 6) ** alpha``; 1 when alpha is 0.

    ``|Y|`` counts the scored output tokens: the ids plus the EOS when one was produced."""
    return ((5 + length) / 6) ** alpha


def log_probs(logits: Tensor) -> Tensor:
    """(N, V) logits -> (N, V) log-probabilities in fp32, with PAD and BOS made impossible."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    logp[:, list(NEVER_OUTPUT)] = float("-inf")
    return logp


def ban_repeats(logp: Tensor, history: Tensor, n: int) -> None:
    """In place: -inf for every token that would repeat an n-gram already in ``history`` (N, t)."""
    t = history.size(1)
    if t < n:
        return
    windows = history.unfold(1, n, 1)  # (N, t - n + 1, n) every n-gram so far
    prefix = history[:, t - n + 1:].unsqueeze(1)  # (N, 1, n - 1) what the next token would extend
    seen = (windows[:, :, :-1] == prefix).all(-1)  # (N, W) n-grams starting like the current suffix
    penalty = torch.zeros_like(seen, dtype=logp.dtype).masked_fill(seen, float("-inf"))
    logp.scatter_add_(1, windows[:, :, -1], penalty)


def check_decode(decode: DecodeConfig) -> None:
    """Cross-field checks of a decode config (ranges are checked by ``DecodeConfig`` itself)."""
    if not decode.sample and decode.nbest > decode.beam_size:
        raise ConfigError(f"decode.nbest={decode.nbest} (--nbest) is larger than decode.beam_size="
                          f"{decode.beam_size} (--beam); use a beam at least as large as the n-best list")


# --- greedy and sampling: one row per hypothesis -----------------------------------------------
def _walk(model: nn.Module, batch: Batch, *, pick: Callable[[Tensor], Tensor], max_len_a: float, max_len_b: int,
          copies: int = 1, no_repeat_ngram: int | None = None, max_output: int | None = None) -> list[Hypothesis]:
    """Decode ``copies`` rows per sentence, choosing each token with ``pick((N, V) log-probs) -> (N,)``.

    Finished rows leave the batch (encoder output and state are index-selected down to the live
    rows), so short sentences stop costing compute as soon as they end. Returns B * copies
    hypotheses, the copies of a sentence next to each other."""
    device = batch.src.device
    enc = model.encode(batch.src, batch.src_lengths)
    src_lengths = batch.src_lengths
    if copies > 1:
        enc = enc.index_select(torch.arange(len(batch), device=device).repeat_interleave(copies))
        src_lengths = src_lengths.repeat_interleave(copies)
    N = len(src_lengths)
    limits = max_lengths(src_lengths, max_len_a=max_len_a, max_len_b=max_len_b, cap=max_output).to(device)
    state = model.init_state(enc)
    live = torch.arange(N, device=device)  # original row of each live row
    prev = torch.full((N,), BOS_ID, dtype=torch.long, device=device)
    history = torch.zeros(N, 0, dtype=torch.long, device=device)  # (n, t) only for the n-gram guard
    scores = torch.zeros(N, device=device)
    steps: list[tuple[Tensor, Tensor, Tensor]] = []  # (live rows, chosen tokens, attention) per step
    for t in range(int(limits.max())):
        out = model.step(prev, state, enc)
        logp = log_probs(out.logits)  # (n, V)
        if no_repeat_ngram is not None:
            ban_repeats(logp, history, no_repeat_ngram)
        best = pick(logp)  # (n,)
        scores.index_add_(0, live, logp.gather(1, best.unsqueeze(1)).squeeze(1))
        steps.append((live, best, out.attention))
        if no_repeat_ngram is not None:
            history = torch.cat([history, best.unsqueeze(1)], dim=1)
        done = (best == EOS_ID) | (limits[live] <= t + 1)
        keep = (~done).nonzero().squeeze(1)  # the one device sync of a step
        if len(keep) == 0:
            break
        if len(keep) < len(done):
            live, best, history = live[keep], best[keep], history[keep]
            enc, state = enc.index_select(keep), out.state.index_select(keep)
        else:
            state = out.state
        prev = best
    return _assemble(steps, scores, src_lengths)


def _assemble(steps: list[tuple[Tensor, Tensor, Tensor]], scores: Tensor, src_lengths: Tensor) -> list[Hypothesis]:
    """Per-row hypotheses from per-step (live rows, chosen tokens, attention) records, EOS dropped;
    gathered with a few tensor ops, not a Python loop over tokens."""
    N, T, device = len(src_lengths), len(steps), scores.device
    ids = torch.full((N, T), EOS_ID, dtype=torch.long, device=device)  # a row that left stays EOS
    rows = torch.zeros(N, T, dtype=torch.long, device=device)  # row of each token in the store
    offset = 0
    for t, (live, best, _) in enumerate(steps):
        ids[live, t] = best
        rows[live, t] = offset + torch.arange(len(live), device=device)
        offset += len(live)
    lengths = (ids != EOS_ID).sum(1).tolist()  # a row leaves at its EOS: no EOS comes earlier
    weights = torch.cat([att for _, _, att in steps]).float()[rows].cpu()  # (N, T, S)
    return [Hypothesis(tokens[:n], score, weights[i, :n, : int(src_lengths[i])].clone())
            for i, (tokens, n, score) in enumerate(zip(ids.tolist(), lengths, scores.tolist()))]


@torch.inference_mode()
def greedy(model: nn.Module, batch: Batch, *, max_len_a: float = 1.5, max_len_b: int = 10,
           no_repeat_ngram: int | None = None, max_output: int | None = None) -> list[Hypothesis]:
    """Pick the most likely token at every step, for all sentences of the batch at once."""
    return _walk(model, batch, pick=lambda logp: logp.argmax(dim=-1), max_len_a=max_len_a, max_len_b=max_len_b,
                 no_repeat_ngram=no_repeat_ngram, max_output=max_output)


def _sampler(*, temperature: float, top_k: int | None, top_p: float | None,
             generator: torch.Generator) -> Callable[[Tensor], Tensor]:
    def pick(logp: Tensor) -> Tensor:  # (N, V) -> (N,)
        x = logp / temperature
        if top_k is not None and top_k < x.size(-1):
            kth = x.topk(top_k, dim=-1).values[:, -1:]  # (N, 1)
            x = x.masked_fill(x < kth, float("-inf"))
        if top_p is not None:
            # nucleus: keep the smallest set of most likely tokens whose mass reaches top_p
            sorted_x, order = x.sort(dim=-1, descending=True)
            probs = torch.softmax(sorted_x, dim=-1)
            before = probs.cumsum(-1) - probs  # mass of the tokens ranked above each one
            x = x.scatter(1, order, sorted_x.masked_fill(before >= top_p, float("-inf")))
        return torch.multinomial(torch.softmax(x, dim=-1), 1, generator=generator).squeeze(1)

    return pick


@torch.inference_mode()
def sample(model: nn.Module, batch: Batch, *, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, max_len_a: float, max_len_b: int, nbest: int = 1,
           no_repeat_ngram: int | None = None, generator: torch.Generator | None = None,
           max_output: int | None = None) -> list[list[Hypothesis]]:
    """Draw ``nbest`` translations per sentence token by token from the (tempered, top-k / top-p
    truncated) model distribution, e.g. for back-translation. Scores are the model's own
    log-probabilities of the drawn tokens (before temperature and truncation); each sentence's
    samples come sorted by score. Repeatable with the same ``generator`` seed and batches."""
    if generator is None:
        generator = torch.Generator(device=batch.src.device).manual_seed(DecodeConfig.seed)
    pick = _sampler(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    rows = _walk(model, batch, pick=pick, max_len_a=max_len_a, max_len_b=max_len_b, copies=nbest,
                 no_repeat_ngram=no_repeat_ngram, max_output=max_output)
    return [sorted(rows[i * nbest:(i + 1) * nbest], key=lambda h: -h.score) for i in range(len(batch))]


# --- beam search -------------------------------------------------------------------------------
@dataclass
class _Beams:
    """The live part of a batched beam search: n sentences still searching, K rows each."""

    sentence: Tensor  # (n,) batch row of each live sentence
    limit: Tensor  # (n,) its output length limit
    scores: Tensor  # (n, K) total log-prob of each live hypothesis; -inf marks an empty slot
    history: Tensor  # (n * K, t) tokens so far
    att_rows: Tensor  # (n * K, t) where each token's attention row lies in the attention store
    n_done: Tensor  # (n,) hypotheses finished so far
    best_done: Tensor  # (n, nbest) best normalized scores of the finished ones, -inf padded

    def select(self, live: Tensor, K: int) -> _Beams:
        rows = (live.unsqueeze(1) * K + torch.arange(K, device=live.device)).view(-1)
        return _Beams(self.sentence[live], self.limit[live], self.scores[live], self.history[rows],
                      self.att_rows[rows], self.n_done[live], self.best_done[live])


@dataclass
class _Ended:
    """The candidates that ended a hypothesis at step ``t`` (EOS or length limit). Kept as masks
    over that step's tensors and resolved once at the end: no device sync per step."""

    t: int
    offset: int  # first attention-store row of step t
    ends: Tensor  # (n, C) bool: which candidates ended
    sentence: Tensor  # (n,) batch row of each live sentence
    score: Tensor  # (n, C) total log-prob of each candidate
    norm: Tensor  # (n, C) after the length penalty
    tok: Tensor  # (n, C) its last token
    row: Tensor  # (n, C) the row that proposed it
    history: Tensor  # (n * K, t) tokens of each row before step t
    att_rows: Tensor  # (n * K, t)

    def resolve(self) -> _Finished:
        s, c = self.ends.nonzero(as_tuple=True)
        r, tok = self.row[s, c], self.tok[s, c]
        return _Finished(sentence=self.sentence[s], score=self.score[s, c], norm=self.norm[s, c],
                         ids=torch.cat([self.history[r], tok.unsqueeze(1)], dim=1),
                         att_rows=torch.cat([self.att_rows[r], (self.offset + r).unsqueeze(1)], dim=1),
                         n_ids=self.t + 1 - (tok == EOS_ID).long())


@dataclass
class _Finished:
    """Flat tensors over the F candidates that ended at one step."""

    sentence: Tensor  # (F,) batch row
    score: Tensor  # (F,) total log-prob
    norm: Tensor  # (F,) after the length penalty
    ids: Tensor  # (F, t + 1) tokens, the last one possibly EOS
    att_rows: Tensor  # (F, t + 1) attention-store row of each token
    n_ids: Tensor  # (F,) tokens without EOS


def _advance(beams: _Beams, logp: Tensor, *, t: int, offset: int, K: int, alpha: float,
             nbest: int) -> tuple[_Beams, _Ended, Tensor, Tensor]:
    """Extend every live hypothesis by one token (``logp`` (n * K, V)), note the ones that end,
    keep the K best that go on. Returns the new beams (same n), what ended, the row each new
    hypothesis came from (n * K,) and which sentences are done (n,)."""
    n, V = len(beams.sentence), logp.size(1)
    device = logp.device
    C = min(2 * K, K * V)  # 2K candidates: at most K of them end in EOS, so K can always go on
    top, idx = (beams.scores.view(-1, 1) + logp).view(n, K * V).topk(C, dim=1)  # (n, C) best first
    row = idx // V + (torch.arange(n, device=device) * K).unsqueeze(1)  # (n, C) proposing row
    tok = idx % V
    is_eos = tok == EOS_ID
    at_limit = beams.limit <= t + 1  # (n,)
    rank = torch.arange(C, device=device)
    # as in a beam of K, only the K best candidates may end a hypothesis; at the limit all of them do
    ends = (rank < K) & torch.isfinite(top) & (is_eos | at_limit.unsqueeze(1))
    norm = top / length_penalty(t + 1, alpha) if alpha else top
    ended = _Ended(t, offset, ends, beams.sentence, top, norm, tok, row, beams.history, beams.att_rows)
    n_done = beams.n_done + ends.sum(1)
    best_done = torch.cat([beams.best_done, norm.masked_fill(~ends, float("-inf"))], dim=1).topk(nbest, dim=1).values
    go_on = (rank + C * is_eos.long()).topk(K, dim=1, largest=False).indices  # (n, K) best non-EOS first
    scores = top.gather(1, go_on)
    rows = row.gather(1, go_on).view(-1)  # (n * K,)
    # no live hypothesis can beat the finished ones when even its current score (log-probs only
    # fall) under the largest length penalty it could still get stays below them
    bound = scores.max(1).values
    if alpha:
        bound = bound / length_penalty(beams.limit, alpha)
    done = at_limit | (n_done >= K) | ((n_done >= nbest) & (best_done[:, -1] >= bound))
    history = torch.cat([beams.history[rows], tok.gather(1, go_on).view(-1, 1)], dim=1)
    att_rows = torch.cat([beams.att_rows[rows], (offset + rows).unsqueeze(1)], dim=1)
    return _Beams(beams.sentence, beams.limit, scores, history, att_rows, n_done, best_done), ended, rows, done


@torch.inference_mode()
def beam_search(model: nn.Module, batch: Batch, *, beam_size: int, alpha: float = 0.0, max_len_a: float,
                max_len_b: int, nbest: int = 1, no_repeat_ngram: int | None = None,
                max_output: int | None = None) -> list[list[Hypothesis]]:
    """Batched beam search over B x K rows: the ``nbest`` best hypotheses per sentence, best first
    by ``norm_score`` (``score`` / GNMT length penalty with ``alpha``; 0 ranks by log-prob).

    A sentence stops when K hypotheses have finished, or when no live one can beat its ``nbest``
    best finished ones; its rows then leave the batch. Every sentence is searched on its own rows
    only (padding is masked, candidates never compete across sentences), so the output does not
    depend on the batch it came in. Each hypothesis carries its attention, reordered with the beam.
    """
    if not 1 <= nbest <= beam_size:
        raise ConfigError(f"nbest={nbest} with beam_size={beam_size}; n-best needs 1 <= nbest <= beam size")
    K, B, device = beam_size, len(batch), batch.src.device
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    fan_out = torch.arange(B, device=device).repeat_interleave(K)  # sentence -> its K rows
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the K rows of a sentence start equal: open one, or the beam fills with copies
    empty = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    beams = _Beams(torch.arange(B, device=device),
                   max_lengths(batch.src_lengths, max_len_a=max_len_a, max_len_b=max_len_b, cap=max_output).to(device),
                   scores, empty, empty, torch.zeros(B, dtype=torch.long, device=device),
                   torch.full((B, nbest), float("-inf"), device=device))
    ended: list[_Ended] = []
    store: list[Tensor] = []  # attention of every step, (n * K, S) each: rows referenced by att_rows
    prev = torch.full((B,), BOS_ID, dtype=torch.long, device=device)
    offset = 0
    for t in range(int(beams.limit.max())):
        out = model.step(prev, state, enc)
        logp, attention = log_probs(out.logits), out.attention  # (n * K, V), (n * K, S)
        if t == 0:  # the K rows of a sentence would all be equal: step once per sentence, then fan out
            logp, attention, enc = logp[fan_out], attention[fan_out], enc.index_select(fan_out)
        if no_repeat_ngram is not None:
            ban_repeats(logp, beams.history, no_repeat_ngram)
        n = len(beams.sentence)
        beams, step_ended, rows, done = _advance(beams, logp, t=t, offset=offset, K=K, alpha=alpha, nbest=nbest)
        ended.append(step_ended)
        store.append(attention)
        offset += attention.size(0)
        live = (~done).nonzero().squeeze(1)  # the one device sync of a step
        if len(live) == 0:
            break
        if len(live) < n:  # finished sentences leave the batch
            keep = (live.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1)
            beams, rows, enc = beams.select(live, K), rows[keep], enc.index_select(keep)
        state = out.state.index_select(fan_out[rows] if t == 0 else rows)
        prev = beams.history[:, -1]
    return _best_finished([e.resolve() for e in ended], torch.cat(store).float(), n_sentences=B, nbest=nbest,
                          src_lengths=batch.src_lengths)


def _best_finished(ended: list[_Finished], store: Tensor, *, n_sentences: int, nbest: int,
                   src_lengths: Tensor) -> list[list[Hypothesis]]:
    """The ``nbest`` best ended hypotheses of every sentence, best first, with their attention."""
    sentence, norm = torch.cat([e.sentence for e in ended]), torch.cat([e.norm for e in ended])
    score, n_ids = torch.cat([e.score for e in ended]), torch.cat([e.n_ids for e in ended])
    width = max(e.ids.size(1) for e in ended)
    ids = torch.cat([nn.functional.pad(e.ids, (0, width - e.ids.size(1))) for e in ended])  # (F, T)
    att_rows = torch.cat([nn.functional.pad(e.att_rows, (0, width - e.att_rows.size(1))) for e in ended])
    order = norm.argsort(descending=True, stable=True)  # best first, then grouped by sentence
    order = order[sentence[order].argsort(stable=True)]
    counts = torch.bincount(sentence, minlength=n_sentences)
    start = counts.cumsum(0) - counts
    rank = torch.arange(len(order), device=order.device) - start[sentence[order]]
    chosen = order[rank < nbest]
    weights = store[att_rows[chosen]].cpu()  # (F', T, S)
    out: list[list[Hypothesis]] = [[] for _ in range(n_sentences)]
    for j, (b, toks, n, lp, ns) in enumerate(zip(
            sentence[chosen].tolist(), ids[chosen].tolist(), n_ids[chosen].tolist(),
            score[chosen].tolist(), norm[chosen].tolist())):
        out[b].append(Hypothesis(toks[:n], lp, weights[j, :n, : int(src_lengths[b])].clone(), ns))
    return out


@torch.inference_mode()
def search(model: nn.Module, batch: Batch, *, decode: DecodeConfig,
           generator: torch.Generator | None = None) -> list[list[Hypothesis]]:
    """The search ``decode`` asks for: sampling, greedy (beam 1) or beam search; n-best per sentence."""
    check_decode(decode)
    limits = {"max_len_a": decode.max_len_a, "max_len_b": decode.max_len_b, "no_repeat_ngram": decode.no_repeat_ngram,
              "max_output": decode.max_output_tokens}
    if decode.sample:
        return sample(model, batch, temperature=decode.temperature, top_k=decode.top_k, top_p=decode.top_p,
                      nbest=decode.nbest, generator=generator, **limits)
    if decode.beam_size == 1:
        return [[h] for h in greedy(model, batch, **limits)]
    return beam_search(model, batch, beam_size=decode.beam_size, alpha=decode.alpha, nbest=decode.nbest, **limits)


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
