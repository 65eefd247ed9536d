"""The commands that look at results: ``score`` (sacrebleu and friends, paired bootstrap),
``evaluate`` (translate and score in one go) and ``align`` (attention as heatmaps, links,
images, AER). Registered on the app in :mod:`seq2attn.cli.main`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from seq2attn.cli.common import (
    STDIO,
    Device,
    ModelDir,
    Quiet,
    Threads,
    Weights,
    decode_options,
    handle_errors,
    is_stdio,
    read_input,
    stderr_console,
    usage_error,
    warn_too_long,
    write_output,
)
from seq2attn.errors import ConfigError, DataError

# --- score and evaluate ------------------------------------------------------------------------
Metrics = Annotated[str, typer.Option(metavar="LIST", help="Comma-separated: bleu, chrf, ter, exact. Example: --metrics bleu,chrf,ter")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the scores as one JSON object on stdout. Example: --json")]


def _metric_names(metrics: str) -> list[str]:
    names = [m.strip().lower() for m in metrics.split(",") if m.strip()]
    if not names:
        raise ConfigError(f"--metrics {metrics!r}: no metric named; choose from: bleu, chrf, ter, exact")
    return names


def _aligned_files(paths: list[Path]) -> list[list[str]]:
    """The lines of each file, checked to be line-aligned with the first; ``-`` (stdin) may stand
    for one of them."""
    if sum(is_stdio(p) for p in paths) > 1:
        raise usage_error("- (stdin) can stand for one file only")
    first, lines, streams = paths[0], read_input(paths[0]), [read_input(p) for p in paths[1:]]
    for path, stream in zip(paths[1:], streams):
        if len(stream) != len(lines):
            raise DataError(f"{first} has {len(lines)} lines but {path} has {len(stream)} lines; "
                            "they must be line-aligned")
    return [lines, *streams]


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
    files: Annotated[list[Path], typer.Argument(metavar="FILE", show_default=False, help="The hypothesis "
                                                "file, then one or more references, line-aligned (without HYP "
                                                "when -i gives it; - is stdin). Example: test.hyp test.en")],
    input: Annotated[Path | None, typer.Option("--input", "-i", metavar="HYP", help="The hypothesis file, as in "
                                               "`sacrebleu REF -i HYP`. Example: -i test.hyp")] = None,
    metrics: Metrics = "bleu,chrf",
    as_json: AsJson = False,
    sentence: Annotated[bool, typer.Option("--sentence", help="Per-line scores instead of corpus scores "
                                           "(sentence BLEU with effective order). Example: --sentence")] = False,
    compare: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Second system's hypotheses: paired bootstrap test of it against HYP (sacrebleu's). "
        "Example: --compare b.hyp")] = None,
    samples: Annotated[int | None, typer.Option(metavar="N", help="Bootstrap resamples for --compare (default: 1000, "
                                                   "sacrebleu's). Example: --samples 2000")] = None,
    seed: Annotated[int | None, typer.Option(metavar="N", help="Seed of the --compare resampling (default: 12345, "
                                                "sacrebleu's). Example: --seed 7")] = None,
) -> None:
    """BLEU, chrF and TER (sacrebleu, with signatures); --sentence: per line; --compare: paired bootstrap.

    Example: seq2attn score test.hyp test.en --metrics bleu,chrf,ter --compare other.hyp
    (or sacrebleu's way round: seq2attn score test.en -i test.hyp)
    """
    from seq2attn.text.metrics import (
        BOOTSTRAP_SAMPLES,
        BOOTSTRAP_SEED,
        corpus_scores,
        paired_bootstrap,
        sentence_scores,
    )
    hyp, refs = (input, files) if input is not None else (files[0], files[1:])
    if not refs:
        raise usage_error("give the reference file(s) after HYP (or: REF... -i HYP)")
    hyps, *ref_streams = _aligned_files([hyp, *refs, *([compare] if compare is not None else [])])
    other = ref_streams.pop() if compare is not None else None
    names = _metric_names(metrics)
    if compare is not None:
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
@decode_options(exclude=("nbest",))
def evaluate(
    model: ModelDir,
    src: Annotated[Path, typer.Option(metavar="FILE", help="Source file to translate (- is stdin). "
                                      "Example: --src test.de")],
    ref: Annotated[list[Path], typer.Option(metavar="FILE", help="Reference file, repeatable. "
                                            "Example: --ref test.en")],
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="FILE", help="Also write the translations "
                                                "here. Example: --out test.hyp")] = None,
    metrics: Metrics = "bleu,chrf",
    as_json: AsJson = False,
    device: Device = "auto",
    threads: Threads = None,
    quiet: Quiet = False,
    weights: Weights = None,
    decode_options: dict | None = None,
) -> None:
    """Translate a file and score it against its references in one go.

    Example: seq2attn evaluate -m runs/dates --src test.src --ref test.tgt --beam 5 --out test.hyp
    """
    from seq2attn.inference.api import load
    from seq2attn.text.metrics import corpus_scores

    names = _metric_names(metrics)
    sources, *ref_streams = _aligned_files([src, *ref])
    m = load(model, device=device, threads=threads, weights=weights)
    translations = m.translate(sources, attention=False, **decode_options or {})
    if not quiet:
        warn_too_long(sum(t.too_long for t in translations), m.position_limit)
    hyps = [t.hyp for t in translations]
    if out is not None:
        write_output(out, hyps)
    _print_scores(corpus_scores(hyps, ref_streams, metrics=names), as_json=as_json)


# --- align -------------------------------------------------------------------------------------
AlignFormat = Literal["heatmap", "pharaoh", "json"]
Level = Literal["word", "subword"]  # alignment.LEVELS


def _check_align_args(*, sentence, src_file, tgt_file, target, gold) -> None:
    if (sentence is None) == (src_file is None):
        raise ConfigError("give a source sentence, --src FILE or sentences on stdin (one of them)")
    if target is not None and sentence is None:
        raise ConfigError("--target goes with a source sentence; with --src FILE give --tgt FILE")
    if tgt_file is not None and src_file is None:
        raise ConfigError("--tgt FILE needs --src FILE")
    if gold is not None and tgt_file is None:
        raise ConfigError("--gold needs --src and --tgt: gold links refer to the words of given translations")


def _image_paths(image: Path, n: int) -> list[Path]:
    # one sentence: the name as given; several: name-1.png, name-2.png, ... (line numbers)
    return [image] if n == 1 else [image.with_name(f"{image.stem}-{i}{image.suffix}") for i in range(1, n + 1)]


@handle_errors
@decode_options(exclude=("nbest",))
def align(
    model: ModelDir,
    sentence: Annotated[str | None, typer.Argument(metavar="SENTENCE", help="Source sentence (or --src, or "
                                                      "sentences on stdin). Example: 'Nov 21st, 2026'")] = None,
    target: Annotated[str | None, typer.Option(
        metavar="TEXT", help="Given translation of SENTENCE: show the attention of forced (teacher-forced) decoding. "
        "Example: --target 2026-11-21")] = None,
    src_file: Annotated[Path | None, typer.Option("--src", metavar="FILE", help="Source file, one sentence per "
                                                     "line (- is stdin). Example: --src test.de")] = None,
    tgt_file: Annotated[Path | None, typer.Option("--tgt", metavar="FILE", help="Given translations of --src "
                                                     "(forced alignment). Example: --tgt test.en")] = None,
    fmt: Annotated[AlignFormat, typer.Option("--format", "-f", help="heatmap (stderr; the translation on stdout), "
                                     "pharaoh (i-j links per line) or json (one object per line). "
                                     "Example: --format pharaoh")] = "heatmap",
    level: Annotated[Level | None, typer.Option(help="Merge subword pieces into words, or not (default: the "
                                                 "tokenizer's own pieces for the heatmap and images, words for "
                                                 "links and json). Example: --level word")] = None,
    threshold: Annotated[float | None, typer.Option(metavar="W", help="Link every cell with at least this weight "
                                                       "(default: the argmax of each target word). "
                                                       "Example: --threshold 0.3")] = None,
    image: Annotated[Path | None, typer.Option("--image", "--png", metavar="FILE", help="Also draw the heatmap to a .png, "
                                                  ".svg or .pdf file. Example: --png att.png")] = None,
    layer: Annotated[int | None, typer.Option(metavar="N", help="Transformer: decoder layer whose cross-attention is "
                                                 "shown (default: the last). Example: --layer 2")] = None,
    head: Annotated[int | None, typer.Option(metavar="N", help="Transformer: one head (default: the heads' average). "
                                                "Example: --head 0")] = None,
    gold: Annotated[Path | None, typer.Option(metavar="FILE", help="Gold links (i-j sure, ipj possible, or the WPT "
                                                 "'sentence i j S|P' form): print AER, precision and recall. "
                                                 "Example: --gold test.align")] = None,
    gold_one_indexed: Annotated[bool, typer.Option("--gold-one-indexed", help="Gold word indices count "
                                                   "from 1 (Hansards/WPT files). Example: --gold-one-indexed")] = False,
    device: Device = "auto",
    threads: Threads = None,
    quiet: Quiet = False,
    weights: Weights = None,
    decode_options: dict | None = None,
) -> None:
    """Word alignments from attention: heatmap, Pharaoh links, JSON, images, AER against gold.

    Example: seq2attn align -m runs/lexalign --src test.src --tgt test.tgt --gold test.align
    """
    from seq2attn.inference.alignment import image_format, read_gold
    from seq2attn.inference.api import load

    if sentence is None and src_file is None and not sys.stdin.isatty():
        src_file = Path(STDIO)  # sentences on stdin, as `translate` reads them
    _check_align_args(sentence=sentence, src_file=src_file, tgt_file=tgt_file, target=target, gold=gold)
    if image is not None:
        image_format(image)  # fail before decoding anything
    if sentence is not None:
        sources, targets = [sentence], [target] if target is not None else None
    else:
        sources, *rest = _aligned_files([src_file, *([tgt_file] if tgt_file is not None else [])])
        targets = rest[0] if rest else None
    if sentence is not None and not sentence.strip():
        raise DataError("the source sentence is empty")
    golds = read_gold(gold, n_sentences=len(sources), one_indexed=gold_one_indexed,
                      words=[(len(s.split()), len(t.split())) for s, t in zip(sources, targets or [])]) if gold else None
    m = load(model, device=device, threads=threads, weights=weights)
    m.set_alignment(layer=layer, head=head)
    decode = m.decode_config(**decode_options or {})
    if targets is None:
        translations = m.translate(sources, decode=decode)
        mode = "greedy" if decode.beam_size == 1 else f"beam {decode.beam_size}"
    else:
        translations, mode = m.align(sources, targets, batch_tokens=decode.batch_tokens,
                                     precision=decode.precision), "forced"
    if not quiet:
        warn_too_long(sum(t.too_long for t in translations), m.position_limit)
    render_alignments(m, translations, fmt=fmt, level=level, threshold=threshold, image=image, golds=golds,
                      mode=mode)


def _alignments(m, translations, *, level: str):
    from seq2attn.inference.alignment import subword_alignment

    if level == "subword":
        return [subword_alignment(src_pieces=t.src_tokens, tgt_pieces=t.hyp_tokens, attention=t.attention)
                for t in translations]
    return [m.word_alignment(t) for t in translations]


def render_alignments(m, translations, *, fmt: str, level: str | None, threshold: float | None,
                      image: Path | None, golds, mode: str) -> None:
    """The outputs of ``align``: images when asked, then AER against gold links, or the heatmaps
    (stderr, the translations on stdout), or one line of links or JSON per sentence."""
    from seq2attn.inference.alignment import hard_links

    data = _alignments(m, translations, level=level or "word")
    links = [hard_links(a.weights, threshold=threshold) for a in data]
    # pictures show what the model attends over (the tokenizer's pieces) unless --level says otherwise
    pictured = data if level is not None else _alignments(m, translations, level="subword")
    if image is not None:
        _save_images(image, pictured, translations)
    if golds is not None:
        _print_aer(links, golds, as_json=fmt == "json")
    elif fmt == "heatmap":
        _print_heatmaps(translations, pictured, mode=mode)
    else:
        write_output(None, _alignment_lines(translations, data, links, fmt=fmt, level=level or "word"))


def _save_images(image: Path, alignments, translations) -> None:
    from seq2attn.inference.alignment import save_image

    for path, a, t in zip(_image_paths(image, len(translations)), alignments, translations):
        if a.weights.numel():  # an empty line has nothing to draw
            save_image(path, a, title=f"{t.src}  ->  {t.hyp}")


def _print_aer(links, golds, *, as_json: bool) -> None:
    from seq2attn.inference.alignment import alignment_error_rate

    aer = alignment_error_rate(links, golds)
    typer.echo(json.dumps(aer.as_dict()) if as_json else
               f"AER {100 * aer.aer:.2f}\tprecision {100 * aer.precision:.2f}\trecall {100 * aer.recall:.2f}"
               f"\tsentences {aer.sentences}\tlinks {aer.links}\tsure {aer.sure}\tpossible {aer.possible}")


def _print_heatmaps(translations, alignments, *, mode: str) -> None:
    from seq2attn.inference.alignment import heatmap

    console = stderr_console()
    for t, a in zip(translations, alignments):
        console.print(heatmap(a, width=console.width, title=f"{mode}: {t.hyp}  (log-prob {t.score:.2f})"))
    write_output(None, [t.hyp for t in translations])


def _alignment_lines(translations, alignments, links, *, fmt: str, level: str) -> list[str]:
    """One stdout line per sentence: Pharaoh links, or a JSON object."""
    from seq2attn.inference.alignment import pharaoh

    if fmt == "pharaoh":
        return [pharaoh(x) for x in links]
    return [json.dumps({"src": t.src, "hyp": t.hyp, "score": round(t.score, 4), "level": level,
                        "src_tokens": a.src, "tgt_tokens": a.tgt,
                        "attention": [[round(w, 4) for w in row] for row in a.weights.tolist()],
                        "links": pharaoh(x)})
            for t, a, x in zip(translations, alignments, links)]
