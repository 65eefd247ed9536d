"""``metrics.jsonl``, the run's log: one JSON row per log line, validation, average or alpha
tuning. Its one home: append a row, drop the rows after a step (a resumed run logs them again), read."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from seq2attn.fsutil import atomic_write_text, json_line

METRICS = "metrics.jsonl"


def append_metrics(directory: Path, row: dict[str, Any]) -> None:
    """Append one row; never through a symbolic link (``O_NOFOLLOW``), and always valid JSON (a
    NaN or infinite number is written as null)."""
    fd = os.open(directory / METRICS, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(json_line(row) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The JSON rows of ``metrics.jsonl``; a line cut short by a crash is skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def drop_rows_after(path: Path, step: int) -> None:
    """Remove log rows past ``step`` from a ``metrics.jsonl``: a run resumed from a checkpoint at
    ``step`` logs those steps again."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and _row_step(line) <= step]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))


def _row_step(line: str) -> float:
    try:
        return float(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return math.inf  # a torn or foreign line: drop it
