"""The seq2attn command line: each command parses, calls the library, renders.

Data goes to stdout, people's output (progress, tables, heatmaps, messages) to stderr, so the
commands compose with pipes. Library errors (``Seq2AttnError``) become one line on stderr and exit
code 1; usage errors exit 2 as Typer does.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import ConfigError, DataError, Seq2AttnError

app = typer.Typer(
    name="seq2attn",
    help="Train, run and look inside attention-based neural machine translation models.\n\n"
    "Example: seq2attn train --corpus dates --out runs/dates && seq2attn align -m runs/dates 'Nov 21st, 2026'",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
corpora_app = typer.Typer(help="List built-in and downloadable corpora; write one out as plain text files.",
                          no_args_is_help=True)
app.add_typer(corpora_app, name="corpora")


def _stderr():
    from .progress import stderr

    return stderr


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr, then exit ``code``."""
    typer.echo(f"seq2attn: error: {message}", err=True)
    return typer.Exit(code)


def handle_errors(fn):
    """Turn library errors into one line and exit 1; never a traceback for bad input."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Seq2AttnError as e:
            raise fail(str(e)) from None
        except BrokenPipeError:  # e.g. `seq2attn translate ... | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


# --- options declared once ---------------------------------------------------------------------
ModelDir = Annotated[Path, typer.Option("--model", "-m", help="Model directory written by `seq2attn train`. "
                                        "Example: -m runs/dates")]
Device = Annotated[str, typer.Option(help="cpu, cuda or auto (cuda when available). Example: --device cpu")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override one config value, repeatable. "
                                                   "Example: --set train.lr=3e-4 --set model.attention=dot")]
DataDir = Annotated[Path | None, typer.Option(help="Local copy of downloadable corpora (default: $SEQ2ATTN_DATA, "
                                                 "else download). Example: --data-dir ../shared/corpora")]
BatchTokens = Annotated[int | None, typer.Option(help="Token budget per decoding batch. Example: --batch-tokens 8000")]


def _device(name: str):
    from .train import resolve_device

    if name not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"--device {name!r}; choose one of: cpu, cuda, auto")
    return resolve_device(name)


def _read_input(path: Path | None) -> list[str]:
    """Lines of ``path`` (plain or .gz), or of stdin when no path is given."""
    from .corpora import read_lines

    if path is not None:
        return read_lines(path)
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"<stdin> line {line}: not valid UTF-8") from None
    return text.splitlines()


def _write_output(path: Path | None, lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .checkpoint import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e.strerror})") from None


def _load(model: Path, device: str):
    from .checkpoint import load

    return load(model, device=_device(device))


# --- train -------------------------------------------------------------------------------------
@app.command()
@handle_errors
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to create (or to continue with "
                                      "--resume). Example: --out runs/dates")],
    corpus: Annotated[str | None, typer.Option(help="Built-in or downloadable corpus (see `seq2attn corpora "
                                                  "list`). Example: --corpus dates")] = None,
    src: Annotated[str | None, typer.Option(help="Source language of a multilingual corpus. Example: --src de")] = None,
    tgt: Annotated[str | None, typer.Option(help="Target language. Example: --tgt en")] = None,
    train_files: Annotated[tuple[Path, Path] | None, typer.Option(
        "--train", help="Training source and target files (plain or .gz). Example: --train train.de train.en")] = None,
    dev_files: Annotated[tuple[Path, Path] | None, typer.Option(
        "--dev", help="Dev source and target files. Example: --dev dev.de dev.en")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file (sections data, "
                                                   "tokenizer, model, train, decode). Example: -c rnn.yaml")] = None,
    sets: Sets = None,
    data_dir: DataDir = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (CPU runs repeat exactly). Example: --seed 7")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint. "
                                                  "Example: --out runs/dates --resume")] = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto. Example: --device cpu")] = None,
) -> None:
    """Train a model. Example: seq2attn train --corpus dates --out runs/dates --set train.max_minutes=3"""
    from .config import resolve_config
    from .corpora import CORPORA
    from .progress import RichReporter
    from .train import Interrupted
    from .train import train as run_training

    preset = CORPORA[corpus].preset if corpus in CORPORA else None
    flags = {
        "data": {"corpus": corpus, "src_lang": src, "tgt_lang": tgt, "data_dir": str(data_dir) if data_dir else None,
                 "train": [str(p) for p in train_files] if train_files else None,
                 "dev": [str(p) for p in dev_files] if dev_files else None},
        "train": {"seed": seed, "device": device},
    }
    cfg = resolve_config(preset=preset, file=config, sets=sets or [], flags=flags)
    try:
        state = run_training(cfg, out, resume=resume, reporter=RichReporter())
    except Interrupted as e:
        _stderr().print(f"interrupted at step {e.step}; saved the last checkpoint in {out} "
                        f"(continue with: seq2attn train --out {out} --resume)")
        raise typer.Exit(130) from None
    _stderr().print(f"done at step {state.step}: best dev BLEU {state.best_bleu:.2f}; model in {out}")


# --- translate ---------------------------------------------------------------------------------
STREAM_CHUNK = 2000  # lines read ahead from a pipe before translating them (earlier when input pauses)


def _translate_progress(total: int | None, quiet: bool):
    """A rich progress bar on stderr (sentences/s), or None when quiet or stderr is no terminal."""
    console = _stderr()
    if quiet or not console.is_terminal:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("[bold]translate"), BarColumn(), MofNCompleteColumn() if total else
               TextColumn("{task.completed} sentences"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
    if total:
        columns.append(TimeRemainingColumn())
    # redirect_stdout=False: rich would otherwise route our stdout (the data) into the stderr console
    return Progress(*columns, console=console, transient=False, redirect_stdout=False, redirect_stderr=False)


def _run_with_progress(run, *, total: int | None, quiet: bool):
    """Call ``run(progress_callback)`` under a progress bar (or none); returns what ``run`` returns."""
    import time

    bar = _translate_progress(total, quiet)
    if bar is None:
        return run(None)
    start = time.monotonic()
    with bar:
        task = bar.add_task("translate", total=total, rate="")

        def advance(n: int) -> None:
            done = bar.tasks[0].completed + n
            rate = done / max(time.monotonic() - start, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:,.1f} sent/s")

        return run(advance)


def _stream(loaded, decode, dev, *, fmt: str, write, interactive: bool, quiet: bool) -> int:
    """Translate stdin chunk by chunk (line by line when it is a terminal), calling ``write(lines)``
    after each chunk; returns how many source lines were truncated."""
    from .translate import format_line, read_chunks
    from .translate import translate as run

    truncated = 0
    chunks = read_chunks(sys.stdin.buffer, max_lines=1 if interactive else STREAM_CHUNK)

    def loop(progress) -> None:
        nonlocal truncated
        for chunk in chunks:
            result = run(loaded, chunk, decode=decode, device=dev, progress=progress)
            truncated += result.truncated
            write([format_line(t, fmt=fmt, nbest=decode.nbest > 1) for t in result.translations])

    _run_with_progress(loop, total=None, quiet=quiet or interactive)
    return truncated


@app.command()
@handle_errors
def translate(
    model: ModelDir,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Source file, one sentence per line, plain "
                                                  "or .gz (default: stdin, translated as it streams in). "
                                                  "Example: -i test.de")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write translations "
                                                   "(default: stdout). Example: -o test.hyp")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text: one translation per line; jsonl: one JSON object "
                                     "per line with src, hyp, score, norm_score, alignment (Pharaoh links over "
                                     "src_tokens/hyp_tokens) and nbest. Example: --format jsonl")] = "text",
    beam: Annotated[int | None, typer.Option("--beam", "-b", help="Beam size; 1 is greedy (default: the "
                                                "model's decode.beam_size). Example: --beam 5")] = None,
    alpha: Annotated[float | None, typer.Option(help="GNMT length penalty for beam search; 0 ranks by "
                                                   "log-prob. Example: --alpha 0.6")] = None,
    nbest: Annotated[int | None, typer.Option(help="Hypotheses per sentence (<= beam; JSONL only). "
                                                 "Example: --nbest 5 --beam 5 --format jsonl")] = None,
    max_len_a: Annotated[float | None, typer.Option(help="Output limit a * source length + b: a. "
                                                       "Example: --max-len-a 1.2")] = None,
    max_len_b: Annotated[int | None, typer.Option(help="Output limit a * source length + b: b. "
                                                     "Example: --max-len-b 10")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Draw each token from the model distribution "
                                         "instead of searching (back-translation, diversity). Example: --sample --top-p 0.9")] = False,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature. Example: --temperature 0.8")] = None,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k most likely tokens. Example: --top-k 10")] = None,
    top_p: Annotated[float | None, typer.Option(help="Sample among the most likely tokens holding this "
                                                   "probability mass. Example: --top-p 0.9")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed. Example: --seed 7")] = None,
    no_repeat_ngram: Annotated[int | None, typer.Option(help="Never repeat an n-gram of this size within a "
                                                           "translation. Example: --no-repeat-ngram 3")] = None,
    batch_tokens: BatchTokens = None,
    device: Device = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch. Example: --threads 4")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or messages on stderr. Example: -q")] = False,
) -> None:
    """Translate sentences: one output line per input line, in input order.

    Example: seq2attn translate -m runs/dates --beam 5 < dates.txt > iso.txt
    """
    import torch

    from .config import resolve_config
    from .search import check_decode
    from .translate import FORMATS, format_line
    from .translate import translate as run

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads {threads}; must be >= 1")
        torch.set_num_threads(threads)
    loaded = _load(model, device)
    flags = {"beam_size": beam, "alpha": alpha, "nbest": nbest, "max_len_a": max_len_a, "max_len_b": max_len_b,
             "sample": True if sample else None, "temperature": temperature, "top_k": top_k, "top_p": top_p,
             "seed": seed, "no_repeat_ngram": no_repeat_ngram, "batch_tokens": batch_tokens}
    decode = resolve_config(base=loaded.cfg, flags={"decode": flags}).decode
    check_decode(decode)
    if decode.nbest > 1 and fmt != "jsonl":
        raise ConfigError(f"--nbest {decode.nbest} needs --format jsonl (text output has one line per input line)")
    dev = next(loaded.model.parameters()).device
    # no bar when the translations go to the terminal too: it would tear them apart
    no_bar = quiet or (output is None and sys.stdout.isatty())
    if input is not None:
        lines = _read_input(input)
        result = _run_with_progress(lambda p: run(loaded, lines, decode=decode, device=dev, progress=p),
                                    total=len(lines), quiet=no_bar)
        _write_output(output, [format_line(t, fmt=fmt, nbest=decode.nbest > 1) for t in result.translations])
        truncated = result.truncated
    else:
        interactive = sys.stdin.isatty()
        if interactive and not quiet:
            _stderr().print("translating each line as you enter it; end with Ctrl-D")
        truncated = _stream_to(output, loaded, decode, dev, fmt=fmt, interactive=interactive, quiet=no_bar)
    if truncated and not quiet:
        _stderr().print(f"warning: {truncated} source lines were longer than {loaded.cfg.data.max_length} "
                        "tokens and were truncated")


def _stream_to(output: Path | None, loaded, decode, dev, *, fmt: str, interactive: bool, quiet: bool) -> int:
    """Stream stdin to stdout (flushed after every chunk), or to ``output`` written atomically."""
    if output is None:
        def write(lines: list[str]) -> None:
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()

        return _stream(loaded, decode, dev, fmt=fmt, write=write, interactive=interactive, quiet=quiet)
    from .checkpoint import atomic_write

    truncated = 0

    def fill(tmp: str) -> None:
        nonlocal truncated
        with open(tmp, "w", encoding="utf-8") as f:
            truncated = _stream(loaded, decode, dev, fmt=fmt, interactive=interactive, quiet=quiet,
                                write=lambda lines: f.write("".join(line + "\n" for line in lines)))

    try:
        atomic_write(output, fill)
    except OSError as e:
        raise DataError(f"{output}: cannot write ({e.strerror})") from None
    return truncated


# --- score and evaluate ------------------------------------------------------------------------
Metrics = Annotated[str, typer.Option(help="Comma-separated: bleu, chrf, ter, exact. Example: --metrics bleu,chrf,ter")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the scores as one JSON object on stdout. Example: --json")]
Beam = Annotated[int | None, typer.Option(help="Beam size (default: the model's decode.beam_size; 1 is greedy). "
                                             "Example: --beam 5")]


def _metric_names(metrics: str) -> list[str]:
    return [m.strip().lower() for m in metrics.split(",") if m.strip()]


def _aligned_lines(first: Path, lines: list[str], others: list[Path]) -> list[list[str]]:
    from .corpora import read_lines

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


@app.command()
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
    from .corpora import read_lines
    from .metrics import (
        BOOTSTRAP_SAMPLES,
        BOOTSTRAP_SEED,
        corpus_scores,
        paired_bootstrap,
        sentence_scores,
    )

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


def _decode_config(loaded, *, beam: int | None, batch_tokens: int | None = None):
    from dataclasses import replace

    decode = loaded.cfg.decode
    if beam is not None:
        if beam < 1:
            raise ConfigError(f"--beam {beam}; must be >= 1")
        decode = replace(decode, beam_size=beam)
    return decode if batch_tokens is None else replace(decode, batch_tokens=batch_tokens)


@app.command()
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
) -> None:
    """Translate a file and score it against its references in one go.

    Example: seq2attn evaluate -m runs/dates --src test.src --ref test.tgt --beam 5 --out test.hyp
    """
    from .corpora import read_lines
    from .metrics import corpus_scores
    from .translate import translate as run

    sources = read_lines(src)
    ref_streams = _aligned_lines(src, sources, ref)
    loaded = _load(model, device)
    result = run(loaded, sources, decode=_decode_config(loaded, beam=beam, batch_tokens=batch_tokens),
                 device=next(loaded.model.parameters()).device)
    hyps = [t.hyp for t in result.translations]
    if out is not None:
        _write_output(out, hyps)
    _print_scores(corpus_scores(hyps, ref_streams, metrics=_metric_names(metrics)), as_json=as_json)


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


def _alignments(loaded, translations, targets, *, level: str):
    from .alignment import subword_alignment, word_alignment

    out = []
    for i, t in enumerate(translations):
        if level == "subword":
            out.append(subword_alignment(src_pieces=t.src_tokens, tgt_pieces=t.hyp_tokens, attention=t.attention))
        else:
            out.append(word_alignment(loaded.codec, src=t.src, tgt=t.hyp if targets is None else targets[i],
                                      src_pieces=t.src_tokens, tgt_pieces=t.hyp_tokens, attention=t.attention))
    return out


def _image_paths(image: Path, n: int) -> list[Path]:
    # one sentence: the name as given; several: name-1.png, name-2.png, ... (line numbers)
    return [image] if n == 1 else [image.with_name(f"{image.stem}-{i}{image.suffix}") for i in range(1, n + 1)]


@app.command()
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
) -> None:
    """Word alignments from attention: heatmap, Pharaoh links, JSON, images, AER against gold.

    Example: seq2attn align -m runs/lexalign --src test.src --tgt test.tgt --gold test.align
    """
    from .alignment import alignment_error_rate, hard_links, image_format, read_gold, save_image
    from .corpora import read_lines
    from .translate import force
    from .translate import translate as run

    _check_align_args(sentence=sentence, src_file=src_file, tgt_file=tgt_file, target=target, fmt=fmt,
                      level=level, gold=gold)
    if image is not None:
        image_format(image)  # fail before decoding anything
    sources = [sentence] if sentence is not None else read_lines(src_file)
    targets = [target] if target is not None else (read_lines(tgt_file) if tgt_file is not None else None)
    if sentence is not None and not sentence.strip():
        raise DataError("the source sentence is empty")
    golds = read_gold(gold, n_sentences=len(sources), one_indexed=gold_one_indexed) if gold else None
    loaded = _load(model, device)
    from .models import set_alignment

    set_alignment(loaded.model, layer=layer, head=head)
    dev = next(loaded.model.parameters()).device
    decode = _decode_config(loaded, beam=beam)
    result = (run(loaded, sources, decode=decode, device=dev) if targets is None
              else force(loaded, sources, targets, decode=decode, device=dev))
    if result.truncated:
        _stderr().print(f"warning: {result.truncated} sentences were longer than {loaded.cfg.data.max_length} "
                        "tokens and were truncated")
    data = _alignments(loaded, result.translations, targets, level=level or "word")
    links = [hard_links(a.weights, threshold=threshold) for a in data]
    if image is not None:
        for path, a, t in zip(_image_paths(image, len(sources)), data, result.translations):
            if a.weights.numel():  # an empty line has nothing to draw
                save_image(path, a, title=t.hyp)
    if golds is not None:
        aer = alignment_error_rate(links, golds)
        typer.echo(json.dumps(aer.as_dict()) if fmt == "json" else
                   f"AER {100 * aer.aer:.2f}\tprecision {100 * aer.precision:.2f}\trecall {100 * aer.recall:.2f}"
                   f"\tsentences {aer.sentences}\tlinks {aer.links}\tsure {aer.sure}\tpossible {aer.possible}")
        return
    if fmt == "heatmap":
        # the heatmap shows pieces unless told otherwise: that is what the model attends over
        shown = data if level is not None else _alignments(loaded, result.translations, targets, level="subword")
        mode = "forced" if targets is not None else "greedy" if decode.beam_size == 1 else f"beam {decode.beam_size}"
        _print_heatmaps(result.translations, shown, mode=mode)
    else:
        _write_output(None, _alignment_lines(result.translations, data, links, fmt=fmt, level=level or "word"))


def _print_heatmaps(translations, alignments, *, mode: str) -> None:
    from .alignment import heatmap

    console = _stderr()
    for t, a in zip(translations, alignments):
        console.print(heatmap(a, width=console.width, title=f"{mode}: {t.hyp}  (log-prob {t.score:.2f})"))
    _write_output(None, [t.hyp for t in translations])


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


# --- corpora -----------------------------------------------------------------------------------
@corpora_app.command("list")
@handle_errors
def corpora_list() -> None:
    """Name, languages, sizes and origin of every corpus. Example: seq2attn corpora list"""
    from rich.table import Table

    from .corpora import CORPORA

    table = Table("name", "languages", "train / dev / test", "source", "description")
    for info in CORPORA.values():
        sizes = " / ".join(f"{info.sizes.get(k, 0):,}" for k in ("train", "dev", "test"))
        table.add_row(info.name, ", ".join(info.languages), sizes, info.source, info.description)
    _stderr().print(table)


@corpora_app.command("prepare")
@handle_errors
def corpora_prepare(
    name: Annotated[str, typer.Argument(help="Corpus name from `seq2attn corpora list`. Example: multi30k")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for train/dev/test .src/.tgt files. "
                                      "Example: --out data/de-en")],
    src: Annotated[str | None, typer.Option(help="Source language. Example: --src de")] = None,
    tgt: Annotated[str | None, typer.Option(help="Target language. Example: --tgt en")] = None,
    data_dir: DataDir = None,
    seed: Annotated[int, typer.Option(help="Seed of generated corpora. Example: --seed 1")] = 1,
) -> None:
    """Write a corpus as plain-text files. Example: seq2attn corpora prepare dates --out data/dates"""
    from .corpora import load_corpus, write_splits

    splits = load_corpus(name, src_lang=src, tgt_lang=tgt, data_dir=data_dir, seed=seed)
    for path in write_splits(splits, out):
        typer.echo(str(path))


# --- info --------------------------------------------------------------------------------------
@app.command()
@handle_errors
def info(
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Model directory to describe "
                                                  "(omit for the installation). Example: -m runs/dates")] = None,
) -> None:
    """Versions and devices, or what a model directory holds. Example: seq2attn info -m runs/dates"""
    import torch

    from . import __version__

    console = _stderr()
    if model is None:
        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        console.print(f"seq2attn {__version__}; torch {torch.__version__}; CPU threads {torch.get_num_threads()}; "
                      f"CUDA: {cuda}")
        return
    from .checkpoint import load, read_manifest
    from .config import to_dict
    from .models import count_parameters

    loaded = load(model, device="cpu")
    manifest = read_manifest(model)
    console.print(f"{model}: {count_parameters(loaded.model):,} parameters; vocab src "
                  f"{loaded.codec.vocab_size('src')} / tgt {loaded.codec.vocab_size('tgt')}")
    for which, entry in manifest["weights"].items():
        console.print(f"  {which}: {entry['file']} step {entry['step']}, dev BLEU {entry['dev_bleu']:.2f}")
    typer.echo(json.dumps(to_dict(loaded.cfg)))


def main() -> None:  # pragma: no cover - console script entry
    app()
