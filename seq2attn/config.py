"""Configuration: frozen dataclasses, one home for every default.

Precedence, lowest to highest, resolved in :func:`resolve_config` alone:
dataclass defaults < corpus preset (built-in corpora suggest sizes) < YAML file < ``--set`` overrides
< the command's own flags. The resolved config is saved as ``config.yaml`` in the model directory.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from seq2attn.errors import ConfigError

TOKENIZER_KINDS = ("bpe", "unigram", "wordlevel", "char")
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"  # train.device, --device, load(device=)
# model.attention: the scorer names (seq2attn.nn.attention.ATTENTIONS implements each, a test checks
# they agree); model.attention=null means the wiring's own scorer
ATTENTION_NAMES = ("dot", "scaled_dot", "general", "additive", "concat", "multihead", "kernel")
DEFAULT_ATTENTION = {"bahdanau": "additive", "luong": "general"}


def option(default: Any, help: str, *, name: str | None = None, short: str | None = None, metavar: str = "N",
           example: str, ge: float | None = None, gt: float | None = None, le: float | None = None,
           ct2: tuple[str, Any] | None = None) -> Any:
    """A config field declared once: its default, help text and range, from which the command line's
    flags (``--name``, ``short``), the Python API's keyword (``name``), the range check in
    ``__post_init__`` (``ge``/``gt``/``le``; None always passes) and CTranslate2's argument of the
    same meaning (``ct2``: its name and the value that stands for None; ``sampling_*`` ones apply
    only when sampling) are derived. ``name``: the public spelling when it is not the key."""
    return field(default=default, metadata={"help": help, "name": name, "short": short, "metavar": metavar,
                                            "example": example, "ge": ge, "gt": gt, "le": le, "ct2": ct2})


def bound(default: Any, *, ge: float | None = None, gt: float | None = None, lt: float | None = None,
          le: float | None = None) -> Any:
    """A config field with a range, checked by its section's ``__post_init__`` (:func:`check_ranges`);
    its help is the comment that ends its line (``seq2attn config --defaults`` reads it)."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "lt": lt, "le": le})


def range_text(meta: Any) -> str:
    """A field's declared bounds in words: ``"in [0, 1)"``, ``"> 0"``, ``">= 8"``; "" when it has none."""
    ge, gt, lt, le = (meta.get(k) for k in ("ge", "gt", "lt", "le"))
    low = f"[{ge:g}" if ge is not None else f"({gt:g}" if gt is not None else None
    high = f"{le:g}]" if le is not None else f"{lt:g})" if lt is not None else None
    if low and high:
        return f"in {low}, {high}"
    return " and ".join(f"{op} {v:g}" for op, v in ((">=", ge), (">", gt), ("<", lt), ("<=", le)) if v is not None)


def check_ranges(section: str, obj: Any) -> None:
    """The ``ge``/``gt``/``lt``/``le`` bounds of every :func:`option` or :func:`bound` field of ``obj``,
    one ConfigError naming ``section.key`` for the first value out of range."""
    for f in dataclasses.fields(obj):
        meta, value = f.metadata, getattr(obj, f.name)
        if not meta or value is None or isinstance(value, (bool, str)):
            continue
        ge, gt, lt, le = (meta.get(k) for k in ("ge", "gt", "lt", "le"))
        if ((ge is None or value >= ge) and (gt is None or value > gt) and (lt is None or value < lt)
                and (le is None or value <= le)):
            continue
        rule = "must be " + range_text(meta)
        optional = type(None) in get_args(get_type_hints(type(obj))[f.name])
        raise ConfigError(f"{section}.{f.name}={_show(value)}; {rule}{' or null' if optional else ''}")


@dataclass(frozen=True)
class DataConfig:
    corpus: str | None = None  # a registry name (seq2attn corpora list), or None for files
    src_lang: str | None = None  # source language of a multilingual corpus (--src-lang)
    tgt_lang: str | None = None  # target language (--tgt-lang)
    train: tuple[str, str] | None = None  # (source file, target file)
    dev: tuple[str, str] | None = None  # (source file, target file) for validation
    data_dir: str | None = None  # local copy of downloadable corpora; else $SEQ2ATTN_DATA
    max_length: int = bound(100, gt=0)  # training pairs longer than this (in tokens) are dropped and counted
    dev_size: int | None = bound(None, gt=0)  # use only the first N dev pairs for validation (None: all)
    store: str | None = None  # a binarized corpus (seq2attn preprocess); None: built into the model directory

    def __post_init__(self) -> None:
        check_ranges("data", self)


