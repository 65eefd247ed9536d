"""Transformer backend: multi-head attention vs torch, causality, KV-cache parity, padding
invariance, beam reordering, alignment selection, the noam schedule, and learning `reverse`."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from seq2attn.config import ModelConfig, TrainConfig, resolve_config
from seq2attn.errors import ConfigError
from seq2attn.inference.translate import force, translate
from seq2attn.modeldir.checkpoint import load
from seq2attn.nn.batches import collate
from seq2attn.nn.models import build_model, check_config, set_alignment
from seq2attn.nn.models.mha import MultiHeadAttention, causal_mask
from seq2attn.nn.search import greedy
from seq2attn.run.optim import build_scheduler
from seq2attn.run.train import train
from seq2attn.text.corpora import CORPORA

V = 23
SMALL = ModelConfig(backend="transformer", emb_size=32, heads=4, ff_size=48, enc_layers=2, dec_layers=3,
                    dropout=0.1, attention_dropout=0.1)


def _model(**changes) -> nn.Module:
    torch.manual_seed(0)
    return build_model(replace(SMALL, **changes), src_vocab=V, tgt_vocab=V, joint=True).eval()


def _batch(srcs: list[list[int]], tgts: list[list[int]] | None = None):
    return collate(srcs, tgts, list(range(len(srcs))))


SRCS = [[4, 5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16], [17]]
TGTS = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14], [15, 16]]


# --- multi-head attention ------------------------------------------------------------------


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("causal", [True, False])
def test_mha_equals_torch_multihead_attention(need_weights, causal):
    torch.manual_seed(0)
    B, T, D, h = 3, 5, 16, 4
    ours = MultiHeadAttention(D, h, dropout=0.0).eval()
    ref = nn.MultiheadAttention(D, h, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    x = torch.randn(B, T, D)
    keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)  # (B, S)
    mask = keep.view(B, 1, 1, T)
    if causal:
        mask = mask & causal_mask(T, 0, x.device)
    out = ours(x, ours.project_kv(x), mask=mask, need_weights=need_weights)
    expected, w = ref(x, x, x, attn_mask=~mask.expand(B, h, T, T).reshape(B * h, T, T),
                      need_weights=True, average_attn_weights=False)
    assert torch.allclose(out.out, expected, atol=1e-6)
    if need_weights:
        assert out.weights.shape == (B, h, T, T)
        assert torch.allclose(out.weights, w, atol=1e-6)
    else:
        assert out.weights is None


def test_causal_mask_with_a_past():
    m = causal_mask(2, 3, torch.device("cpu"))  # queries at absolute positions 3 and 4
    assert m.shape == (1, 1, 2, 5)
    assert m[0, 0].tolist() == [[True, True, True, True, False], [True] * 5]
    assert causal_mask(1, 7, torch.device("cpu")) is None


# --- the model -----------------------------------------------------------------------------


def _step_all(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced logits and attention through ``step``: (B, T, V), (B, T, S)."""
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    logits, att = [], []
    for t in range(batch.tgt_in.size(1)):
        out = model.step(batch.tgt_in[:, t], state, enc)
        logits.append(out.logits)
        att.append(out.attention)
        state = out.state
    return torch.stack(logits, 1), torch.stack(att, 1)


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("norm,positional,max_positions", [
    ("pre", "sinusoidal", 1024), ("post", "learned", 1024),
    ("pre", "sinusoidal", 4),  # past the precomputed table: the same sin/cos values, computed on the fly
])
def test_cached_step_equals_full_forward(use_cache, norm, positional, max_positions):
    model = _model(norm=norm, positional=positional, activation="gelu", max_positions=max_positions)
    model.use_cache = use_cache
    batch = _batch(SRCS, TGTS)
    with torch.no_grad():
        full = model(batch.src, batch.src_lengths, batch.tgt_in)
        logits, att = _step_all(model, batch)
    assert torch.allclose(logits, full.logits, atol=1e-5, rtol=0)
    assert torch.allclose(att, full.attention, atol=1e-5, rtol=0)


def test_future_targets_do_not_change_earlier_positions():
    model = _model()
    batch = _batch(SRCS[:1], [[5, 6, 7, 8, 9, 10]])
    changed = batch.tgt_in.clone()
    changed[0, 4:] = torch.tensor([20, 21, 22])
    with torch.no_grad():
        a = model(batch.src, batch.src_lengths, batch.tgt_in)
        b = model(batch.src, batch.src_lengths, changed)
    assert torch.allclose(a.logits[:, :4], b.logits[:, :4], atol=1e-6)
    assert torch.allclose(a.attention[:, :4], b.attention[:, :4], atol=1e-6)
    assert not torch.allclose(a.logits[:, 4:], b.logits[:, 4:])  # the change did reach later positions


