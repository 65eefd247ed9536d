"""Model backends and ``build_model``, the one function that wires a model from its config."""

from __future__ import annotations

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


def check_config(cfg: Config) -> None:
    """The chosen backend's own checks (sizes that must fit together), before any data is read:
    whoever builds a model from a config (training, loading a model directory) calls this first."""
    _backend(cfg.model).check_config(cfg)


def build_model(cfg: ModelConfig, *, src_vocab: int, tgt_vocab: int, joint: bool = False) -> nn.Module:
    """``joint``: source and target share one tokenizer (``tokenizer.joint``); the Transformer then
    shares its source and target embeddings when ``model.share_embeddings`` is auto."""
    return _backend(cfg).build(cfg, src_vocab=src_vocab, tgt_vocab=tgt_vocab, joint=joint)


def position_limit(cfg: ModelConfig) -> int | None:
    """The longest sequence (tokens, EOS included) the model has positions for; None: no limit."""
    return _backend(cfg).position_limit(cfg)


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
           "count_parameters", "position_limit", "set_alignment"]