@dataclass(frozen=True)
class TokenizerConfig:
    kind: Literal["bpe", "unigram", "wordlevel", "char"] = "bpe"  # subword algorithm, or words, or characters
    vocab_size: int = bound(8000, ge=8)  # upper bound; char and wordlevel stop at what the data has
    joint: bool = True  # one vocabulary for source and target
    normalization: Literal["nfkc", "nfc", "nfd", "nfkd", "none"] = "nfkc"  # Unicode normalization of all text
    lowercase: bool = False  # lowercase all text before tokenizing
    min_frequency: int = bound(1, gt=0)  # pieces seen fewer times are left out of the vocabulary
    train_lines: int = bound(1_000_000, gt=0)  # pairs sampled (seeded) from the training data to learn the vocabulary

    def __post_init__(self) -> None:
        check_ranges("tokenizer", self)


@dataclass(frozen=True)
class ModelConfig:
    backend: Literal["rnn", "transformer"] = "rnn"  # GRU encoder-decoder with attention, or Transformer
    decoder: Literal["bahdanau", "luong"] = "bahdanau"  # rnn: how the decoder uses attention (the wiring)
    attention: str | None = None  # a name from seq2attn.nn.attention.ATTENTIONS; None: the wiring's default
    attention_size: int | None = bound(None, gt=0)  # hidden size of additive/concat/multihead (None: dec size)
    heads: int = bound(4, gt=0)  # for the multihead scorer
    emb_size: int = bound(256, gt=0)  # token embedding size
    hidden_size: int = bound(256, gt=0)  # encoder GRU units per direction
    dec_hidden_size: int = bound(512, gt=0)  # decoder GRU units
    enc_layers: int = bound(1, gt=0)  # encoder layers
    dec_layers: int = bound(1, gt=0)  # decoder layers
    dropout: float = bound(0.2, ge=0, lt=1)  # dropout probability
    input_feeding: bool = True  # Luong wiring only
    # transformer backend: emb_size is d_model; enc_layers, dec_layers, heads, dropout apply
    ff_size: int = bound(1024, gt=0)  # position-wise feed-forward inner size
    activation: Literal["relu", "gelu"] = "relu"  # of the feed-forward
    norm: Literal["pre", "post"] = "pre"  # layer norm before each sub-layer (pre) or after the residual (post)
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"  # position encoding: fixed, or a learned table
    max_positions: int = bound(1024, gt=0)  # position table size; learned positions past it reuse the last one
    attention_dropout: float = bound(0.1, ge=0, lt=1)  # on attention weights
    activation_dropout: float | None = bound(None, ge=0, lt=1)  # inside the feed-forward (None: model.dropout)
    share_embeddings: bool | Literal["auto"] = "auto"  # one source/target embedding; auto: when tokenizer.joint
    align_layer: int | None = None  # decoder layer whose cross-attention is the alignment (None: the last)
    align_head: int | None = None  # head of that layer (None: the average over heads)
    tie_embeddings: bool = False  # decoder input embedding = output projection

    def __post_init__(self) -> None:
        if self.attention is not None and self.attention not in ATTENTION_NAMES:
            raise ConfigError(f"model.attention={_show(self.attention)}; choose one of: {', '.join(ATTENTION_NAMES)}")
        check_ranges("model", self)  # the sizes that must fit together: the backend's check_config


