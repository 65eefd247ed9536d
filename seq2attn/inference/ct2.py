"""Decoding an exported model (``seq2attn export --to ctranslate2``) with CTranslate2.

The engine gives the same :class:`~seq2attn.inference.translate.Translation` objects as PyTorch decoding:
sources are tokenized by our tokenizer and end with "</s>" (as our encoder reads them), the
attention is CTranslate2's (the export's alignment layer, heads averaged), forced alignment runs
the given target as a prefix (attention) and through ``score_batch`` (log-probability).

Scores: a translation never holds PAD or BOS. PyTorch decoding scores the other tokens with the
full softmax; CTranslate2 removes PAD and BOS before its softmax, so its log-probabilities are
higher by ``-log(1 - p(PAD) - p(BOS))`` per step (a trained model gives those two almost nothing).
The words and the attention are the same.

What does not map: CTranslate2's length penalty divides by ``length ** alpha``, not GNMT's
``((5 + length) / 6) ** alpha``, so only ``alpha = 0`` is accepted; the output limit
``a * source length + b`` is per sentence here and per call there. Sources are sorted by length
and cut into chunks of ``decode.batch_tokens`` source tokens. Greedy search (and sampling) runs
each chunk with its longest limit, then runs again, with their own limit, the few sentences whose
output reached it: a greedy output that ends before its limit is the same under a longer one.
Beam search is not like that (at its limit a cut hypothesis competes with finished ones), so a
beam runs one call per limit within the chunk.

Speed: the attention is asked of CTranslate2 only when the caller wants it
(``Model.translate(..., attention=False)``; ``translate`` asks for it only for JSONL output and
``evaluate`` never does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path

import torch

from seq2attn.config import DecodeConfig
from seq2attn.errors import CheckpointError, ConfigError, DataError
from seq2attn.inference.export import EXPORT_MARKER, verify_export
from seq2attn.inference.translate import (
    Result,
    Translation,
    cut_sources,
    empty,
    keep_best,
    mark_too_long,
)
from seq2attn.modeldir.checkpoint import load_config
from seq2attn.nn.models import input_limit
from seq2attn.special import BOS, EOS, PAD
from seq2attn.text.tokenizer import TextCodec

PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "int8": "int8_float32"}


def is_export(directory: Path) -> bool:
    return (directory / EXPORT_MARKER).is_file()


def read_marker(directory: Path) -> dict:
    """The export's marker, once every file of the export is checked against it."""
    return verify_export(directory)


def describe(directory: Path) -> str:
    """One line about an export: what it came from and its weights."""
    m = read_marker(directory)
    weights = m.get("weights") or {}
    return (f"{directory}: CTranslate2 {m.get('ctranslate2')} export ({m.get('quantization')} weights) of "
            f"{m.get('source')} (step {weights.get('step')}, dev BLEU {weights.get('dev_bleu')})")


def _limit(n_src: int, decode: DecodeConfig) -> int:
    """The output limit of search.max_lengths for a source of ``n_src`` pieces (EOS not counted)."""
    return max(1, min(int(n_src * decode.max_len_a + decode.max_len_b), decode.max_output_tokens))


