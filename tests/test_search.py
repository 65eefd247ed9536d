"""Search: beam 1 == greedy, batch-size invariance, n-best, attention under beam, an exhaustive
check against brute-force enumeration on a fake backend, sampling and the n-gram guard."""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from seq2attn.config import DecodeConfig, ModelConfig, resolve_config
from seq2attn.errors import ConfigError
from seq2attn.inference.alignment import hard_links
from seq2attn.modeldir.checkpoint import load
from seq2attn.nn.attention import masked_softmax
from seq2attn.nn.batches import make_batches
from seq2attn.nn.models import build_model
from seq2attn.nn.models.base import StepOutput
from seq2attn.nn.search import (
    _sampler,
    ban_repeats,
    beam_search,
    force_decode,
    greedy,
    length_penalty,
    sample,
    search,
)
from seq2attn.special import EOS_ID, PAD_ID, UNK_ID

LIMITS = {"max_len_a": 1.5, "max_len_b": 5}


# --- a fake backend: next-token logits are a fixed random function of (source, prefix) --------
@dataclass
class FakeEnc:
    code: Tensor  # (B,) a hash of the source
    mask: Tensor  # (B, S)

    def index_select(self, index: Tensor) -> FakeEnc:
        return FakeEnc(self.code.index_select(0, index), self.mask.index_select(0, index))


@dataclass
class FakeState:
    code: Tensor  # (B,) a hash of source and prefix

    def index_select(self, index: Tensor) -> FakeState:
        return FakeState(self.code.index_select(0, index))


class FakeBackend(nn.Module):
    """Vocabulary: the 4 specials + 4 real tokens; UNK never comes out, so the search space is
    EOS and 4 tokens. Implements only the protocol: proof that the search never needs more."""

    M = 100_003  # table rows (prime): the prefix hash lands anywhere

    def __init__(self, seed: int = 0, vocab: int = 8, max_src: int = 16):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.logits = torch.randn(self.M, vocab, generator=g) * 2
        self.logits[:, UNK_ID] = float("-inf")
        self.att = torch.randn(self.M, max_src, generator=g)

    def encode(self, src: Tensor, src_lengths: Tensor) -> FakeEnc:
        weights = torch.arange(1, src.size(1) + 1) * 7919
        return FakeEnc((src * weights).sum(1) % self.M, src != PAD_ID)

    def init_state(self, enc: FakeEnc) -> FakeState:
        return FakeState(enc.code)

    def step(self, prev: Tensor, state: FakeState, enc: FakeEnc) -> StepOutput:
        code = (state.code * 31 + prev + 1) % self.M
        S = enc.mask.size(1)
        attention = masked_softmax(self.att[code, :S].unsqueeze(1), enc.mask).squeeze(1)  # (B, S)
        return StepOutput(self.logits[code], attention, FakeState(code))


def _batch(sources: list[list[int]]):
    (batch,) = make_batches(sources, None, batch_tokens=10**6)
    order = sorted(range(len(sources)), key=batch.indices.__getitem__)
    return batch, order  # batch row order[i] holds sources[i]


def _brute_force(model: FakeBackend, source: list[int], *, max_len: int, alpha: float) -> list[tuple[float, list[int]]]:
    """Every output up to ``max_len`` tokens with its (normalized score, ids), best first."""
    batch, _ = _batch([source])
    out = []
    for n in range(max_len + 1):
        for ids in itertools.product(range(4, 8), repeat=n):
            seq = list(ids) + ([EOS_ID] if n < max_len else [])  # at the limit no EOS is scored
            enc = model.encode(batch.src, batch.src_lengths)
            state, prev, score = model.init_state(enc), torch.tensor([1]), 0.0
            for tok in seq:
                step = model.step(prev, state, enc)
                score += float(torch.log_softmax(step.logits, -1)[0, tok])
                state, prev = step.state, torch.tensor([tok])
            out.append((score / length_penalty(len(seq), alpha), list(ids)))
    return sorted(out, key=lambda x: -x[0])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_exhaustive_beam_equals_brute_force(alpha):
    model = FakeBackend(seed=5)
    sources = [[4, 5, 6], [7, 4, 4, 5, 6, 7]]  # two lengths: padding in the batch
    space = sum(4**n for n in range(5))  # 341 outputs of at most 4 tokens
    batch, order = _batch(sources)
    K = space + 9  # more slots than outputs: empty slots must never count as hypotheses
    beams = beam_search(model, batch, beam_size=K, alpha=alpha, max_len_a=0.0, max_len_b=4, nbest=K)
    for i, source in enumerate(sources):
        expected = _brute_force(model, source, max_len=4, alpha=alpha)
        got = beams[order[i]]
        assert [h.ids for h in got] == [ids for _, ids in expected]
        assert [h.norm_score for h in got] == pytest.approx([s for s, _ in expected], abs=1e-4)


