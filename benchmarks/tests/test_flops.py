"""benchmarks/flops.py: the analytical FLOPs per target token, against hand-computed known answers."""

from __future__ import annotations

from benchmarks import flops


def test_transformer_macs_known_answer():
    # d=2, ff=4, S=T=3, V=5, one layer each:
    # encoder 4*4 + 2*3*2 + 2*2*4 = 44 and cross K/V 2*4 = 8 (per source token, ratio 1);
    # decoder self 16 + 12, cross Q/O 8 + 12, FFN 16 = 64; output 2*5 = 10.
    macs = flops.transformer_macs(d=2, ff=4, enc_layers=1, dec_layers=1, vocab=5, lengths=flops.Lengths(3, 3))
    assert macs == 44 + 8 + 64 + 10


def test_rnn_macs_known_answer():
    # E=1, H=1 (K=2), D=1, A=1, V=3, S=T=2:
    # encoder 2*3*(1+1)=12, keys 2*1=2 -> 14 per source token; attention 1 + 2 + 4 = 7;
    # GRU 3*((1+2)*1 + 1) = 12; pre-output (1+2+1)*1 = 4; output 3.
    macs = flops.rnn_macs(emb=1, hidden=1, dec_hidden=1, attention=1, vocab=3, lengths=flops.Lengths(2, 2))
    assert macs == 14 + 7 + 12 + 4 + 3


def test_luong_rnn_macs_known_answer():
    # as above, Luong wiring: GRU 3*((1 + 1)*1 + 1) = 9 with input feeding, 3*(1 + 1) = 6 without;
    # attentional layer (2 + 1)*1 = 3; no pre-output layer.
    kw = {"emb": 1, "hidden": 1, "dec_hidden": 1, "attention": 1, "vocab": 3, "lengths": flops.Lengths(2, 2)}
    assert flops.rnn_macs(**kw, wiring="luong") == 14 + 7 + 9 + 3 + 3
    assert flops.rnn_macs(**kw, wiring="luong", input_feeding=False) == 14 + 7 + 6 + 3 + 3


def test_training_flops_are_six_times_forward_macs_and_scale_with_source_ratio():
    cfg = {"backend": "transformer", "emb_size": 2, "ff_size": 4, "enc_layers": 1, "dec_layers": 1}
    assert flops.training_flops_per_token(cfg, vocab=5, lengths=flops.Lengths(3, 3)) == 6 * 126
    rnn = {"backend": "rnn", "emb_size": 8, "hidden_size": 8, "dec_hidden_size": 16, "attention_size": None}
    short = flops.training_flops_per_token(rnn, vocab=50, lengths=flops.Lengths(5, 10))
    long = flops.training_flops_per_token(rnn, vocab=50, lengths=flops.Lengths(20, 10))
    assert long > short  # more source per target token costs more per target token
