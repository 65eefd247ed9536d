"""The commands that look at results: ``score`` (sacrebleu and friends, paired bootstrap),
``evaluate`` (translate and score in one go) and ``align`` (attention as heatmaps, links,
images, AER). Registered on the app in :mod:`seq2attn.cli`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .cli_common import (
    BatchTokens,
    Device,
    ModelDir,
    Weights,
    handle_errors,
    stderr_console,
    write_output,
)
from .errors import ConfigError, DataError

# --- score and evaluate ------------------------------------------------------------------------
Metrics = Annotated[str, typer.Option(help="Comma-separated: bleu, chrf, ter, exact. Example: --metrics bleu,chrf,ter")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the scores as one JSON object on stdout. Example: --json")]
Beam = Annotated[int | None, typer.Option(help="Beam size (default: the model's decode.beam_size; 1 is greedy). "
                                             "Example: --beam 5")]


def _metric_names(metrics: str) -> list[str]:
    names = [m.strip().lower() for m in metrics.split(",") if m.strip()]
    if not names:
        raise ConfigError(f"--metrics {metrics!r}: no metric named; choose from: bleu, chrf, ter, exact")
    return names


def _warn_truncated(m, translations) -> None:
    truncated = sum(t.truncated for t in translations)
    if truncated:
        stderr_console().print(f"warning: {truncated} sentences were longer than {m.cfg.data.max_length} "
                               "tokens and were truncated")


def _aligned_lines(first: Path, lines: list[str], others: list[Path]) -> list[list[str]]:
    from .textfiles import read_lines

    streams = [read_lines(p) for p in others]
    for path, stream in zip(others, streams):
        if len(stream) != len(lines):
            raise DataError(f"{first} has {len(lines)} lines but {path} has {len(stream)} lines; "
                            "they must be line-aligned")
    return streams


def _print_scores(scores, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({s.name: s.as_dict() for s in scores}))
    else:
        for s in scores:
            typer.echo(s.text + (f"\t{s.signature}" if s.signature else ""))


def _print_comparisons(comparisons, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({c.name: c.as_dict() for c in comparisons}))
        return
    for c in comparisons:
        mark = " *" if c.p_value < 0.05 else ""
        typer.echo(f"{c.name}\tbaseline {c.baseline:.2f} ({c.baseline_mean:.2f} ± {c.baseline_ci:.2f})\t"
                   f"system {c.system:.2f} ({c.system_mean:.2f} ± {c.system_ci:.2f})\tp = {c.p_value:.4f}{mark}"
                   f"\t{c.signature}")


@handle_errors
def score(
    hyp: Annotated[Path, typer.Argument(help="Hypothesis file, one sentence per line. Example: test.hyp")],
    refs: Annotated[list[Path], typer.Argument(help="Reference file(s), line-aligned with HYP. Example: test.en")],
    metrics: Metrics = "bleu,chrf",
    as_json: AsJson = False,
    sentence: Annotated[bool, typer.Option("--sentence", help="Per-line scores instead of corpus scores "
                                           "(sentence BLEU with effective order). Example: --sentence")] = False,
    compare: Annotated[Path | None, typer.Option(
        help="Second system's hypotheses: paired bootstrap test of it against HYP (sacrebleu's). "
        "Example: --compare b.hyp")] = None,
    samples: Annotated[int | None, typer.Option(help="Bootstrap resamples for --compare (default: 1000, "
                                                   "sacrebleu's). Example: --samples 2000")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the --compare resampling (default: 12345, "
                                                "sacrebleu's). Example: --seed 7")] = None,
) -> None:
    """BLEU, chrF and TER (sacrebleu, with signatures); --sentence: per line; --compare: paired bootstrap.

    Example: seq2attn score test.hyp test.en --metrics bleu,chrf,ter --compare other.hyp
    """
    from .metrics import (
        BOOTSTRAP_SAMPLES,
        BOOTSTRAP_SEED,
        corpus_scores,
        paired_bootstrap,
        sentence_scores,
    )
    from .textfiles import read_lines

    hyps = read_lines(hyp)
    ref_streams = _aligned_lines(hyp, hyps, refs)
    names = _metric_names(metrics)
    if compare is not None:
        other = _aligned_lines(hyp, hyps, [compare])[0]
        comparisons = paired_bootstrap(hyps, other, ref_streams, metrics=names,
                                       n_samples=BOOTSTRAP_SAMPLES if samples is None else samples,
                                       seed=BOOTSTRAP_SEED if seed is None else seed)
        _print_comparisons(comparisons, as_json=as_json)
    elif sentence:
        for row in sentence_scores(hyps, ref_streams, metrics=names):
            typer.echo(json.dumps({k: round(v, 4) for k, v in row.items()}) if as_json
                       else "\t".join(f"{k}={v:.2f}" for k, v in row.items()))
    else:
        _print_scores(corpus_scores(hyps, ref_streams, metrics=names), as_json=as_json)


@handle_errors
def evaluate(
    model: ModelDir,
    src: Annotated[Path, typer.Option(help="Source file to translate. Example: --src test.de")],
    ref: Annotated[list[Path], typer.Option(help="Reference file, repeatable. Example: --ref test.en")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the translations here. "
                                                "Example: --out test.hyp")] = None,
    beam: Beam = None,
    metrics: Metrics = "bleu,chrf",
    as_json: AsJson = False,
    batch_tokens: BatchTokens = None,
    device: Device = "auto",
    weights: Weights = None,
) -> None:
    """Translate a file and score it against its references in one go.

    Example: seq2attn evaluate -m runs/dates --src test.src --ref test.tgt --beam 5 --out test.hyp
    """
    from .api import load
    from .metrics import corpus_scores
    from .textfiles import read_lines

    names = _metric_names(metrics)
    sources = read_lines(src)
    ref_streams = _aligned_lines(src, sources, ref)
    m = load(model, device=device, weights=weights)
    translations = m.translate(sources, beam=beam, batch_tokens=batch_tokens)
    _warn_truncated(m, translations)
    hyps = [t.hyp for t in translations]
    if out is not None:
        write_output(out, hyps)
    _print_scores(corpus_scores(hyps, ref_streams, metrics=names), as_json=as_json)


# --- align -------------------------------------------------------------------------------------
ALIGN_FORMATS = ("heatmap", "pharaoh", "json")


def _check_align_args(*, sentence, src_file, tgt_file, target, fmt, level, gold) -> None:
    from .alignment import LEVELS

    if (sentence is None) == (src_file is None):
        raise ConfigError("give a source sentence or --src FILE (one of the two)")
    if target is not None and sentence is None:
        raise ConfigError("--target goes with a source sentence; with --src FILE give --tgt FILE")
    if tgt_file is not None and src_file is None:
        raise ConfigError("--tgt FILE needs --src FILE")
    if fmt not in ALIGN_FORMATS:
        raise ConfigError(f"--format {fmt!r}; choose one of: {', '.join(ALIGN_FORMATS)}")
    if level is not None and level not in LEVELS:
        raise ConfigError(f"--level {level!r}; choose one of: {', '.join(LEVELS)}")
    if gold is not None and tgt_file is None:
        raise ConfigError("--gold needs --src and --tgt: gold links refer to the words of given translations")


def _image_paths(image: Path, n: int) -> list[Path]:
    # one sentence: the name as given; several: name-1.png, name-2.png, ... (line numbers)
    return [image] if n == 1 else [image.with_name(f"{image.stem}-{i}{image.suffix}") for i in range(1, n + 1)]


@handle_errors
def align(
    model: ModelDir,
    sentence: Annotated[str | None, typer.Argument(help="Source sentence (or use --src). "
                                                      "Example: 'Nov 21st, 2026'")] = None,
    target: Annotated[str | None, typer.Option(
        help="Given translation of SENTENCE: show the attention of forced (teacher-forced) decoding. "
        "Example: --target 2026-11-21")] = None,
    src_file: Annotated[Path | None, typer.Option("--src", help="Source file, one sentence per line. "
                                                     "Example: --src test.de")] = None,
    tgt_file: Annotated[Path | None, typer.Option("--tgt", help="Given translations of --src (forced "
                                                     "alignment). Example: --tgt test.en")] = None,
    beam: Beam = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="heatmap (stderr; the translation on stdout), "
                                     "pharaoh (i-j links per line) or json (one object per line). "
                                     "Example: --format pharaoh")] = "heatmap",
    level: Annotated[str | None, typer.Option(help="word or subword (default: subword for the heatmap, word "
                                                 "for links, json and images). Example: --level word")] = None,
    threshold: Annotated[float | None, typer.Option(help="Link every cell with at least this weight "
                                                       "(default: the argmax of each target word). "
                                                       "Example: --threshold 0.3")] = None,
    image: Annotated[Path | None, typer.Option("--image", "--png", help="Also draw the heatmap to a .png, "
                                                  ".svg or .pdf file. Example: --png att.png")] = None,
    layer: Annotated[int | None, typer.Option(help="Transformer: decoder layer whose cross-attention is "
                                                 "shown (default: the last). Example: --layer 2")] = None,
    head: Annotated[int | None, typer.Option(help="Transformer: one head (default: the heads' average). "
                                                "Example: --head 0")] = None,
    gold: Annotated[Path | None, typer.Option(help="Gold links (i-j sure, ipj possible, or the WPT "
                                                 "'sentence i j S|P' form): print AER, precision and recall. "
                                                 "Example: --gold test.align")] = None,
    gold_one_indexed: Annotated[bool, typer.Option("--gold-one-indexed", help="Gold word indices count "
                                                   "from 1 (Hansards/WPT files). Example: --gold-one-indexed")] = False,
    device: Device = "auto",
    weights: Weights = None,
) -> None:
    """Word alignments from attention: heatmap, Pharaoh links, JSON, images, AER against gold.

    Example: seq2attn align -m runs/lexalign --src test.src --tgt test.tgt --gold test.align
    """
    from .alignment import image_format, read_gold
    from .api import load
    from .textfiles import read_lines

    _check_align_args(sentence=sentence, src_file=src_file, tgt_file=tgt_file, target=target, fmt=fmt,
                      level=level, gold=gold)
    if image is not None:
        image_format(image)  # fail before decoding anything
    sources = [sentence] if sentence is not None else read_lines(src_file)
    targets = [target] if target is not None else (
        _aligned_lines(src_file, sources, [tgt_file])[0] if tgt_file is not None else None)
    if sentence is not None and not sentence.strip():
        raise DataError("the source sentence is empty")
    golds = read_gold(gold, n_sentences=len(sources), one_indexed=gold_one_indexed) if gold else None
    m = load(model, device=device, weights=weights)
    m.set_alignment(layer=layer, head=head)
    if targets is None:
        translations = m.translate(sources, beam=beam)
        beam_size = m.decode_config(beam=beam).beam_size
        mode = "greedy" if beam_size == 1 else f"beam {beam_size}"
    else:
        translations, mode = m.align(sources, targets), "forced"
    _warn_truncated(m, translations)
    render_alignments(m, translations, fmt=fmt, level=level, threshold=threshold, image=image, golds=golds,
                      mode=mode)


def _alignments(m, translations, *, level: str):
    from .alignment import subword_alignment

    if level == "subword":
        return [subword_alignment(src_pieces=t.src_tokens, tgt_pieces=t.hyp_tokens, attention=t.attention)
                for t in translations]
    return [m.word_alignment(t) for t in translations]


def render_alignments(m, translations, *, fmt: str, level: str | None, threshold: float | None,
                      image: Path | None, golds, mode: str) -> None:
    """The outputs of ``align``: images when asked, then AER against gold links, or the heatmaps
    (stderr, the translations on stdout), or one line of links or JSON per sentence."""
    from .alignment import hard_links

    data = _alignments(m, translations, level=level or "word")
    links = [hard_links(a.weights, threshold=threshold) for a in data]
    if image is not None:
        _save_images(image, data, translations)
    if golds is not None:
        _print_aer(links, golds, as_json=fmt == "json")
    elif fmt == "heatmap":
        # the heatmap shows pieces unless told otherwise: that is what the model attends over
        _print_heatmaps(translations, data if level is not None else _alignments(m, translations, level="subword"),
                        mode=mode)
    else:
        write_output(None, _alignment_lines(translations, data, links, fmt=fmt, level=level or "word"))


def _save_images(image: Path, alignments, translations) -> None:
    from .alignment import save_image

    for path, a, t in zip(_image_paths(image, len(translations)), alignments, translations):
        if a.weights.numel():  # an empty line has nothing to draw
            save_image(path, a, title=t.hyp)


def _print_aer(links, golds, *, as_json: bool) -> None:
    from .alignment import alignment_error_rate

    aer = alignment_error_rate(links, golds)
    typer.echo(json.dumps(aer.as_dict()) if as_json else
               f"AER {100 * aer.aer:.2f}\tprecision {100 * aer.precision:.2f}\trecall {100 * aer.recall:.2f}"
               f"\tsentences {aer.sentences}\tlinks {aer.links}\tsure {aer.sure}\tpossible {aer.possible}")


def _print_heatmaps(translations, alignments, *, mode: str) -> None:
    from .alignment import heatmap

    console = stderr_console()
    for t, a in zip(translations, alignments):
        console.print(heatmap(a, width=console.width, title=f"{mode}: {t.hyp}  (log-prob {t.score:.2f})"))
    write_output(None, [t.hyp for t in translations])


def _alignment_lines(translations, alignments, links, *, fmt: str, level: str) -> list[str]:
    """One stdout line per sentence: Pharaoh links, or a JSON object."""
    from .alignment import pharaoh

    if fmt == "pharaoh":
        return [pharaoh(x) for x in links]
    return [json.dumps({"src": t.src, "hyp": t.hyp, "score": round(t.score, 4), "level": level,
                        "src_tokens": a.src, "tgt_tokens": a.tgt,
                        "attention": [[round(w, 4) for w in row] for row in a.weights.tolist()],
                        "links": pharaoh(x)})
            for t, a, x in zip(translations, alignments, links)]
