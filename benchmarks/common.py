"""What both toolkits' measurements share: child processes with their peak RSS, the machine, the
data preparation, the matmul peak, BLEU and throughput statistics.

Peak RSS method: every measured step (one training, one decoding) is its own process, started
by a small launcher (``_launch.py``) that forks it, reaps it with ``os.wait4(pid)`` and reports
that process's ``ru_maxrss`` (KiB on Linux). So each figure belongs to one process: not to every
child the harness ever reaped (``getrusage(RUSAGE_CHILDREN)``), and not floored at the harness's
own size (a forked child's ``ru_maxrss`` starts at its parent's resident size).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3


@dataclass
class Child:
    """One finished child process."""

    returncode: int
    wall_s: float
    peak_rss_bytes: int
    log: Path  # its stdout and stderr, interleaved


LAUNCHER = Path(__file__).resolve().parent / "_launch.py"


def run_child(cmd: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
              stop_after: Callable[[], bool] | None = None) -> Child:
    """Run ``cmd`` (through the launcher, see module docstring) with output to ``log``;
    ``stop_after`` is polled every 0.5 s and, once it returns True, the command gets SIGINT
    (JoeyNMT saves a checkpoint on it) and is waited for."""
    log.parent.mkdir(parents=True, exist_ok=True)
    result = log.with_name(log.name + ".rusage")
    result.unlink(missing_ok=True)
    start = time.monotonic()
    with open(log, "wb") as out:
        # its own session: a Ctrl-C at the terminal reaches the harness only, which then ends
        # the whole group below (launcher and command) instead of leaving an orphan
        proc = subprocess.Popen([sys.executable, "-S", str(LAUNCHER), str(result), *cmd], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                start_new_session=True)
        try:
            _wait(proc, stop_after)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    wall = time.monotonic() - start
    try:
        maxrss_kib, status = map(int, result.read_text().split())
    except (OSError, ValueError):
        return Child(proc.returncode or 1, wall, 0, log)  # the launcher itself failed
    return Child(os.waitstatus_to_exitcode(status), wall, maxrss_kib * 1024, log)


def _wait(proc: subprocess.Popen, stop_after: Callable[[], bool] | None) -> None:
    if stop_after is None:
        proc.wait()
        return
    interrupted = False
    while proc.poll() is None:
        if not interrupted and stop_after():
            proc.send_signal(signal.SIGINT)  # the launcher forwards it to the command
            interrupted = True
        time.sleep(0.5)


def check(child: Child, what: str) -> None:
    if child.returncode != 0:
        tail = child.log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{what} failed (exit {child.returncode}); last lines of {child.log}:\n"
                           + "\n".join(tail))


def machine_info(threads: int) -> dict:
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


# --- data --------------------------------------------------------------------------------------
SPLITS = {"train": "train", "dev": "val", "test": "test_2016_flickr"}  # ours -> Multi30k file names


def find_multi30k(data_dir: Path) -> Path:
    """The directory holding Multi30k's ``train.de.gz`` etc.: DATA_DIR/multi30k or DATA_DIR itself."""
    for d in (data_dir / "multi30k", data_dir):
        if (d / "train.de.gz").is_file():
            return d
    raise FileNotFoundError(f"{data_dir}: no multi30k/train.de.gz; pass --data-dir with the Multi30k "
                            "task-1 raw files (train/val/test_2016_flickr .de.gz/.en.gz)")


def split_lines(base: Path, split: str, lang: str, limit: int | None = None) -> list[str]:
    """One Multi30k split of one language from ``base`` (``find_multi30k``'s answer): its first ``limit`` lines, or all."""
    lines = gzip.decompress((base / f"{SPLITS[split]}.{lang}.gz").read_bytes()).decode("utf-8").splitlines()
    return lines[:limit] if limit else lines


def prepare_data(data_dir: Path, out: Path, *, src: str, tgt: str, limits: dict[str, int | None]) -> dict[str, Path]:
    """Plain-text ``{split}.{lang}`` files under ``out`` (the first ``limits[split]`` lines, or all).
    Returns split -> path prefix (``out/train``: add ``.de`` / ``.en``)."""
    root = find_multi30k(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefixes = {}
    for ours, theirs in SPLITS.items():
        for lang in (src, tgt):
            with gzip.open(root / f"{theirs}.{lang}.gz", "rt", encoding="utf-8") as f:
                lines = [line.rstrip("\n") for line in f]
            lines = lines[: limits.get(ours)] if limits.get(ours) else lines
            (out / f"{ours}.{lang}").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
        prefixes[ours] = out / ours
    return prefixes


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def bleu(hyp: Path, ref: Path) -> float:
    """Corpus BLEU of detokenized text, sacrebleu's defaults (13a tokenization, case-sensitive)."""
    import sacrebleu

    hyps, refs = read_lines(hyp), read_lines(ref)
    if len(hyps) != len(refs):
        raise RuntimeError(f"{hyp}: {len(hyps)} lines but {ref} has {len(refs)}")
    return round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)


def output_words(path: Path) -> int:
    """Generated tokens, counted toolkit-neutrally as whitespace-separated words of the output."""
    return sum(len(line.split()) for line in read_lines(path))


def steady_rate(rates: list[float], *, skip: int) -> float | None:
    """Median of the per-window rates after the first ``skip`` windows (warm-up): robust to a
    window that a noisy neighbour slowed down."""
    rest = rates[skip:] if len(rates) > skip else rates[-1:]
    return round(statistics.median(rest), 1) if rest else None


# --- matmul peak -------------------------------------------------------------------------------
def matmul_peak(*, threads: int, n: int = 1024, repeats: int = 10,
                dtypes: tuple[str, ...] = ("fp32", "bf16")) -> dict[str, float]:
    """GFLOP/s of an n x n x n matmul (best of ``repeats``) in each of ``dtypes`` with ``threads``
    torch threads: the roofline that training throughput is reported against. Runs in this process
    (which measures nothing else) to save a start-up; restores the thread count afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    out = {}
    try:
        for name in dtypes:
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[name]
            a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
            for _ in range(2):  # warm-up: thread pool, packing buffers
                a @ b
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                a @ b
                best = min(best, time.perf_counter() - t)
            out[name] = round(2 * n**3 / best / 1e9, 1)
    finally:
        torch.set_num_threads(before)
    return out


def thread_env(threads: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a measured child: every BLAS/OpenMP pool limited to ``threads``."""
    env = dict(base if base is not None else os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    return env


# glibc malloc keeping freed memory (seq2attn's training default, seq2attn/runtime.py): the same
# two settings given to JoeyNMT through glibc's environment variables, so that both toolkits run
# with the same allocator behaviour ("kept") or both with glibc's defaults ("system")
KEPT_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def malloc_env(kind: str, *, side: str) -> dict[str, str]:
    """Extra environment for a training child of ``side`` ("seq2attn" or "joeynmt")."""
    if kind not in ("kept", "system"):
        raise ValueError(f"malloc {kind!r}: choose kept or system")
    if side == "seq2attn":  # it calls mallopt itself unless told not to
        return {"SEQ2ATTN_MALLOC": "system"} if kind == "system" else {}
    return dict(KEPT_MALLOC_ENV) if kind == "kept" else {}
