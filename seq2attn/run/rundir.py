"""A run's hold on its model directory: the lock, the checks before anything is written, and the
clean-up of what an unfinished run of ours left. The format itself is :mod:`seq2attn.modeldir`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path

from seq2attn.errors import CheckpointError, brief
from seq2attn.fsutil import atomic_write_text
from seq2attn.modeldir.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    OWN_FILES,
    _manifest_text,
    check_contained,
    read_manifest,
)
from seq2attn.modeldir.store import STORE_DIR
from seq2attn.version import __version__

LOCK = ".seq2attn.lock"
_HELD: set[str] = set()  # the directories this process holds locked
PICTURES = ("curve.png",)  # drawn atomically, so a kill -9 may leave a temporary file


class RunLock:
    """An exclusive ``fcntl`` lock on a model directory, held for the whole training run (and by
    ``average`` and ``tune-alpha`` while they write). The lock file is never opened through a
    symbolic link (``O_NOFOLLOW``)."""

    def __init__(self, directory: Path, *, reentrant: bool = False):
        """``reentrant``: when this process holds the lock already (``train.tune_alpha`` at the end
        of a run), take nothing and release nothing."""
        path = directory / LOCK
        self.key, self.holds = os.path.realpath(directory), False
        if reentrant and self.key in _HELD:
            self.fd = None
            return
        try:
            self.fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
        except OSError as e:
            raise CheckpointError(f"{path}: cannot open the lock file ({brief(e)}; a symbolic link?)") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise CheckpointError(f"{directory}: another seq2attn train, average or tune-alpha is using this "
                                  "directory; wait for it or choose another --out") from None
        except OSError as e:
            self.release()
            raise CheckpointError(f"{path}: cannot lock ({brief(e)})") from None
        _HELD.add(self.key)
        self.holds = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the lock
            self.fd = None
        if self.holds:
            _HELD.discard(self.key)
            self.holds = False


def check_out_dir(directory: Path, *, resume: bool) -> bool:
    """Refuse, before anything is read or written, a directory a run must not write into; True
    when it holds an earlier run's setup without any checkpoint (a fresh run may start over)."""
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"--out {directory}: exists and is not a directory")
    if directory.is_dir():
        check_contained(directory)
    names = set(os.listdir(directory)) - {LOCK} if directory.is_dir() else set()
    if resume and MANIFEST not in names:
        raise CheckpointError(f"--resume: {directory} holds no model to resume")
    if not names:
        return False
    if MANIFEST not in names:
        raise CheckpointError(f"--out {directory}: not empty and not a seq2attn model directory; "
                              "choose a new or empty directory (nothing was written)")
    manifest = read_manifest(directory)
    if resume and "trainer" not in manifest and manifest["weights"]:
        raise CheckpointError(f"--resume: {directory} was written by an earlier seq2attn whose checkpoints do not "
                              "record the training state; its weights still translate, but training cannot resume")
    if resume and "trainer" not in manifest:
        raise CheckpointError(f"--resume: {directory} holds no checkpoint yet; train again without --resume")
    if not resume and manifest["weights"]:
        raise CheckpointError(f"--out {directory}: already holds a model; pass --resume or choose another directory")
    return not resume


def claim(directory: Path, *, resume: bool) -> RunLock:
    """Create (if needed) and lock ``directory`` for one run, check it again under the lock, and
    remove what an unfinished earlier run of ours left: temporary files, and for a fresh run the
    files of a run that saved no checkpoint. Files that are not ours are never touched. A fresh run
    then writes a manifest without weights at once: it marks the directory as ours."""
    check_out_dir(directory, resume=resume)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = RunLock(directory)
    except OSError as e:
        raise CheckpointError(f"--out {directory}: cannot create the model directory ({brief(e)})") from None
    try:
        start_over = check_out_dir(directory, resume=resume)
        _remove_own(directory, everything=start_over)
        if not resume:
            manifest = {"format": FORMAT, "version": FORMAT_VERSION, "seq2attn": __version__, "weights": {}}
            atomic_write_text(directory / MANIFEST, _manifest_text(manifest))
    except BaseException:
        lock.release()
        raise
    return lock


def _remove_own(directory: Path, *, everything: bool) -> None:
    """Temporary files of our names (and of the pictures a run draws); with ``everything``, our
    files and the corpus store too."""
    for name in (*OWN_FILES, *PICTURES):
        for tmp in directory.glob(f".{name}.*.tmp"):
            tmp.unlink()
    for name in OWN_FILES:
        if everything and name != MANIFEST:
            (directory / name).unlink(missing_ok=True)
    if everything:
        if (directory / STORE_DIR).is_dir() and not (directory / STORE_DIR).is_symlink():
            shutil.rmtree(directory / STORE_DIR)
        (directory / MANIFEST).unlink(missing_ok=True)  # last: until here the directory is marked ours


def remove_run(directory: Path) -> None:
    """Undo a fresh run that failed before its first checkpoint in a directory it created."""
    with contextlib.suppress(OSError):
        _remove_own(directory, everything=True)
        (directory / LOCK).unlink(missing_ok=True)
        directory.rmdir()  # only when nothing else is left
