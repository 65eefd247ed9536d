"""Model backends and ``build_model``, the one function that wires a model from its config."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from seq2attn.config import Config, ModelConfig
from seq2attn.errors import ConfigError
from seq2attn.nn.models.base import Features, ForwardOutput, StepOutput
from seq2attn.nn.models.rnn import RNNSeq2Seq
from seq2attn.nn.models.transformer import TransformerSeq2Seq

# model.backend -> its model class; each class has build(), check_config() and position_limit()
BACKENDS: dict[str, type[nn.Module]] = {"rnn": RNNSeq2Seq, "transformer": TransformerSeq2Seq}


def _backend(cfg: ModelConfig) -> type[nn.Module]:
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"model.backend={cfg.backend!r}; choose one of: {', '.join(BACKENDS)}")
    return BACKENDS[cfg.backend]


def check_config(cfg: Config, *, training: bool = True) -> None:
    """The chosen backend's own checks (sizes that must fit together), then what the machine can
    hold (:func:`check_resources`), before any data is read or any tensor made: whoever builds a
    model from a config (training, loading a model directory) calls this first."""
    _backend(cfg.model).check_config(cfg)
    check_resources(cfg, training=training)


MAX_LAYERS = 1000  # deeper than any published NMT model; building more takes minutes of Python alone


def estimate(cfg: Config, *, training: bool) -> tuple[int, int]:
    """(parameters, bytes) a model of ``cfg`` needs, from its sizes alone (an upper bound in the
    vocabulary: tokenizer.vocab_size). Bytes: fp32 weights, and for training their gradients and
    Adam's two moments plus the activations of one ``train.batch_tokens`` batch (logits and each
    layer's states, kept for the backward pass); for decoding the weights and one batch's logits."""
    m, v = cfg.model, cfg.tokenizer.vocab_size
    e, le, ld = m.emb_size, m.enc_layers, m.dec_layers
    if m.backend == "transformer":
        f = m.ff_size
        params = 3 * v * e + m.max_positions * e + le * (4 * e * e + 2 * e * f) + ld * (8 * e * e + 2 * e * f)
        width = 3 * v + (le + ld) * (12 * e + 2 * f + m.heads * cfg.data.max_length)
    else:
        h, d = m.hidden_size, m.dec_hidden_size
        a = m.attention_size or d
        params = (2 * v * e + 6 * h * (e + h + 2) + (le - 1) * 6 * h * (3 * h + 2) + 3 * d * (e + 2 * h + d + 2)
                  + (ld - 1) * 3 * d * (2 * d + 2) + (2 * h + d) * (a + 1) + 2 * h * d + (d + 2 * h + e) * v)
        width = 3 * v + le * (e + 8 * h) + ld * (e + 8 * d + 2 * h + a)
    if training:
        return params, 4 * (4 * params + 2 * cfg.train.batch_tokens * width)
    return params, 4 * (params + cfg.decode.batch_tokens * 3 * v)


def machine_memory() -> int:
    """Bytes of memory this process may use: the physical memory, or a smaller cgroup limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def check_resources(cfg: Config, *, training: bool = True) -> None:
    """Refuse, with the estimate, a model the machine cannot hold, or a layer count that would take
    minutes to build; for training, more threads than CPUs and a seed numpy cannot take."""
    m = cfg.model
    for name, layers in (("model.enc_layers", m.enc_layers), ("model.dec_layers", m.dec_layers)):
        if layers > MAX_LAYERS:
            raise ConfigError(f"{name}={layers}; at most {MAX_LAYERS}")
    params, need = estimate(cfg, training=training)
    have = machine_memory()
    if need > have:
        what = "to train (weights, gradients, Adam moments and one batch's activations)" if training else "to load"
        raise ConfigError(f"this model needs about {params:.3g} parameters and {need / 2**30:,.1f} GiB {what}, more "
                          f"than this machine's {have / 2**30:,.1f} GiB (model.emb_size={m.emb_size}, "
                          f"hidden_size={m.hidden_size}, enc_layers={m.enc_layers}, dec_layers={m.dec_layers}, "
                          f"tokenizer.vocab_size={cfg.tokenizer.vocab_size})")
    if not training:
        return
    cpus = os.cpu_count() or 1
    if cfg.train.threads is not None and cfg.train.threads > cpus:
        raise ConfigError(f"train.threads={cfg.train.threads}; this machine has {cpus} CPU(s)")
    if not 0 <= cfg.train.seed < 2**32:
        raise ConfigError(f"train.seed={cfg.train.seed}; must be in [0, 2**32)")


def build_model(cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int, joint: bool = False) -> nn.Module:
    """``joint``: source and target share one tokenizer (``tokenizer.joint``); the Transformer then
    shares its source and target embeddings when ``model.share_embeddings`` is auto."""
    return _backend(cfg).build(cfg, src_vocab=src_vocab, tgt_vocab=tgt_vocab, joint=joint)


def position_limit(cfg: ModelConfig) -> int | None:
    """The longest sequence (tokens, EOS included) the model has positions for; None: no limit."""
    return _backend(cfg).position_limit(cfg)


RNN_INPUT_LIMIT = 1024  # source pieces a GRU reads per input unless decode.max_input_tokens says otherwise


def input_limit(cfg: ModelConfig, max_input_tokens: int | None) -> int:
    """Source pieces (EOS included) read per input: ``decode.max_input_tokens``, else the model's
    position limit (a Transformer), else :data:`RNN_INPUT_LIMIT`. Longer inputs are cut there, so
    one input's work and memory are bounded."""
    return max_input_tokens or position_limit(cfg) or RNN_INPUT_LIMIT


def set_alignment(model: nn.Module, *, layer: int | None, head: int | None) -> None:
    """Pick the attention a model returns (Transformer: decoder layer and head, None = last layer,
    average of heads). Backends without layers/heads to choose from accept only None."""
    if hasattr(model, "set_alignment"):
        model.set_alignment(layer=layer, head=head)
    elif layer is not None or head is not None:
        raise ConfigError("--layer / --head select a Transformer's cross-attention; this model "
                          "(model.backend=rnn) has one attention, leave them out")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["BACKENDS", "Features", "ForwardOutput", "StepOutput", "build_model", "check_config",
           "count_parameters", "input_limit", "position_limit", "set_alignment"]
