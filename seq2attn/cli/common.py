"""What every seq2attn command shares: one-line errors, the options declared once, reading
input and writing output (atomically)."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from pathlib import Path
from typing import Annotated, Literal

import typer

# typer vendors Click as typer._click since 0.27 and its parameters' type_descriptor is 0.29's, hence
# typer>=0.29 in pyproject.toml, the lowest version `make test-lowest` installs and runs
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer._click.globals import get_current_context
from typer.core import TyperCommand, TyperGroup

from seq2attn.config import DecodeConfig
from seq2attn.errors import DataError, Seq2AttnError, brief


def stderr_console():
    from seq2attn.cli.progress import stderr

    return stderr


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr, then exit ``code``."""
    typer.echo(f"seq2attn: error: {message}", err=True)
    return typer.Exit(code)


def handle_errors(fn):
    """Turn library errors and failed reads or writes (OSError: a full disk, a missing file, a
    closed pipe) into one line and exit 1; never a traceback for bad input. Other exceptions are
    bugs and keep their traceback; ``SEQ2ATTN_DEBUG=1`` shows the traceback of OSErrors too."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
            try:
                sys.stdout.flush()  # a full disk under `> file` shows here, not after the exit code
            except OSError as e:
                e.filename = e.filename or "<stdout>"
                raise
            return result
        except Seq2AttnError as e:
            raise fail(str(e)) from None
        except BrokenPipeError:  # e.g. `seq2attn translate ... | head`
            _drop_stdout()
            raise typer.Exit(0) from None
        except OSError as e:
            if os.environ.get("SEQ2ATTN_DEBUG") == "1":
                raise
            _drop_stdout()
            # an OSError without a file name is not stdout's unless write_stdout said so (it names it)
            raise fail(f"{e.filename}: {brief(e)}" if e.filename is not None else brief(e)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that Python's own flush at exit cannot fail a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's stdout)
        pass


# --- help and usage errors in the Unix way -----------------------------------------------------
def _no_type(ctx=None) -> None:
    return None


def _plain_metavars(params: list) -> list:
    """Flags take no value, so they show none (not ``<bool>``); choices show as ``[a|b|c]``; an
    argument's metavar says what it is, so no Python type is shown beside it."""
    for p in params:
        if p.param_type_name == "argument":
            p.display_type_rich = _no_type  # typer would print ``<str>`` or ``<list[Path]>``
        if p.metavar is not None:
            continue
        if getattr(p, "is_flag", False) or getattr(p, "count", False):
            p.metavar = ""
        elif p.type_descriptor.is_choice:
            p.metavar = "[" + "|".join(str(getattr(c, "value", c)) for c in p.type_descriptor.choices) + "]"
    return params


def usage_line(e: UsageError) -> str:
    """A usage error as one line with where to read more: ``seq2attn: error: ... (see: ... --help)``."""
    message = " ".join(e.format_message().split()).rstrip(".")
    where = e.ctx.command_path if e.ctx is not None else "seq2attn"
    return f"seq2attn: error: {message} (see: {where} --help)"


class Command(TyperCommand):
    def get_params(self, ctx):
        return _plain_metavars(super().get_params(ctx))


class Group(TyperGroup):
    """The app's group: plain metavars, and every usage error as one line on stderr with exit 2
    (runtime errors exit 1 through :func:`handle_errors`)."""

    def get_params(self, ctx):
        return _plain_metavars(super().get_params(ctx))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as e:
            e.show()
            code = e.exit_code
        except UsageError as e:
            typer.echo(usage_line(e), err=True)
            code = e.exit_code
        except ClickException as e:
            typer.echo(f"seq2attn: error: {' '.join(e.format_message().split())}", err=True)
            code = e.exit_code
        except typer.Abort:
            typer.echo("seq2attn: error: aborted", err=True)
            code = 1
        code = code if isinstance(code, int) else 0
        # a torchrun worker leaves without interpreter finalization (see exit_worker); the module
        # is only loaded, with torch, by commands that may join a process group
        workers = sys.modules.get("seq2attn.run.distributed")
        if workers is not None:
            workers.exit_worker(code)
        sys.exit(code)


# --- decoding options: derived from seq2attn.config.DecodeConfig -------------------------------
def _decode_parameter(f) -> inspect.Parameter:
    """One DecodeConfig field as a Typer option: ``--beam-size`` spelled by its public name, the
    field's help with the default the model's own decode.* (so None: keep the model's)."""
    meta, hint = f.metadata, typing.get_type_hints(DecodeConfig)[f.name]
    name = meta.get("name") or f.name
    flags = [f"--{name.replace('_', '-')}", *([meta["short"]] if meta.get("short") else [])]
    help = f"{meta['help']} (default: the model's decode.{f.name}). Example: {meta['example']}"
    if hint is bool:  # a switch: on, or the model's default
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False,
                                 annotation=Annotated[bool, typer.Option(*flags, help=help)])
    base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = base[0] if typing.get_origin(hint) is not typing.Literal else hint
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        kind | None, typer.Option(*flags, metavar=meta["metavar"] or None, help=help)])


def decode_options(*, exclude: tuple[str, ...] = ()):
    """Add every decoding option of :class:`~seq2attn.config.DecodeConfig` (but ``exclude``, field
    names) to a command; the command receives them as ``decode_options``, a dict of the public
    names given (for ``Model.translate(**decode_options)`` / ``Model.decode_config``)."""
    import dataclasses

    fields = [f for f in dataclasses.fields(DecodeConfig) if f.name not in exclude]

    def wrap(fn):
        signature = inspect.signature(fn, eval_str=True)  # the Annotated options, not their strings
        params = [p for p in signature.parameters.values() if p.name != "decode_options"]
        added = [_decode_parameter(f) for f in fields]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            given = {p.name: kwargs.pop(p.name) for p in added}
            chosen = {k: v for k, v in given.items() if v is not None and v is not False}
            return fn(*args, decode_options=chosen, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=params + added)
        return wrapper

    return wrap


