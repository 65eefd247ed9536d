"""People's output on stderr: the training progress bar and messages (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from seq2attn.run.reporter import Reporter

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class RichReporter(Reporter):
    """Progress on stderr: a bar (step N/total, loss, tokens/s, ETA) on a terminal, one plain line
    per logged step otherwise (a log file); one line per validation either way."""

    def __init__(self, console: Console = stderr):
        self.console = console
        self.progress: Progress | None = None
        self.task = None
        self.total: int | None = None

    def message(self, text: str) -> None:
        (self.progress.console if self.progress else self.console).print(text)

    def start(self, *, total_steps: int | None, start_step: int) -> None:
        self.total = total_steps
        if not self.console.is_terminal:
            return
        steps = "step {task.completed}/{task.total}" if total_steps else "step {task.completed}"
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), TextColumn(steps),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, info="")
        self.progress.start()

    def step(self, row: dict[str, Any]) -> None:
        info = f"loss {row['loss']:.3f}  {row['tokens_per_s']:,.0f} tok/s  lr {row['lr']:.2g}"
        if self.progress is not None:
            self.progress.update(self.task, completed=row["step"], info=info)
        else:
            total = f"/{self.total}" if self.total else ""
            self.console.print(f"step {row['step']}{total}  {info}  {row['minutes']:.1f} min")

    def validating(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, info="validating...")

    def validation(self, row: dict[str, Any]) -> None:
        mark = " *best*" if row.get("best") else ""
        line = (f"step {row['step']:>6}  dev loss {row['loss']:.3f}  ppl {row['ppl']:.2f}  BLEU {row['bleu']:.2f}  "
                f"chrF {row['chrf']:.2f}  exact {row['exact']:.1f}%  ({row['valid_seconds']:.1f} s){mark}")
        self.message(line)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
