"""Text in, text out: tokenization, batching, search and detokenization around a loaded model,
plus the line formats of ``seq2attn translate`` and its reading of a stream in chunks."""

from __future__ import annotations

import io
import os
import select
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor

from seq2attn.config import DecodeConfig
from seq2attn.errors import ConfigError, DataError
from seq2attn.fsutil import atomic_write, json_line, write_stdout
from seq2attn.inference.alignment import hard_links
from seq2attn.inference.alignment import pharaoh as pharaoh_links
from seq2attn.modeldir.checkpoint import Loaded
from seq2attn.nn.batches import make_batches
from seq2attn.nn.models import input_limit
from seq2attn.nn.runtime import autocast, check_precision, for_precision
from seq2attn.nn.search import Hypothesis, check_decode, force_decode, search
from seq2attn.special import EOS

FORMATS = ("text", "jsonl")


@dataclass
class Translation:
    src: str
    hyp: str
    score: float  # total log-probability
    src_tokens: list[str]  # source pieces, the final "</s>" included
    hyp_tokens: list[str]  # output pieces, no "</s>"
    attention: Tensor | None  # (len(hyp_tokens), len(src_tokens)) rows sum to 1; None when translated with
    # attention=False
    norm_score: float | None = None  # score after the length penalty (None: same as score)
    nbest: list[Translation] = field(default_factory=list)  # best first, this one first; only when
    # decode.nbest > 1
    too_long: bool = False  # the source passed the input limit (decode.max_input_tokens) and was cut there

    def __post_init__(self) -> None:
        if self.norm_score is None:
            self.norm_score = self.score

    @property
    def text(self) -> str:
        """The translation (the same as ``hyp``)."""
        return self.hyp

    @property
    def links(self) -> list[tuple[int, int]] | None:
        """Hard links (source token i, output token j), 0-based over ``src_tokens`` /
        ``hyp_tokens``: each output token's most attended source token; a token that attends
        most to the source end ("</s>") gets no link. None when there is no attention."""
        if self.attention is None:
            return None
        n_src = len(self.src_tokens) - 1  # the final column is the source EOS
        return [(s, j) for s, j in hard_links(self.attention) if s < n_src]

    def weights(self) -> Tensor:
        """``attention``, or a one-line error when it was translated with attention=False."""
        if self.attention is None:
            raise ConfigError("this translation has no attention: translate it with attention=True")
        return self.attention

    def __repr__(self) -> str:
        shape = "None" if self.attention is None else "x".join(map(str, self.attention.shape))
        more = f", nbest={len(self.nbest)}" if self.nbest else ""
        return f"Translation({_cut(self.hyp)!r}, score={self.score:.3f}, attention={shape}{more})"

    def _repr_html_(self) -> str:
        """The attention as a shaded table (a notebook's display): rows output pieces, columns source pieces."""
        import html

        caption = f"{html.escape(_cut(self.src, 80))} &rarr; {html.escape(_cut(self.hyp, 80))} (log-prob {self.score:.2f})"
        if self.attention is None or not self.attention.numel():
            return f"<p>{caption}; no attention</p>"
        cell = "padding:2px 4px;border:1px solid #ddd;text-align:center;font-family:monospace"
        head = "".join(f'<th style="{cell}">{html.escape(s)}</th>' for s in self.src_tokens)
        rows = []
        for token, weights in zip(self.hyp_tokens, self.attention.float().tolist()):
            cells = "".join(f'<td style="{cell};background:rgba(31,119,180,{w:.3f});color:{"#fff" if w > 0.6 else "#000"}"'
                            f' title="{w:.3f}">{w:.2f}</td>' for w in weights)
            rows.append(f'<tr><th style="{cell}">{html.escape(token)}</th>{cells}</tr>')
        return (f'<table style="border-collapse:collapse"><caption>{caption}</caption>'
                f'<tr><th style="{cell}"></th>{head}</tr>{"".join(rows)}</table>')


