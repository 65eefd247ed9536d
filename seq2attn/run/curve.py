"""The learning curve of a model directory: ``curve.png``, dev BLEU and dev loss against steps
and against wall-clock minutes (the records' ``minutes``: validations included), drawn from
``metrics.jsonl`` (the training loss beside the dev loss; the averaged checkpoint as a star)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seq2attn.run.metricslog import read_metrics

CURVE = "curve.png"


def _series(rows: list[dict[str, Any]], kind: str, x: str, y: str) -> tuple[list[float], list[float]]:
    points = [(r[x], r[y]) for r in rows if r.get("kind") == kind and r.get(x) is not None and r.get(y) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def draw_curve(directory: Path) -> Path:
    """Redraw ``directory/curve.png`` from its metrics (atomically: a reader never sees half a file)."""
    from matplotlib.figure import Figure  # late: matplotlib takes a second to import

    from seq2attn.fsutil import atomic_write

    rows = read_metrics(directory / "metrics.jsonl")
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(2, 2, sharex="col")
    for col, (x, label) in enumerate((("step", "steps"), ("minutes", "wall-clock minutes (validations included)"))):
        bleu, loss = axes[0][col], axes[1][col]
        bleu.plot(*_series(rows, "valid", x, "bleu"), marker="o", markersize=3, label="dev BLEU")
        bleu.plot(*_series(rows, "averaged", x, "dev_bleu"), marker="*", markersize=12, linestyle="none",
                  label="averaged checkpoints")
        loss.plot(*_series(rows, "train", x, "loss"), color="0.75", linewidth=0.8, label="train loss")
        loss.plot(*_series(rows, "valid", x, "loss"), marker="o", markersize=3, label="dev loss")
        loss.plot(*_series(rows, "averaged", x, "dev_loss"), marker="*", markersize=12, linestyle="none",
                  label="averaged checkpoints")
        loss.set_xlabel(label)
        for ax in (bleu, loss):
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("dev BLEU")
    axes[1][0].set_ylabel("loss per token")
    axes[0][0].legend(loc="lower right")
    axes[1][0].legend(loc="upper right")
    fig.suptitle(directory.name)
    path = directory / CURVE
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    return path