def test_padding_changes_nothing_for_the_unpadded_sentences():
    model = _model()
    together = _batch(SRCS, TGTS)
    with torch.no_grad():
        out = model(together.src, together.src_lengths, together.tgt_in)
        greedy_all = greedy(model, _batch(SRCS), max_len_a=1.0, max_len_b=5)
        for i, (s, t) in enumerate(zip(SRCS, TGTS)):
            alone = _batch([s], [t])
            one = model(alone.src, alone.src_lengths, alone.tgt_in)
            S, T = len(s) + 1, len(t) + 1
            assert torch.allclose(out.logits[i, :T], one.logits[0], atol=1e-5)
            assert torch.allclose(out.attention[i, :T, :S], one.attention[0], atol=1e-5)
            assert torch.all(out.attention[i, :, S:] == 0)  # padded source positions get no weight
            [g] = greedy(model, _batch([s]), max_len_a=1.0, max_len_b=5)
            assert g.ids == greedy_all[i].ids
            assert torch.allclose(g.attention, greedy_all[i].attention, atol=1e-5)


def test_index_select_reorders_cache_like_the_batch():
    """Beams and finished-row removal reorder encoder output and state mid-decode."""
    model = _model()
    batch = _batch(SRCS, TGTS)
    perm = torch.tensor([2, 0, 0, 3])  # reordered, row 0 repeated (as beams are), row 1 dropped (finished)
    with torch.no_grad():
        enc = model.encode(batch.src, batch.src_lengths)
        state = model.init_state(enc)
        for t in range(2):
            state = model.step(batch.tgt_in[:, t], state, enc).state
        moved = model.step(batch.tgt_in[perm, 2], state.index_select(perm), enc.index_select(perm))
        ref = model.step(batch.tgt_in[:, 2], state, enc)
    assert torch.allclose(moved.logits, ref.logits[perm], atol=1e-6)
    assert torch.allclose(moved.attention, ref.attention[perm], atol=1e-6)


def test_alignment_layer_and_head_selection():
    model = _model()
    batch = _batch(SRCS, TGTS)
    heads = []
    with torch.no_grad():
        base = model(batch.src, batch.src_lengths, batch.tgt_in)
        for layer in range(3):
            set_alignment(model, layer=layer, head=None)
            out = model(batch.src, batch.src_lengths, batch.tgt_in)
            # the explicit path (weights) and the fused one give the same logits in every layer
            assert torch.allclose(out.logits, base.logits, atol=1e-5)
        for head in range(4):
            set_alignment(model, layer=2, head=head)
            heads.append(model(batch.src, batch.src_lengths, batch.tgt_in).attention)
    assert torch.allclose(torch.stack(heads).mean(0), base.attention, atol=1e-6)  # default: last layer, mean
    assert torch.allclose(base.attention.sum(-1), torch.ones(4, 7))
    with pytest.raises(ConfigError, match="choose 0..2"):
        set_alignment(model, layer=3, head=None)
    with pytest.raises(ConfigError, match="choose 0..3"):
        set_alignment(model, layer=None, head=4)
    rnn = build_model(ModelConfig(emb_size=8, hidden_size=8, dec_hidden_size=8), src_vocab=V, tgt_vocab=V)
    set_alignment(rnn, layer=None, head=None)
    with pytest.raises(ConfigError, match="rnn"):
        set_alignment(rnn, layer=0, head=None)


def test_shared_and_tied_embeddings():
    model = _model(tie_embeddings=True)
    assert model.src_embed.tokens is model.tgt_embed.tokens
    assert model.output.weight is model.tgt_embed.tokens.weight
    separate = build_model(replace(SMALL, share_embeddings="auto"), src_vocab=V, tgt_vocab=V + 1, joint=False)
    assert separate.src_embed.tokens is not separate.tgt_embed.tokens