def test_fake_backend_beam_one_is_greedy():
    model = FakeBackend(seed=2)
    g = torch.Generator().manual_seed(0)
    sources = [torch.randint(4, 8, (int(n),), generator=g).tolist() for n in torch.randint(1, 12, (40,), generator=g)]
    batch, _ = _batch(sources)
    greedy_hyps = greedy(model, batch, **LIMITS)
    beam_hyps = beam_search(model, batch, beam_size=1, **LIMITS)
    assert [h.ids for h in greedy_hyps] == [b[0].ids for b in beam_hyps]
    assert [h.score for h in greedy_hyps] == pytest.approx([b[0].score for b in beam_hyps], abs=1e-5)
    for h, b in zip(greedy_hyps, beam_hyps):
        assert torch.equal(h.attention, b[0].attention)
        assert torch.allclose(h.attention.sum(-1), torch.ones(len(h.ids)))


@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
def test_every_rnn_wiring_beam_one_is_greedy_and_batch_free(decoder):
    torch.manual_seed(0)
    model = build_model(ModelConfig(decoder=decoder, emb_size=16, hidden_size=16, dec_hidden_size=16, dropout=0.0),
                        src_vocab=30, tgt_vocab=12).eval()
    g = torch.Generator().manual_seed(1)
    sources = [torch.randint(4, 30, (int(n),), generator=g).tolist() for n in torch.randint(1, 12, (16,), generator=g)]
    batch, order = _batch(sources)
    limits = {"max_len_a": 0.5, "max_len_b": 4}
    assert [h.ids for h in greedy(model, batch, **limits)] == [
        b[0].ids for b in beam_search(model, batch, beam_size=1, **limits)]
    together = beam_search(model, batch, beam_size=4, nbest=2, **limits)
    for i, source in enumerate(sources):
        alone = beam_search(model, _batch([source])[0], beam_size=4, nbest=2, **limits)[0]
        assert [h.ids for h in alone] == [h.ids for h in together[order[i]]]
        assert [h.score for h in alone] == pytest.approx([h.score for h in together[order[i]]], abs=1e-5)


# --- on a trained tiny model -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tiny_model, reverse_files):
    loaded = load(tiny_model)
    lines = reverse_files["dev"][0].read_text().splitlines()[:64]
    return loaded, loaded.codec.encode(lines, side="src")


def _by_input(batches, run):
    """{input index: output} over all batches."""
    out = {}
    for batch in batches:
        out.update(zip(batch.indices, run(batch)))
    return out


def test_beam_one_is_greedy(tiny):
    loaded, src = tiny
    batches = make_batches(src, None, batch_tokens=300)
    g = _by_input(batches, lambda b: greedy(loaded.model, b, **LIMITS))
    b1 = _by_input(batches, lambda b: beam_search(loaded.model, b, beam_size=1, **LIMITS))
    assert all(g[i].ids == b1[i][0].ids for i in g)
    assert [g[i].score for i in g] == pytest.approx([b1[i][0].score for i in g], abs=1e-5)
    assert all(torch.allclose(g[i].attention, b1[i][0].attention, atol=1e-6) for i in g)
    assert any(len(h.ids) < LIMITS["max_len_a"] * len(src[i]) for i, h in g.items())  # EOS came, not only limits


def test_beam_does_not_depend_on_the_batch(tiny):
    loaded, src = tiny
    run = (lambda b: beam_search(loaded.model, b, beam_size=5, alpha=0.6, nbest=3, **LIMITS))
    together = _by_input(make_batches(src, None, batch_tokens=10**6), run)
    alone = _by_input([make_batches(src, None, batch_tokens=1, indices=[i])[0] for i in range(len(src))], run)
    assert len(make_batches(src, None, batch_tokens=10**6)) == 1 and len(together) == 64
    for i in range(len(src)):
        assert [h.ids for h in together[i]] == [h.ids for h in alone[i]]
        assert [h.score for h in together[i]] == pytest.approx([h.score for h in alone[i]], abs=1e-5)


