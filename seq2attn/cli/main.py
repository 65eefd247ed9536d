"""The seq2attn command line: each command parses, calls the library, renders.

Data goes to stdout, people's output (progress, tables, heatmaps, messages) to stderr, so the
commands compose with pipes. Library errors (``Seq2AttnError``) become one line on stderr and exit
code 1; usage errors exit 2 as Typer does.
"""


from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from seq2attn.cli import evaluate as cli_eval
from seq2attn.cli import model as cli_model
from seq2attn.cli import serve as cli_serve
from seq2attn.cli.common import (
    Command,
    DataDir,
    Device,
    Group,
    ModelDir,
    OldSrc,
    OldTgt,
    Quiet,
    Sets,
    SrcLang,
    TgtLang,
    Threads,
    Weights,
    decode_options,
    handle_errors,
    is_stdio,
    languages,
    read_input,
    stderr_console,
    usage_error,
    warn_too_long,
    write_output,
)
from seq2attn.errors import ConfigError

app = typer.Typer(
    name="seq2attn",
    help="Train, run and look inside attention-based neural machine translation models.\n\n"
    "Example: seq2attn train --corpus dates --out runs/dates && seq2attn align -m runs/dates 'Nov 21st, 2026'\n\n"
    "Exit codes: 0 success, 1 a runtime error (files, values, models), 2 a usage error, 130 interrupted.",
    cls=Group,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain Unix help: `-f, --format [a|b]` on one line, never folded into a box
)
corpora_app = typer.Typer(help="List built-in and downloadable corpora; write one out as plain text files.",
                          cls=Group, no_args_is_help=True)
app.add_typer(corpora_app, name="corpora")


def _print_version(value: bool) -> None:
    if value:
        from seq2attn.version import __version__

        typer.echo(f"seq2attn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    pass


# --- train -------------------------------------------------------------------------------------
# the data options train and preprocess share
Corpus = Annotated[str | None, typer.Option(metavar="NAME", help="Built-in or downloadable corpus (see "
                                                 "`seq2attn corpora list`). Example: --corpus dates")]
TrainFiles = Annotated[tuple[Path, Path] | None, typer.Option(
    "--train", metavar="SRC TGT",
    help="Training source and target files (plain or .gz). Example: --train train.de train.en")]
DevFiles = Annotated[tuple[Path, Path] | None, typer.Option(
    "--dev", metavar="SRC TGT", help="Dev source and target files. Example: --dev dev.de dev.en")]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE", help="YAML config file "
                                                 "(sections data, tokenizer, model, train, decode). "
                                                 "Example: -c rnn.yaml")]