@pytest.mark.parametrize("activation_dropout,expected", [(None, 0.1), (0.0, 0.0), (0.25, 0.25)])
def test_activation_dropout_is_the_feed_forwards_own_or_the_models(activation_dropout, expected):
    model = _model(activation_dropout=activation_dropout)
    inner = {m.p for layer in [*model.encoder, *model.decoder] for m in layer.ff.net if isinstance(m, nn.Dropout)}
    outer = {m.p for layer in model.encoder for m in (layer.r_attn.dropout, layer.r_ff.dropout)}
    assert inner == {expected} and outer == {0.1}  # the residual dropouts keep model.dropout


@pytest.mark.parametrize("sets,match", [
    (["model.emb_size=30", "model.heads=4"], "model.emb_size=30 must be divisible by model.heads=4"),
    (["model.align_layer=2", "model.dec_layers=2"], "model.align_layer=2; choose 0..1"),
    (["model.align_head=4"], "model.align_head=4; choose 0..3"),
    (["model.share_embeddings=true", "tokenizer.joint=false"], "needs tokenizer.joint=true"),
    (["model.norm=mid"], "model.norm='mid'; choose one of: pre, post"),
    (["model.activation=tanh"], "choose one of: relu, gelu"),
    (["model.attention_dropout=1.0"], "model.attention_dropout"),
    (["model.activation_dropout=-0.1"], "model.activation_dropout"),
    (["train.schedule=linear"], "choose one of: plateau, noam, cosine, constant"),
    (["train.schedule=cosine"], "train.schedule=cosine needs train.max_steps"),
    (["train.warmup_steps=0"], "train.warmup_steps=0"),
])
def test_config_errors_name_the_field(sets, match):
    with pytest.raises(ConfigError, match=match.replace(".", r"\.").replace("'", ".")):
        check_config(resolve_config(sets=["model.backend=transformer", *sets]))


def test_noam_schedule_warms_up_then_decays():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, TrainConfig(schedule="noam", warmup_steps=4))
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [0.25, 0.5, 0.75, 1.0] + [math.sqrt(4 / s) for s in (5, 6, 7, 8)]
    assert lrs == pytest.approx(expected)
    assert build_scheduler(opt, TrainConfig(schedule="constant")) is None


# --- through training, the model directory and the search ------------------------------------


def test_transformer_trains_saves_and_decodes(tmp_path, reverse_files):
    cfg = resolve_config(
        preset=CORPORA["reverse"].preset,
        sets=["model.backend=transformer", "model.emb_size=32", "model.ff_size=32", "model.enc_layers=1",
              "model.dec_layers=2", "model.tie_embeddings=true", "train.schedule=noam", "train.warmup_steps=5",
              "train.max_steps=6", "train.validate_every=3", "data.dev_size=20"],
        flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                        "dev": [str(p) for p in reverse_files["dev"]]}},
    )
    train(cfg, tmp_path / "m")
    rows = [json.loads(r) for r in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "valid"] == [3, 6]
    loaded = load(tmp_path / "m")  # shared + tied weights survive safetensors
    assert loaded.model.output.weight is loaded.model.src_embed.tokens.weight
    texts = ["a b c", "d e f g h"]
    result = translate(loaded, texts, decode=loaded.cfg.decode)
    for t in result.translations:
        assert t.attention.shape == (len(t.hyp_tokens), len(t.src_tokens))
    forced = force(loaded, texts, ["c b a", "h g f e d"], decode=loaded.cfg.decode)
    assert [f.attention.shape for f in forced.translations] == [(3, 4), (5, 6)]
    assert torch.allclose(forced.translations[0].attention.sum(-1), torch.ones(3))


def test_noam_schedule_survives_resume(tmp_path, reverse_files):
    def cfg(steps):
        return resolve_config(
            preset=CORPORA["reverse"].preset,
            sets=["model.backend=transformer", "model.emb_size=16", "model.ff_size=16", "model.enc_layers=1",
                  "model.dec_layers=1", "train.schedule=noam", "train.warmup_steps=8", "train.lr=0.01",
                  f"train.max_steps={steps}", "train.validate_every=5", "train.log_every=1", "data.dev_size=5"],
            flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                            "dev": [str(p) for p in reverse_files["dev"]]}},
        )

    train(cfg(5), tmp_path / "m")
    train(cfg(12), tmp_path / "m", resume=True)
    rows = [json.loads(r) for r in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in rows if r["kind"] == "train"}
    assert sorted(lrs) == list(range(1, 13))
    for step, lr in lrs.items():  # logged after `step` updates: the factor of update step + 1
        assert lr == pytest.approx(0.01 * min((step + 1) / 8, math.sqrt(8 / (step + 1))))


