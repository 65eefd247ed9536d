"""Writing files so that a crash never leaves a half-written one, and hashing them.

Every file seq2attn writes (model directories, tokenizers, corpora, translations, pictures) goes
through :func:`atomic_write`: the content goes to a temporary file in the same directory, is
flushed to disk, gets the usual permissions (0666 minus the umask, like ``open()``) and is renamed
onto the final name. A reader therefore sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from seq2attn.errors import DataError

# os.umask can only be read by setting it; do it once, at import, before any thread starts
_UMASK = os.umask(0)
os.umask(_UMASK)


def staged_write(path: Path, write: Callable[[str], None]) -> str:
    """Call ``write(tmp_path)`` for a temporary file beside ``path`` and flush it to disk; return
    the temporary path (rename it with :func:`commit`). On any failure the file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # fsync the data, whoever wrote it (torch, safetensors, matplotlib)
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def commit(renames: Iterable[tuple[str, Path]]) -> None:
    """Rename staged files onto their final names, then make the renames durable."""
    dirs = set()
    for tmp, path in renames:
        os.replace(tmp, path)
        dirs.add(path.parent)
    for d in dirs:
        fsync_dir(d)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems do not open directories; the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, then rename the finished file onto ``path`` (same directory)."""
    path = Path(path)
    commit([(staged_write(path, write), path)])


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_lines(path, [text], end="")


def atomic_write_lines(path: str | Path, lines: Iterable[str], *, end: str = "\n") -> None:
    """Write each line followed by ``end``, as UTF-8 with "\\n" kept as is on every platform."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.writelines(line + end for line in lines)

    atomic_write(path, write)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_sha256(path: str | Path) -> str:
    """:func:`sha256` of a user's input file; an unreadable one is a DataError naming it."""
    try:
        return sha256(path)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def regular_sha256(path: str | Path) -> str:
    """The sha256 of a regular file, never through a symbolic link (OSError ELOOP) and never
    waiting on a FIFO or a device (OSError EINVAL)."""
    h = hashlib.sha256()
    with _open_regular(path, follow=False) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _open_regular(path: str | Path, *, follow: bool):
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it changes nothing for regular files
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    f = os.fdopen(os.open(path, flags), "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return f


def read_limited(path: str | Path, limit: int, *, follow: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError otherwise (a directory,
    /dev/zero, a FIFO or a huge file is refused before it is read; with ``follow=False`` a symbolic
    link too)."""
    with _open_regular(path, follow=follow) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes")
    return data


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout in full, or raise OSError. Python's buffered stdout can drop the
    rest of a write that the system cut short (a full disk, a file-size limit) without an error, so
    a real file descriptor is written directly, until every byte is out."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        fd = None
    if fd is None:  # an in-memory stdout (tests, notebooks)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        sys.stdout.flush()
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
    except OSError as e:
        e.filename = e.filename or "<stdout>"  # the one-line error names it
        raise


def json_line(row: Any, **options: Any) -> str:
    """``row`` as one line of strict JSON: NaN and infinities (which ``json.dumps`` would write as
    ``NaN``, not JSON) become null."""
    try:
        return json.dumps(row, allow_nan=False, **options)
    except ValueError:
        return json.dumps(_finite(row), allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value