def test_nbest_is_sorted_and_starts_with_the_one_best(tiny):
    loaded, src = tiny
    batches = make_batches(src[:32], None, batch_tokens=500)
    for alpha in (0.0, 1.0):
        one = _by_input(batches, lambda b, a=alpha: beam_search(loaded.model, b, beam_size=5, alpha=a, **LIMITS))
        five = _by_input(batches, lambda b, a=alpha: beam_search(loaded.model, b, beam_size=5, alpha=a, nbest=5,
                                                                   **LIMITS))
        for i in one:
            assert len(one[i]) == 1 and len(five[i]) == 5
            assert five[i][0].ids == one[i][0].ids
            norms = [h.norm_score for h in five[i]]
            assert norms == sorted(norms, reverse=True)
            assert len({tuple(h.ids) for h in five[i]}) == 5
            if alpha == 0.0:
                assert [h.score for h in five[i]] == norms


def test_attention_under_beam(tiny):
    loaded, src = tiny
    for batch in make_batches(src, None, batch_tokens=500):
        for i, hyps in zip(batch.indices, beam_search(loaded.model, batch, beam_size=4, nbest=4, **LIMITS)):
            for h in hyps:
                assert h.attention.shape == (len(h.ids), len(src[i]) + 1)  # source EOS included
                assert torch.allclose(h.attention.sum(-1), torch.ones(len(h.ids)), atol=1e-5)


def test_search_dispatches_on_the_decode_config(tiny):
    loaded, src = tiny
    (batch,) = make_batches(src[:8], None, batch_tokens=10**6)
    greedy_out = search(loaded.model, batch, decode=DecodeConfig(max_len_b=5))
    assert [x[0].ids for x in greedy_out] == [h.ids for h in greedy(loaded.model, batch, max_len_a=1.5, max_len_b=5)]
    with pytest.raises(ConfigError, match="nbest"):
        search(loaded.model, batch, decode=DecodeConfig(nbest=3))


# --- sampling ----------------------------------------------------------------------------------
def test_sampling_is_seeded_and_top_k_one_is_greedy():
    model = FakeBackend(seed=3)
    sources = [[4, 5, 6, 7, 4], [5, 5, 6], [7, 6, 5, 4, 4, 4, 5]] * 4
    batch, _ = _batch(sources)

    def draw(seed, **kw):
        gen = torch.Generator().manual_seed(seed)
        return [[h.ids for h in x] for x in sample(model, batch, generator=gen, **LIMITS, **kw)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)
    greedy_ids = [[h.ids] for h in greedy(model, batch, **LIMITS)]
    assert draw(7, top_k=1) == greedy_ids
    assert draw(9, top_p=1e-6) == greedy_ids
    several = sample(model, batch, nbest=4, generator=torch.Generator().manual_seed(1), **LIMITS)
    assert all(len(x) == 4 and [h.score for h in x] == sorted((h.score for h in x), reverse=True) for x in several)


# --- n-gram guard, penalty, links, config --------------------------------------------------------
def test_ban_repeats_known_answer():
    history = torch.tensor([[4, 5, 4, 6, 4], [7, 7, 7, 7, 7]])
    logp = torch.zeros(2, 8)
    ban_repeats(logp, history, 2)  # row 0 ends in 4: 4-5 and 4-6 were seen; row 1: 7-7
    assert torch.isinf(logp).nonzero().tolist() == [[0, 5], [0, 6], [1, 7]]
    logp = torch.zeros(1, 8)
    ban_repeats(logp, history[:1, :2], 3)  # too short for a 3-gram
    assert not torch.isinf(logp).any()


def test_no_repeat_ngram_guard():
    torch.manual_seed(0)  # an untrained model repeats itself a lot
    model = build_model(ModelConfig(emb_size=16, hidden_size=16, dec_hidden_size=16, dropout=0.0),
                        src_vocab=30, tgt_vocab=12).eval()
    g = torch.Generator().manual_seed(0)
    sources = [torch.randint(4, 30, (12,), generator=g).tolist() for _ in range(10)]
    batch, _ = _batch(sources)

    def repeats(ids, n=2):
        grams = [tuple(ids[k:k + n]) for k in range(len(ids) - n + 1)]
        return len(grams) != len(set(grams))

    assert any(repeats(h.ids) for h in greedy(model, batch, **LIMITS))
    assert not any(repeats(h.ids) for h in greedy(model, batch, no_repeat_ngram=2, **LIMITS))
    beams = beam_search(model, batch, beam_size=4, nbest=4, no_repeat_ngram=2, **LIMITS)
    assert not any(repeats(h.ids) for x in beams for h in x)


