"""Bahdanau and Luong decoder wirings with every scorer: they build, train, decode, keep the
teacher-forced pass equal to step-by-step decoding, and wire the query as their papers do."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seq2attn.config import ModelConfig
from seq2attn.nn.attention import ATTENTIONS
from seq2attn.nn.batches import collate
from seq2attn.nn.models import build_model
from seq2attn.nn.search import greedy
from seq2attn.special import PAD_ID

PAIRS = [(wiring, name) for wiring in ("bahdanau", "luong") for name in sorted(ATTENTIONS)]
SRC = [[5, 6, 7, 8], [9, 5], [7, 7, 6]]
TGT = [[8, 7, 6, 5], [5, 9], [6, 7, 7]]


def _model(wiring: str, name: str, **changes):
    torch.manual_seed(0)
    cfg = ModelConfig(decoder=wiring, attention=name, emb_size=8, hidden_size=8, dec_hidden_size=16,
                      heads=2, dropout=0.0, **changes)
    return build_model(cfg, src_vocab=12, tgt_vocab=12)


def _loss(model, batch) -> torch.Tensor:
    out = model(batch.src, batch.src_lengths, batch.tgt_in)
    return F.cross_entropy(out.logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID)


@pytest.mark.parametrize("wiring, name", PAIRS)
def test_every_pair_builds_trains_and_decodes(wiring, name):
    model = _model(wiring, name)
    batch = collate(SRC, TGT, [0, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = float(_loss(model, batch).detach())
    for _ in range(5):
        optimizer.zero_grad()
        loss = _loss(model, batch)
        loss.backward()
        assert all(p.grad is not None for p in model.decoder.attention.parameters())
        optimizer.step()
    assert float(_loss(model, batch).detach()) < first
    model.eval()
    hyps = greedy(model, batch, max_len_a=1.0, max_len_b=2)
    assert len(hyps) == 3
    for hyp, src in zip(hyps, SRC):
        assert hyp.attention.shape == (len(hyp.ids), len(src) + 1)
        assert torch.allclose(hyp.attention.sum(-1), torch.ones(len(hyp.ids)), atol=1e-5)


@pytest.mark.parametrize("feeding", [True, False])
@pytest.mark.parametrize("wiring, name", PAIRS)
def test_teacher_forced_pass_equals_step_by_step(wiring, name, feeding):
    """Luong without input feeding runs all T at once in training; it must still equal stepping."""
    model = _model(wiring, name, input_feeding=feeding, dec_layers=2).double().eval()
    batch = collate(SRC, TGT, [0, 1, 2])
    full = model(batch.src, batch.src_lengths, batch.tgt_in)
    enc = model.encode(batch.src, batch.src_lengths)
    state, logits, attention = model.init_state(enc), [], []
    for t in range(batch.tgt_in.size(1)):
        out = model.step(batch.tgt_in[:, t], state, enc)
        state = out.state
        logits.append(out.logits)
        attention.append(out.attention)
    assert torch.allclose(full.logits, torch.stack(logits, 1))
    assert torch.allclose(full.attention, torch.stack(attention, 1))


@pytest.mark.parametrize("wiring, depends", [("bahdanau", False), ("luong", True)])
def test_query_is_previous_state_for_bahdanau_and_current_state_for_luong(wiring, depends):
    """Bahdanau attends with s_{t-1}, before y_{t-1} enters the GRU: its weights at a step cannot
    depend on that step's input token. Luong steps the GRU first and attends with s_t: they do."""
    model = _model(wiring, "general").eval()
    batch = collate(SRC, None, [0, 1, 2])
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    a = model.step(torch.tensor([5, 5, 5]), state, enc).attention
    b = model.step(torch.tensor([9, 9, 9]), state, enc).attention
    assert torch.allclose(a, b) != depends


def test_input_feeding_joins_the_next_input():
    fed, unfed = _model("luong", "general"), _model("luong", "general", input_feeding=False)
    assert fed.decoder.rnn.input_size == 8 + 16 and unfed.decoder.rnn.input_size == 8
    assert fed.decoder.parallel is False and unfed.decoder.parallel is True
    batch = collate(SRC, None, [0, 1, 2])
    state = fed.init_state(fed.encode(batch.src, batch.src_lengths))
    assert torch.all(state.feed == 0) and state.feed.shape == (3, 16)  # h~_0 = 0


def test_multihead_context_width_sizes_the_decoder():
    model = _model("bahdanau", "multihead", attention_size=6)
    assert model.decoder.rnn.input_size == 8 + 6  # [emb; c_t] with c_t attention_size wide


def test_multi_layer_bridge_gives_each_decoder_layer_its_state():
    model = _model("luong", "general", enc_layers=2, dec_layers=3)
    batch = collate(SRC, None, [0, 1, 2])
    state = model.init_state(model.encode(batch.src, batch.src_lengths))
    assert state.hidden.shape == (3, 3, 16)
    assert not torch.allclose(state.hidden[0], state.hidden[1])  # a learned map per layer