class CT2Engine:
    name = "ctranslate2"

    def __init__(self, directory: Path, *, device: str, threads: int | None) -> None:
        try:
            import ctranslate2
        except ImportError:
            raise ConfigError(f"{directory} is a CTranslate2 export; install ctranslate2 to run it "
                              "(pip install 'seq2attn[ctranslate2]')") from None
        self.marker = read_marker(directory)
        self.cfg = load_config(directory)
        self.codec = TextCodec.load(directory)  # checked with the rest by read_marker
        if device.startswith("cuda:"):
            device, index = "cuda", int(device[5:])
        else:
            index = 0
        self.device = "cuda" if device == "auto" and ctranslate2.get_cuda_device_count() else device
        self.device = "cpu" if self.device == "auto" else self.device
        self.directory, self.index, self.threads = directory, index, threads or 0
        self._translators: dict[str, object] = {}
        self.translator("fp32")  # fail now, not at the first sentence

    def translator(self, precision: str):
        """One CTranslate2 translator per compute type, made on first use."""
        import ctranslate2

        if precision not in PRECISIONS:
            raise ConfigError(f"decode.precision={precision} (--precision): a CTranslate2 model runs "
                              f"{', '.join(PRECISIONS)}")
        # fp32 means "as exported": an int8 export computes in int8 unless asked otherwise
        compute = "default" if precision == "fp32" else PRECISIONS[precision]
        if compute not in self._translators:
            try:
                self._translators[compute] = ctranslate2.Translator(
                    str(self.directory), device=self.device, device_index=self.index, compute_type=compute,
                    intra_threads=self.threads)
            except (RuntimeError, ValueError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise CheckpointError(f"{self.directory}: CTranslate2 cannot load it ({first[:160]})") from None
        return self._translators[compute]

    def set_alignment(self, *, layer: int | None, head: int | None) -> None:
        if layer is not None or head is not None:
            raise ConfigError("--layer / --head: a CTranslate2 export returns the attention of the layer "
                              "chosen at export (heads averaged); use the seq2attn model directory")

    # --- text <-> pieces ------------------------------------------------------------------------
    def _sources(self, texts: Sequence[str], decode: DecodeConfig) -> tuple[list[list[str]], list[bool]]:
        """Source pieces cut at the input limit, as PyTorch decoding cuts them, and which were cut."""
        ids, cut = cut_sources(self.codec.encode(list(texts), side="src"),
                               input_limit(self.cfg.model, decode.max_input_tokens))
        return [self.codec.tokens(x, side="src") for x in ids], cut

    def _translation(self, text: str, src: list[str], pieces: list[str], score: float,
                     attention: list[list[float]] | None) -> Translation:
        ids = [self.codec.tgt.token_to_id(p) for p in pieces]
        att = (None if attention is None else
               torch.tensor(attention[: len(pieces)], dtype=torch.float32).reshape(len(pieces), len(src) + 1))
        return Translation(text, self.codec.decode([ids], side="tgt")[0], score, [*src, EOS], pieces, att)

    def _options(self, decode: DecodeConfig, *, attention: bool) -> dict:
        if decode.alpha != 0:
            raise ConfigError(f"decode.alpha={decode.alpha} (--alpha): CTranslate2's length penalty is not "
                              "GNMT's; use alpha 0 with a CTranslate2 model")
        options = {"beam_size": 1 if decode.sample else decode.beam_size, "length_penalty": 0.0,
                   "min_decoding_length": 0, "return_scores": True, "return_attention": attention,
                   "suppress_sequences": [[PAD], [BOS]], "max_input_length": 0, "batch_type": "tokens"}
        for f in dataclasses.fields(decode):  # the options CTranslate2 has under another name (config.option)
            if f.metadata.get("ct2") and (decode.sample or not f.metadata["ct2"][0].startswith("sampling_")):
                name, off = f.metadata["ct2"]
                value = getattr(decode, f.name)
                options[name] = off if value is None else value
        if decode.sample:
            import ctranslate2

            ctranslate2.set_random_seed(decode.seed)
        return options

    @staticmethod
    def _first_rows(translator, sources: list[list[str]]) -> list[list[float]]:
        """The attention of the first output position, which every hypothesis of a sentence shares.
        Batched beam search in CTranslate2 4.8 returns another sentence's row there (greedy and a
        sentence alone are right), so it comes from one greedy step instead."""
        results = translator.translate_batch(sources, beam_size=1, max_decoding_length=1, return_attention=True,
                                             return_end_token=True, max_input_length=0)
        return [r.attention[0][0] for r in results]

    @staticmethod
    def _chunks(order: list[int], lengths: list[int], batch_tokens: int) -> list[list[int]]:
        """``order`` (sorted by length) cut into runs of at most ``batch_tokens`` padded source tokens."""
        chunks: list[list[int]] = []
        for i in order:
            if chunks and (len(chunks[-1]) + 1) * max(lengths[i], lengths[chunks[-1][-1]]) <= batch_tokens:
                chunks[-1].append(i)
            else:
                chunks.append([i])
        return chunks

    # --- the engine protocol --------------------------------------------------------------------
    def translate(self, texts: Sequence[str], *, decode: DecodeConfig, progress: Callable[[int], None] | None,
                  attention: bool = True) -> Result:
        translator = self.translator(decode.precision)
        options = self._options(decode, attention=attention)
        sources, too_long = self._sources(texts, decode)
        out = [empty(t) for t in texts]
        todo = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
        if progress is not None and len(todo) < len(texts):
            progress(len(texts) - len(todo))
        limits = [_limit(len(s), decode) for s in sources]

        def run(rows: list[int], limit: int) -> list:
            inputs = [[*sources[i], EOS] for i in rows]
            results = translator.translate_batch(inputs, max_decoding_length=limit, **options)
            first = (self._first_rows(translator, inputs) if attention and options["beam_size"] > 1
                     else [None] * len(rows))
            for i, r, row0 in zip(rows, results, first):
                att = r.attention if attention else [None] * len(r.hypotheses)
                out[i] = keep_best([self._translation(texts[i], sources[i], h, s, a if row0 is None else [row0, *a[1:]])
                                    for h, s, a in zip(r.hypotheses, r.scores, att)], nbest=decode.nbest > 1)
            # an output that reached its own (shorter) limit may have been cut there: run it with that limit
            return [i for i, r in zip(rows, results) if limits[i] < limit
                    and any(len(h) >= limits[i] for h in r.hypotheses)]

        for chunk in self._chunks(todo, [len(s) + 1 for s in sources], decode.batch_tokens):
            # sorted by length, so equal limits are neighbours
            again = chunk if options["beam_size"] > 1 else run(chunk, max(limits[i] for i in chunk))
            for limit, group in groupby(again, key=lambda i: limits[i]):
                run(list(group), limit)
            if progress is not None:
                progress(len(chunk))
        return mark_too_long(out, too_long)

    def force(self, texts: Sequence[str], targets: Sequence[str], *, decode: DecodeConfig) -> Result:
        if len(texts) != len(targets):
            raise DataError(f"{len(texts)} sources but {len(targets)} targets; they must be line-aligned")
        translator = self.translator(decode.precision)
        sources, too_long = self._sources(texts, decode)
        tgt = [self.codec.tokens(x[: decode.max_output_tokens], side="tgt")
               for x in self.codec.encode(list(targets), side="tgt")]
        out = [empty(t) for t in texts]
        todo = [i for i in range(len(texts)) if sources[i] and tgt[i]]
        if todo:
            src_in = [[*sources[i], EOS] for i in todo]
            scored = translator.score_batch(src_in, [tgt[i] for i in todo], max_input_length=0)
            forced = translator.translate_batch(src_in, [tgt[i] for i in todo], beam_size=1, return_attention=True,
                                                max_decoding_length=max(len(tgt[i]) for i in todo) + 1,
                                                max_input_length=0)
            for i, s, f in zip(todo, scored, forced):
                out[i] = self._translation(texts[i], sources[i], tgt[i], float(sum(s.log_probs)), f.attention[0])
        return mark_too_long(out, too_long)