def test_length_penalty_known_values():
    assert length_penalty(7, 0.0) == 1.0
    assert length_penalty(1, 0.6) == 1.0
    assert length_penalty(7, 1.0) == 2.0


def test_argmax_links():
    att = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    assert hard_links(att) == [(0, 1), (1, 0)]
    assert hard_links(torch.zeros(0, 3)) == []


@pytest.mark.parametrize("option", ["decode.top_p=1.5", "decode.temperature=0", "decode.nbest=0",
                                    "decode.top_k=0", "decode.no_repeat_ngram=0"])
def test_decode_config_ranges(option):
    with pytest.raises(ConfigError, match=option.split("=")[0]):
        resolve_config(sets=[option])


# --- forced decoding ---------------------------------------------------------------------------------
def test_forced_score_is_the_log_probability_of_the_target(tiny_model, reverse_files):
    loaded = load(tiny_model)
    src = loaded.codec.encode(reverse_files["dev"][0].read_text().splitlines()[:16], side="src")
    (batch,) = make_batches(src, None, batch_tokens=10**6)
    found = greedy(loaded.model, batch, max_len_a=1.5, max_len_b=5)
    forced = make_batches([src[i] for i in batch.indices], [h.ids for h in found], batch_tokens=10**6)
    (fbatch,) = forced
    scored = force_decode(loaded.model, fbatch)
    by_row = {batch.indices[i]: h for i, h in enumerate(found)}
    for j, hyp in zip(fbatch.indices, scored):
        expected = by_row[batch.indices[j]]
        assert hyp.ids == expected.ids
        if expected.ids and len(expected.ids) < 1.5 * len(src[batch.indices[j]]) + 5:  # greedy scored EOS too
            assert hyp.score == pytest.approx(expected.score, abs=1e-4)
        assert hyp.score < 0 and torch.allclose(hyp.attention.sum(-1), torch.ones(len(hyp.ids)), atol=1e-5)


def test_forced_score_of_a_step_by_step_walk(tiny_model):
    loaded = load(tiny_model)
    model = loaded.model
    src, tgt = loaded.codec.encode(["a b c d"], side="src")[0], loaded.codec.encode(["d c b a"], side="tgt")[0]
    (batch,) = make_batches([src], [tgt], batch_tokens=10**6)
    (hyp,) = force_decode(model, batch)
    with torch.no_grad():
        enc = model.encode(batch.src, batch.src_lengths)
        state, prev, total = model.init_state(enc), batch.tgt_in[:, 0], 0.0
        for tok in [*tgt, EOS_ID]:
            step = model.step(prev, state, enc)
            total += float(torch.log_softmax(step.logits.float(), -1)[0, tok])
            state, prev = step.state, torch.tensor([tok])
    assert hyp.ids == tgt and hyp.score == pytest.approx(total, abs=1e-4)


# --- sampling: nucleus and temperature, known answers ------------------------------------------------
PROBS = torch.tensor([0.6, 0.3, 0.1])


def _draws(n=20000, **kw):
    pick = _sampler(generator=torch.Generator().manual_seed(0), **{"top_k": None, "top_p": None,
                                                                   "temperature": 1.0, **kw})
    drawn = pick(PROBS.log().expand(n, 3))
    counts = Counter(drawn.tolist())
    return [counts[i] / n for i in range(3)]


@pytest.mark.parametrize("top_p, allowed", [(0.5, {0}), (0.6, {0}), (0.8, {0, 1}), (0.95, {0, 1, 2})])
def test_top_p_keeps_the_smallest_set_holding_the_mass(top_p, allowed):
    freq = _draws(top_p=top_p)
    assert {i for i, f in enumerate(freq) if f > 0} == allowed
    kept = PROBS[sorted(allowed)]
    assert freq[: len(allowed)] == pytest.approx((kept / kept.sum()).tolist(), abs=0.015)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_rescales_the_distribution(temperature):
    expected = torch.softmax(PROBS.log() / temperature, -1).tolist()
    assert _draws(temperature=temperature) == pytest.approx(expected, abs=0.015)
