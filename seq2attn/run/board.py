"""``train.tensorboard: true``: the run's training and validation scalars and the validation
attention image, written to ``MODEL/tensorboard/`` with ``torch.utils.tensorboard`` (the
``tensorboard`` extra), the convention JoeyNMT and fairseq users know: ``tensorboard --logdir MODEL``.

Scalars are the numbers of the metrics.jsonl rows, under ``train/`` (loss per target token,
learning rate, target tokens/s) and ``dev/`` (loss, perplexity, BLEU, chrF, exact match); the
image is the attention of the first dev pair that ``train.attention_image`` draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seq2attn.errors import ConfigError

BOARD_DIR = "tensorboard"
SCALARS = {
    "train": {"loss": "train/loss", "lr": "train/lr", "tokens_per_s": "train/tokens_per_s"},
    "valid": {"loss": "dev/loss", "ppl": "dev/ppl", "bleu": "dev/bleu", "chrf": "dev/chrf", "exact": "dev/exact"},
}


def check_tensorboard() -> None:
    """A one-line ConfigError unless ``torch.utils.tensorboard`` can be imported."""
    try:
        import torch.utils.tensorboard  # noqa: F401 - imports the tensorboard package
    except ImportError:
        raise ConfigError("train.tensorboard=true needs the tensorboard package: pip install 'seq2attn[tensorboard]' "
                          "(or set train.tensorboard=false)") from None


class Board:
    """One run's event files. ``start_step``: a resumed run's step; the events a killed run wrote
    after its last checkpoint are dropped (TensorBoard's ``purge_step``), as metrics.jsonl drops
    its rows; a fresh run first removes the event files of an earlier run that saved nothing."""

    def __init__(self, out: Path, *, start_step: int = 0) -> None:
        check_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        directory = out / BOARD_DIR
        if start_step == 0 and directory.is_dir() and not directory.is_symlink():
            for old in directory.glob("events.out.tfevents.*"):
                old.unlink()
        self.writer = SummaryWriter(log_dir=str(directory), purge_step=start_step or None)

    def log(self, row: dict[str, Any]) -> None:
        for key, tag in SCALARS.get(row.get("kind"), {}).items():
            value = row.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag, value, global_step=row["step"])
        if row.get("kind") == "valid":
            self.writer.flush()

    def image(self, path: Path, step: int) -> None:
        """The attention picture at ``path`` (a PNG the run drew) as image ``dev/attention``."""
        from matplotlib.image import imread

        pixels = imread(path)[..., :3]  # (H, W, RGB) floats in [0, 1]; the alpha channel dropped
        self.writer.add_image("dev/attention", pixels, global_step=step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