# --- options declared once ---------------------------------------------------------------------
_MODEL = "seq2attn.model"  # the click context's meta key: the -m directory, for write_output's check


def _remember_model(ctx: typer.Context, value: Path | None) -> Path | None:
    if value is not None:
        ctx.meta[_MODEL] = value
    return value


ModelDir = Annotated[Path, typer.Option("--model", "-m", metavar="DIR", callback=_remember_model,
                                        help="Model directory written by `seq2attn train`. Example: -m runs/dates")]
Device = Annotated[str, typer.Option(metavar="[auto|cpu|cuda|cuda:N]", help="cuda when available with auto. "
                                     "Example: --device cpu")]
Sets = Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override one config value, "
                                                   "repeatable. Example: --set train.lr=3e-4 --set model.attention=dot")]
DataDir = Annotated[Path | None, typer.Option(metavar="DIR", help="Local copy of downloadable corpora (default: "
                                                 "$SEQ2ATTN_DATA, else download). Example: --data-dir ../shared/corpora")]
Weights = Annotated[Literal["best", "last", "averaged"] | None, typer.Option(
    help="Checkpoint to load (default: the better of best and averaged by dev BLEU). Example: --weights last")]
Threads = Annotated[int | None, typer.Option(metavar="N", help="CPU threads for decoding. Example: --threads 4")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or messages on stderr. Example: -q")]
SrcLang = Annotated[str | None, typer.Option("--src-lang", metavar="LANG", help="Source language of a "
                                             "multilingual corpus. Example: --src-lang de")]
TgtLang = Annotated[str | None, typer.Option("--tgt-lang", metavar="LANG", help="Target language. "
                                             "Example: --tgt-lang en")]
# the old spelling of --src-lang/--tgt-lang: --src/--tgt name files elsewhere (align, evaluate)
OldSrc = Annotated[str | None, typer.Option("--src", hidden=True)]
OldTgt = Annotated[str | None, typer.Option("--tgt", hidden=True)]

STDIO = "-"  # a file name that means stdin (reading) or stdout (writing)


def languages(src_lang: str | None, tgt_lang: str | None, old_src: str | None, old_tgt: str | None):
    """The (source, target) languages from --src-lang/--tgt-lang or their deprecated spelling."""
    pairs = (("--src-lang", src_lang, "--src", old_src), ("--tgt-lang", tgt_lang, "--tgt", old_tgt))
    out = []
    for new, value, old, old_value in pairs:
        if old_value is not None:
            if value is not None and value != old_value:
                raise usage_error(f"{new} {value} and {old} {old_value} disagree; give {new} only")
            typer.echo(f"seq2attn: note: {old} is deprecated here, use {new} ({old} names a file in align "
                       "and evaluate)", err=True)
        out.append(value if value is not None else old_value)
    return tuple(out)


def usage_error(message: str) -> UsageError:
    """A usage error found inside a command: one line and exit 2, like Click's own."""
    return UsageError(message, ctx=get_current_context(silent=True))


def is_stdio(path: Path | None) -> bool:
    return path is not None and str(path) == STDIO


def read_input(path: Path) -> list[str]:
    """Lines of ``path`` (plain or .gz), or of stdin when ``path`` is ``-``."""
    from seq2attn.text.textfiles import read_lines

    if not is_stdio(path):
        return read_lines(path)
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"<stdin> line {line}: not valid UTF-8") from None
    return text.removeprefix("\ufeff").splitlines()  # a BOM is no part of the first sentence


def write_output(path: Path | None, lines: list[str]) -> None:
    """Write ``lines`` to ``path`` atomically, or to stdout when ``path`` is None or ``-``."""
    text = "".join(line + "\n" for line in lines)
    if path is None or is_stdio(path):
        from seq2attn.fsutil import write_stdout

        write_stdout(text)
        return
    from seq2attn.fsutil import atomic_write_text

    check_not_model_file(path)
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e.strerror})") from None



def check_not_model_file(path: Path) -> None:
    """Refuse an output file that is a file of the model the command uses (``-o M/model.safetensors``
    would replace its weights with text): a file a model directory's format or a run names, anything
    in its subdirectories, and any file of a CTranslate2 export. A new file of another name beside
    them (``-o M/test.hyp``) is fine."""
    ctx = get_current_context(silent=True)
    model = ctx.meta.get(_MODEL) if ctx is not None else None
    if model is None:
        return
    from seq2attn.inference.export import EXPORT_MARKER
    from seq2attn.modeldir.checkpoint import OWN_FILES
    from seq2attn.run.curve import CURVE
    from seq2attn.run.rundir import LOCK

    home, target = os.path.realpath(model), os.path.realpath(path)
    if not target.startswith(home + os.sep):
        return
    name = os.path.relpath(target, home)
    if os.sep in name or name in (*OWN_FILES, LOCK, CURVE) or os.path.exists(os.path.join(home, EXPORT_MARKER)):
        raise DataError(f"{path}: a file of the model {model}; write the output elsewhere (nothing was written)")


def warn_too_long(n: int, limit: int | None) -> None:
    """One warning for the inputs cut at the input limit (``limit``: the model's position limit)."""
    from seq2attn.nn.models import RNN_INPUT_LIMIT

    if n:
        default = f"the model's {limit} positions" if limit else f"{RNN_INPUT_LIMIT:,} for a GRU"
        stderr_console().print(f"warning: {n} source lines were longer than the input limit ({default}, or "
                               "--max-input-tokens) and were cut there; their translations miss the rest")