@app.command(cls=Command)
@handle_errors
def train(
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Model directory to create (or to "
                                      "continue with --resume). Example: --out runs/dates")],
    corpus: Corpus = None,
    src_lang: SrcLang = None,
    tgt_lang: TgtLang = None,
    train_files: TrainFiles = None,
    dev_files: DevFiles = None,
    config: ConfigFile = None,
    sets: Sets = None,
    data_dir: DataDir = None,
    seed: Annotated[int | None, typer.Option(metavar="N", help="Random seed (CPU runs repeat exactly). "
                                             "Example: --seed 7")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint. "
                                                  "Example: --out runs/dates --resume")] = False,
    device: Annotated[str | None, typer.Option(metavar="[auto|cpu|cuda|cuda:N]", help="cuda when available "
                                               "with auto (default: the config's train.device). "
                                               "Example: --device cuda:1")] = None,
    old_src: OldSrc = None,
    old_tgt: OldTgt = None,
    data: Annotated[Path | None, typer.Option("--data", metavar="DIR", help="A corpus store from `seq2attn preprocess` (with "
                                               "--train/--dev or --corpus: checked to match them). "
                                               "Example: --data stores/wmt")] = None,
    backend: Annotated[Literal["rnn", "transformer"] | None, typer.Option(
        help="model.backend; with --corpus, that backend's corpus preset (default: the config's, rnn). "
             "Example: --corpus multi30k --backend transformer")] = None,
) -> None:
    """Train a model. Example: seq2attn train --corpus dates --out runs/dates --set train.max_minutes=3

    Under torchrun (torchrun --nproc-per-node 4 -m seq2attn train ...) each process trains on its
    share of every step's batches; rank 0 writes the model directory."""
    from seq2attn.cli.progress import RichReporter
    from seq2attn.run.train import Interrupted
    from seq2attn.run.train import train as run_training

    src, tgt = languages(src_lang, tgt_lang, old_src, old_tgt)
    cfg = _data_config(corpus=corpus, src=src, tgt=tgt, data_dir=data_dir, train_files=train_files,
                       dev_files=dev_files, config=config, sets=sets, seed=seed,
                       extra={"train": {"device": device}, "model": {"backend": backend},
                              "data": {"store": str(data.resolve()) if data is not None else None}})
    from seq2attn.run.distributed import world_from_env

    main = world_from_env().main  # under torchrun, rank 0 speaks for all
    try:
        state = run_training(cfg, out, resume=resume, reporter=RichReporter())
    except Interrupted as e:
        if main:
            import signal

            what = "interrupted" if e.signal == signal.SIGINT else f"stopped by {signal.Signals(e.signal).name}"
            stderr_console().print(f"{what} at step {e.step}; saved the last checkpoint in {out} "
                                   f"(continue with: seq2attn train --out {out} --resume)")
        raise typer.Exit(128 + e.signal) from None
    if main:
        stderr_console().print(f"done at step {state.step}: best dev BLEU {state.best_bleu:.2f}; model in {out}")


def _data_config(*, corpus, src, tgt, data_dir, train_files, dev_files, config, sets, seed, extra=None):
    """The config of train and preprocess: corpus preset < --config < --set < flags."""
    from seq2attn.config import ModelConfig, resolve_config
    from seq2attn.text.corpora import CORPORA

    # the preset of the default backend, then of the backend that --config, --set or --backend chose
    preset = CORPORA[corpus].preset_for(ModelConfig().backend) if corpus in CORPORA else None
    flags = {
        "data": {"corpus": corpus, "src_lang": src, "tgt_lang": tgt, "data_dir": str(data_dir) if data_dir else None,
                 "train": [str(p) for p in train_files] if train_files else None,
                 "dev": [str(p) for p in dev_files] if dev_files else None},
        "train": {"seed": seed},
    }
    for section, values in (extra or {}).items():
        flags[section] = {**flags.get(section, {}), **values}
    from seq2attn.nn.models import check_config

    cfg = resolve_config(preset=preset, file=config, sets=sets or [], flags=flags)
    if corpus in CORPORA and CORPORA[corpus].preset_for(cfg.model.backend) != preset:
        cfg = resolve_config(preset=CORPORA[corpus].preset_for(cfg.model.backend), file=config, sets=sets or [],
                             flags=flags)
    check_config(cfg)
    return cfg


# --- preprocess --------------------------------------------------------------------------------
@app.command(cls=Command)
@handle_errors
def preprocess(
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Store directory to create. "
                                      "Example: --out stores/wmt")],
    corpus: Corpus = None,
    src_lang: SrcLang = None,
    tgt_lang: TgtLang = None,
    train_files: TrainFiles = None,
    dev_files: DevFiles = None,
    config: ConfigFile = None,
    sets: Sets = None,
    data_dir: DataDir = None,
    seed: Annotated[int | None, typer.Option(metavar="N", help="Seed of the tokenizer's training sample. "
                                             "Example: --seed 7")] = None,
    old_src: OldSrc = None,
    old_tgt: OldTgt = None,
) -> None:
    """Tokenize a corpus once into a memory-mapped store for `seq2attn train --data DIR`.
    Example: seq2attn preprocess --train train.de train.en --dev dev.de dev.en --out stores/de-en"""
    import time

    from seq2attn.modeldir import store
    from seq2attn.run.traindata import sources

    src, tgt = languages(src_lang, tgt_lang, old_src, old_tgt)
    cfg = _data_config(corpus=corpus, src=src, tgt=tgt, data_dir=data_dir, train_files=train_files,
                       dev_files=dev_files, config=config, sets=sets, seed=seed)
    given = sources(cfg)
    assert given is not None  # no store in this config: sources() raises without data
    start = time.monotonic()
    _run_with_progress(lambda advance: store.build(out, cfg, train=given[0], dev=given[1], progress=advance),
                       total=None, quiet=False, label="preprocess", unit="pairs")
    seconds = time.monotonic() - start
    splits = store.open_store(out).manifest["splits"]
    pairs = sum(s["pairs"] for s in splits.values())
    stderr_console().print(f"{splits['train']['pairs']:,} training and {splits['dev']['pairs']:,} dev pairs in "
                           f"{seconds:.1f} s ({pairs / max(seconds, 1e-9):,.0f} pairs/s); store in {out}")


