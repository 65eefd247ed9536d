"""Line-aligned text: the :class:`Parallel` pairs every corpus comes as, and the readers and
writers of user files (plain or gzipped UTF-8, one sentence per line, or ``source<TAB>target``).

Every error names the file and, where there is one, the line.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from seq2attn.errors import DataError
from seq2attn.fsutil import atomic_write_lines, atomic_write_text, read_limited, regular_sha256

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Parallel:
    """Line-aligned sentence pairs: ``tgt[i]`` is the translation of ``src[i]``."""

    src: list[str]
    tgt: list[str]
    # Gold word alignment of each pair (Pharaoh "i-j", 0-indexed source-target word pairs) for
    # corpora that know it by construction; None for everything else.
    links: list[str] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if len(self.src) != len(self.tgt):
            raise DataError(
                f"parallel data has {len(self.src)} source but {len(self.tgt)} target sentences; "
                "they must be aligned one to one"
            )
        if self.links is not None and len(self.links) != len(self.src):
            raise DataError(f"parallel data has {len(self.src)} pairs but {len(self.links)} alignments")

    def cut(self, start: int, end: int) -> Parallel:
        """Pairs ``start:end``, with their gold links when there are any."""
        links = None if self.links is None else self.links[start:end]
        return Parallel(self.src[start:end], self.tgt[start:end], links=links)

    def __len__(self) -> int:
        return len(self.src)


@dataclass(frozen=True)
class Splits:
    train: Parallel
    dev: Parallel
    test: Parallel
    src_lang: str
    tgt_lang: str

# ---------------------------------------------------------------------------------------------
# user files


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a text file")


def _read_bytes(path: Path) -> bytes:
    _check_file(path)
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # BadGzipFile is an OSError: first
        raise DataError(f"{path}: not a valid gzip file ({e}); re-create or unzip it") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (``.gz``: gzipped), without their line ends.

    Empty lines are kept: in a corpus or a file to translate, line ``i`` must stay line ``i``.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path} line {line}: not valid UTF-8; convert the file, e.g. iconv -t UTF-8"
        ) from None
    # A BOM would otherwise become part of the first sentence.
    text = text.removeprefix("\ufeff")
    # split("\n"), not splitlines(): that also breaks at \x0b, \x1c, U+2028 ... inside a
    # sentence and would misalign parallel files.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    if not lines:
        raise DataError(f"{path}: empty file")
    return [line.removesuffix("\r") for line in lines]


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> Parallel:
    """Two line-aligned files: line ``i`` of ``tgt_path`` translates line ``i`` of ``src_path``."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)} lines; "
            "the files must be line-aligned"
        )
    return Parallel(src, tgt)


def iter_lines(path: str | Path) -> Iterator[str]:
    """The lines of a text file one at a time, as :func:`read_lines` returns them, without ever
    holding the file in memory (corpora of millions of lines)."""
    path = Path(path)
    _check_file(path)
    number = 0
    try:
        with (gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")) as f:
            for number, raw in enumerate(f, start=1):  # binary files split at b"\n" only
                raw = raw.removesuffix(b"\n").removesuffix(b"\r")
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError(f"{path} line {number}: not valid UTF-8; convert the file, "
                                    "e.g. iconv -t UTF-8") from None
                yield line.removeprefix("\ufeff") if number == 1 else line
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file ({e}); re-create or unzip it") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if number == 0:
        raise DataError(f"{path}: empty file")


def iter_parallel(src_path: str | Path, tgt_path: str | Path) -> Iterator[tuple[str, str]]:
    """Pairs of two line-aligned files, streamed; a length mismatch is an error at its end."""
    src, tgt = iter_lines(src_path), iter_lines(tgt_path)
    n = 0
    for n, s in enumerate(src, start=1):
        t = next(tgt, None)
        if t is None:
            n_src, n_tgt = n + sum(1 for _ in src), n - 1
            break
        yield s, t
    else:
        n_src, n_tgt = n, n + sum(1 for _ in tgt)
    if n_src != n_tgt:
        raise DataError(f"{src_path} has {n_src} lines but {tgt_path} has {n_tgt} lines; "
                        "the files must be line-aligned")


def read_tsv(path: str | Path) -> Parallel:
    """One ``source<TAB>target`` pair per line."""
    src: list[str] = []
    tgt: list[str] = []
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(
                f"{path} line {number}: expected source<TAB>target, found {len(fields) - 1} tabs"
            )
        src.append(fields[0])
        tgt.append(fields[1])
    return Parallel(src, tgt)


PREPARED = ".seq2attn-prepared.json"  # {file name: sha256} of the files write_splits wrote


def write_splits(splits: Splits, out_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write ``{train,dev,test}.{src,tgt}`` into ``out_dir``, each file replaced atomically, and
    ``{split}.align`` (Pharaoh links, 0-indexed) for the splits that carry gold alignments. A file
    already there is replaced only when this function wrote it (its sha256 is in ``out_dir``'s
    ``.seq2attn-prepared.json``) or with ``force``: a user's own ``train.src`` is never lost."""
    out = Path(out_dir)
    jobs = [
        (out / f"{split}.{side}", getattr(getattr(splits, split), side))
        for split in SPLITS
        for side in ("src", "tgt")
    ]
    jobs += [(out / f"{split}.align", getattr(splits, split).links) for split in SPLITS
             if getattr(splits, split).links is not None]
    for path, lines in jobs:
        bad = next((i for i, line in enumerate(lines, start=1) if "\n" in line), None)
        if bad is not None:
            raise DataError(
                f"{path.name} sentence {bad}: contains a line break, which would misalign "
                "the files; remove it"
            )
    written = _prepared(out)
    for path, _ in jobs:
        if not force and (path.exists() or path.is_symlink()) and written.get(path.name) != _digest(path):
            raise DataError(f"{path}: exists and was not written by seq2attn; pass --force to replace it, "
                            "or choose another --out (nothing was written)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, lines in jobs:
            atomic_write_lines(path, lines)
            written[path.name] = _digest(path)
        atomic_write_text(out / PREPARED, json.dumps(written, indent=2, sort_keys=True) + "\n")
    except OSError as e:
        raise DataError(f"{out}: cannot write ({e.strerror or e})") from None
    return [path for path, _ in jobs]


def _prepared(out: Path) -> dict[str, str]:
    try:
        record = json.loads(read_limited(out / PREPARED, 1 << 20, follow=False))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _digest(path: Path) -> str | None:
    try:
        return regular_sha256(path)
    except OSError:
        return None