def _cut(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass
class Result:
    translations: list[Translation]
    too_long: int  # sources cut at the input limit


def cut_sources(ids: list[list[int]], limit: int) -> tuple[list[list[int]], list[bool]]:
    """Each source cut to ``limit - 1`` pieces (the EOS the search appends makes ``limit``), and
    which were cut."""
    return [x[: limit - 1] for x in ids], [len(x) + 1 > limit for x in ids]


def _encode_sources(loaded: Loaded, texts: Sequence[str], decode: DecodeConfig) -> tuple[list[list[int]], list[bool]]:
    """Source ids cut to the input limit (decode.max_input_tokens, else the model's position limit,
    else a GRU's 1,024), and which were cut: one input's work and memory stay bounded."""
    ids = loaded.codec.encode(list(texts), side="src")
    return cut_sources(ids, input_limit(loaded.cfg.model, decode.max_input_tokens))


def keep_best(options: list[Translation], *, nbest: bool) -> Translation:
    """The best translation, carrying the whole best-first list when an n-best list was asked for."""
    if nbest:
        options[0].nbest = options
    return options[0]


def mark_too_long(out: list[Translation], too_long: list[bool]) -> Result:
    """The result of a run, each translation marked when its source passed the position limit."""
    for t, long in zip(out, too_long):
        t.too_long = long
    return Result(out, sum(too_long))


def _wrap(loaded: Loaded, text: str, src_ids: list[int], hyp: Hypothesis) -> Translation:
    codec = loaded.codec
    src_tokens = codec.tokens(src_ids, side="src") + [EOS]
    return Translation(text, codec.decode([hyp.ids], side="tgt")[0], hyp.score, src_tokens,
                       codec.tokens(hyp.ids, side="tgt"), hyp.attention, hyp.norm_score)


def empty(text: str) -> Translation:
    return Translation(text, "", 0.0, [], [], torch.zeros(0, 0))


def translate(loaded: Loaded, texts: Sequence[str], *, decode: DecodeConfig, device: torch.device | str = "cpu",
              progress: Callable[[int], None] | None = None) -> Result:
    """Translate every text with the search ``decode`` asks for (beam 1: greedy; ``sample``;
    ``nbest``); an empty (or all-space) text gives an empty translation. Batches are sorted by
    length for speed; the result is in input order. ``progress(n)`` is called after each batch
    with the number of sentences it held."""
    check_decode(decode)
    device = torch.device(device)
    check_precision(decode.precision, device, option="decode.precision")
    model = for_precision(loaded.model, decode.precision)
    src_ids, too_long = _encode_sources(loaded, texts, decode)
    todo = [i for i, ids in enumerate(src_ids) if ids]
    out = [empty(t) for t in texts]
    if progress is not None and len(todo) < len(texts):
        progress(len(texts) - len(todo))
    generator = torch.Generator(device=device).manual_seed(decode.seed) if decode.sample else None
    for batch in make_batches(src_ids, None, batch_tokens=decode.batch_tokens, indices=todo):
        with autocast(device, decode.precision):
            per_sentence = search(model, batch.to(device), decode=decode, generator=generator)
        texts_out = iter(loaded.codec.decode([h.ids for hyps in per_sentence for h in hyps], side="tgt"))
        for i, hyps in zip(batch.indices, per_sentence):
            src_tokens = loaded.codec.tokens(src_ids[i], side="src") + [EOS]
            options = [Translation(texts[i], next(texts_out), h.score, src_tokens,
                                   loaded.codec.tokens(h.ids, side="tgt"), h.attention, h.norm_score) for h in hyps]
            out[i] = keep_best(options, nbest=decode.nbest > 1)
        if progress is not None:
            progress(len(batch))
    return mark_too_long(out, too_long)


def force(loaded: Loaded, texts: Sequence[str], targets: Sequence[str], *, decode: DecodeConfig,
          device: torch.device | str = "cpu") -> Result:
    """Attention and score of given translations (teacher-forced decoding)."""
    if len(texts) != len(targets):
        raise DataError(f"{len(texts)} sources but {len(targets)} targets; they must be line-aligned")
    device = torch.device(device)
    check_precision(decode.precision, device, option="decode.precision")
    model = for_precision(loaded.model, decode.precision)
    src_ids, too_long = _encode_sources(loaded, texts, decode)
    tgt_ids = [x[: decode.max_output_tokens] for x in loaded.codec.encode(list(targets), side="tgt")]
    todo = [i for i, (s, t) in enumerate(zip(src_ids, tgt_ids)) if s and t]
    out = [empty(t) for t in texts]
    for batch in make_batches(src_ids, tgt_ids, batch_tokens=decode.batch_tokens, indices=todo):
        with autocast(device, decode.precision):
            hyps = force_decode(model, batch.to(device))
        for i, hyp in zip(batch.indices, hyps):
            out[i] = _wrap(loaded, texts[i], src_ids[i], hyp)
    return mark_too_long(out, too_long)


# --- output lines ------------------------------------------------------------------------------
def pharaoh(t: Translation) -> str:
    """``t.links`` as Pharaoh ``i-j`` pairs (a ConfigError when ``t`` has no attention)."""
    t.weights()  # the one-line error when there is none
    return pharaoh_links(t.links or [])


def _entry(t: Translation) -> dict[str, Any]:
    return {"hyp": t.hyp, "score": round(t.score, 6), "norm_score": round(float(t.norm_score), 6),
            "alignment": pharaoh(t)}


def jsonl_row(t: Translation, *, nbest: bool = False) -> dict[str, Any]:
    """One JSONL row: ``src``, ``hyp``, ``score`` (log-prob), ``norm_score`` (after the length
    penalty), ``alignment`` (Pharaoh links over the token lists ``src_tokens`` / ``hyp_tokens``,
    the same lists as :class:`Translation`'s: "</s>" ends ``src_tokens``) and, when asked, ``nbest``:
    a best-first list of {hyp, score, norm_score, alignment}."""
    row = {"src": t.src, **_entry(t), "src_tokens": t.src_tokens, "hyp_tokens": t.hyp_tokens}
    if nbest:
        row["nbest"] = [_entry(x) for x in (t.nbest or [t])]
    return row


def format_line(t: Translation, *, fmt: str, nbest: bool = False) -> str:
    """The output line of one translation (no line end): the text, or a JSON object."""
    if fmt == "jsonl":
        return json_line(jsonl_row(t, nbest=nbest), ensure_ascii=False)
    return t.hyp


# --- translating a stream ----------------------------------------------------------------------
STREAM_CHUNK = 2000  # lines read ahead from a pipe before translating them (earlier when input pauses)


def translate_stream(run: Callable[[list[str]], list[Translation]], source: BinaryIO, output: Path | None, *,
                     fmt: str, nbest: bool = False, chunk_lines: int = STREAM_CHUNK) -> int:
    """Translate ``source`` chunk by chunk with ``run`` and write the lines of each chunk as soon
    as it is done: to stdout, flushed, or to ``output`` (atomically, once the input ends).
    Returns how many sources passed the model's position limit."""
    too_long = 0

    def fill(write: Callable[[str], object]) -> None:
        nonlocal too_long
        for chunk in read_chunks(source, max_lines=chunk_lines):
            out = run(chunk)
            too_long += sum(t.too_long for t in out)
            write("".join(format_line(t, fmt=fmt, nbest=nbest) + "\n" for t in out))

    if output is None:
        fill(write_stdout)  # written in full (flushed) after each chunk, or an OSError
        return too_long

    def to_file(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            fill(f.write)

    try:
        atomic_write(output, to_file)
    except OSError as e:
        raise DataError(f"{output}: cannot write ({e.strerror})") from None
    return too_long


# --- reading a stream in chunks ----------------------------------------------------------------
def _decode_line(raw: bytes, number: int, name: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{name} line {number}: not valid UTF-8") from None
    if number == 1:  # a BOM (Windows editors write one) is no part of the first sentence
        text = text.removeprefix("\ufeff")
    return text.removesuffix("\r")


def read_chunks(stream: BinaryIO, *, max_lines: int, name: str = "<stdin>") -> Iterator[list[str]]:
    """Lines of ``stream`` in chunks of at most ``max_lines``, yielding a chunk early whenever no
    more input is waiting, so that output can start before the input ends (pipes, terminals)."""
    try:
        fd = stream.fileno()
    except (AttributeError, io.UnsupportedOperation, OSError):
        fd = None
    if fd is None:  # an in-memory stream: everything is already there
        yield from _chunks_of_lines(stream, max_lines=max_lines, name=name)
        return
    pending: list[str] = []
    rest, number = b"", 0
    while True:
        data = os.read(fd, 1 << 16)  # blocks until some input (or the end) arrives
        lines = (rest + data).split(b"\n")
        rest = lines.pop() if data else b""
        if not data and lines == [b""]:
            lines = []
        for raw in lines:
            number += 1
            pending.append(_decode_line(raw, number, name))
        while len(pending) >= max_lines:
            yield pending[:max_lines]
            pending = pending[max_lines:]
        if not data:
            if pending:
                yield pending
            return
        if pending and not select.select([fd], [], [], 0)[0]:
            yield pending
            pending = []


def _chunks_of_lines(stream: BinaryIO, *, max_lines: int, name: str) -> Iterator[list[str]]:
    chunk: list[str] = []
    for number, raw in enumerate(stream, start=1):
        chunk.append(_decode_line(raw[:-1] if raw.endswith(b"\n") else raw, number, name))
        if len(chunk) >= max_lines:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