# --- translate ---------------------------------------------------------------------------------
def _translate_progress(total: int | None, quiet: bool, label: str = "translate", unit: str = "sentences"):
    """A rich progress bar on stderr (sentences/s), or None when quiet or stderr is no terminal."""
    console = stderr_console()
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

    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn() if total else
               TextColumn(f"{{task.completed}} {unit}"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
    if total:
        columns.append(TimeRemainingColumn())
    # redirect_stdout=False: rich would otherwise route our stdout (the data) into the stderr console
    return Progress(*columns, console=console, transient=False, redirect_stdout=False, redirect_stderr=False)


def _run_with_progress(run, *, total: int | None, quiet: bool, label: str = "translate", unit: str = "sentences"):
    """Call ``run(progress_callback)`` under a progress bar (or none); returns what ``run`` returns."""
    import time

    bar = _translate_progress(total, quiet, label, unit)
    if bar is None:
        return run(None)
    start = time.monotonic()
    with bar:
        task = bar.add_task("translate", total=total, rate="")

        def advance(n: int) -> None:
            done = bar.tasks[0].completed + n
            rate = done / max(time.monotonic() - start, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:,.1f} {'sent' if unit == 'sentences' else unit}/s")

        return run(advance)


@app.command(cls=Command)
@handle_errors
@decode_options()
def translate(
    model: ModelDir,
    sentence: Annotated[str | None, typer.Argument(metavar="SENTENCE", help="One source sentence to translate "
                                                      "(instead of -i or stdin). Example: 'Nov 21st, 2026'")] = None,
    input: Annotated[Path | None, typer.Option("--input", "-i", metavar="FILE", help="Source file, one sentence "
                                                  "per line, plain or .gz; - or none: stdin, translated as it "
                                                  "streams in. Example: -i test.de")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", help="Where to write "
                                                   "translations (- or none: stdout). Example: -o test.hyp")] = None,
    fmt: Annotated[Literal["text", "jsonl"], typer.Option("--format", help="text: one translation per line; jsonl: one JSON object "
                                     "per line with src, hyp, score, norm_score, alignment (Pharaoh links over "
                                     "src_tokens/hyp_tokens) and nbest. Example: --format jsonl")] = "text",
    device: Device = "auto",
    threads: Threads = None,
    quiet: Quiet = False,
    weights: Weights = None,
    decode_options: dict | None = None,
) -> None:
    """Translate sentences: one output line per input line, in input order.

    Example: seq2attn translate -m runs/dates --beam 5 < dates.txt > iso.txt
    (or one sentence: seq2attn translate -m runs/dates 'Nov 21st, 2026')
    """
    from seq2attn.inference.api import load
    from seq2attn.inference.translate import STREAM_CHUNK, format_line, translate_stream

    if sentence is not None and input is not None:
        raise ConfigError(f"give a SENTENCE or --input {input}, not both")
    input, output = (None if is_stdio(p) else p for p in (input, output))
    m = load(model, device=device, threads=threads, weights=weights)
    decode = m.decode_config(**decode_options or {})
    if decode.nbest > 1 and fmt != "jsonl":
        raise ConfigError(f"--nbest {decode.nbest} needs --format jsonl (text output has one line per input line)")
    with_links = fmt == "jsonl"  # text output needs no attention (CTranslate2 is faster without)
    # no bar when the translations go to the terminal too: it would tear them apart
    no_bar = quiet or (output is None and sys.stdout.isatty())
    if input is not None or sentence is not None:
        lines = [sentence] if sentence is not None else read_input(input)
        out = _run_with_progress(lambda p: m.translate(lines, decode=decode, progress=p, attention=with_links),
                                 total=len(lines), quiet=no_bar)
        write_output(output, [format_line(t, fmt=fmt, nbest=decode.nbest > 1) for t in out])
        too_long = sum(t.too_long for t in out)
    else:
        interactive = sys.stdin.isatty()
        if interactive and not quiet:
            stderr_console().print("translating each line as you enter it; end with Ctrl-D")

        def run(p):
            return translate_stream(lambda lines: m.translate(lines, decode=decode, progress=p, attention=with_links),
                                    sys.stdin.buffer, output, fmt=fmt, nbest=decode.nbest > 1,
                                    chunk_lines=1 if interactive else STREAM_CHUNK)

        too_long = _run_with_progress(run, total=None, quiet=no_bar or interactive)
    if not quiet:
        warn_too_long(too_long, m.position_limit)


