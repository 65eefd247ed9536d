"""Request and response bodies. The decoding options are not declared here: they are derived from
the fields of :class:`seq2attn.config.DecodeConfig` (names as ``Model.translate`` takes them,
types, help text), so the server takes exactly what ``seq2attn translate`` and
``Model.translate(**options)`` take, and checks them with the same code (``Model.decode_config``)."""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from seq2attn.config import Config, DecodeConfig

# the server's own setting, not a request's: how many source tokens one batched search holds
SERVER_ONLY = ("batch_tokens",)


_PUBLIC = {f: name for name, f in DecodeConfig.public_names().items()}


def option_name(field_name: str) -> str:
    """The public name of a DecodeConfig field: ``Model.translate``'s keyword and the request field."""
    return _PUBLIC.get(field_name, field_name)


def field_of_message(message: str) -> str | None:
    """The request field a ``decode.X`` error message is about (``decode.beam_size`` -> ``beam``)."""
    m = re.search(r"\bdecode\.(\w+)", message)
    return option_name(m.group(1)) if m else None


def _limits(f: dataclasses.Field) -> dict[str, Any]:
    """The range a field declares (``config.option``'s ge/gt/le), as pydantic Field keywords: the
    same bounds ``DecodeConfig.__post_init__`` checks, shown in the OpenAPI schema."""
    meta = f.metadata or {}
    return {k: meta[k] for k in ("ge", "gt", "le") if meta.get(k) is not None}


def decode_fields(cfg: Config) -> dict[str, tuple[Any, Any]]:
    """``create_model`` field definitions for every request-settable DecodeConfig field: optional,
    None meaning the model's saved value (named in the description)."""
    hints = typing.get_type_hints(DecodeConfig)
    out: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(DecodeConfig):
        if f.name in SERVER_ONLY:
            continue
        hint = hints[f.name]
        saved = getattr(cfg.decode, f.name)
        help_text = str((f.metadata or {}).get("help") or "")
        description = (f"{help_text.rstrip('.')}. " if help_text else "") + (
            f"Default (null): the model's decode.{f.name}, {saved!r} for this model. "
            f"Same as `seq2attn translate --{option_name(f.name).replace('_', '-')}`.")
        kinds = typing.get_args(hint) or (hint,)
        extra: dict[str, Any] = {"allow_inf_nan": False} if float in kinds else {}
        if int in kinds or bool in kinds:  # JSON's own types: no true for 1, no "yes" for true
            extra["strict"] = True
        out[option_name(f.name)] = (hint | None, Field(default=None, description=description, **_limits(f), **extra))
    return out


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Selection(Strict):
    layer: int | None = Field(default=None, ge=0, strict=True, description="Transformer: the decoder layer whose "
                              "cross-attention the result carries (null: the model's model.align_layer, else the "
                              "last). Same as `seq2attn align --layer`.")
    head: int | None = Field(default=None, ge=0, strict=True, description="Transformer: one head of that layer (null: the "
                             "model's model.align_head, else the heads' average). Same as `seq2attn align --head`.")


def translate_request(cfg: Config) -> type[BaseModel]:
    """The body of POST /v1/translate for a model with config ``cfg``."""
    return create_model(
        "TranslateRequest",
        __base__=Selection,
        __doc__="One text (`text`) or a list (`texts`), and decoding options; null options keep the model's.",
        text=(str | None, Field(default=None, description="One source sentence.")),
        texts=(list[str] | None, Field(default=None, description="Source sentences, translated in order "
                                          "(give `text` or `texts`).")),
        attention=(bool, Field(default=False, strict=True, description="Also return the attention matrices: the pieces' "
                               "(`pieces`) and the words' (`words`, with word links).")),
        **decode_fields(cfg),
    )


class AlignRequest(Selection):
    """Forced alignment of given translations: one pair (`source`, `target`) or two line-aligned
    lists (`sources`, `targets`)."""

    source: str | None = Field(default=None, description="A source sentence.")
    target: str | None = Field(default=None, description="Its translation, as given.")
    sources: list[str] | None = Field(default=None, description="Source sentences.")
    targets: list[str] | None = Field(default=None, description="Their translations, line-aligned.")
    threshold: float | None = Field(default=None, gt=0.0, le=1.0, allow_inf_nan=False,
                                       description="Word links: every cell with at least this weight "
                                       "(null: each target word's most attended source word). Same as "
                                       "`seq2attn align --threshold`.")


# --- responses ------------------------------------------------------------------------------
class Matrix(BaseModel):
    src: list[str] = Field(description="Column labels: source words, or pieces with the final </s>.")
    tgt: list[str] = Field(description="Row labels: target words, or pieces.")
    weights: list[list[float]] = Field(description="Rows: target labels; columns: source labels.")
    links: str = Field(description="Pharaoh links i-j (source i, target j) over these labels.")


class Entry(BaseModel):
    hyp: str
    score: float = Field(description="Total log-probability.")
    norm_score: float = Field(description="The score after the length penalty (alpha).")
    alignment: str = Field(description="Pharaoh links over src_tokens / hyp_tokens, as `seq2attn translate "
                           "--format jsonl` writes them.")


class TranslationOut(Entry):
    src: str
    src_tokens: list[str] = Field(description="Source pieces, </s> last, as in translate's JSONL and the "
                                  "Python API's Translation.")
    hyp_tokens: list[str] = Field(description="Output pieces.")
    nbest: list[Entry] | None = Field(default=None, description="With nbest > 1: the best-first list.")
    too_long: bool = Field(description="The source passed the model's position limit (translated whole all "
                           "the same).")
    pieces: Matrix | None = Field(default=None, description="With attention: the matrix over the "
                                     "tokenizer's pieces (the </s> column included).")
    words: Matrix | None = Field(default=None, description="With attention: the matrix over words (pieces "
                                    "summed per source word, averaged per target word; </s> dropped).")


class TranslateResponse(BaseModel):
    translations: list[TranslationOut]
    options: dict[str, Any] = Field(description="The decoding options used (the model's, with the request's "
                                    "over them).")
    layer: int | None = None
    head: int | None = None


class AlignmentOut(BaseModel):
    src: str
    hyp: str = Field(description="The target as given.")
    score: float = Field(description="Log-probability of the target under the model.")
    too_long: bool
    pieces: Matrix
    words: Matrix


class AlignResponse(BaseModel):
    alignments: list[AlignmentOut]
    layer: int | None = None
    head: int | None = None


class ErrorResponse(BaseModel):
    error: str = Field(description="One line saying what is wrong.")
    field: str | None = Field(default=None, description="The request field at fault, when there is one.")


Level = Literal["word", "subword"]