@dataclass(frozen=True)
class TrainConfig:
    lr: float = bound(1e-3, gt=0)  # learning rate (the peak, with warm-up schedules)
    batch_tokens: int = bound(4096, gt=0)  # padded tokens per batch: (longest of max(src, tgt) + 1) x sentences, not real tokens
    accum_steps: int = bound(1, gt=0)  # batches per optimizer step (per rank under torchrun): gradients are summed
    max_steps: int | None = bound(None, gt=0)  # stop after this many optimizer steps (None: no limit)
    max_epochs: int | None = bound(None, gt=0)  # stop after this many passes over the training data (None: no limit)
    max_minutes: float | None = bound(None, gt=0)  # wall-clock budget
    clip_norm: float | None = bound(1.0, gt=0)  # clip the gradient norm to this (None: no clipping)
    weight_decay: float = bound(0.0, ge=0)  # decoupled (AdamW): w -= lr * weight_decay * w at every update
    adam_betas: tuple[float, float] = (0.9, 0.999)  # Transformers usually train better with (0.9, 0.98)
    label_smoothing: float = bound(0.0, ge=0, lt=1)  # label-smoothed cross-entropy
    validate_every: int = bound(500, gt=0)  # steps
    patience: int | None = bound(8, gt=0)  # validations without dev BLEU gain before stopping; None: off
    lr_decay: float | None = bound(0.5, gt=0, lt=1)  # on plateau of dev BLEU; None: constant learning rate
    lr_patience: int = 3  # plateau: validations without dev BLEU gain before lr *= lr_decay
    min_lr: float = bound(1e-5, ge=0)  # the learning rate never goes below this
    # noam: linear warm-up, then 1/sqrt(step); cosine: linear warm-up, then down to min_lr at max_steps;
    # budget: linear warm-up, then down to min_lr exactly when the budget (max_minutes of training
    # time, validations excluded, and/or max_steps) runs out (seq2attn/run/optim.py)
    schedule: Literal["plateau", "noam", "cosine", "constant", "budget"] = "plateau"
    warmup_steps: int = bound(4000, gt=0)  # noam, cosine, budget: steps to reach train.lr (the peak)
    budget_decay: Literal["linear", "cosine"] = "linear"  # budget: the shape of the decay after warm-up
    # budget with average_last N: the N kept checkpoints are spread evenly over this final fraction of
    # the budget (a snapshot at each of N-1 marks, without validation, and the final checkpoint)
    average_span: float = bound(0.3, gt=0, le=1)
    seed: int = 1  # random seed (CPU runs repeat exactly)
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    threads: int | None = bound(None, gt=0)  # CPU threads for torch; None: torch's default
    # bf16: autocast; fp16: CUDA only, with a loss scaler; auto: bf16 where the hardware has bf16 matrix
    # units (a CPU with AMX, a CUDA GPU with bf16), else fp32; the run records what it chose
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    log_every: int = bound(20, gt=0)  # steps between training-loss rows in metrics.jsonl
    attention_image: bool = True  # draw attention/step-N.png of the first dev pair at each validation
    curve: bool = True  # redraw curve.png (dev BLEU and loss against steps and minutes) at each validation
    tensorboard: bool = False  # also write the scalars and attention images to tensorboard/ (the tensorboard extra)
    valid_beam: int | None = bound(None, gt=0)  # validate with beam search of this size (decode.alpha); None: greedy
    average_last: int | None = bound(None, gt=0)  # keep the last N validation checkpoints and average them; None: off
    tune_alpha: bool = False  # after training: choose decode.alpha on dev (seq2attn tune-alpha) and save it

    def __post_init__(self) -> None:
        check_ranges("train", self)
        if not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ConfigError(f"train.adam_betas={list(self.adam_betas)}; both must be in [0, 1)")
        if not re.fullmatch(DEVICE_PATTERN, self.device):
            raise ConfigError(f"train.device={_show(self.device)}; choose one of: auto, cpu, cuda, cuda:N")