# --- score, evaluate, align: in cli_eval.py; average: in cli_model.py ---------------------------
for command in (cli_eval.score, cli_eval.evaluate, cli_eval.align, cli_model.average, cli_model.tune_alpha):
    app.command(cls=Command)(command)
app.command(cls=Command)(cli_serve.serve)  # the server: seq2attn/serve (the `serve` extra), its command in cli/serve.py


# --- corpora -----------------------------------------------------------------------------------
@corpora_app.command("list", cls=Command)
@handle_errors
def corpora_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per corpus (name, languages, sizes, "
                                          "source, description) instead of the table. Example: --json")] = False,
) -> None:
    """Name, languages, sizes and origin of every corpus, on stdout. Example: seq2attn corpora list"""
    from rich.console import Console
    from rich.table import Table

    from seq2attn.text.corpora import CORPORA

    if as_json:
        for info in CORPORA.values():
            typer.echo(json.dumps({"name": info.name, "languages": list(info.languages), "sizes": info.sizes,
                                   "source": info.source, "description": info.description}))
        return
    table = Table("name", "languages", "train / dev / test", "source", "description")
    for info in CORPORA.values():
        sizes = " / ".join(f"{info.sizes.get(k, 0):,}" for k in ("train", "dev", "test"))
        table.add_row(info.name, ", ".join(info.languages), sizes, info.source, info.description)
    Console(highlight=False).print(table)


@corpora_app.command("prepare", cls=Command)
@handle_errors
def corpora_prepare(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Corpus name from `seq2attn corpora list`. "
                                        "Example: multi30k")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Directory for train/dev/test "
                                      ".src/.tgt files. Example: --out data/de-en")],
    src_lang: SrcLang = None,
    tgt_lang: TgtLang = None,
    data_dir: DataDir = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of generated corpora. Example: --seed 1")] = 1,
    old_src: OldSrc = None,
    old_tgt: OldTgt = None,
    force: Annotated[bool, typer.Option(help="Replace files in --out that an earlier prepare did not write "
                                        "(your own train.src, ...). Example: --force")] = False,
) -> None:
    """Write a corpus as plain-text files. Example: seq2attn corpora prepare dates --out data/dates"""
    from seq2attn.text.corpora import load_corpus, write_splits

    src, tgt = languages(src_lang, tgt_lang, old_src, old_tgt)
    splits = load_corpus(name, src_lang=src, tgt_lang=tgt, data_dir=data_dir, seed=seed)
    for path in write_splits(splits, out, force=force):
        typer.echo(str(path))


