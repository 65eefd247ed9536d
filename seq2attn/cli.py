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
from typing import Annotated, Optional

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
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="Override one config value, repeatable. "
                                                   "Example: --set train.lr=3e-4 --set model.attention=dot")]
DataDir = Annotated[Optional[Path], typer.Option(help="Local copy of downloadable corpora (default: $SEQ2ATTN_DATA, "
                                                 "else download). Example: --data-dir ../shared/corpora")]
BatchTokens = Annotated[Optional[int], typer.Option(help="Token budget per decoding batch. Example: --batch-tokens 8000")]


def _device(name: str):
    from .train import resolve_device

    if name not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"--device {name!r}; choose one of: cpu, cuda, auto")
    return resolve_device(name)


def _read_input(path: Optional[Path]) -> list[str]:
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


def _write_output(path: Optional[Path], lines: list[str]) -> None:
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
    corpus: Annotated[Optional[str], typer.Option(help="Built-in or downloadable corpus (see `seq2attn corpora "
                                                  "list`). Example: --corpus dates")] = None,
    src: Annotated[Optional[str], typer.Option(help="Source language of a multilingual corpus. Example: --src de")] = None,
    tgt: Annotated[Optional[str], typer.Option(help="Target language. Example: --tgt en")] = None,
    train_files: Annotated[Optional[tuple[Path, Path]], typer.Option(
        "--train", help="Training source and target files (plain or .gz). Example: --train train.de train.en")] = None,
    dev_files: Annotated[Optional[tuple[Path, Path]], typer.Option(
        "--dev", help="Dev source and target files. Example: --dev dev.de dev.en")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file (sections data, "
                                                   "tokenizer, model, train, decode). Example: -c rnn.yaml")] = None,
    sets: Sets = None,
    data_dir: DataDir = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (CPU runs repeat exactly). Example: --seed 7")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or auto. Example: --device cpu")] = None,
) -> None:
    """Train a model. Example: seq2attn train --corpus dates --out runs/dates --set train.max_minutes=3"""
    from .config import resolve_config
    from .corpora import CORPORA
    from .progress import RichReporter
    from .train import Interrupted, train as run_training

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
@app.command()
@handle_errors
def translate(
    model: ModelDir,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Source file, one sentence per line "
                                                  "(default: stdin). Example: -i test.de")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Where to write translations "
                                                   "(default: stdout). Example: -o test.hyp")] = None,
    batch_tokens: BatchTokens = None,
    device: Device = "auto",
) -> None:
    """Translate sentences with greedy decoding: one output line per input line.

    Example: seq2attn translate -m runs/dates < dates.txt > iso.txt
    """
    from dataclasses import replace

    from .translate import translate as run

    loaded = _load(model, device)
    lines = _read_input(input)
    decode = loaded.cfg.decode if batch_tokens is None else replace(loaded.cfg.decode, batch_tokens=batch_tokens)
    result = run(loaded, lines, decode=decode, device=next(loaded.model.parameters()).device)
    if result.truncated:
        _stderr().print(f"warning: {result.truncated} source lines were longer than {loaded.cfg.data.max_length} "
                        "tokens and were truncated")
    _write_output(output, [t.hyp for t in result.translations])


# --- score -------------------------------------------------------------------------------------
@app.command()
@handle_errors
def score(
    hyp: Annotated[Path, typer.Argument(help="Hypothesis file, one sentence per line. Example: test.hyp")],
    ref: Annotated[Path, typer.Argument(help="Reference file, line-aligned with HYP. Example: test.en")],
    metrics: Annotated[str, typer.Option(help="Comma-separated: bleu, chrf, ter, exact. Example: --metrics bleu,ter")] = "bleu,chrf",
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as one JSON object on stdout.")] = False,
) -> None:
    """Corpus BLEU and chrF (sacrebleu, with signatures). Example: seq2attn score test.hyp test.en --json"""
    from .corpora import read_lines
    from .metrics import corpus_scores

    hyps, refs = read_lines(hyp), read_lines(ref)
    if len(hyps) != len(refs):
        raise DataError(f"{hyp} has {len(hyps)} lines but {ref} has {len(refs)} lines; they must be line-aligned")
    names = [m.strip().lower() for m in metrics.split(",") if m.strip()]
    scores = corpus_scores(hyps, [refs], metrics=names)
    if as_json:
        typer.echo(json.dumps({s.name: s.as_dict() for s in scores}))
    else:
        for s in scores:
            typer.echo(s.text + (f"\t{s.signature}" if s.signature else ""))


# --- align -------------------------------------------------------------------------------------
@app.command()
@handle_errors
def align(
    model: ModelDir,
    sentence: Annotated[str, typer.Argument(help="Source sentence. Example: 'Nov 21st, 2026'")],
    target: Annotated[Optional[str], typer.Option(help="Given translation: show the attention of forced "
                                                  "(teacher-forced) decoding instead. Example: --target 2026-11-21")] = None,
    device: Device = "auto",
) -> None:
    """Show the attention matrix of one sentence as a heatmap (target rows, source columns).

    Example: seq2attn align -m runs/dates "Saturday 21 November 2026"
    """
    from .alignment import heatmap_table
    from .translate import force, translate as run

    loaded = _load(model, device)
    if not sentence.strip():
        raise DataError("the source sentence is empty")
    dev = next(loaded.model.parameters()).device
    if target is None:
        result = run(loaded, [sentence], decode=loaded.cfg.decode, device=dev)
    else:
        result = force(loaded, [sentence], [target], decode=loaded.cfg.decode, device=dev)
    t = result.translations[0]
    title = f"{'forced' if target is not None else 'greedy'}: {t.hyp}  (log-prob {t.score:.2f})"
    _stderr().print(heatmap_table(t.src_tokens, t.hyp_tokens, t.attention, title=title))
    typer.echo(t.hyp)


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
    src: Annotated[Optional[str], typer.Option(help="Source language. Example: --src de")] = None,
    tgt: Annotated[Optional[str], typer.Option(help="Target language. Example: --tgt en")] = None,
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
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model directory to describe "
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
