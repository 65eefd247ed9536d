"""The Python API: ``seq2attn.load(directory)`` gives a :class:`Model` whose ``translate`` and
``align`` return :class:`~seq2attn.inference.translate.Translation` objects. The command line calls the
same object, so a keyword argument here and its CLI option are checked by the same code and fail
with the same :class:`~seq2attn.errors.Seq2AttnError`.

A model directory written by ``seq2attn train`` decodes with PyTorch; one written by
``seq2attn export --to ctranslate2`` decodes with CTranslate2. Both give the same objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, overload

from seq2attn.config import DEVICE_PATTERN, Config, DecodeConfig
from seq2attn.errors import ConfigError
from seq2attn.inference.alignment import Alignment, word_alignment
from seq2attn.inference.translate import Result, Translation
from seq2attn.text.tokenizer import TextCodec

Progress = Callable[[int], None]


class Engine(Protocol):
    """What decodes: PyTorch (a trained directory) or CTranslate2 (an exported one)."""

    name: str
    device: str

    def translate(self, texts: Sequence[str], *, decode: DecodeConfig, progress: Progress | None,
                  attention: bool = True) -> Result: ...

    def force(self, texts: Sequence[str], targets: Sequence[str], *, decode: DecodeConfig) -> Result: ...

    def set_alignment(self, *, layer: int | None, head: int | None) -> None: ...


class TorchEngine:
    name = "torch"

    def __init__(self, directory: Path, *, device: str, weights: str) -> None:
        from seq2attn.modeldir.checkpoint import load
        from seq2attn.nn.runtime import resolve_device

        dev = resolve_device(device)
        self.loaded = load(directory, which=weights, device=dev)
        self.device = dev.type

    def translate(self, texts: Sequence[str], *, decode: DecodeConfig, progress: Progress | None,
                  attention: bool = True) -> Result:
        from seq2attn.inference.translate import translate

        return translate(self.loaded, texts, decode=decode, device=self.device, progress=progress)

    def force(self, texts: Sequence[str], targets: Sequence[str], *, decode: DecodeConfig) -> Result:
        from seq2attn.inference.translate import force

        return force(self.loaded, texts, targets, decode=decode, device=self.device)

    def set_alignment(self, *, layer: int | None, head: int | None) -> None:
        from seq2attn.nn.models import set_alignment

        set_alignment(self.loaded.model, layer=layer, head=head)


class Model:
    """A loaded model directory. ``cfg`` is its saved configuration; ``cfg.decode`` holds the
    defaults that the keyword arguments of :meth:`translate` override."""

    def __init__(self, path: Path, cfg: Config, codec: TextCodec, engine: Engine) -> None:
        self.path = path
        self.cfg = cfg
        self.codec = codec
        self.engine = engine

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, backend={self.cfg.model.backend!r}, engine={self.engine.name!r})"

    def decode_config(self, **options: Any) -> DecodeConfig:
        """The model's saved decode settings with the given ones (not None) put over them, validated
        like ``--set decode.*``. The keywords are the fields of :class:`~seq2attn.config.DecodeConfig`
        under their public names (``beam`` for ``beam_size``); an unknown one is a ConfigError."""
        from seq2attn.config import resolve_config
        from seq2attn.nn.search import check_decode

        names = DecodeConfig.public_names()
        unknown = [k for k in options if k not in names]
        if unknown:
            raise ConfigError(f"unknown decoding option {unknown[0]!r}; choose from: {', '.join(names)}")
        flags = {names[k]: v for k, v in options.items()}
        decode = resolve_config(base=self.cfg, flags={"decode": flags}).decode
        check_decode(decode)
        return decode

    @overload
    def translate(self, texts: str, *, decode: DecodeConfig | None = ..., progress: Progress | None = ...,
                  attention: bool = ..., **options: Any) -> Translation: ...

    @overload
    def translate(self, texts: Sequence[str], *, decode: DecodeConfig | None = ..., progress: Progress | None = ...,
                  attention: bool = ..., **options: Any) -> list[Translation]: ...

    def translate(self, texts, *, decode=None, progress=None, attention=True, **options):
        """Translate one text (gives one :class:`Translation`) or a list (gives a list, in input
        order). ``options`` are the decoding options of :meth:`decode_config` (``beam=5``,
        ``alpha=0.6``, ...); or pass a whole ``decode`` config (from :meth:`decode_config`) instead.
        ``progress(n)`` is called after each batch with the number of sentences it held.
        ``attention=False``: the translations carry no attention (``None``; no ``links``), which
        spares a CTranslate2 model the work of returning it."""
        if decode is None:
            decode = self.decode_config(**options)
        elif options:
            raise ConfigError(f"give decode= or decoding options ({', '.join(options)}), not both")
        one = isinstance(texts, str)
        if not one and (isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Sequence)
                        or not all(isinstance(x, str) for x in texts)):
            raise ConfigError(f"translate: give a string or a list of strings, not {type(texts).__name__}")
        out = self.engine.translate([texts] if one else list(texts), decode=decode, progress=progress,
                                    attention=attention).translations
        if not attention:
            for t in out:
                for x in t.nbest or [t]:
                    x.attention = None
        return out[0] if one else out

    @overload
    def align(self, sources: str, targets: str, *, batch_tokens: int | None = ...,
              precision: str | None = ...) -> Translation: ...

    @overload
    def align(self, sources: Sequence[str], targets: Sequence[str], *, batch_tokens: int | None = ...,
              precision: str | None = ...) -> list[Translation]: ...

    def align(self, sources, targets, *, batch_tokens=None, precision=None):
        """Force the given translations: the attention and log-probability the model gives
        ``targets`` (``hyp`` is the target as given). One pair or two line-aligned lists."""
        one = isinstance(sources, str)
        if one != isinstance(targets, str):
            raise ConfigError("align: give two strings or two lists of strings")
        decode = self.decode_config(batch_tokens=batch_tokens, precision=precision)
        src, tgt = ([sources], [targets]) if one else (list(sources), list(targets))
        out = self.engine.force(src, tgt, decode=decode).translations
        for t, given in zip(out, tgt):
            t.hyp = given  # the text as given, not as its pieces decode: word alignments need it
        return out[0] if one else out

    @property
    def position_limit(self) -> int | None:
        """The longest source (tokens, EOS included) the model has positions for: a Transformer's
        ``model.max_positions``; None for the GRU. Longer sources are cut at the input limit
        (``decode.max_input_tokens``, by default this, or 1,024 pieces for a GRU; ``Translation.too_long``
        says which)."""
        from seq2attn.nn.models import position_limit

        return position_limit(self.cfg.model)

    def word_alignment(self, t: Translation) -> Alignment:
        """The attention of ``t`` summed over the subword pieces of each word: rows are output
        words, columns source words (the final column is the source end)."""
        return word_alignment(self.codec, src=t.src, tgt=t.hyp, src_pieces=t.src_tokens,
                              tgt_pieces=t.hyp_tokens, attention=t.weights())

    def set_alignment(self, *, layer: int | None = None, head: int | None = None) -> None:
        """Transformer: which decoder layer's cross-attention (None: the last) and which head
        (None: the average of heads) the translations carry."""
        self.engine.set_alignment(layer=layer, head=head)


def check_device(device: str) -> None:
    if not re.fullmatch(DEVICE_PATTERN, device):
        raise ConfigError(f"device={device!r} (--device); choose one of: cpu, cuda, cuda:N, auto")


def load(directory: str | Path, *, device: str = "auto", threads: int | None = None,
         weights: str | None = None) -> Model:
    """Load a model directory (trained by ``seq2attn train``, or exported to CTranslate2).

    ``device``: cpu, cuda, cuda:N or auto (cuda when available). ``threads``: CPU threads for decoding
    (PyTorch: ``torch.set_num_threads``, which is process-wide; None keeps the default).
    ``weights``: best, last or averaged (None: the better of best and averaged by dev BLEU)."""
    from seq2attn.modeldir.checkpoint import WEIGHTS

    path = Path(directory)
    if weights is not None and weights not in WEIGHTS:
        raise ConfigError(f"weights={weights!r} (--weights); choose one of: {', '.join(WEIGHTS)}")
    check_device(device)
    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads} (--threads); must be >= 1")
    from seq2attn.inference.ct2 import CT2Engine, is_export

    if is_export(path):
        if weights is not None:
            raise ConfigError(f"weights={weights!r} (--weights): {path} is an export, which holds one set of "
                              "weights (export picks the better of best and averaged)")
        ct2 = CT2Engine(path, device=device, threads=threads)
        return Model(path, ct2.cfg, ct2.codec, ct2)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    torch_engine = TorchEngine(path, device=device, weights=weights or "auto")
    return Model(path, torch_engine.loaded.cfg, torch_engine.loaded.codec, torch_engine)

