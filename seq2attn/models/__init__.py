"""Model backends and ``build_model``, the one function that wires a model from its config."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .base import ForwardOutput, StepOutput


def build_model(cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int) -> nn.Module:
    from . import rnn

    builders = {"rnn": rnn.RNNSeq2Seq}
    if cfg.backend not in builders:
        raise ConfigError(f"model.backend={cfg.backend!r}; choose one of: {', '.join(builders)}")
    return builders[cfg.backend](cfg, src_vocab=src_vocab, tgt_vocab=tgt_vocab)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ForwardOutput", "StepOutput", "build_model", "count_parameters"]
