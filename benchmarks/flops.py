"""Analytical model FLOPs per target token, for throughput as a fraction of the matmul peak.

We count multiply-accumulates (MACs) of the matmuls in one forward pass per target token and
report ``training FLOPs = 3 (forward + backward) x 2 (a MAC is two FLOPs) x MACs``. Elementwise
work (activations, softmax, layer norm, dropout) and embedding lookups count zero. Source-side
work is spread over the target tokens with ``r = S / T`` (mean source / target length in
subword tokens of the training data). The formulas are spelled out in benchmarks/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lengths:
    src: float  # S: mean source length (subword tokens, </s> included)
    tgt: float  # T: mean target length

    @property
    def ratio(self) -> float:
        return self.src / self.tgt


def rnn_macs(*, emb: int, hidden: int, dec_hidden: int, attention: int, vocab: int, lengths: Lengths,
             wiring: str = "bahdanau", input_feeding: bool = True) -> float:
    """GRU + additive attention, forward MACs per target token. Bahdanau wiring: the decoder GRU
    reads embedding + context, a pre-output layer reads state + context + embedding. Luong
    wiring: the GRU reads the embedding (+ the previous attentional state with input feeding),
    an attentional layer W [context; state] feeds the output layer."""
    E, H, D, A, V, S = emb, hidden, dec_hidden, attention, vocab, lengths.src
    K = 2 * H  # key width: both directions
    encoder = 2 * 3 * (E * H + H * H)  # per source token, two directions, three gates
    keys = K * A  # additive attention's key projection, once per source token
    per_source = (encoder + keys) * lengths.ratio
    attention_step = D * A + S * A + S * K  # query projection, v^T tanh(...) over S, context
    output = D * V
    if wiring == "luong":
        gru = 3 * ((E + (D if input_feeding else 0)) * D + D * D)
        combine = (K + D) * D
        return per_source + attention_step + gru + combine + output
    gru = 3 * ((E + K) * D + D * D)
    pre_output = (D + K + E) * D
    return per_source + attention_step + gru + pre_output + output


def transformer_macs(*, d: int, ff: int, enc_layers: int, dec_layers: int, vocab: int, lengths: Lengths) -> float:
    """Encoder-decoder Transformer, forward MACs per target token (attention matmuls included:
    masked positions are computed too, so self-attention costs the full T)."""
    S, T = lengths.src, lengths.tgt
    enc_layer = 4 * d * d + 2 * S * d + 2 * d * ff  # per source token: QKVO, scores + mix, FFN
    cross_kv = 2 * d * d  # per source token, per decoder layer
    dec_layer = (4 * d * d + 2 * T * d  # self-attention
                 + 2 * d * d + 2 * S * d  # cross-attention: Q and O projections, scores + mix
                 + 2 * d * ff)
    per_source = (enc_layers * enc_layer + dec_layers * cross_kv) * lengths.ratio
    return per_source + dec_layers * dec_layer + d * vocab


def training_flops_per_token(model: dict, *, vocab: int, lengths: Lengths) -> float:
    """``model`` is the resolved ``model`` section of a seq2attn config (a dict)."""
    if model["backend"] == "transformer":
        macs = transformer_macs(d=model["emb_size"], ff=model.get("ff_size", 4 * model["emb_size"]),
                                enc_layers=model["enc_layers"], dec_layers=model["dec_layers"], vocab=vocab,
                                lengths=lengths)
    else:
        macs = rnn_macs(emb=model["emb_size"], hidden=model["hidden_size"], dec_hidden=model["dec_hidden_size"],
                        attention=model.get("attention_size") or model["dec_hidden_size"], vocab=vocab,
                        lengths=lengths, wiring=model.get("decoder", "bahdanau"),
                        input_feeding=model.get("input_feeding", True))
    return 6.0 * macs
