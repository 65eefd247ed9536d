"""What every seq2attn command shares: one-line errors, the options declared once, reading
input and writing output (atomically)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import DataError, Seq2AttnError, brief


def stderr_console():
    from .progress import stderr

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
            sys.stdout.flush()  # a full disk under `> file` shows here, not after the exit code
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
            where = e.filename if e.filename is not None else "<stdout>"
            raise fail(f"{where}: {brief(e)}") from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that Python's own flush at exit cannot fail a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's stdout)
        pass


# --- options declared once ---------------------------------------------------------------------
ModelDir = Annotated[Path, typer.Option("--model", "-m", help="Model directory written by `seq2attn train`. "
                                        "Example: -m runs/dates")]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto (cuda when available). Example: --device cpu")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override one config value, repeatable. "
                                                   "Example: --set train.lr=3e-4 --set model.attention=dot")]
DataDir = Annotated[Path | None, typer.Option(help="Local copy of downloadable corpora (default: $SEQ2ATTN_DATA, "
                                                 "else download). Example: --data-dir ../shared/corpora")]
Weights = Annotated[str | None, typer.Option(help="Checkpoint to load: best, last or averaged (default: the "
                                                 "better of best and averaged by dev BLEU). Example: --weights last")]
BatchTokens = Annotated[int | None, typer.Option(help="Token budget per decoding batch. Example: --batch-tokens 8000")]


def read_input(path: Path | None) -> list[str]:
    """Lines of ``path`` (plain or .gz), or of stdin when no path is given."""
    from .textfiles import read_lines

    if path is not None:
        return read_lines(path)
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"<stdin> line {line}: not valid UTF-8") from None
    return text.removeprefix("\ufeff").splitlines()  # a BOM is no part of the first sentence


def write_output(path: Path | None, lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    if path is None:
        from .fsutil import write_stdout

        write_stdout(text)
        return
    from .fsutil import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e.strerror})") from None