# --- export ------------------------------------------------------------------------------------
@app.command(cls=Command)
@handle_errors
def export(
    model: ModelDir,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="New directory for the exported model. "
                                      "Example: --out runs/de-en-ct2")],
    to: Annotated[Literal["ctranslate2"], typer.Option("--to", help="Target runtime: ctranslate2 (Transformer "
                                                       "models). Example: --to ctranslate2")] = "ctranslate2",
    quantization: Annotated[Literal["int8", "int8_float32", "bfloat16", "float32"] | None, typer.Option(
        help="Weight type (default: float32). Example: --quantization int8")] = None,
) -> None:
    """Export a Transformer for a fast runtime; translate, align and info then take the new directory.

    Example: seq2attn export -m runs/de-en --to ctranslate2 --quantization int8 --out runs/de-en-ct2
    """
    from seq2attn.inference.export import TARGETS, export_ctranslate2

    if to not in TARGETS:
        raise ConfigError(f"--to {to!r}; choose one of: {', '.join(TARGETS)}")
    export_ctranslate2(model, out, quantization=quantization)
    stderr_console().print(f"exported {model} to {out} ({to}, {quantization or 'float32'} weights); "
                           f"try: seq2attn translate -m {out}")


# --- info and config ---------------------------------------------------------------------------
def _versions() -> list[tuple[str, str]]:
    """(name, version) of Python, seq2attn and the libraries that decide its results."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from seq2attn.version import __version__

    out = [("python", platform.python_version()), ("seq2attn", __version__)]
    for name in ("torch", "tokenizers", "sacrebleu", "ctranslate2"):
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            out.append((name, "not installed"))
    return out


@app.command(cls=Command)
@handle_errors
def info(
    model: Annotated[Path | None, typer.Option("--model", "-m", metavar="DIR", help="Model directory to describe "
                                                  "(omit for the installation). Example: -m runs/dates")] = None,
) -> None:
    """Versions and devices, or what a model directory holds and its config as YAML, on stdout.
    Example: seq2attn info -m runs/dates"""
    import torch

    if model is None:
        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        rows = [*_versions(), ("cpu threads", str(torch.get_num_threads())), ("cuda", cuda)]
        typer.echo("".join(f"{name:<12} {value}\n" for name, value in rows), nl=False)
        return
    import yaml

    from seq2attn.config import to_dict
    from seq2attn.inference.ct2 import describe, is_export
    from seq2attn.modeldir.checkpoint import load, load_config, read_manifest
    from seq2attn.nn.models import count_parameters

    if is_export(model):  # the description as YAML comments: the whole of stdout is a config file
        lines, cfg = [describe(model)], load_config(model)
    else:
        loaded = load(model, device="cpu")
        manifest = read_manifest(model)
        lines = [(f"{model}: {count_parameters(loaded.model):,} parameters; vocab src "
                  f"{loaded.codec.vocab_size('src')} / tgt {loaded.codec.vocab_size('tgt')}")]
        for which in ("best", "last", "averaged"):
            if which in manifest["weights"]:
                used = " (used by default)" if which == loaded.which else ""
                lines.append(f"  {which}: {cli_model.describe(manifest['weights'][which])}{used}")
        cfg = loaded.cfg
    typer.echo("".join(f"# {line}\n" for line in lines) + "\n" +
               yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True), nl=False)


@app.command("config", cls=Command)
@handle_errors
def config_command(
    defaults: Annotated[bool, typer.Option("--defaults", help="Every option with its default and help. "
                                           "Example: --defaults > my.yaml")] = False,
    model: Annotated[Path | None, typer.Option("--model", "-m", metavar="DIR", help="A model directory: its "
                                                  "config, resolved. Example: -m runs/dates")] = None,
) -> None:
    """Print a config as commented YAML that --config reads back: every option with its help.

    Example: seq2attn config --defaults > my.yaml (edit it), then seq2attn train -c my.yaml ...
    """
    from seq2attn.cli.configdoc import commented_yaml
    from seq2attn.config import Config

    if defaults == (model is not None):
        raise usage_error("give --defaults or --model DIR (one of them)")
    if model is not None:
        from seq2attn.modeldir.checkpoint import load_config

        cfg, what = load_config(model), f"The config of {model}"
    else:
        cfg, what = Config(), "Every option with its default"
    header = (f"{what} (seq2attn config); null means none or automatic, as the help says.\n"
              "--config FILE sets every key the file holds, over a corpus preset: keep the lines you change.")
    typer.echo(commented_yaml(cfg, header=header), nl=False)
