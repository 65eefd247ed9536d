"""Model backends and ``build_model``, the one function that wires a model from its config."""

from __future__ import annotations

from torch import nn

from ..config import BACKENDS, ModelConfig
from ..errors import ConfigError
from .base import Features, ForwardOutput, StepOutput


def build_model(cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int, joint: bool = False) -> nn.Module:
    """``joint``: source and target share one tokenizer (``tokenizer.joint``); the Transformer then
    shares its source and target embeddings when ``model.share_embeddings`` is auto."""
    from . import rnn, transformer

    if cfg.backend == "rnn":
        return rnn.RNNSeq2Seq(cfg, src_vocab=src_vocab, tgt_vocab=tgt_vocab)
    if cfg.backend == "transformer":
        share = joint if cfg.share_embeddings == "auto" else bool(cfg.share_embeddings)
        return transformer.TransformerSeq2Seq(cfg, src_vocab=src_vocab, tgt_vocab=tgt_vocab,
                                              share_embeddings=share)
    raise ConfigError(f"model.backend={cfg.backend!r}; choose one of: {', '.join(BACKENDS)}")


def set_alignment(model: nn.Module, *, layer: int | None, head: int | None) -> None:
    """Pick the attention a model returns (Transformer: decoder layer and head, None = last layer,
    average of heads). Backends without layers/heads to choose from accept only None."""
    if hasattr(model, "set_alignment"):
        model.set_alignment(layer=layer, head=head)
    elif layer is not None or head is not None:
        raise ConfigError("--layer / --head select a Transformer's cross-attention; this model "
                          "(model.backend=rnn) has one attention, leave them out")


def position_limit(cfg: ModelConfig) -> int | None:
    """The longest sequence (tokens, EOS included) the model has positions for: the Transformer's
    table size; None for the GRU, which has no positions."""
    return cfg.max_positions if cfg.backend == "transformer" else None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["Features", "ForwardOutput", "StepOutput", "build_model", "count_parameters", "position_limit", "set_alignment"]