@dataclass(frozen=True)
class DecodeConfig:
    """Every decoding option, declared once (see :func:`option`): ``seq2attn translate``/``evaluate``/
    ``align`` flags, ``Model.translate(**options)``, the server's request fields and the CTranslate2
    mapping all come from these fields."""

    beam_size: int = option(1, "Beam size; 1 is greedy search", name="beam", short="-b", example="--beam 5",
                            ge=1)
    alpha: float = option(0.0, "GNMT length penalty for beam search; 0 ranks by log-prob", metavar="X",
                          example="--alpha 0.6", ge=0)
    max_len_a: float = option(1.5, "Output limit a * source length + b: a", metavar="A", example="--max-len-a 1.2",
                              ge=0)
    max_len_b: int = option(10, "Output limit a * source length + b: b", metavar="B", example="--max-len-b 10",
                            ge=0)
    max_input_tokens: int | None = option(
        None, "Source pieces read per input line, the end of sentence included: a longer line is cut there "
        "(a warning counts them; Translation.too_long) (null: the model's position limit for a Transformer, "
        "1024 for a GRU)", metavar="N", example="--max-input-tokens 400", ge=2)
    max_output_tokens: int = option(1024, "Output pieces at most per sentence, whatever a * source length + b "
                                    "gives", metavar="N", example="--max-output-tokens 256", ge=1)
    batch_tokens: int = option(4096, "Source tokens per decoding batch (each sentence runs beam-size rows)",
                               example="--batch-tokens 8000", gt=0, ct2=("max_batch_size", None))
    nbest: int = option(1, "Hypotheses per sentence (<= beam; with sampling: independent draws; CLI: JSONL only)",
                        example="--nbest 5 --beam 5 --format jsonl", ge=1, ct2=("num_hypotheses", None))
    sample: bool = option(False, "Draw each token from the model distribution instead of searching "
                          "(back-translation, diversity)", example="--sample --top-p 0.9")
    temperature: float = option(1.0, "Sampling temperature: < 1 sharper, > 1 flatter", metavar="T",
                                example="--temperature 0.8", gt=0, ct2=("sampling_temperature", None))
    top_k: int | None = option(None, "Sample among the k most likely tokens (null: all)", metavar="K",
                               example="--top-k 10", ge=1, ct2=("sampling_topk", 0))
    top_p: float | None = option(None, "Sample among the most likely tokens holding this probability mass "
                                 "(null: all)", metavar="P", example="--top-p 0.9", gt=0, le=1,
                                 ct2=("sampling_topp", 1.0))
    seed: int = option(1, "Sampling seed (same input, seed and batch tokens: same output)",
                       example="--seed 7")
    no_repeat_ngram: int | None = option(None, "Never repeat an n-gram of this size within a translation "
                                         "(null: off)", example="--no-repeat-ngram 3", ge=1,
                                         ct2=("no_repeat_ngram_size", 0))
    precision: Literal["fp32", "bf16", "fp16", "int8"] = option(
        "fp32", "bf16: autocast on CPU or CUDA; fp16: CUDA only; int8: int8 GRU/Linear weights on CPU "
        "(a CTranslate2 export: its int8 kernels)", metavar="", example="--precision int8")

    def __post_init__(self) -> None:
        check_ranges("decode", self)  # the ranges declared above; cross-field checks: search.check_decode
        if self.max_len_a == 0 and self.max_len_b == 0:
            raise ConfigError("decode.max_len_a / decode.max_len_b: must be >= 0 and not both 0")

    @classmethod
    def public_names(cls) -> dict[str, str]:
        """The keyword (``Model.translate``) or flag stem of each field -> the field."""
        return {(f.metadata.get("name") or f.name): f.name for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


_SECTION_TYPES = {
    "data": DataConfig,
    "tokenizer": TokenizerConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "decode": DecodeConfig,
}


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    out = dataclasses.asdict(cfg)
    for section in out.values():  # tuples -> lists so YAML stays plain
        for k, v in section.items():
            if isinstance(v, tuple):
                section[k] = list(v)
    return out


INT_LIMIT = 2**31 - 1  # larger sizes, steps or seeds are typos, and overflow torch or tokenizers


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: a message stays one readable line whatever the input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _coerce(path: str, value: Any, hint: Any) -> Any:
    """Check and convert ``value`` to the annotated type ``hint``; raise ConfigError naming ``path``."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(path, value, opt)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{path}: got {_show(value)}")
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(f"{path}={_show(value)}; choose one of: {', '.join(map(str, choices))}")
        return value
    if origin is tuple:
        args = get_args(hint)
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values, got {_show(value)}")
        return tuple(_coerce(path, v, a) for v, a in zip(value, args))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{path}: expected true or false, got {_show(value)}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected an integer, got {_show(value)}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{path}: expected an integer, got {_show(value)}") from None
        if abs(number) > INT_LIMIT:
            raise ConfigError(f"{path}: {_show(value)} is out of range (at most {INT_LIMIT})")
        return number
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a number, got {_show(value)}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{path}: expected a number, got {_show(value)}") from None
        if not math.isfinite(number):  # nan slips past every range check; inf is never meant
            raise ConfigError(f"{path}: expected a finite number, got {_show(value)}")
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{path}: expected a string, got {_show(value)}")
        return str(value)
    raise AssertionError(f"unsupported config type {_show(hint)} at {path}")


def _apply(cfg: Config, section: str, values: dict[str, Any], source: str) -> Config:
    if section not in _SECTION_TYPES:
        raise ConfigError(f"{source}: unknown section {_show(section)}; choose one of: {', '.join(_SECTION_TYPES)}")
    cls = _SECTION_TYPES[section]
    hints = get_type_hints(cls)
    changes = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(
                f"{source}: unknown option {section}.{str(key)[:60]}; choose one of: {', '.join(hints)}"
            )
        changes[key] = _coerce(f"{section}.{key}", value, hints[key])
    return replace(cfg, **{section: replace(getattr(cfg, section), **changes)})


def parse_set(item: str) -> tuple[str, str, Any]:
    """``'train.lr=3e-4'`` -> ``('train', 'lr', 3e-4)`` (the value parsed as YAML)."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"--set {_show(item)}: expected section.key=value, e.g. train.lr=3e-4")
    key, raw = item.split("=", 1)
    section, name = key.strip().split(".", 1)
    try:
        value = safe_yaml(raw) if raw.strip() else ""
    except (yaml.YAMLError, ConfigError):
        value = raw
    return section, name, value


YAML_LIMIT = 1 << 20  # a config file is a few hundred bytes; anything near this is not one


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without aliases: ``*name`` can expand a few hundred bytes into gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(f"line {mark.line + 1}: YAML aliases (*name) are not allowed in a config")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        """A key given twice is refused (YAML would keep the last without a word)."""
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                continue
            if key in seen:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: {_show(key)} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def safe_yaml(text: str) -> Any:
    """Parse YAML without python tags or aliases; ConfigError (line number) or yaml.YAMLError."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except RecursionError:
        raise ConfigError("nested too deeply") from None


def load_yaml(path: str | Path) -> dict[str, dict[str, Any]]:
    from seq2attn.errors import brief
    from seq2attn.fsutil import read_limited

    p = Path(path)
    try:
        text = read_limited(p, YAML_LIMIT).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the config ({brief(e)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    try:
        data = safe_yaml(text.removeprefix("\ufeff")) or {}
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}:{where} invalid YAML") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{p}: expected sections (data, tokenizer, model, train, decode) of key: value")
    return data


def resolve_config(
    *,
    base: Config | None = None,
    preset: dict[str, dict[str, Any]] | None = None,
    file: str | Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    flags: dict[str, dict[str, Any]] | None = None,
) -> Config:
    """The one place where config precedence is decided (see module docstring)."""
    cfg = base or Config()
    layers: list[tuple[str, dict[str, dict[str, Any]]]] = []
    if preset:
        layers.append(("corpus preset", preset))
    if file is not None:
        layers.append((str(file), load_yaml(file)))
    for item in sets:
        section, key, value = parse_set(item)
        layers.append((f"--set {item}", {section: {key: value}}))
    if flags:
        layers.append(("option", {s: {k: v for k, v in kv.items() if v is not None} for s, kv in flags.items()}))
    for source, layer in layers:
        for section, values in layer.items():
            cfg = _apply(cfg, section, values, source)
    if cfg.model.backend == "rnn" and cfg.model.attention is None:  # the saved config names its scorer
        cfg = replace(cfg, model=replace(cfg.model, attention=attention_name(cfg.model)))
    validate(cfg)
    return cfg


def config_from_dict(data: dict[str, dict[str, Any]], source: str) -> Config:
    cfg = Config()
    for section, values in data.items():
        cfg = _apply(cfg, section, values, source)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """The checks that join fields. Each field's range is checked where its section is built (the
    sections' ``__post_init__``); the chosen backend's own checks (sizes that must fit together) are
    ``seq2attn.nn.models.check_config``, which whoever builds a model runs first."""
    t = cfg.train
    if t.schedule == "budget" and t.max_steps is None and t.max_minutes is None:
        raise ConfigError("train.schedule=budget needs train.max_minutes or train.max_steps (where the learning "
                          "rate reaches train.min_lr)")
    if t.schedule == "cosine" and t.max_steps is None:
        raise ConfigError("train.schedule=cosine needs train.max_steps (where the learning rate reaches "
                          "train.min_lr)")


def attention_name(m: ModelConfig) -> str:
    """The scorer a model uses: ``model.attention``, or its wiring's default when that is null."""
    return m.attention if m.attention is not None else DEFAULT_ATTENTION[m.decoder]
